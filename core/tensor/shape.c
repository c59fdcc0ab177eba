/* Shape ops (shape.h): views where the result stays contiguous, copies
 * through sl_strided_copy_f32 or memcpy otherwise (docs/views.md). */
#include "shape.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "parallel.h"
#include "vmath.h"

static int check_dim(const char *op, const sl_tensor *t, int dim, int extra) {
  if (dim < 0 || dim >= t->ndim + extra)
    return sl_fail(SL_ERANGE, "%s: dimension %d out of range 1..%d for %s", op, dim + 1, t->ndim + extra,
                   sl_shape_str(t, (char[160]){0}, 160));
  return SL_OK;
}

/* A view of t with another shape of the same element count. */
static sl_tensor *reshaped(const sl_tensor *t, int ndim, const int64_t *shape) {
  return sl_tensor_reshape(t, ndim, shape);
}

/* Checks perm and gives the result's shape and the source stride of each of its dims. */
static int permute_plan(const sl_tensor *t, const int *perm, int64_t *shape, int64_t *sstride) {
  int64_t in_stride[SL_MAX_DIMS];
  int seen[SL_MAX_DIMS] = {0};
  for (int k = 0; k < t->ndim; k++) {
    if (perm[k] < 0 || perm[k] >= t->ndim)
      return sl_fail(SL_ERANGE, "permute: dimension %d out of range 1..%d for %s", perm[k] + 1, t->ndim,
                     sl_shape_str(t, (char[160]){0}, 160));
    if (seen[perm[k]]++) return sl_fail(SL_EINVAL, "permute: dimension %d appears twice", perm[k] + 1);
  }
  in_stride[t->ndim - 1] = 1;
  for (int d = t->ndim - 2; d >= 0; d--) in_stride[d] = in_stride[d + 1] * t->shape[d + 1];
  for (int k = 0; k < t->ndim; k++) {
    shape[k] = t->shape[perm[k]];
    sstride[k] = in_stride[perm[k]];
  }
  return SL_OK;
}

sl_tensor *sl_tensor_permute(const sl_tensor *t, const int *perm) {
  int64_t shape[SL_MAX_DIMS], sstride[SL_MAX_DIMS];
  if (permute_plan(t, perm, shape, sstride)) return NULL;
  sl_tensor *r = sl_tensor_empty(t->ndim, shape);
  if (r) sl_strided_copy_f32(r->data, t->data, t->ndim, shape, sstride);
  return r;
}

int sl_tensor_permute_into(sl_tensor *y, const sl_tensor *t, const int *perm) {
  int64_t shape[SL_MAX_DIMS], sstride[SL_MAX_DIMS];
  int st = permute_plan(t, perm, shape, sstride);
  if (st) return st;
  if (y->numel != t->numel) {
    char a[160], b[160];
    return sl_fail(SL_ESHAPE, "permute: output %s does not match the result's shape %s", sl_shape_str(y, a, sizeof a),
                   sl_shape_str_raw(t->ndim, shape, b, sizeof b));
  }
  if (y->numel && y->data < t->data + t->numel && t->data < y->data + y->numel)
    return sl_fail(SL_EINVAL, "permute: output may not share memory with the input");
  sl_strided_copy_f32(y->data, t->data, t->ndim, shape, sstride);
  return SL_OK;
}

sl_tensor *sl_tensor_transpose(const sl_tensor *t, int d1, int d2) {
  if (check_dim("transpose", t, d1, 0) || check_dim("transpose", t, d2, 0)) return NULL;
  int perm[SL_MAX_DIMS];
  for (int k = 0; k < t->ndim; k++) perm[k] = k;
  perm[d1] = d2;
  perm[d2] = d1;
  return sl_tensor_permute(t, perm);
}

sl_tensor *sl_tensor_squeeze(const sl_tensor *t, int dim) {
  int64_t shape[SL_MAX_DIMS];
  int n = 0;
  if (dim >= 0 && check_dim("squeeze", t, dim, 0)) return NULL;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != 1 || (dim >= 0 && d != dim)) shape[n++] = t->shape[d];
  if (n == 0) shape[n++] = 1; /* no 0-D tensors: [1 x 1] squeezes to [1] */
  return reshaped(t, n, shape);
}

