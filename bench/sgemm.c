/* bench/sgemm: GFLOP/s of sl_gemm (the selut wrapper) against a direct
 * cblas_sgemm call on the same 512x512x512 problem, in the same run. The
 * ratio shows what the wrapper's shape checks cost (goal: >= 0.95). */
#include <cblas.h>
#include <stdio.h>
#include <time.h>

#include "selut.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void) {
  const int64_t n = 512;
  const int64_t shape[2] = {n, n};
  sl_rng r;
  sl_rng_seed(&r, 1);
  sl_tensor *a = sl_tensor_randn(2, shape, &r), *b = sl_tensor_randn(2, shape, &r);
  sl_tensor *c = sl_tensor_zeros(2, shape);
  const double flops = 2.0 * (double)(n * n * n);
  const int reps = 200;
  double best_sl = 1e9, best_blas = 1e9;
  for (int round = 0; round < 5; round++) { /* alternate to share machine noise */
    double t0 = now();
    for (int i = 0; i < reps; i++) sl_gemm(c, a, false, b, false, 1.0f, 0.0f);
    double t1 = now();
    for (int i = 0; i < reps; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a->data,
                  (int)n, b->data, (int)n, 0.0f, c->data, (int)n);
    double t2 = now();
    if (t1 - t0 < best_sl) best_sl = t1 - t0;
    if (t2 - t1 < best_blas) best_blas = t2 - t1;
  }
  double g_sl = flops * reps / best_sl * 1e-9, g_blas = flops * reps / best_blas * 1e-9;
  printf("sgemm 512x512x512, %d threads: sl_gemm %.1f GFLOP/s, cblas_sgemm %.1f GFLOP/s, ratio %.3f\n",
         sl_get_num_threads(), g_sl, g_blas, g_sl / g_blas);
  sl_tensor_release(a);
  sl_tensor_release(b);
  sl_tensor_release(c);
  return g_sl / g_blas >= 0.95 ? 0 : 1;
}
