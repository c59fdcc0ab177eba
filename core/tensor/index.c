/* Indexing ops (index.h): plain loops over contiguous arrays. Indices are
 * validated in a pass of their own before any write, then used unchecked. */
#include "index.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "broadcast.h"
#include "error.h"

#define SHAPE_BUF 160

static int check_dim(const char *op, const sl_tensor *t, int dim) {
  if (dim < 0 || dim >= t->ndim)
    return sl_fail(SL_ERANGE, "%s: dimension %d out of range 1..%d for %s", op, dim + 1, t->ndim,
                   sl_shape_str(t, (char[SHAPE_BUF]){0}, SHAPE_BUF));
  return SL_OK;
}

/* "3" for a 1-D index, "(2, 3)" otherwise: flat position i of t, numbered
 * from base. */
static char *pos_str(const sl_tensor *t, int64_t i, int base, char *buf, size_t n) {
  int64_t c[SL_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) {
    c[d] = t->shape[d] ? i % t->shape[d] : 0;
    i = t->shape[d] ? i / t->shape[d] : 0;
  }
  if (t->ndim == 1) {
    snprintf(buf, n, "%" PRId64, c[0] + base);
    return buf;
  }
  size_t k = 0;
  for (int d = 0; d < t->ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64 "%s", d ? ", " : "(", c[d] + base, d + 1 < t->ndim ? "" : ")");
  return buf;
}

/* A value for a message: NaN without its sign bit (printf shows "-nan"). */
static double shown(float v) { return isnan(v) ? fabs((double)v) : (double)v; }

/* Every value of idx an integer in base..base+size-1; what names the range
 * ("dimension 2 of [3 x 4]", "num_classes 4"). */
static int check_indices(const char *op, const sl_tensor *idx, int base, int64_t size, const char *what) {
  char p[SHAPE_BUF];
  for (int64_t i = 0; i < idx->numel; i++) {
    double v = (double)idx->data[i] - base;
    if (v >= 0 && v < (double)size && v == floor(v)) continue;
    pos_str(idx, i, base, p, sizeof p);
    if (v != floor(v)) /* also NaN and infinities */
      return sl_fail(SL_ERANGE, "%s: index %.9g at position %s is not an integer (expected %d..%" PRId64 " for %s)", op,
                     shown(idx->data[i]), p, base, size - 1 + base, what);
    if (size == 0)
      return sl_fail(SL_ERANGE, "%s: index %.9g at position %s is out of range (%s is empty)", op,
                     shown(idx->data[i]), p, what);
    return sl_fail(SL_ERANGE, "%s: index %.9g at position %s is out of range %d..%" PRId64 " (%s)", op,
                   shown(idx->data[i]), p, base, size - 1 + base, what);
  }
  return SL_OK;
}

/* "dimension 2 of [3 x 4]" into buf. */
static const char *dim_of(const sl_tensor *x, int dim, char *buf, size_t n) {
  char s[SHAPE_BUF];
  snprintf(buf, n, "dimension %d of %s", dim + 1, sl_shape_str(x, s, sizeof s));
  return buf;
}

/* Row-major strides of t's shape. */
static void strides(const sl_tensor *t, int64_t *st) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    st[d] = s;
    s *= t->shape[d];
  }
}

sl_tensor *sl_index_select(const sl_tensor *x, int dim, const sl_tensor *idx, int base) {
  char a[SHAPE_BUF], w[2 * SHAPE_BUF];
  if (check_dim("index_select", x, dim)) return NULL;
  if (idx->ndim != 1)
    return sl_fail_null(SL_ESHAPE, "index_select: index must be 1-D, got %s", sl_shape_str(idx, a, sizeof a));
  if (check_indices("index_select", idx, base, x->shape[dim], dim_of(x, dim, w, sizeof w))) return NULL;
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[dim] = idx->numel;
  sl_tensor *y = sl_tensor_empty(x->ndim, shape);
  if (!y || y->numel == 0) return y;
  int64_t outer = 1, inner = 1, n = x->shape[dim], k = idx->numel;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  float *o = y->data;
  for (int64_t i = 0; i < outer; i++)
    for (int64_t j = 0; j < k; j++, o += inner) {
      int64_t r = (int64_t)idx->data[j] - base;
      memcpy(o, x->data + (i * n + r) * inner, (size_t)inner * sizeof(float));
    }
  return y;
}