sl_tensor *sl_tensor_unsqueeze(const sl_tensor *t, int dim) {
  if (check_dim("unsqueeze", t, dim, 1)) return NULL;
  if (t->ndim == SL_MAX_DIMS)
    return sl_fail_null(SL_ESHAPE, "unsqueeze: %s already has %d dimensions, the most a tensor can have",
                        sl_shape_str(t, (char[160]){0}, 160), SL_MAX_DIMS);
  int64_t shape[SL_MAX_DIMS];
  for (int d = 0, k = 0; d <= t->ndim; d++) shape[d] = d == dim ? 1 : t->shape[k++];
  return reshaped(t, t->ndim + 1, shape);
}

sl_tensor *sl_tensor_flatten(const sl_tensor *t, int start, int end) {
  if (check_dim("flatten", t, start, 0) || check_dim("flatten", t, end, 0)) return NULL;
  if (start > end)
    return sl_fail_null(SL_EINVAL, "flatten: start dimension %d comes after end dimension %d", start + 1, end + 1);
  int64_t shape[SL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d > start && d <= end)
      shape[n - 1] *= t->shape[d]; /* no overflow: the product is at most numel or a zero factor */
    else
      shape[n++] = t->shape[d];
  }
  return reshaped(t, n, shape);
}

sl_tensor *sl_tensor_expand(const sl_tensor *t, int ndim, const int64_t *shape) {
  char a[160], b[160];
  if (ndim < t->ndim || ndim > SL_MAX_DIMS)
    return sl_fail_null(SL_ESHAPE, "expand: %d sizes given for %s, expected %d to %d", ndim,
                        sl_shape_str(t, a, sizeof a), t->ndim, SL_MAX_DIMS);
  int64_t out[SL_MAX_DIMS], sstride[SL_MAX_DIMS], stride = 1;
  int lead = ndim - t->ndim;
  for (int d = ndim - 1; d >= 0; d--) {
    int64_t want = shape[d], have = d >= lead ? t->shape[d - lead] : 1;
    if (want == -1) {
      if (d < lead)
        return sl_fail_null(SL_ESHAPE, "expand: size -1 is not allowed in a new leading dimension (%d)", d + 1);
      want = have;
    }
    if (want < 0 || (have != 1 && want != have))
      return sl_fail_null(SL_ESHAPE, "expand: %s cannot expand to %s (dim %d: %" PRId64 " vs %" PRId64 ")",
                          sl_shape_str(t, a, sizeof a), sl_shape_str_raw(ndim, shape, b, sizeof b), d + 1, have,
                          want);
    out[d] = want;
    sstride[d] = have == 1 && want != 1 ? 0 : stride; /* a repeated dim reads the same elements */
    if (d >= lead) stride *= have;
  }
  sl_tensor *r = sl_tensor_empty(ndim, out);
  if (r) sl_strided_copy_f32(r->data, t->data, ndim, out, sstride);
  return r;
}

sl_tensor *sl_tensor_select_dim(const sl_tensor *t, int dim, int64_t i) {
  if (check_dim("select", t, dim, 0)) return NULL;
  if (t->ndim < 2)
    return sl_fail_null(SL_ESHAPE, "select: tensor %s has one dimension; index it for a number",
                        sl_shape_str(t, (char[160]){0}, 160));
  if (i < 0 || i >= t->shape[dim])
    return sl_fail_null(SL_ERANGE, "select: index %" PRId64 " out of range 1..%" PRId64 " for dimension %d of %s",
                        i + 1, t->shape[dim], dim + 1, sl_shape_str(t, (char[160]){0}, 160));
  sl_tensor *n = sl_tensor_narrow(t, dim, i, 1);
  if (!n) return NULL;
  sl_tensor *r = sl_tensor_squeeze(n, dim); /* a view of n: of t's storage when n is a view */
  sl_tensor_release(n);
  return r;
}

