/* The product's promise, tested statistically with fixed seeds:
 * AlphaDropout keeps zero mean / unit variance and drops a fraction p;
 * a deep SELU net with LeCun init self-normalizes while ReLU collapses. */
#include "test_nn_util.h"

Test(nn_stats, alpha_dropout_keeps_mean_0_variance_1_and_drops_fraction_p) {
  const double ps[4] = {0.05, 0.1, 0.2, 0.5};
  const int64_t n = 1 << 20;
  sl_rng r;
  sl_rng_seed(&r, 2024);
  int64_t shape[2] = {1024, 1024};
  sl_tensor *x = sl_tensor_randn(2, shape, &r);
  cr_assert_not_null(x);
  for (int k = 0; k < 4; k++) {
    sl_module *m = sl_alpha_dropout_new(ps[k], &r);
    cr_assert_not_null(m);
    const sl_tensor *y;
    cr_assert_eq(sl_module_forward(m, x, &y), SL_OK);
    double a, b, dropped;
    sl_alpha_dropout_coeffs(ps[k], &a, &b, &dropped);
    int64_t ndrop = 0;
    for (int64_t i = 0; i < n; i++) ndrop += y->data[i] == (float)dropped;
    double frac = (double)ndrop / (double)n, sd = sqrt(ps[k] * (1 - ps[k]) / (double)n);
    double mean = sl_mean(y), var = sl_var(y);
    /* standard errors: mean ~0.001, variance ~0.002, fraction <= 0.0005 */
    cr_expect(fabs(frac - ps[k]) < 5 * sd, "p=%g: dropped fraction %.5f", ps[k], frac);
    cr_expect(fabs(mean) < 0.01, "p=%g: mean %.5f", ps[k], mean);
    cr_expect(fabs(var - 1.0) < 0.02, "p=%g: variance %.5f", ps[k], var);
    /* the input itself is standard (so the test measures the layer) */
    cr_expect(fabs(sl_mean(x)) < 0.005 && fabs(sl_var(x) - 1.0) < 0.01);
    sl_module_release(m);
  }
  sl_tensor_release(x);
  NN_LEAK_CHECK();
}

/* Depth-32, width-256 net, LeCun normal init, batch 1000 of standardized
 * inputs; returns per-layer activation mean and variance. */
static void deep_net_moments(sl_module *(*act)(void), double *means, double *vars, int depth) {
  sl_rng r;
  sl_rng_seed(&r, 31337);
  sl_module *seq = sl_sequential_new();
  for (int l = 0; l < depth; l++) {
    sl_module *lin = sl_linear_new(256, 256, true, NULL), *a = act();
    cr_assert(lin && a);
    sl_sequential_add(seq, lin);
    sl_sequential_add(seq, a);
    sl_module_release(lin);
    sl_module_release(a);
  }
  cr_assert_eq(sl_init_lecun_normal(seq, &r), SL_OK);
  int64_t shape[2] = {1000, 256};
  sl_tensor *x = sl_tensor_randn(2, shape, &r);
  /* standardize every feature over the batch */
  for (int64_t j = 0; j < 256; j++) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < 1000; i++) s += (double)x->data[i * 256 + j];
    double mu = s / 1000;
    for (int64_t i = 0; i < 1000; i++) s2 += ((double)x->data[i * 256 + j] - mu) * ((double)x->data[i * 256 + j] - mu);
    double sd = sqrt(s2 / 999);
    for (int64_t i = 0; i < 1000; i++) x->data[i * 256 + j] = (float)(((double)x->data[i * 256 + j] - mu) / sd);
  }
  cr_assert_eq(sl_module_forward(seq, x, NULL), SL_OK);
  for (int l = 0; l < depth; l++) {
    const sl_tensor *h = seq->children[2 * l + 1]->output;
    means[l] = sl_mean(h);
    vars[l] = sl_var(h);
  }
  sl_tensor_release(x);
  sl_module_release(seq);
}

Test(nn_stats, deep_selu_net_with_lecun_init_self_normalizes_every_layer) {
  double means[32], vars[32];
  deep_net_moments(sl_selu_new, means, vars, 32);
  for (int l = 0; l < 32; l++) {
    cr_expect(fabs(means[l]) < 0.1, "layer %d: mean %.4f", l + 1, means[l]);
    cr_expect(fabs(vars[l] - 1.0) < 0.15, "layer %d: variance %.4f", l + 1, vars[l]);
  }
  NN_LEAK_CHECK();
}

Test(nn_stats, same_relu_net_variance_collapses) {
  double means[32], vars[32];
  deep_net_moments(sl_relu_new, means, vars, 32);
  /* LeCun init halves ReLU's second moment per layer: 2^-32 after 32 layers */
  cr_expect(vars[31] < 1e-6, "last ReLU layer variance %.3g", vars[31]);
  cr_expect(vars[31] < vars[15] && vars[15] < vars[0]);
  NN_LEAK_CHECK();
}