/* idx has t's ndim and fits t in every dim (but skip, when skip >= 0). */
static int check_fits(const char *op, const sl_tensor *idx, const sl_tensor *t, const char *tname, int skip) {
  char a[SHAPE_BUF], b[SHAPE_BUF];
  if (idx->ndim != t->ndim)
    return sl_fail(SL_ESHAPE, "%s: index %s has %d dimension%s, %s %s has %d (they must match)", op,
                   sl_shape_str(idx, a, sizeof a), idx->ndim, idx->ndim == 1 ? "" : "s", tname,
                   sl_shape_str(t, b, sizeof b), t->ndim);
  for (int d = 0; d < t->ndim; d++)
    if (d != skip && idx->shape[d] > t->shape[d])
      return sl_fail(SL_ESHAPE, "%s: index %s is larger than %s %s in dimension %d (%" PRId64 " > %" PRId64 ")", op,
                     sl_shape_str(idx, a, sizeof a), tname, sl_shape_str(t, b, sizeof b), d + 1, idx->shape[d],
                     t->shape[d]);
  return SL_OK;
}

/* Walks the positions p of idx in row-major order, tracking the offsets of
 * p in a (strides sa) and in b (strides sb) with p[dim] dropped from a's:
 * the caller adds (idx[p] - base) * sa[dim]. */
typedef struct walk {
  int n, dim;
  int64_t size[SL_MAX_DIMS], sa[SL_MAX_DIMS], sb[SL_MAX_DIMS], c[SL_MAX_DIMS];
  int64_t oa, ob;
} walk;

static void walk_next(walk *w) {
  for (int d = w->n - 1; d >= 0; d--) {
    int64_t da = d == w->dim ? 0 : w->sa[d];
    w->oa += da;
    w->ob += w->sb[d];
    if (++w->c[d] < w->size[d]) return;
    w->oa -= da * w->size[d];
    w->ob -= w->sb[d] * w->size[d];
    w->c[d] = 0;
  }
}

static void walk_init(walk *w, const sl_tensor *idx, int dim, const sl_tensor *a, const sl_tensor *b) {
  memset(w, 0, sizeof *w);
  w->n = idx->ndim;
  w->dim = dim;
  memcpy(w->size, idx->shape, sizeof w->size);
  strides(a, w->sa);
  strides(b, w->sb);
}

int sl_gather_into(sl_tensor *y, const sl_tensor *x, int dim, const sl_tensor *idx, int base) {
  char w[2 * SHAPE_BUF];
  int st = check_dim("gather", x, dim);
  if (!st) st = check_fits("gather", idx, x, "input", dim);
  if (!st) st = check_fits("gather", idx, y, "output", -1);
  if (!st) st = check_indices("gather", idx, base, x->shape[dim], dim_of(x, dim, w, sizeof w));
  if (st || idx->numel == 0) return st;
  walk it;
  walk_init(&it, idx, dim, x, y);
  int64_t sd = it.sa[dim];
  for (int64_t i = 0; i < idx->numel; i++, walk_next(&it))
    y->data[it.ob] = x->data[it.oa + ((int64_t)idx->data[i] - base) * sd];
  return SL_OK;
}

