/* Tensor headers and refcounted storage. A header (shape, data pointer) is
 * refcounted so Lua boxes and modules can share it; the storage is refcounted
 * separately so views outlive the tensor they came from. */
#include "tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "parallel.h"

struct sl_storage {
  float *data;
  int64_t capacity; /* floats */
  int refcount;
  void (*release)(void *ctx, float *data); /* wrapped host buffers */
  void *ctx;
  bool owned; /* data allocated with sl_malloc */
  uint64_t version; /* last in-place module write (sl_tensor_bump_version); 0: none */
};

int sl_shape_check(int ndim, const int64_t *shape, int64_t *numel) {
  if (ndim < 1 || ndim > SL_MAX_DIMS)
    return sl_fail(SL_ESHAPE, "tensor: %d dimensions requested, expected 1 to %d", ndim, SL_MAX_DIMS);
  /* nz multiplies the non-zero sizes only: a shape such as [0 x 2^40 x 2^40]
   * has no elements, but code that multiplies some of its sizes (strides,
   * row lengths) would overflow, so it is refused too (found by fuzzing). */
  int64_t n = 1, nz = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return sl_fail(SL_ESHAPE, "tensor: size %" PRId64 " of dimension %d is negative", shape[i], i + 1);
    if (shape[i] != 0 && nz > INT64_MAX / shape[i])
      return sl_fail(SL_ENOMEM, "tensor: shape %s has more elements than fit in 64 bits",
                     sl_shape_str_raw(ndim, shape, (char[160]){0}, 160));
    if (shape[i] != 0) nz *= shape[i];
    n *= shape[i];
  }
  if ((uint64_t)nz > SIZE_MAX / sizeof(float)) /* nz >= n */
    return sl_fail(SL_ENOMEM, "tensor: shape %s exceeds the address space",
                   sl_shape_str_raw(ndim, shape, (char[160]){0}, 160));
  if (numel) *numel = n;
  return SL_OK;
}

char *sl_shape_str_raw(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t len = 0;
  if (n == 0) return buf;
  buf[0] = '\0';
  len += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, i ? " x %" PRId64 : "%" PRId64, shape[i]);
  if (len < n) snprintf(buf + len, n - len, "]");
  return buf;
}

char *sl_shape_str(const sl_tensor *t, char *buf, size_t n) {
  return sl_shape_str_raw(t->ndim, t->shape, buf, n);
}

bool sl_tensor_same_shape(const sl_tensor *a, const sl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

static sl_storage *storage_new(int64_t numel) {
  sl_storage *s = sl_malloc(sizeof *s);
  if (!s) return NULL;
  /* Always allocate at least one float so data is never NULL. */
  s->data = sl_malloc((size_t)(numel > 0 ? numel : 1) * sizeof(float));
  if (!s->data) {
    sl_free(s);
    return NULL;
  }
  s->capacity = numel;
  s->refcount = 1;
  s->release = NULL;
  s->ctx = NULL;
  s->owned = true;
  s->version = 0; /* sl_malloc does not zero: a stale stamp made saved-tensor checks flaky */
  return s;
}

static void storage_release(sl_storage *s) {
  if (!s || --s->refcount > 0) return;
  if (s->owned)
    sl_free(s->data);
  else if (s->release)
    s->release(s->ctx, s->data);
  sl_free(s);
}

/* A header over storage s (takes over the caller's storage reference). */
static sl_tensor *header_new(sl_storage *s, float *data, int ndim, const int64_t *shape, int64_t numel) {
  sl_tensor *t = sl_malloc(sizeof *t);
  if (!t) {
    storage_release(s);
    return NULL;
  }
  memset(t, 0, sizeof *t);
  t->storage = s;
  t->data = data;
  t->ndim = ndim;
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->numel = numel;
  t->refcount = 1;
  return t;
}

sl_tensor *sl_tensor_empty(int ndim, const int64_t *shape) {
  int64_t numel;
  if (sl_shape_check(ndim, shape, &numel)) return NULL;
  sl_storage *s = storage_new(numel);
  if (!s) return NULL;
  return header_new(s, s->data, ndim, shape, numel);
}

sl_tensor *sl_tensor_full(int ndim, const int64_t *shape, float value) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t)
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
  return t;
}

