/*
 * Random sampling and creation with PyTorch's semantics: randint, randperm,
 * bernoulli, multinomial, normal_, uniform_, eye, linspace, full_like.
 * Every draw comes from the caller's generator (one per Lua state), in a
 * fixed sequential order: the same seed gives the same bits whatever the
 * thread count. Indices in results are 1-based (held as exact float32
 * integers), as everywhere in selut's index-valued tensors. Functions return
 * a new tensor (refcount 1) or NULL / a negative status with sl_last_error.
 */
#ifndef SL_SAMPLE_H
#define SL_SAMPLE_H
#include <stdbool.h>
#include <stdint.h>

#include "random.h"
#include "tensor.h"

/* Largest integer magnitude a float32 holds exactly (2^24): the bound for
 * randint's range and randperm's n, whose results must be exact. */
#define SL_SAMPLE_MAX_EXACT ((int64_t)1 << 24)

/* Uniform integers in [lo, hi) (hi > lo, both within +-2^24). */
sl_tensor *sl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape, sl_rng *r);
/* A random permutation of 1..n (n >= 0, n <= 2^24): 1-D [n]. */
sl_tensor *sl_randperm(int64_t n, sl_rng *r);
/* 1 with probability p[i], else 0; every p[i] in [0, 1]. */
sl_tensor *sl_bernoulli(const sl_tensor *p, sl_rng *r);
/* The same with one probability p for every element of a new tensor. */
sl_tensor *sl_bernoulli_p(double p, int ndim, const int64_t *shape, sl_rng *r);
/* n draws of 1-based category indices per row of probs (1-D [k] -> [n],
 * 2-D [rows x k] -> [rows x n]). Weights need not sum to 1 but must be
 * finite, >= 0, with a positive sum per row; without replacement a row needs
 * at least n positive weights. */
sl_tensor *sl_multinomial(const sl_tensor *probs, int64_t n, bool replacement, sl_rng *r);
/* In place: N(mean, std^2) (std >= 0) / U[a, b) (a <= b), finite arguments. */
int sl_normal_(sl_tensor *t, double mean, double std, sl_rng *r);
int sl_uniform_(sl_tensor *t, double a, double b, sl_rng *r);
/* [n x m] with ones on the diagonal (n, m >= 0). */
sl_tensor *sl_eye(int64_t n, int64_t m);
/* n points from a to b with PyTorch's float32 bits (n >= 0). */
sl_tensor *sl_linspace(double a, double b, int64_t n);
/* A new tensor of x's shape filled with v (zeros_like, ones_like, full_like). */
sl_tensor *sl_full_like(const sl_tensor *x, float v);

#endif
