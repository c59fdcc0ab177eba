/* Row kernels for replay and rollout buffers (buffer.h). */
#include "buffer.h"

#include <math.h>
#include <string.h>

int64_t sl_rows_bad_index(const float *idx, int64_t n, int64_t rows) {
  for (int64_t k = 0; k < n; k++) {
    float v = idx[k];
    if (!(v >= 1 && v <= (float)rows && v == (float)(int64_t)v)) return k;
  }
  return -1;
}

void sl_gather_rows_f32(float *dst, const float *src, int64_t m, const float *idx, int64_t n) {
  for (int64_t k = 0; k < n; k++) memcpy(dst + k * m, src + ((int64_t)idx[k] - 1) * m, (size_t)m * sizeof(float));
}

void sl_randint_f32(float *idx, int64_t count, uint64_t n, sl_rng *r) {
  for (int64_t k = 0; k < count; k++) idx[k] = (float)(sl_rng_below(r, n) + 1);
}

void sl_randperm_f32(float *p, int64_t count, sl_rng *r) {
  for (int64_t k = 0; k < count; k++) p[k] = (float)(k + 1);
  for (int64_t k = count - 1; k > 0; k--) {
    int64_t j = (int64_t)sl_rng_below(r, (uint64_t)k + 1);
    float t = p[k];
    p[k] = p[j], p[j] = t;
  }
}

void sl_normalize_f32(float *x, int64_t n, double *mean, double *std) {
  double s = 0, v = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i];
  double m = s / (double)n;
  for (int64_t i = 0; i < n; i++) v += ((double)x[i] - m) * ((double)x[i] - m);
  double sd = n > 1 ? sqrt(v / (double)(n - 1)) : 0.0;
  if (n > 1)
    for (int64_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - m) / (sd + 1e-8));
  *mean = m;
  *std = sd;
}

double sl_sumsq_f32(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}