/* PyTorch still accepts a 1-D empty tensor in cat with any shape. */
static int legacy_empty(const sl_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

/* Checks the list and gives the result's shape; *ref is the tensor whose
 * ndim the result has. */
static int cat_shape(sl_tensor *const *ts, int n, int dim, const sl_tensor **refp, int64_t *shape) {
  char a[160], b[160];
  if (n < 1) return sl_fail(SL_EINVAL, "cat: expected a non-empty list of tensors");
  const sl_tensor *ref = NULL;
  for (int k = 0; k < n && !ref; k++)
    if (!legacy_empty(ts[k])) ref = ts[k];
  if (!ref) ref = ts[0];
  int st = check_dim("cat", ref, dim, 0);
  if (st) return st;
  memcpy(shape, ref->shape, sizeof ref->shape);
  shape[dim] = 0;
  for (int k = 0; k < n; k++) {
    const sl_tensor *t = ts[k];
    if (legacy_empty(t) && t != ref) continue;
    int ok = t->ndim == ref->ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = d == dim || t->shape[d] == ref->shape[d];
    if (!ok)
      return sl_fail(SL_ESHAPE, "cat: tensor %d has shape %s, expected %s except in dimension %d", k + 1,
                     sl_shape_str(t, a, sizeof a), sl_shape_str(ref, b, sizeof b), dim + 1);
    if (shape[dim] > INT64_MAX - t->shape[dim])
      return sl_fail(SL_ESHAPE, "cat: dimension %d overflows 64 bits", dim + 1);
    shape[dim] += t->shape[dim];
  }
  *refp = ref;
  return SL_OK;
}

/* The output as outer rows of the tensors' blocks side by side, copied
 * over any range [b, e) of its elements: pieces of the pool are ranges of
 * the output, so a big cat runs on both threads (a copy: any split gives the
 * same bytes). */
typedef struct cat_job {
  float *o;
  const float *src[64]; /* each tensor's data */
  int64_t block[64];    /* each tensor's block per outer row (0 for a skipped legacy empty) */
  int n;
  int nt;               /* streaming stores (sl_vstream_copy_f32) */
  int64_t row;          /* the sum of the blocks */
  size_t total;         /* output elements */
} cat_job;

/* Results written with streaming stores: a fresh result of 1 MB or more
 * (cold memory: see sl_strided_copy_f32 in strided.c), or any result
 * of 16 MB or more (bigger than the caches). Ordinary stores would first
 * read each destination line from memory. */
#define CAT_NT_FRESH_MIN ((int64_t)1 << 18)
#define CAT_NT_MIN ((int64_t)4 << 20)

static void cat_range(const void *vj, size_t b, size_t e) {
  const cat_job *j = vj;
  int64_t pos = (int64_t)b, end = (int64_t)e, i = pos / j->row, off = pos % j->row;
  int k = 0;
  while (off >= j->block[k]) off -= j->block[k++]; /* blocks of 0 are skipped here */
  while (pos < end) {
    int64_t m = j->block[k] - off < end - pos ? j->block[k] - off : end - pos;
    if (j->nt)
      sl_vstream_copy_f32(j->o + pos, j->src[k] + i * j->block[k] + off, (size_t)m);
    else
      memcpy(j->o + pos, j->src[k] + i * j->block[k] + off, (size_t)m * sizeof(float));
    pos += m, off += m;
    if (off == j->block[k]) {
      off = 0;
      do {
        if (++k == j->n) k = 0, i++;
      } while (pos < end && j->block[k] == 0);
    }
  }
  if (j->nt) sl_vstream_fence(); /* the streamed stores are visible before the pool reports the piece done */
}

/* Task i of CAT_TASKS: the i-th quarter of the output, borders on 64-byte
 * lines. A few big contiguous tasks instead of sl_par_for's 16 claimed
 * pieces: the caller claims the first and the helper the second, so from
 * call to call each core tends to rewrite the lines it wrote before, still
 * in its own cache; with 16 pieces claimed in any order a core mostly
 * writes lines the other core holds. [1000 x 1000] cat into `out` at 2
 * threads (C driver, best of 200, three runs): 0.060 ms with 16 pieces,
 * 0.051-0.054 ms with 2 or 4 tasks (memcpy of the same bytes 0.038-0.040). */
#define CAT_TASKS 4
static void cat_task(const void *vj, unsigned i) {
  const cat_job *j = vj;
  size_t b = j->total * i / CAT_TASKS & ~(size_t)15, e = j->total * (i + 1) / CAT_TASKS;
  if (i + 1 < CAT_TASKS) e &= ~(size_t)15;
  if (b < e) cat_range(vj, b, e);
}

static void cat_copy(float *o, sl_tensor *const *ts, int n, int dim, const sl_tensor *ref, const int64_t *shape,
                     bool fresh) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; d++) outer *= shape[d];
  for (int d = dim + 1; d < ref->ndim; d++) inner *= shape[d];
  if (n > 64) { /* past the job's table: one serial pass */
    for (int64_t i = 0; i < outer; i++)
      for (int k = 0; k < n; k++) {
        const sl_tensor *t = ts[k];
        if (legacy_empty(t) && t != ref) continue;
        int64_t block = t->shape[dim] * inner;
        if (block) memcpy(o, t->data + i * block, (size_t)block * sizeof(float));
        o += block;
      }
    return;
  }
  cat_job j = {.o = o, .n = n};
  for (int k = 0; k < n; k++) {
    const sl_tensor *t = ts[k];
    j.block[k] = legacy_empty(t) && t != ref ? 0 : t->shape[dim] * inner;
    j.src[k] = t->data;
    j.row += j.block[k];
  }
  if (j.row == 0 || outer == 0) return;
  j.nt = outer * j.row >= (fresh ? CAT_NT_FRESH_MIN : CAT_NT_MIN);
  j.total = (size_t)(outer * j.row);
  if (j.total < sl_par_min())
    cat_range(&j, 0, j.total);
  else
    sl_par_tasks(CAT_TASKS, cat_task, &j);
}

