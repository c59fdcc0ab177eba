/*
 * Explicit random generator (xoshiro256**, seeded with splitmix64). One per
 * Lua state; no global generator. Same seed => bit-identical streams.
 */
#ifndef SL_RANDOM_H
#define SL_RANDOM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_rng {
  uint64_t s[4];
  double spare; /* second Box-Muller normal, valid when has_spare */
  bool has_spare;
} sl_rng;

void sl_rng_seed(sl_rng *r, uint64_t seed);
uint64_t sl_rng_next(sl_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float sl_rng_uniform(sl_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double sl_rng_uniform_double(sl_rng *r);
/* Standard normal (Box-Muller in double precision). */
double sl_rng_normal(sl_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t sl_rng_below(sl_rng *r, uint64_t n);

/* Fill helpers on raw arrays. */
void sl_rng_fill_uniform_f32(sl_rng *r, float *x, size_t n, float lo, float hi);
void sl_rng_fill_normal_f32(sl_rng *r, float *x, size_t n, float mean, float std);

#endif