sl_tensor *sl_tensor_zeros(int ndim, const int64_t *shape) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
  return t;
}

sl_tensor *sl_tensor_ones(int ndim, const int64_t *shape) { return sl_tensor_full(ndim, shape, 1.0f); }

sl_tensor *sl_tensor_arange(double start, double end, double step) {
  if (!isfinite(start) || !isfinite(end) || !isfinite(step))
    return sl_fail_null(SL_EINVAL, "arange: start, end and step must be finite (got %g, %g, %g)",
                        start, end, step);
  if (step == 0.0) return sl_fail_null(SL_EINVAL, "arange: step must be non-zero");
  if ((end - start) / step < 0)
    return sl_fail_null(SL_EINVAL, "arange: step %g has the wrong sign for range %g to %g", step,
                        start, end);
  double count = ceil((end - start) / step);
  if (count > 1e12) return sl_fail_null(SL_ENOMEM, "arange: %g elements is too many", count);
  int64_t n = (int64_t)count;
  sl_tensor *t = sl_tensor_empty(1, &n);
  if (t)
    for (int64_t i = 0; i < n; i++) t->data[i] = (float)(start + (double)i * step);
  return t;
}

sl_tensor *sl_tensor_from_array(int ndim, const int64_t *shape, const float *data) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t && t->numel) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
  return t;
}

sl_tensor *sl_tensor_rand(int ndim, const int64_t *shape, sl_rng *r) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t) sl_rng_fill_uniform_f32(r, t->data, (size_t)t->numel, 0.0f, 1.0f);
  return t;
}

sl_tensor *sl_tensor_randn(int ndim, const int64_t *shape, sl_rng *r) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t) sl_rng_fill_normal_f32(r, t->data, (size_t)t->numel, 0.0f, 1.0f);
  return t;
}

sl_tensor *sl_tensor_wrap(int ndim, const int64_t *shape, float *data,
                          void (*release)(void *ctx, float *data), void *ctx) {
  int64_t numel;
  if (sl_shape_check(ndim, shape, &numel)) return NULL;
  if (!data && numel > 0) return sl_fail_null(SL_EINVAL, "tensor.wrap: data pointer is NULL");
  sl_storage *s = sl_malloc(sizeof *s);
  if (!s) return NULL;
  s->data = data;
  s->capacity = numel;
  s->refcount = 1;
  s->release = NULL; /* armed only on success: a failed wrap leaves the buffer to the caller */
  s->ctx = ctx;
  s->owned = false;
  s->version = 0;
  sl_tensor *t = header_new(s, data, ndim, shape, numel);
  if (t) s->release = release;
  return t;
}

sl_tensor *sl_tensor_retain(sl_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void sl_tensor_release(sl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->ag) t->ag_free(t->ag);
  storage_release(t->storage);
  sl_free(t);
}

static sl_tensor *view(const sl_tensor *t, float *data, int ndim, const int64_t *shape, int64_t numel) {
  t->storage->refcount++;
  return header_new(t->storage, data, ndim, shape, numel);
}

sl_tensor *sl_tensor_reshape(const sl_tensor *t, int ndim, const int64_t *shape) {
  int64_t s[SL_MAX_DIMS];
  char a[160], b[160];
  if (ndim < 1 || ndim > SL_MAX_DIMS)
    return sl_fail_null(SL_ESHAPE, "reshape: %d dimensions requested, expected 1 to %d", ndim, SL_MAX_DIMS);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (shape[i] == -1) {
      if (infer >= 0) return sl_fail_null(SL_ESHAPE, "reshape: only one dimension can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      return sl_fail_null(SL_ESHAPE, "reshape: size %" PRId64 " of dimension %d is negative", shape[i], i + 1);
    } else {
      if (shape[i] && known > INT64_MAX / shape[i])
        return sl_fail_null(SL_ENOMEM, "reshape: shape overflows 64 bits");
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || t->numel % known)
      return sl_fail_null(SL_ESHAPE, "reshape: cannot infer -1 in %s for %" PRId64 " elements",
                          sl_shape_str_raw(ndim, shape, a, sizeof a), t->numel);
    s[infer] = t->numel / known;
  }
  int64_t numel;
  if (sl_shape_check(ndim, s, &numel)) return NULL;
  if (numel != t->numel)
    return sl_fail_null(SL_ESHAPE, "reshape: shape %s (%" PRId64 " elements) does not match %s (%" PRId64 " elements)",
                        sl_shape_str_raw(ndim, s, a, sizeof a), numel, sl_shape_str(t, b, sizeof b), t->numel);
  return view(t, t->data, ndim, s, numel);
}