sl_tensor *sl_tensor_cat(sl_tensor *const *ts, int n, int dim) {
  int64_t shape[SL_MAX_DIMS];
  const sl_tensor *ref;
  if (cat_shape(ts, n, dim, &ref, shape)) return NULL;
  sl_tensor *r = sl_tensor_empty(ref->ndim, shape);
  if (r) cat_copy(r->data, ts, n, dim, ref, shape, true);
  return r;
}

int sl_tensor_cat_into(sl_tensor *y, sl_tensor *const *ts, int n, int dim) {
  int64_t shape[SL_MAX_DIMS];
  const sl_tensor *ref;
  int st = cat_shape(ts, n, dim, &ref, shape);
  if (st) return st;
  char a[160], b[160];
  bool same = y->ndim == ref->ndim;
  for (int d = 0; same && d < y->ndim; d++) same = y->shape[d] == shape[d];
  if (!same)
    return sl_fail(SL_ESHAPE, "cat: output %s does not match the result's shape %s", sl_shape_str(y, a, sizeof a),
                   sl_shape_str_raw(ref->ndim, shape, b, sizeof b));
  for (int k = 0; k < n; k++)
    if (y->numel && ts[k]->numel && y->data < ts[k]->data + ts[k]->numel && ts[k]->data < y->data + y->numel)
      return sl_fail(SL_EINVAL, "cat: output may not share memory with tensor %d", k + 1);
  cat_copy(y->data, ts, n, dim, ref, shape, false);
  return SL_OK;
}

sl_tensor *sl_tensor_stack(sl_tensor *const *ts, int n, int dim) {
  char a[160], b[160];
  if (n < 1) return sl_fail_null(SL_EINVAL, "stack: expected a non-empty list of tensors");
  for (int k = 1; k < n; k++)
    if (!sl_tensor_same_shape(ts[k], ts[0]))
      return sl_fail_null(SL_ESHAPE, "stack: tensor %d has shape %s, expected %s like tensor 1", k + 1,
                          sl_shape_str(ts[k], a, sizeof a), sl_shape_str(ts[0], b, sizeof b));
  if (check_dim("stack", ts[0], dim, 1)) return NULL;
  if (ts[0]->ndim == SL_MAX_DIMS)
    return sl_fail_null(SL_ESHAPE, "stack: %s already has %d dimensions, the most a tensor can have",
                        sl_shape_str(ts[0], a, sizeof a), SL_MAX_DIMS);
  /* stack = cat of unsqueezed tensors: each output row holds the n blocks side by side */
  int64_t shape[SL_MAX_DIMS];
  for (int d = 0, k = 0; d <= ts[0]->ndim; d++) shape[d] = d == dim ? n : ts[0]->shape[k++];
  sl_tensor *r = sl_tensor_empty(ts[0]->ndim + 1, shape);
  if (!r) return NULL;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; d++) outer *= shape[d];
  for (int d = dim + 1; d <= ts[0]->ndim; d++) inner *= shape[d];
  float *o = r->data;
  for (int64_t i = 0; i < outer; i++)
    for (int k = 0; k < n; k++, o += inner)
      if (inner) memcpy(o, ts[k]->data + i * inner, (size_t)inner * sizeof(float));
  return r;
}
