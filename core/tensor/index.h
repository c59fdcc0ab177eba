/*
 * Indexing ops with PyTorch's semantics: index_select, gather, scatter_add,
 * masked_fill, one_hot. Dims are 0-based here (the bindings normalize
 * 1-based and negative dims). Indices live in float tensors holding exact
 * integers numbered from `base` (1 from Lua, 0 from C); a non-integer or
 * out-of-range index fails with SL_ERANGE naming the op, the value as the
 * caller wrote it, its position (numbered from base) and the allowed range.
 * Every index is checked before anything is written, so a failing in-place
 * op leaves its tensor unchanged. Accumulation (scatter_add) runs serially
 * in index order: the bits do not depend on the thread count.
 */
#ifndef SL_INDEX_H
#define SL_INDEX_H
#include <stdbool.h>
#include <stdint.h>

#include "tensor.h"

/* y = x's slices idx[k] along dim, in idx's order (idx 1-D): y has x's
 * shape with dim resized to idx's length. New tensor or NULL. */
sl_tensor *sl_index_select(const sl_tensor *x, int dim, const sl_tensor *idx, int base);
/* y[p] = x[p with p[dim] = idx[p]]: y has idx's shape; idx has x's ndim and
 * no dim larger than x's except dim. New tensor or NULL. */
sl_tensor *sl_gather(const sl_tensor *x, int dim, const sl_tensor *idx, int base);
/* sl_gather written into the leading block of y (y's shape >= idx's in
 * every dim; elements outside idx's extent are left alone). */
int sl_gather_into(sl_tensor *y, const sl_tensor *x, int dim, const sl_tensor *idx, int base);
/* In place: y[p with p[dim] = idx[p]] += src[p] for every position p of idx
 * (row-major order). idx, y and src have one ndim; idx fits in src in every
 * dim and in y in every dim but dim. src and idx must not share y's storage
 * (SL_EINVAL). */
int sl_scatter_add_(sl_tensor *y, int dim, const sl_tensor *idx, const sl_tensor *src, int base);
/* The same into a copy of x. New tensor or NULL. */
sl_tensor *sl_scatter_add(const sl_tensor *x, int dim, const sl_tensor *idx, const sl_tensor *src, int base);

/* x's elements where mask (broadcast, PyTorch's rule) is non-zero set to v.
 * The out-of-place form has the broadcast shape of x and mask; the in-place
 * form requires that shape to be x's and a mask that does not share x's
 * storage unless it is x itself. */
sl_tensor *sl_masked_fill(const sl_tensor *x, const sl_tensor *mask, float v);
int sl_masked_fill_(sl_tensor *x, const sl_tensor *mask, float v);

/* idx's shape + [C], 1 at each index, 0 elsewhere. C < 0 infers it as the
 * largest index + 1 - base (an empty idx then fails). New tensor or NULL. */
sl_tensor *sl_one_hot(const sl_tensor *idx, int64_t C, int base);

#endif