sl_tensor *sl_tensor_narrow(const sl_tensor *t, int dim, int64_t start, int64_t length) {
  char buf[160];
  if (dim < 0 || dim >= t->ndim)
    return sl_fail_null(SL_ERANGE, "narrow: dimension %d out of range for a %d-D tensor", dim + 1, t->ndim);
  int64_t size = t->shape[dim];
  if (start < 0 || start > size)
    return sl_fail_null(SL_ERANGE, "narrow: start %" PRId64 " out of range 1..%" PRId64 " for dimension %d of %s",
                        start + 1, size, dim + 1, sl_shape_str(t, buf, sizeof buf));
  if (length < 0 || length > size - start)
    return sl_fail_null(SL_ERANGE, "narrow: length %" PRId64 " from start %" PRId64 " exceeds size %" PRId64 " of dimension %d",
                        length, start + 1, size, dim + 1);
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[dim] = length;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; i++) outer *= t->shape[i];
  for (int i = dim + 1; i < t->ndim; i++) inner *= t->shape[i];
  if (outer == 1) return view(t, t->data + start * inner, t->ndim, shape, length * inner);
  sl_tensor *r = sl_tensor_empty(t->ndim, shape);
  if (!r) return NULL;
  for (int64_t o = 0; o < outer; o++)
    memcpy(r->data + o * length * inner, t->data + (o * size + start) * inner,
           (size_t)(length * inner) * sizeof(float));
  return r;
}

sl_tensor *sl_tensor_select(const sl_tensor *t, int64_t i) {
  char buf[160];
  if (t->ndim < 2)
    return sl_fail_null(SL_ESHAPE, "select: tensor %s has one dimension; index it for a number",
                        sl_shape_str(t, buf, sizeof buf));
  if (i < 0 || i >= t->shape[0])
    return sl_fail_null(SL_ERANGE, "index %" PRId64 " out of range 1..%" PRId64, i + 1, t->shape[0]);
  int64_t inner = t->numel / (t->shape[0] ? t->shape[0] : 1);
  return view(t, t->data + i * inner, t->ndim - 1, t->shape + 1, inner);
}

sl_tensor *sl_tensor_clone(const sl_tensor *t) {
  return sl_tensor_from_array(t->ndim, t->shape, t->data);
}

typedef struct copy_job {
  float *dst;
  const float *src;
} copy_job;

static void copy_range(const void *vj, size_t b, size_t e) {
  const copy_job *j = vj;
  memcpy(j->dst + b, j->src + b, (e - b) * sizeof(float));
}

int sl_tensor_copy(sl_tensor *dst, const sl_tensor *src) {
  char a[160], b[160];
  if (dst->numel != src->numel)
    return sl_fail(SL_ESHAPE, "copy: source %s has %" PRId64 " elements, destination %s has %" PRId64,
                   sl_shape_str(src, a, sizeof a), src->numel, sl_shape_str(dst, b, sizeof b), dst->numel);
  size_t n = (size_t)src->numel;
  if (dst->data == src->data || n == 0) return SL_OK;
  if (dst->data + n <= src->data || src->data + n <= dst->data) {
    /* disjoint: big copies split over the pool (one core does not reach
     * the memory bandwidth: 2.3 -> 1.1 ms for 40 MB at 2 threads) */
    copy_job j = {dst->data, src->data};
    sl_par_for(n, copy_range, &j);
  } else {
    memmove(dst->data, src->data, n * sizeof(float));
  }
  return SL_OK;
}

