/* bench/kernels: elementwise kernels over 10^7 floats in GB/s, next to
 * memcpy measured in the same run. GB/s counts every byte read plus every
 * byte written once (memcpy: 2 x 40 MB per copy), best of several rounds.
 *   build/bench/kernels [n]      (default n = 10^7) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "selut.h"
#include "tensor/vmath.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t n;
static float *x, *y, *g, *out, *bias, *labels;
static sl_tensor *tlog, *tlab, *tgrad;
static double sink;

enum { K_MEMCPY, K_SELU_F, K_SELU_B, K_ELU_F, K_ELU_B, K_RELU_F, K_RELU_B, K_AD_F, K_AD_B, K_BIAS_F, K_BIAS_B,
       K_CE_F, K_CE_B, K_SELU_F2, K_SELU_B2, K_SGD1, K_SGD2, K_EXP, K_N };
static const char *names[K_N] = {"memcpy", "SELU forward", "SELU backward", "ELU forward", "ELU backward",
                                 "ReLU forward", "ReLU backward", "AlphaDropout forward", "AlphaDropout backward",
                                 "bias add (rows fill)", "bias grad (column sums)", "softmax-CE forward",
                                 "softmax-CE backward", "SELU forward, 2 cores", "SELU backward, 2 cores",
                                 "SGD momentum step", "SGD momentum, 2 cores", "exp alone, in L1 (compute)"};
/* arrays touched per element: reads + writes */
static const double traffic[K_N] = {2, 2, 3, 2, 3, 2, 3, 2, 2, 1, 1, 1, 2, 2, 3, 5, 5, 2};
static float l1in[2048], l1out[2048]; /* the exp row: n exps over one block that stays in L1 */

static void run(int k) {
  switch (k) {
  case K_MEMCPY: memcpy(y, x, n * sizeof(float)); break;
  case K_SELU_F: sl_selu_forward_f32(y, x, n); break;
  case K_SELU_B: sl_selu_backward_f32(out, x, g, n); break;
  case K_ELU_F: sl_elu_forward_f32(y, x, n, 1.0f, 1.0f); break;
  case K_ELU_B: sl_elu_backward_f32(out, x, g, n, 1.0f, 1.0f); break;
  case K_RELU_F: sl_relu_forward_f32(y, x, n); break;
  case K_RELU_B: sl_relu_backward_f32(out, x, g, n); break;
  case K_AD_F: sl_vdropout_forward_f32(y, x, n, 12345, sl_dropout_threshold(0.05), 0.95f, 0.08f, -1.59f); break;
  case K_AD_B: sl_vdropout_backward_f32(out, g, n, 12345, sl_dropout_threshold(0.05), 0.95f); break;
  case K_BIAS_F: sl_vrows_fill_f32(y, bias, (int64_t)(n / 512), 512); break;
  case K_BIAS_B: sl_vcolsum_acc_f32(bias, g, (int64_t)(n / 512), 512); break;
  case K_CE_F: {
    double loss;
    sl_cross_entropy_forward(tlog, tlab, &loss);
    sink += loss;
    break;
  }
  case K_CE_B: sl_cross_entropy_backward(tgrad, tlog, tlab); break;
  case K_SELU_F2: sl_selu_forward_f32(y, x, n); break; /* run with 2 BLAS threads set */
  case K_SELU_B2: sl_selu_backward_f32(out, x, g, n); break;
  case K_SGD2: sl_vsgd_f32(y, g, out, n, 0.01f, 0.0f, 0.9f, 1.0f, false, false); break;
  case K_SGD1: sl_vsgd_f32(y, g, out, n, 0.01f, 0.0f, 0.9f, 1.0f, false, false); break;
  case K_EXP:
    for (size_t i = 0; i < n; i += 2048) {
      sl_vexp_f32(l1out, l1in, 2048);
      sink += (double)l1out[i & 2047];
    }
    break;
  }
}

int main(int argc, char **argv) {
  setenv("SELUT_SPLIT_MIN", "65536", 0); /* the two-core split (opt-in) for the "2 cores" rows */
  n = argc > 1 ? (size_t)atol(argv[1]) : 10000000;
  n -= n % 5120;
  sl_rng r;
  sl_rng_seed(&r, 1);
  x = malloc(n * sizeof *x), y = malloc(n * sizeof *y), g = malloc(n * sizeof *g), out = malloc(n * sizeof *out);
  bias = malloc(512 * sizeof *bias);
  if (!x || !y || !g || !out || !bias) return 1;
  sl_rng_fill_normal_f32(&r, x, n, 0.0f, 1.0f);
  sl_rng_fill_normal_f32(&r, g, n, 0.0f, 1.0f);
  sl_rng_fill_normal_f32(&r, bias, 512, 0.0f, 1.0f);
  sl_rng_fill_normal_f32(&r, l1in, 2048, -3.0f, 1.0f); /* like max-shifted logits */
  memset(y, 0, n * sizeof *y);
  memset(out, 0, n * sizeof *out);
  int64_t shape[2] = {(int64_t)(n / 10), 10}, nl = (int64_t)(n / 10);
  tlog = sl_tensor_empty(2, shape);
  tgrad = sl_tensor_empty(2, shape);
  tlab = sl_tensor_empty(1, &nl);
  if (!tlog || !tgrad || !tlab) return 1;
  memcpy(tlog->data, x, n * sizeof *x);
  for (int64_t i = 0; i < nl; i++) tlab->data[i] = (float)(i % 10);
  labels = tlab->data;
  sl_set_num_threads(1); /* one core, like memcpy; the "2 cores" rows split over two */
  double best[K_N];
  for (int k = 0; k < K_N; k++) best[k] = 1e30;
  for (int round = 0; round < 5; round++) /* interleaved: machine noise hits all kernels alike */
    for (int k = 0; k < K_N; k++) {
      bool two = k == K_SELU_F2 || k == K_SELU_B2 || k == K_SGD2;
      if (two != (sl_get_num_threads() == 2)) sl_set_num_threads(two ? 2 : 1); /* outside the timing */
      double t0 = now();
      run(k);
      double t = now() - t0;
      if (t < best[k]) best[k] = t;
    }
  double bytes = (double)n * sizeof(float);
  double mc = traffic[K_MEMCPY] * bytes / best[K_MEMCPY] * 1e-9;
  printf("kernels over %zu floats (GB/s = bytes read + written per second, best of 5; one core unless noted)\n", n);
  for (int k = 0; k < K_N; k++) {
    double gbs = traffic[k] * bytes / best[k] * 1e-9;
    printf("  %-26s %7.2f GB/s  %6.1f%% of memcpy  (%.2f ms)\n", names[k], gbs, 100.0 * gbs / mc, best[k] * 1e3);
  }
  /* Softmax cross entropy evaluates one exp per logit: whatever else it does,
   * it cannot beat the exps alone (computed in L1, so no memory traffic). */
  printf("softmax-CE floor: its %zu exps alone take %.2f ms, so at most %.1f%% of memcpy forward (reads %.0f MB) "
         "and %.1f%% backward (reads and writes %.0f MB)\n",
         n, best[K_EXP] * 1e3, 100.0 * bytes / best[K_EXP] * 1e-9 / mc, bytes * 1e-6,
         100.0 * 2.0 * bytes / best[K_EXP] * 1e-9 / mc, 2.0 * bytes * 1e-6);
  sl_tensor_release(tlog);
  sl_tensor_release(tgrad);
  sl_tensor_release(tlab);
  free(x), free(y), free(g), free(out), free(bias);
  return sink == 12345.0 ? 1 : 0;
}
