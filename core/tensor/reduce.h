/*
 * Reductions along one dim with PyTorch's semantics (keepdim, ties -> the
 * first index, NaN propagates through max/min), softmax and log_softmax
 * along any dim. Dims are 0-based here. Sums accumulate in double, in a
 * fixed order that does not depend on the thread count.
 */
#ifndef SL_REDUCE_H
#define SL_REDUCE_H
#include <stdbool.h>

#include "tensor.h"

typedef enum sl_reduce_op {
  SL_RSUM, SL_RMEAN, SL_RPROD, SL_RVAR, SL_RSTD, SL_RMAX, SL_RMIN, SL_RARGMAX, SL_RARGMIN,
  SL_RLOGSUMEXP, SL_RNORM,
  SL_REDUCE_COUNT
} sl_reduce_op;

typedef struct sl_reduce_opts {
  bool unbiased; /* var/std: divide by n - 1 (PyTorch's default) */
  double p;      /* norm: 2, 1, INFINITY, -INFINITY, 0 (count of non-zeros) or any p */
} sl_reduce_opts;

const char *sl_reduce_name(sl_reduce_op op); /* "sum", "logsumexp", ... */

/* The shape of reducing x along dim: dim removed, or kept as 1 with keepdim.
 * Removing the only dim of a 1-D tensor gives [1] (selut has no 0-D
 * tensors). SL_ERANGE names the dim (1-based) and x's shape. */
int sl_reduce_dim_shape(const char *op, const sl_tensor *x, int dim, bool keepdim, int *nd, int64_t *shape);

/* y = op of x along dim (y has the numel of the reduced shape). For max and
 * min, idx (may be NULL) receives the 0-based positions of the results as
 * floats (argmax/argmin write their positions into y). An empty dim is an
 * error for max, min, argmax and argmin. o may be NULL (unbiased, p = 2). */
int sl_reduce(sl_reduce_op op, sl_tensor *y, sl_tensor *idx, const sl_tensor *x, int dim, const sl_reduce_opts *o);
/* The same over all elements: *out (and *index, 0-based flat, for max/min/
 * argmax/argmin; may be NULL). */
int sl_reduce_all(sl_reduce_op op, const sl_tensor *x, const sl_reduce_opts *o, double *out, int64_t *index);

/* y = softmax(x) or log_softmax(x) along dim; y has x's shape (may alias x). */
int sl_softmax(sl_tensor *y, const sl_tensor *x, int dim, bool log);

#endif
