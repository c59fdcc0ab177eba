/* bench/tiny_floor: what the tiny-net step (bench/tiny.lua: 2 -> 64 -> 64
 * -> 1 SELU, batch 32, MSE, SGD momentum) costs without Lua, and the part
 * of it no binding work can remove: the step's matrix products (OpenBLAS,
 * same shapes, transposes and beta as the Linear layers) and its SELU
 * forward/backward kernels, each timed alone in a loop. Their sum is the
 * floor under any step that keeps the same products and the same exp
 * (docs/performance.md, "Floors"); and the same with nn.SELU(true), whose
 * backward works from the result without an exp.
 *   build/bench/tiny_floor [steps]       (one thread, like bench/tiny.lua) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "selut.h"
#include "tensor/vmath.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define B 32
#define H 64

static sl_tensor *mat(int64_t r, int64_t c, sl_rng *rng) {
  int64_t s[2] = {r, c};
  return sl_tensor_randn(2, s, rng);
}

/* out = microseconds per run of stmt over reps runs, best of 7 rounds */
#define TIME_US(out, reps, stmt)                       \
  do {                                                 \
    double best_ = 1e30;                               \
    for (int round_ = 0; round_ < 7; round_++) {       \
      double t0_ = now();                              \
      for (int i_ = 0; i_ < (reps); i_++) { stmt; }    \
      double t_ = (now() - t0_) / (reps) * 1e6;        \
      if (t_ < best_) best_ = t_;                      \
    }                                                  \
    out = best_;                                       \
  } while (0)

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 20000;
  if (steps < 1) steps = 1;
  sl_set_num_threads(1);
  sl_rng rng;
  sl_rng_seed(&rng, 1);
  sl_module *net = sl_sequential_new();
  sl_module *layers[] = {sl_linear_new(2, H, true, &rng), sl_selu_new(), sl_linear_new(H, H, true, &rng),
                         sl_selu_new(), sl_linear_new(H, 1, true, &rng)};
  for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
    if (!layers[i] || sl_sequential_add(net, layers[i]) != SL_OK) return fprintf(stderr, "%s\n", sl_last_error()), 1;
    sl_module_release(layers[i]);
  }
  sl_tensor *params[16], *grads[16];
  int np = 0;
  for (int i = 0; i < net->nchildren; i++)
    for (int k = 0; k < net->children[i]->nparams; k++)
      params[np] = net->children[i]->params[k], grads[np++] = net->children[i]->grads[k];
  sl_sgd_opts so = sl_sgd_defaults(0.01);
  so.momentum = 0.9;
  sl_optim *opt = sl_sgd_new(params, grads, np, so);
  int64_t xs[2] = {B, 2}, ys[2] = {B, 1};
  sl_tensor *x = sl_tensor_rand(2, xs, &rng), *y = sl_tensor_zeros(2, ys), *gout = sl_tensor_zeros(2, ys);
  if (!opt || !x || !y || !gout) return fprintf(stderr, "%s\n", sl_last_error()), 1;
  for (int i = 0; i < B * 2; i++) x->data[i] = x->data[i] * 4.0f - 2.0f;

  /* 1. the whole step through the C API */
  double loss = 0.0;
  int bad = 0;
  double step_us;
  TIME_US(step_us, steps, {
    const sl_tensor *out;
    sl_optim_zero_grad(opt);
    bad |= sl_module_forward(net, x, &out);
    bad |= sl_mse_forward(out, y, &loss);
    bad |= sl_mse_backward(gout, out, y);
    bad |= sl_module_backward_params(net, x, gout);
    bad |= sl_optim_step(opt);
  });
  if (bad) return fprintf(stderr, "tiny_floor: %s\n", sl_last_error()), 1;

  /* 2. the products alone, as the three Linear layers issue them:
   * forward y = x W^T (+ bias, beta 1), backward gW += gy^T x (beta 1) and,
   * except for the first layer, gx = gy W (beta 0). */
  sl_tensor *a0 = mat(B, 2, &rng), *w0 = mat(H, 2, &rng), *y0 = mat(B, H, &rng), *gw0 = mat(H, 2, &rng);
  sl_tensor *a1 = mat(B, H, &rng), *w1 = mat(H, H, &rng), *y1 = mat(B, H, &rng), *gw1 = mat(H, H, &rng);
  sl_tensor *a2 = mat(B, H, &rng), *w2 = mat(1, H, &rng), *y2 = mat(B, 1, &rng), *gw2 = mat(1, H, &rng);
  sl_tensor *gx = mat(B, H, &rng);
  int reps = steps * 2;
  double p_fwd;
  TIME_US(p_fwd, reps, sl_gemm(y1, a1, false, w1, true, 1.0f, 1.0f));
  double p_gw;
  TIME_US(p_gw, reps, sl_gemm(gw1, y1, true, a1, false, 1.0f, 1.0f));
  double p_gx;
  TIME_US(p_gx, reps, sl_gemm(gx, y1, false, w1, false, 1.0f, 0.0f));
  double p_small;
  TIME_US(p_small, reps, {
    sl_gemm(y0, a0, false, w0, true, 1.0f, 1.0f);
    sl_gemm(gw0, y0, true, a0, false, 1.0f, 1.0f);
    sl_gemm(y2, a2, false, w2, true, 1.0f, 1.0f);
    sl_gemm(gw2, y2, true, a2, false, 1.0f, 1.0f);
    sl_gemm(gx, y2, false, w2, false, 1.0f, 0.0f);
  });
  double products = p_fwd + p_gw + p_gx + p_small;

  /* 3. SELU forward and backward (from the input, PyTorch's formula) over
   * one layer's 32 x 64 activations; the step has two layers of each */
  const float negcoef = (float)(1.6732632423543772 * 1.0507009873554805), scale = 1.0507009873554805f;
  double selu_f;
  TIME_US(selu_f, reps, sl_velu_forward_f32(y1->data, a1->data, B * H, negcoef, scale));
  double selu_b;
  TIME_US(selu_b, reps, sl_velu_backward_f32(gx->data, a1->data, y1->data, B * H, negcoef, scale));
  double selu_b_result; /* in place (nn.SELU(true)): from the result, no exp */
  TIME_US(selu_b_result, reps,
          sl_velu_backward_result_f32(gx->data, y1->data, a1->data, B * H, negcoef, scale));
  double kernels = products + 2.0 * (selu_f + selu_b);
  double kernels_inplace = products + 2.0 * (selu_f + selu_b_result);

  printf("tiny_floor step_us=%.2f floor_us=%.2f floor_inplace_us=%.2f products_us=%.2f selu_us=%.2f loss=%.6f\n",
         step_us, kernels, kernels_inplace, products, 2.0 * (selu_f + selu_b), loss);
  printf("  whole step through the C API (no Lua):        %6.2f us\n", step_us);
  printf("  products: 64x64 forward x W^T (beta 1)         %6.2f us  (%.0f GFLOP/s)\n", p_fwd,
         2.0 * B * H * H / p_fwd * 1e-3);
  printf("            64x64 weight grad gy^T x (beta 1)    %6.2f us  (%.0f GFLOP/s)\n", p_gw,
         2.0 * B * H * H / p_gw * 1e-3);
  printf("            64x64 input grad gy W (beta 0)       %6.2f us  (%.0f GFLOP/s)\n", p_gx,
         2.0 * B * H * H / p_gx * 1e-3);
  printf("            the 2->64 and 64->1 layers' five     %6.2f us\n", p_small);
  printf("  SELU forward %.2f + backward %.2f us per layer, two layers: %.2f us\n", selu_f, selu_b,
         2.0 * (selu_f + selu_b));
  printf("  floor (products + SELU kernels alone):         %6.2f us; the rest of the C step %.2f us\n", kernels,
         step_us - kernels);
  printf("  with in-place SELU (backward from the result %.2f us per layer): floor %.2f us\n", selu_b_result,
         kernels_inplace);

  sl_tensor *ts[] = {a0, w0, y0, gw0, a1, w1, y1, gw1, a2, w2, y2, gw2, gx, x, y, gout};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) sl_tensor_release(ts[i]);
  sl_optim_free(opt);
  sl_module_release(net);
  return 0;
}
