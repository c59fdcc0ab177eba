/* xoshiro256** (Blackman & Vigna), seeded through splitmix64 so that nearby
 * seeds give unrelated streams. Normals by Box-Muller in double precision. */
#include "random.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void sl_rng_seed(sl_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  r->has_spare = false;
  r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sl_rng_next(sl_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float sl_rng_uniform(sl_rng *r) { return (float)(sl_rng_next(r) >> 40) * 0x1.0p-24f; }

double sl_rng_uniform_double(sl_rng *r) { return (double)(sl_rng_next(r) >> 11) * 0x1.0p-53; }

double sl_rng_normal(sl_rng *r) {
  if (r->has_spare) {
    r->has_spare = false;
    return r->spare;
  }
  double u1, u2;
  do u1 = sl_rng_uniform_double(r);
  while (u1 <= 0.0); /* log(0) */
  u2 = sl_rng_uniform_double(r);
  double rad = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586476925286766559 * u2;
  r->spare = rad * sin(th);
  r->has_spare = true;
  return rad * cos(th);
}

uint64_t sl_rng_below(sl_rng *r, uint64_t n) {
  /* Lemire's rejection on the high bits, no modulo bias. */
  uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t x = sl_rng_next(r);
    if (x >= threshold) return x % n;
  }
}

void sl_rng_fill_uniform_f32(sl_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * sl_rng_uniform(r);
}

void sl_rng_fill_normal_f32(sl_rng *r, float *x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i++) x[i] = (float)((double)mean + (double)std * sl_rng_normal(r));
}