sl_tensor *sl_gather(const sl_tensor *x, int dim, const sl_tensor *idx, int base) {
  /* shapes and indices are checked before the result is made */
  char w[2 * SHAPE_BUF];
  if (check_dim("gather", x, dim) || check_fits("gather", idx, x, "input", dim) ||
      check_indices("gather", idx, base, x->shape[dim], dim_of(x, dim, w, sizeof w)))
    return NULL;
  sl_tensor *y = sl_tensor_empty(idx->ndim, idx->shape);
  if (y && sl_gather_into(y, x, dim, idx, base)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

int sl_scatter_add_(sl_tensor *y, int dim, const sl_tensor *idx, const sl_tensor *src, int base) {
  char w[2 * SHAPE_BUF];
  int st = check_dim("scatter_add", y, dim);
  if (!st) st = check_fits("scatter_add", idx, y, "self", dim);
  if (!st) st = check_fits("scatter_add", idx, src, "src", -1);
  if (st) return st;
  /* written elements would change the indices or the values still to be read */
  if (sl_tensor_shares_storage(y, idx))
    return sl_fail(SL_EINVAL, "scatter_add: the index shares memory with the tensor written to (clone it first)");
  if (sl_tensor_shares_storage(y, src))
    return sl_fail(SL_EINVAL, "scatter_add: src shares memory with the tensor written to (clone it first)");
  if ((st = check_indices("scatter_add", idx, base, y->shape[dim], dim_of(y, dim, w, sizeof w))) || idx->numel == 0)
    return st;
  walk it;
  walk_init(&it, idx, dim, y, src);
  int64_t sd = it.sa[dim];
  for (int64_t i = 0; i < idx->numel; i++, walk_next(&it))
    y->data[it.oa + ((int64_t)idx->data[i] - base) * sd] += src->data[it.ob];
  return SL_OK;
}

sl_tensor *sl_scatter_add(const sl_tensor *x, int dim, const sl_tensor *idx, const sl_tensor *src, int base) {
  sl_tensor *y = sl_tensor_clone(x);
  if (y && sl_scatter_add_(y, dim, idx, src, base)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

/* y[i] = mask[i] != 0 ? v : x[i] over one broadcast run. */
static void fill_kernel(const void *ctx, float *y, const float *const *in, const int64_t *s, int64_t n) {
  float v = *(const float *)ctx;
  const float *x = in[0], *m = in[1];
  int64_t sx = s[0], sm = s[1];
  for (int64_t i = 0; i < n; i++) y[i] = m[i * sm] != 0 ? v : x[i * sx];
}

sl_tensor *sl_masked_fill(const sl_tensor *x, const sl_tensor *mask, float v) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  if (sl_broadcast_shapes("masked_fill", x, mask, &nd, shape)) return NULL;
  sl_tensor *y = sl_tensor_empty(nd, shape);
  const sl_tensor *in[2] = {x, mask};
  if (y && sl_broadcast_run("masked_fill", y, 2, in, fill_kernel, &v)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

int sl_masked_fill_(sl_tensor *x, const sl_tensor *mask, float v) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  char a[SHAPE_BUF], b[SHAPE_BUF], c[SHAPE_BUF];
  int st = sl_broadcast_shapes("masked_fill_", x, mask, &nd, shape);
  if (st) return st;
  if (nd != x->ndim || memcmp(shape, x->shape, (size_t)nd * sizeof *shape))
    return sl_fail(SL_ESHAPE, "masked_fill_: the mask %s broadcasts %s to %s, not to the in-place tensor's shape",
                   sl_shape_str(mask, b, sizeof b), sl_shape_str(x, a, sizeof a),
                   sl_shape_str_raw(nd, shape, c, sizeof c));
  if (sl_tensor_shares_storage(x, mask) && !(mask->data == x->data && sl_tensor_same_shape(x, mask)))
    return sl_fail(SL_EINVAL, "masked_fill_: the mask shares memory with the tensor written to (clone it first)");
  const sl_tensor *in[2] = {x, mask};
  return sl_broadcast_run("masked_fill_", x, 2, in, fill_kernel, &v);
}

sl_tensor *sl_one_hot(const sl_tensor *idx, int64_t C, int base) {
  char a[SHAPE_BUF], w[64];
  if (idx->ndim == SL_MAX_DIMS)
    return sl_fail_null(SL_ESHAPE, "one_hot: index %s already has %d dimensions, the most a tensor can have",
                        sl_shape_str(idx, a, sizeof a), SL_MAX_DIMS);
  if (C < 0) { /* infer: every value an integer >= base first, then the largest */
    if (idx->numel == 0)
      return sl_fail_null(SL_EINVAL, "one_hot: cannot infer the number of classes from an empty index %s (give it)",
                          sl_shape_str(idx, a, sizeof a));
    double top = 0;
    for (int64_t i = 0; i < idx->numel; i++) {
      double v = (double)idx->data[i] - base;
      if (!(v >= 0 && v == floor(v) && v < 0x1p62))
        return sl_fail_null(SL_ERANGE, "one_hot: index %.9g at position %s is not an integer >= %d", shown(idx->data[i]),
                            pos_str(idx, i, base, a, sizeof a), base);
      if (v > top) top = v;
    }
    C = (int64_t)top + 1;
  }
  snprintf(w, sizeof w, "num_classes %" PRId64, C);
  if (check_indices("one_hot", idx, base, C, w)) return NULL;
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof *shape);
  shape[idx->ndim] = C;
  sl_tensor *y = sl_tensor_zeros(idx->ndim + 1, shape);
  if (!y) return NULL;
  for (int64_t i = 0; i < idx->numel; i++) y->data[i * C + (int64_t)idx->data[i] - base] = 1;
  return y;
}