int sl_tensor_resize(sl_tensor *t, int ndim, const int64_t *shape) {
  int64_t numel;
  int st = sl_shape_check(ndim, shape, &numel);
  if (st) return st;
  sl_storage *s = t->storage;
  int64_t offset = t->data - s->data;
  if (s->refcount > 1 || offset + numel > s->capacity) {
    if (!s->owned && s->refcount == 1 && offset + numel <= s->capacity) {
      /* wrapped buffer large enough: keep it */
    } else {
      sl_storage *ns = storage_new(numel);
      if (!ns) return sl_last_status();
      storage_release(s);
      t->storage = ns;
      t->data = ns->data;
    }
  }
  t->ndim = ndim;
  memset(t->shape, 0, sizeof t->shape);
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->numel = numel;
  return SL_OK;
}

int sl_tensor_ensure(sl_tensor **buf, int ndim, const int64_t *shape) {
  if (!*buf) {
    *buf = sl_tensor_empty(ndim, shape);
    return *buf ? SL_OK : sl_last_status();
  }
  sl_tensor *t = *buf;
  if (t->ndim == ndim && memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) == 0) return SL_OK;
  return sl_tensor_resize(t, ndim, shape);
}

int sl_tensor_rehome(sl_tensor *t, sl_tensor *dst, int64_t off) { return sl_tensor_rehome_ex(t, dst, off, 0); }

int sl_tensor_rehome_ex(sl_tensor *t, sl_tensor *dst, int64_t off, unsigned flags) {
  char a[160], b[160];
  if (off < 0 || off > dst->numel || t->numel > dst->numel - off)
    return sl_fail(SL_ERANGE, "tensor.rehome: %s (%" PRId64 " elements) does not fit at offset %" PRId64 " of %s",
                   sl_shape_str(t, a, sizeof a), t->numel, off, sl_shape_str(dst, b, sizeof b));
  float *to = dst->data + off;
  if (t->storage == dst->storage && t->data == to) return SL_OK;
  bool detach = flags & SL_REHOME_DETACH;
  bool shared = t->storage->refcount > 1 && !detach;
  if (shared || (!t->storage->owned && !detach))
    return sl_fail(SL_EINVAL, "tensor.rehome: %s %s, so it cannot move", sl_shape_str(t, a, sizeof a),
                   shared ? "shares its storage with another view" : "wraps a host buffer");
  if (t->numel && !(flags & SL_REHOME_NOCOPY)) memmove(to, t->data, (size_t)t->numel * sizeof(float));
  dst->storage->refcount++;
  storage_release(t->storage);
  t->storage = dst->storage;
  t->data = to;
  return SL_OK;
}

bool sl_tensor_shares_storage(const sl_tensor *a, const sl_tensor *b) { return a->storage == b->storage; }

bool sl_tensor_owns_storage(const sl_tensor *t) { return t->storage->owned; }

int sl_tensor_storage_refcount(const sl_tensor *t) { return t->storage->refcount; }

/* Stamps from one process-wide counter: a stamp names one write to one
 * storage, so a different storage (a resized buffer) never matches either. */
static _Atomic uint64_t write_stamps;

uint64_t sl_tensor_bump_version(sl_tensor *t) { return t->storage->version = ++write_stamps; }

uint64_t sl_tensor_version(const sl_tensor *t) { return t->storage->version; }

static int flat_index(const sl_tensor *t, const int64_t *idx, int64_t *out) {
  int64_t k = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (idx[i] < 0 || idx[i] >= t->shape[i])
      return sl_fail(SL_ERANGE, "index %" PRId64 " out of range 1..%" PRId64 " for dimension %d",
                     idx[i] + 1, t->shape[i], i + 1);
    k = k * t->shape[i] + idx[i];
  }
  *out = k;
  return SL_OK;
}

int sl_tensor_get(const sl_tensor *t, const int64_t *idx, float *out) {
  int64_t k;
  int st = flat_index(t, idx, &k);
  if (!st) *out = t->data[k];
  return st;
}

int sl_tensor_set(sl_tensor *t, const int64_t *idx, float v) {
  int64_t k;
  int st = flat_index(t, idx, &k);
  if (!st) t->data[k] = v;
  return st;
}
