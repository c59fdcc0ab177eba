/* Helpers shared by the tests/c/test_nn_*.c suites: tensor construction,
 * tolerant array comparison, the in-body leak check (Criterion ignores LSan
 * reports, see STYLE.md) and a central-difference gradient check. */
#ifndef TEST_NN_UTIL_H
#define TEST_NN_UTIL_H
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "selut.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define NN_LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define NN_LEAK_CHECK() ((void)0)
#endif

static inline sl_tensor *nn_t2(int64_t rows, int64_t cols, const float *data) {
  int64_t shape[2] = {rows, cols};
  sl_tensor *t = data ? sl_tensor_from_array(2, shape, data) : sl_tensor_zeros(2, shape);
  cr_assert_not_null(t, "tensor: %s", sl_last_error());
  return t;
}

static inline sl_tensor *nn_t1(int64_t n, const float *data) {
  sl_tensor *t = data ? sl_tensor_from_array(1, &n, data) : sl_tensor_zeros(1, &n);
  cr_assert_not_null(t, "tensor: %s", sl_last_error());
  return t;
}

static inline sl_tensor *nn_randn2(int64_t rows, int64_t cols, sl_rng *r) {
  int64_t shape[2] = {rows, cols};
  sl_tensor *t = sl_tensor_randn(2, shape, r);
  cr_assert_not_null(t, "tensor: %s", sl_last_error());
  return t;
}

/* |got - want| <= atol + rtol * |want| elementwise. */
static inline void nn_expect_close(const float *got, const float *want, int64_t n, double rtol, double atol,
                                   const char *what) {
  for (int64_t i = 0; i < n; i++) {
    double g = (double)got[i], w = (double)want[i];
    cr_expect(fabs(g - w) <= atol + rtol * fabs(w), "%s[%lld]: got %.9g, expected %.9g (rtol %g, atol %g)", what,
              (long long)i, g, w, rtol, atol);
  }
}

/* L(m, x) = sum_i y_i * gy_i in double, after reseeding rng (so dropout
 * masks are the same at every evaluation) when rng != NULL. */
static inline double nn_probe_loss(sl_module *m, const sl_tensor *x, const sl_tensor *gy, sl_rng *rng,
                                   uint64_t seed) {
  if (rng) sl_rng_seed(rng, seed);
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "forward: %s", sl_last_error());
  double acc = 0.0;
  for (int64_t i = 0; i < y->numel; i++) acc += (double)y->data[i] * (double)gy->data[i];
  return acc;
}

/* Central differences of `target` (the input x or a parameter of m, which is
 * perturbed in place) against an analytic gradient `ana` (same numel). */
static inline void nn_check_numeric(sl_module *m, sl_tensor *x, sl_tensor *target, const float *ana,
                                    const sl_tensor *gy, sl_rng *rng, uint64_t seed, float h, double rtol,
                                    double atol, const char *what) {
  for (int64_t j = 0; j < target->numel; j++) {
    float orig = target->data[j];
    float xp = orig + h, xm = orig - h;
    target->data[j] = xp;
    double lp = nn_probe_loss(m, x, gy, rng, seed);
    target->data[j] = xm;
    double lm = nn_probe_loss(m, x, gy, rng, seed);
    target->data[j] = orig;
    double num = (lp - lm) / ((double)xp - (double)xm);
    cr_assert(fabs(num - (double)ana[j]) <= atol + rtol * fabs(num),
              "%s: d/d[%lld] analytic %.7g vs numeric %.7g", what, (long long)j, (double)ana[j], num);
  }
}

/* Parameters of node and its children, perturbed while evaluating root. */
static inline void nn_check_params(sl_module *root, sl_module *node, sl_tensor *x, const sl_tensor *gy, sl_rng *rng,
                                   const char *what) {
  char label[128];
  for (int k = 0; k < node->nparams; k++) {
    sl_tensor *g = sl_tensor_clone(node->grads[k]);
    cr_assert_not_null(g);
    snprintf(label, sizeof label, "%s %s.%s", what, sl_module_type(node), node->param_names[k]);
    nn_check_numeric(root, x, node->params[k], g->data, gy, rng, 5, 5e-3f, 1e-2, 2e-3, label);
    sl_tensor_release(g);
  }
  for (int i = 0; i < node->nchildren; i++) nn_check_params(root, node->children[i], x, gy, rng, what);
}

/* Full check of m at x: the input gradient and every parameter gradient. */
static inline void nn_gradcheck(sl_module *m, sl_tensor *x, sl_rng *rng, const char *what) {
  sl_rng grng;
  sl_rng_seed(&grng, 99);
  const sl_tensor *y;
  if (rng) sl_rng_seed(rng, 5);
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "%s forward: %s", what, sl_last_error());
  sl_tensor *gy = sl_tensor_randn(y->ndim, y->shape, &grng);
  cr_assert_not_null(gy);
  sl_module_zero_grad(m);
  const sl_tensor *gx;
  cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK, "%s backward: %s", what, sl_last_error());
  sl_tensor *gx_copy = sl_tensor_clone(gx);
  cr_assert_not_null(gx_copy);
  nn_check_numeric(m, x, x, gx_copy->data, gy, rng, 5, 5e-3f, 1e-2, 2e-3, what);
  nn_check_params(m, m, x, gy, rng, what);
  sl_tensor_release(gx_copy);
  sl_tensor_release(gy);
}

#endif
