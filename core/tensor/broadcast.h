/*
 * NumPy/PyTorch broadcasting: the result shape of two shapes, and the one
 * iterator every broadcasting kernel runs on. Shapes are aligned from the
 * right; a dim of size 1 (or a missing leading dim) repeats. The iterator
 * collapses dims that are contiguous for every operand, then calls a kernel
 * on runs along the innermost dim where each input's stride is 0 or 1, so a
 * kernel needs only plain loops (which GCC vectorizes).
 */
#ifndef SL_BROADCAST_H
#define SL_BROADCAST_H
#include <stdint.h>

#include "tensor.h"

/* The broadcast shape of a and b into (*nd, shape). On failure (SL_ESHAPE)
 * the message reads "<op>: shapes [4 x 3] and [2 x 3] cannot broadcast
 * (dim 1: 4 vs 2)", dims counted 1-based in the result. */
int sl_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb, int *nd,
                       int64_t *shape);
/* sl_broadcast_shape of two tensors. */
int sl_broadcast_shapes(const char *op, const sl_tensor *a, const sl_tensor *b, int *nd, int64_t *shape);

/* A kernel over one run of n outputs: y[i] = f(in[0][i * s[0]], ...), each
 * s[k] 0 or 1. y is contiguous. */
typedef void (*sl_bcast_kernel)(const void *ctx, float *y, const float *const *in, const int64_t *s,
                                 int64_t n);

/* A kernel over `rows` runs of n outputs each, run r at y + r * n:
 * y[r * n + i] = f(in[0][r * os[0] + i * s[0]], ...), each s[k] 0 or 1.
 * One call covers up to a whole piece of a row-broadcast ([rows x n] + [n],
 * + [rows x 1]), so the per-call work (a switch on the op, the pointer
 * set-up) is paid once per block instead of once per row. */
typedef void (*sl_bcast_rows_kernel)(const void *ctx, float *y, const float *const *in, const int64_t *s,
                                     int64_t n, int64_t rows, const int64_t *os);

#define SL_BCAST_MAX_IN 3
/* Runs k over every element of y, with nin (1..3) inputs whose shapes
 * broadcast to y's shape (not checked again here: callers validate with
 * sl_broadcast_shape first, and get SL_ESHAPE naming op otherwise). y may
 * alias an input of y's own shape (element i then reads only index i).
 * Large outputs are split over the thread pool in fixed pieces; every
 * element is computed the same way, so the bits do not depend on threads. */
int sl_broadcast_run(const char *op, sl_tensor *y, int nin, const sl_tensor *const *in, sl_bcast_kernel k,
                     const void *ctx);
/* sl_broadcast_run with a rows kernel. */
int sl_broadcast_run_rows(const char *op, sl_tensor *y, int nin, const sl_tensor *const *in, sl_bcast_rows_kernel k,
                          const void *ctx);

#endif
