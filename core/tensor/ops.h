/*
 * Elementwise operations and reductions. Outputs are passed in (destination
 * first) and must already have the right shape; outputs may alias inputs for
 * in-place use. Nothing here allocates except the *_new conveniences.
 */
#ifndef SL_OPS_H
#define SL_OPS_H
#include <stdint.h>

#include "tensor.h"

/* y = a (op) b with NumPy broadcasting (sl_binary of elementwise.h); y
 * has the broadcast shape's numel. */
int sl_add(sl_tensor *y, const sl_tensor *a, const sl_tensor *b);
int sl_sub(sl_tensor *y, const sl_tensor *a, const sl_tensor *b);
int sl_mul(sl_tensor *y, const sl_tensor *a, const sl_tensor *b);
int sl_div(sl_tensor *y, const sl_tensor *a, const sl_tensor *b);
/* y = a (op) s; y must have a's numel. */
int sl_add_scalar(sl_tensor *y, const sl_tensor *a, float s);
int sl_sub_scalar(sl_tensor *y, const sl_tensor *a, float s);
int sl_mul_scalar(sl_tensor *y, const sl_tensor *a, float s);
int sl_div_scalar(sl_tensor *y, const sl_tensor *a, float s);
int sl_rsub_scalar(sl_tensor *y, const sl_tensor *a, float s); /* s - a */
int sl_rdiv_scalar(sl_tensor *y, const sl_tensor *a, float s); /* s / a */
int sl_neg(sl_tensor *y, const sl_tensor *a);
/* y += alpha * x (same numel). */
int sl_axpy(sl_tensor *y, float alpha, const sl_tensor *x);
int sl_fill(sl_tensor *t, float v);

/* Whole-tensor reductions, accumulated in double (pairwise-safe to 1e7+). */
double sl_sum(const sl_tensor *t);
double sl_mean(const sl_tensor *t);          /* NaN when empty */
double sl_var(const sl_tensor *t);           /* unbiased (n-1); NaN when n < 2 */
double sl_std(const sl_tensor *t);
int sl_min(const sl_tensor *t, float *out);  /* error when empty; NaN propagates */
int sl_max(const sl_tensor *t, float *out);
int sl_argmax(const sl_tensor *t, int64_t *out); /* flat 0-based index of first max */

/* Reductions along dim (0-based). y has x's shape with dim removed (a 1-D
 * result of length 1 when x is 1-D). argmax stores 0-based indices as floats. */
int sl_sum_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_mean_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_var_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_std_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_max_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_min_dim(sl_tensor *y, const sl_tensor *x, int dim);
int sl_argmax_dim(sl_tensor *y, const sl_tensor *x, int dim);
/* Computes the output shape of a dim reduction (for allocating y). */
int sl_reduce_shape(const sl_tensor *x, int dim, int *ndim, int64_t *shape);

#endif
