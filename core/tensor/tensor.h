/*
 * Tensors: float32, contiguous, row-major, 1..SL_MAX_DIMS dims, int64_t shape.
 * A tensor is a small refcounted header pointing into a refcounted storage;
 * views (reshape, narrow/select along dim 0) share the storage. All indices
 * and dims in the C core are 0-based (the Lua bindings add 1).
 */
#ifndef SL_TENSOR_H
#define SL_TENSOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "random.h"

#define SL_MAX_DIMS 8

typedef struct sl_storage sl_storage;

typedef struct sl_tensor {
  float *data;                 /* first element (storage data + offset) */
  int ndim;                    /* 1..SL_MAX_DIMS */
  int64_t shape[SL_MAX_DIMS];  /* unused trailing entries are 0 */
  int64_t numel;               /* product of shape */
  int refcount;                /* references to this header */
  sl_storage *storage;         /* private: shared with views */
  void *ag;                    /* autograd state (core/autograd), NULL unless the tensor touched autograd */
  void (*ag_free)(void *ag);   /* frees ag with the header (set by core/autograd) */
} sl_tensor;

/* Checks 1 <= ndim <= SL_MAX_DIMS, every dim >= 0 and the product for
 * overflow (also numel * sizeof(float) must fit in size_t). */
int sl_shape_check(int ndim, const int64_t *shape, int64_t *numel);
/* Writes "[128 x 784]" into buf; returns buf. */
char *sl_shape_str(const sl_tensor *t, char *buf, size_t n);
char *sl_shape_str_raw(int ndim, const int64_t *shape, char *buf, size_t n);
bool sl_tensor_same_shape(const sl_tensor *a, const sl_tensor *b);
/* The printed form of t (Lua's tostring: Torch7's layout, summarized
 * above 1000 elements; core/tensor/print.c): writes at most cap bytes of it
 * to buf, without a terminating NUL, and returns its whole length, so
 * sl_tensor_format(NULL, 0, t) sizes the buffer. */
size_t sl_tensor_format(char *buf, size_t cap, const sl_tensor *t);

/* Constructors return a new tensor with refcount 1, or NULL (sl_last_error). */
sl_tensor *sl_tensor_empty(int ndim, const int64_t *shape); /* uninitialized */
sl_tensor *sl_tensor_zeros(int ndim, const int64_t *shape);
sl_tensor *sl_tensor_ones(int ndim, const int64_t *shape);
sl_tensor *sl_tensor_full(int ndim, const int64_t *shape, float value);
/* 1-D [start, start+step, ...) up to (excluding) end, like torch.arange. */
sl_tensor *sl_tensor_arange(double start, double end, double step);
/* Copies numel floats from data. */
sl_tensor *sl_tensor_from_array(int ndim, const int64_t *shape, const float *data);
sl_tensor *sl_tensor_rand(int ndim, const int64_t *shape, sl_rng *r);  /* U[0,1) */
sl_tensor *sl_tensor_randn(int ndim, const int64_t *shape, sl_rng *r); /* N(0,1) */
/* Wraps a caller-owned buffer without copying. release(ctx, data) is called
 * when the last reference goes away (may be NULL: the caller then keeps the
 * buffer alive for as long as any tensor or view of it exists). On failure
 * (NULL) release is not called: the caller still owns the buffer. */
sl_tensor *sl_tensor_wrap(int ndim, const int64_t *shape, float *data,
                          void (*release)(void *ctx, float *data), void *ctx);

/* Reference counting. retain returns t; release(NULL) is a no-op. */
sl_tensor *sl_tensor_retain(sl_tensor *t);
void sl_tensor_release(sl_tensor *t);

/* Views sharing storage (new header, refcount 1). reshape accepts one -1. */
sl_tensor *sl_tensor_reshape(const sl_tensor *t, int ndim, const int64_t *shape);
/* narrow along any dim: a view when dim == 0 (or all leading dims are 1),
 * a copy otherwise. */
sl_tensor *sl_tensor_narrow(const sl_tensor *t, int dim, int64_t start, int64_t length);
/* Row i along dim 0 of an n-D tensor (n >= 2): an (n-1)-D view. */
sl_tensor *sl_tensor_select(const sl_tensor *t, int64_t i);
sl_tensor *sl_tensor_clone(const sl_tensor *t);
/* Copies src into dst; numel must match (shapes may differ). */
int sl_tensor_copy(sl_tensor *dst, const sl_tensor *src);
/* Changes dst's shape in place, reallocating only when the storage is too
 * small or shared with a view; contents are unspecified afterwards. Used for
 * buffers that are reused across steps. */
int sl_tensor_resize(sl_tensor *t, int ndim, const int64_t *shape);
/* Ensures *buf is a tensor of this shape (creating it when NULL). */
int sl_tensor_ensure(sl_tensor **buf, int ndim, const int64_t *shape);
/* Moves t's elements into dst's storage at element offset off of dst (the
 * slice dst->data[off .. off + t->numel) must lie inside dst) and makes t a
 * view of it, in place: the same header, so every holder of t (modules,
 * optimizers, Lua boxes) sees the new home. Used to gather gradients into
 * one flat buffer (selut.dist.DataParallel). Refused with SL_EINVAL, t
 * unchanged, when t's storage is shared with another view or is a wrapped
 * host buffer (those would stop seeing t's data); a no-op when t already
 * lives there. Afterwards sl_tensor_resize of t moves it out again. */
int sl_tensor_rehome(sl_tensor *t, sl_tensor *dst, int64_t off);
/* sl_tensor_rehome with flags: SL_REHOME_NOCOPY keeps dst's elements (t's
 * values are dropped: the new home already holds the right ones, written by
 * another process); SL_REHOME_DETACH lets t leave a storage that other views
 * share (they keep it) or a wrapped buffer: only for an owner that knows no
 * other view aliases t's elements and that the buffer is its own, as
 * DataParallel moving gradients out of its flat buffer, or parameters out
 * of its shared-memory segment. */
enum { SL_REHOME_NOCOPY = 1, SL_REHOME_DETACH = 2 };
int sl_tensor_rehome_ex(sl_tensor *t, sl_tensor *dst, int64_t off, unsigned flags);
/* False for a tensor over a wrapped host buffer (sl_tensor_wrap). */
bool sl_tensor_owns_storage(const sl_tensor *t);
/* True if the two tensors share storage. */
bool sl_tensor_shares_storage(const sl_tensor *a, const sl_tensor *b);
/* Number of references to the storage (headers + views). */
int sl_tensor_storage_refcount(const sl_tensor *t);
/* In-place write stamps (shared by the views of one storage): an in-place
 * module stamps the tensor it overwrote and its backward refuses when the
 * stamp changed since (another in-place write, or a new buffer). */
uint64_t sl_tensor_bump_version(sl_tensor *t);
uint64_t sl_tensor_version(const sl_tensor *t);

/* Element access with flat 0-based index arrays (bounds-checked). */
int sl_tensor_get(const sl_tensor *t, const int64_t *idx, float *out);
int sl_tensor_set(sl_tensor *t, const int64_t *idx, float v);

#endif
