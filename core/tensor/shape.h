/*
 * Shape ops with PyTorch's semantics over contiguous tensors (docs/views.md):
 * results that stay contiguous (squeeze, unsqueeze, flatten, a block of
 * leading rows) are views sharing the storage; rearrangements (permute,
 * transpose, expand, cat, stack) are new tensors. Dims are 0-based here and
 * already normalized (the bindings turn 1-based and negative dims into them).
 * Every function returns a new reference, or NULL with sl_last_error set.
 */
#ifndef SL_SHAPE_H
#define SL_SHAPE_H
#include <stdint.h>

#include "tensor.h"

/* Copy with dims reordered: result dim k is t's dim perm[k] (perm a
 * permutation of 0..ndim-1). */
sl_tensor *sl_tensor_permute(const sl_tensor *t, const int *perm);
/* The same written into y (y has the result's numel and shares no memory
 * with t). Returns SL_OK or an error status. */
int sl_tensor_permute_into(sl_tensor *y, const sl_tensor *t, const int *perm);
/* Copy with dims d1 and d2 swapped. */
sl_tensor *sl_tensor_transpose(const sl_tensor *t, int d1, int d2);
/* View without the size-1 dim `dim` (unchanged when its size is not 1), or
 * without every size-1 dim when dim < 0. A tensor keeps at least one dim
 * (selut has no 0-D tensors): squeezing [1 x 1] gives [1]. */
sl_tensor *sl_tensor_squeeze(const sl_tensor *t, int dim);
/* View with a size-1 dim inserted at position dim (0..ndim). */
sl_tensor *sl_tensor_unsqueeze(const sl_tensor *t, int dim);
/* View with dims start..end (inclusive) merged into one. */
sl_tensor *sl_tensor_flatten(const sl_tensor *t, int start, int end);
/* Copy of t broadcast to shape (ndim >= t->ndim; t's dims align with the
 * trailing ones; -1 keeps t's size; a size-1 dim repeats). */
sl_tensor *sl_tensor_expand(const sl_tensor *t, int ndim, const int64_t *shape);
/* Index i of dim `dim`, that dim removed: a view when every dim before it
 * has size 1, else a copy. t must have at least two dims. */
sl_tensor *sl_tensor_select_dim(const sl_tensor *t, int dim, int64_t i);
/* Concatenation of n tensors along dim: equal ndim, equal sizes except at
 * dim. PyTorch's legacy rule lets a 1-D tensor of size 0 join anything. */
sl_tensor *sl_tensor_cat(sl_tensor *const *ts, int n, int dim);
/* The same written into y (the result's shape; sharing no memory with an input). */
int sl_tensor_cat_into(sl_tensor *y, sl_tensor *const *ts, int n, int dim);
/* n tensors of one shape stacked along a new dim (0..ndim). */
sl_tensor *sl_tensor_stack(sl_tensor *const *ts, int n, int dim);

/* Raw strided copy used by permute (and by expand with zero strides):
 * dst (contiguous, the shape `shape`) takes src at element offsets
 * sum(idx[d] * sstride[d]). Blocked so both sides stream through cache. */
void sl_strided_copy_f32(float *dst, const float *src, int ndim, const int64_t *shape, const int64_t *sstride);

#endif
