/*
 * Row kernels for replay and rollout buffers (scripts/rl.lua): storing and
 * sampling copy rows into preallocated arrays and allocate nothing. A row is
 * m floats; indices are 1-based floats, as in selut's tensors.
 */
#ifndef SL_RL_BUFFER_H
#define SL_RL_BUFFER_H
#include <stdint.h>

#include "tensor/random.h"

/* The first k in [0, n) whose idx[k] is not an integer in [1, rows], or -1. */
int64_t sl_rows_bad_index(const float *idx, int64_t n, int64_t rows);
/* dst row k = src row idx[k] for k < n (indices checked with sl_rows_bad_index). */
void sl_gather_rows_f32(float *dst, const float *src, int64_t m, const float *idx, int64_t n);
/* idx[k] = an integer drawn uniformly from [1, n] with r, for k < count. */
void sl_randint_f32(float *idx, int64_t count, uint64_t n, sl_rng *r);
/* p = a permutation of 1..count drawn with r (Fisher-Yates). */
void sl_randperm_f32(float *p, int64_t count, sl_rng *r);
/* x[0..n) = (x - mean) / (std + 1e-8) with the unbiased std (torch.std), as
 * PPO normalizes advantages; sums in double. x is left as it is when n = 1.
 * Writes mean and std. */
void sl_normalize_f32(float *x, int64_t n, double *mean, double *std);
/* Sum of squares in double (gradient norms). */
double sl_sumsq_f32(const float *x, int64_t n);

#endif
