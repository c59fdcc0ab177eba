/* bench/conv: the share of the sgemm rate that Conv2d reaches, at the shapes
 * of examples/cnn.lua (batch 128): a layer's FLOPs over its time, divided by
 * the rate of the products it issues timed alone (the same M, N, K, one
 * call per chunk and group). What is left is im2col / col2im, the output
 * scatter and the bias. Forward and forward+backward, interleaved rounds,
 * best of each (the machine is shared). Goal: >= 60 %.
 *   build/bench/conv [threads]   (default: the library's thread count; at 1
 *   thread the times are CPU time of the thread, else wall time) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "selut.h"

/* At 1 thread the thread's CPU time: on a loaded, shared machine it leaves
 * out the time other jobs hold the core (wall time otherwise). */
static clockid_t clock_id = CLOCK_MONOTONIC;
static double now(void) {
  struct timespec ts;
  clock_gettime(clock_id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct shape {
  const char *name;
  int64_t n, cin, h, w, cout, k, pad;
} shape;

/* The products a forward (0) or a backward (1) of this layer issues. */
static void products(const shape *s, int backward, float *a, float *b, float *c) {
  int64_t l = s->h * s->w, kk = s->cin * s->k * s->k; /* stride 1, 'same' padding */
  int64_t per = SL_CONV_COL_MAX / (kk * l);
  if (per < 1) per = 1;
  if (per > s->n) per = s->n;
  for (int64_t s0 = 0; s0 < s->n; s0 += per) {
    int64_t nb = s->n - s0 < per ? s->n - s0 : per;
    if (!backward) {
      sl_sgemm_f32(false, false, s->cout, nb * l, kk, 1.0f, a, b, 1.0f, c);
    } else {
      sl_sgemm_f32(false, true, s->cout, kk, nb * l, 1.0f, c, b, 1.0f, a);
      sl_sgemm_f32(true, false, kk, nb * l, s->cout, 1.0f, a, c, 0.0f, b);
    }
  }
}

int main(int argc, char **argv) {
  if (argc > 1) sl_set_num_threads(atoi(argv[1]));
  if (sl_get_num_threads() == 1) clock_id = CLOCK_THREAD_CPUTIME_ID;
  const shape shapes[] = {{"conv1 1->32 28x28", 128, 1, 28, 28, 32, 3, 1}, {"conv2 32->64 14x14", 128, 32, 14, 14, 64, 3, 1}};
  sl_rng r;
  sl_rng_seed(&r, 1);
  double totals_flops = 0, totals_layer = 0, totals_sgemm = 0;
  printf("Conv2d vs its own sgemm calls, batch 128, %d threads (%s), best of 7 interleaved rounds, %s\n",
         sl_get_num_threads(), sl_blas_corename(), clock_id == CLOCK_MONOTONIC ? "wall time" : "thread CPU time");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const shape *s = &shapes[i];
    sl_conv_opts o = sl_conv_defaults();
    o.padding[0] = o.padding[1] = s->pad;
    sl_module *m = sl_conv2d_new(s->cin, s->cout, (const int64_t[]){s->k, s->k}, o, &r);
    sl_tensor *x = sl_tensor_randn(4, (const int64_t[]){s->n, s->cin, s->h, s->w}, &r);
    sl_tensor *gy = sl_tensor_randn(4, (const int64_t[]){s->n, s->cout, s->h, s->w}, &r);
    int64_t l = s->h * s->w, kk = s->cin * s->k * s->k;
    int64_t per = SL_CONV_COL_MAX / (kk * l);
    if (per < 1) per = 1;
    float *a = calloc((size_t)(s->cout * kk), sizeof(float)), *b = calloc((size_t)(kk * (per < s->n ? per : s->n) * l), sizeof(float));
    float *c = calloc((size_t)(s->cout * (per < s->n ? per : s->n) * l), sizeof(float));
    if (!m || !x || !gy || !a || !b || !c) return 2;
    const sl_tensor *y, *gx;
    double flops_f = 2.0 * (double)(s->n * l) * (double)kk * (double)s->cout, flops_b = 2.0 * flops_f;
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    const int reps = 5;
    sl_module_forward(m, x, &y); /* warm-up: buffers */
    sl_module_backward(m, x, gy, &gx);
    for (int round = 0; round < 7; round++) {
      double t0 = now();
      for (int k = 0; k < reps; k++) sl_module_forward(m, x, &y);
      double t1 = now();
      for (int k = 0; k < reps; k++) products(s, 0, a, b, c);
      double t2 = now();
      for (int k = 0; k < reps; k++) sl_module_backward(m, x, gy, &gx);
      double t3 = now();
      for (int k = 0; k < reps; k++) products(s, 1, a, b, c);
      double t4 = now();
      double t[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
      for (int j = 0; j < 4; j++)
        if (t[j] < best[j]) best[j] = t[j];
    }
    double gf[4] = {flops_f * reps / best[0] * 1e-9, flops_f * reps / best[1] * 1e-9,
                    flops_b * reps / best[2] * 1e-9, flops_b * reps / best[3] * 1e-9};
    double share_fb = (flops_f + flops_b) / (best[0] + best[2]) / ((flops_f + flops_b) / (best[1] + best[3]));
    printf("  %-20s forward %6.1f GFLOP/s (its sgemms %6.1f: %3.0f %%)  backward %6.1f (%6.1f: %3.0f %%)  "
           "forward+backward %3.0f %%  [%.2f + %.2f ms per batch]\n",
           s->name, gf[0], gf[1], 100 * gf[0] / gf[1], gf[2], gf[3], 100 * gf[2] / gf[3], 100 * share_fb,
           1e3 * best[0] / reps, 1e3 * best[2] / reps);
    totals_flops += (flops_f + flops_b) * reps;
    totals_layer += best[0] + best[2];
    totals_sgemm += best[1] + best[3];
    free(a);
    free(b);
    free(c);
    sl_tensor_release(x);
    sl_tensor_release(gy);
    sl_module_release(m);
  }
  double share = totals_sgemm / totals_layer;
  printf("  both layers (the CNN's convolution time): %.0f %% of the sgemm rate (goal >= 60 %%); %.1f GFLOP/s\n",
         100 * share, totals_flops / totals_layer * 1e-9);
  return share >= 0.6 ? 0 : 1;
}
