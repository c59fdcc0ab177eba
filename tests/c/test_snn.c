/* The SNN toolkit (core/nn/snn.c, batchnorm.c, the AlphaDropout/SELU
 * additions): solver test vectors, the moment map against quadrature and its
 * Jacobian against central differences (spectral norm 0.7877 at (0, 1)),
 * the general AlphaDropout correction, custom SELU and BatchNorm1d against
 * PyTorch (tests/ref/snn_refs.h from tests/ref/gen_snn_refs.py). */
#include "../ref/snn_refs.h"
#include "test_nn_util.h"

#define PAPER_ALPHA 1.6732632423543772848
#define PAPER_SCALE 1.0507009873554804934

Test(snn, params_reproduce_the_paper_constants_and_the_issue_vector_to_1e_10) {
  double a, l;
  cr_assert_eq(sl_snn_params(0.0, 1.0, &a, &l), SL_OK, "%s", sl_last_error());
  cr_expect(fabs(a - PAPER_ALPHA) < 1e-10, "alpha(0,1) = %.17g", a);
  cr_expect(fabs(l - PAPER_SCALE) < 1e-10, "scale(0,1) = %.17g", l);
  cr_assert_eq(sl_snn_params(-0.1, 2.0, &a, &l), SL_OK, "%s", sl_last_error());
  cr_expect(fabs(a - 1.97690219542420) < 1e-10, "alpha(-0.1,2) = %.17g", a);
  cr_expect(fabs(l - 1.07385123961605) < 1e-10, "scale(-0.1,2) = %.17g", l);
  NN_LEAK_CHECK();
}

/* The solved constants really have the fixed point: z ~ N(mean, var) (omega
 * = tau = 1, the SNN authors' convention) maps back onto (mean, var). */
Test(snn, params_round_trip_through_the_moment_map) {
  const double pts[][2] = {{0, 1}, {-0.1, 2}, {0.1, 0.8}, {0.2, 1.5}, {-0.3, 1.2}, {0.05, 3.0}};
  for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
    double a, l;
    cr_assert_eq(sl_snn_params(pts[i][0], pts[i][1], &a, &l), SL_OK, "(%g, %g): %s", pts[i][0], pts[i][1],
                 sl_last_error());
    sl_snn_moments m;
    cr_assert_eq(sl_snn_moments_eval(pts[i][0], pts[i][1], 1.0, 1.0, a, l, &m), SL_OK);
    cr_expect(fabs(m.mean - pts[i][0]) < 1e-12 && fabs(m.var - pts[i][1]) < 1e-12,
              "(%g, %g) -> alpha %.12g scale %.12g -> (%.15g, %.15g)", pts[i][0], pts[i][1], a, l, m.mean, m.var);
  }
  NN_LEAK_CHECK();
}

Test(snn, params_reject_bad_fixed_points_with_a_message) {
  double a = -1, l = -1;
  cr_expect_eq(sl_snn_params(0.0, 0.0, &a, &l), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "var must be > 0, got 0") != NULL, "%s", sl_last_error());
  cr_expect_eq(sl_snn_params(NAN, 1.0, &a, &l), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "mean must be finite") != NULL, "%s", sl_last_error());
  /* E[selu]^2 < E[selu^2] always; a mean this large for var 0.01 needs a
   * negative alpha (or none) */
  cr_expect_eq(sl_snn_params(5.0, 0.01, &a, &l), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "no SELU") != NULL, "%s", sl_last_error());
  cr_expect(a == -1 && l == -1, "outputs untouched on failure");
  NN_LEAK_CHECK();
}

/* Quadrature references to 1e-9 (Simpson with 2e5 panels per half-line). */
Test(snn, moment_map_matches_quadrature) {
  for (int i = 0; i < SNN_REF_COUNT(snn_ref_moment_points); i++) {
    const snn_ref_moments *r = &snn_ref_moment_points[i];
    sl_snn_moments m;
    cr_assert_eq(sl_snn_moments_eval(r->mu, r->nu, r->omega, r->tau, r->alpha, r->scale, &m), SL_OK, "%s",
                 sl_last_error());
    cr_expect(fabs(m.mean - r->mean) < 1e-9, "point %d mean %.15g vs %.15g", i, m.mean, r->mean);
    cr_expect(fabs(m.var - r->var) < 1e-9, "point %d var %.15g vs %.15g", i, m.var, r->var);
  }
  NN_LEAK_CHECK();
}

/* The paper: J(0, 1) = [[0, 0.088834], [0, 0.782648]], spectral norm 0.7877 < 1. */
Test(snn, jacobian_at_the_fixed_point_has_the_paper_spectral_norm) {
  sl_snn_moments m;
  cr_assert_eq(sl_snn_moments_eval(0.0, 1.0, 0.0, 1.0, PAPER_ALPHA, PAPER_SCALE, &m), SL_OK);
  cr_expect(fabs(m.mean) < 1e-12 && fabs(m.var - 1.0) < 1e-12, "fixed point: (%.3g, %.15g)", m.mean, m.var);
  cr_expect(fabs(m.spectral_norm - 0.7877) < 1e-3, "spectral norm %.9g", m.spectral_norm);
  cr_expect(fabs(m.jac[0][0]) < 1e-15 && fabs(m.jac[1][0]) < 1e-15, "omega = 0: no dependence on mu");
  cr_expect(fabs(m.jac[0][1] - 0.088834) < 1e-6, "dmean/dnu %.9g", m.jac[0][1]);
  cr_expect(fabs(m.jac[1][1] - 0.782648) < 1e-6, "dvar/dnu %.9g", m.jac[1][1]);
  NN_LEAK_CHECK();
}

/* The analytic Jacobian (with the kink's point mass) against central
 * differences of the map itself, at points off the fixed point too. */
Test(snn, jacobian_matches_central_differences) {
  const double pts[][6] = {{0.1, 1.2, 0.05, 1.02, PAPER_ALPHA, PAPER_SCALE}, {-0.1, 0.8, -0.1, 0.95, PAPER_ALPHA, PAPER_SCALE},
                           {0.5, 2.0, 1.0, 1.0, PAPER_ALPHA, PAPER_SCALE}, {-1.0, 0.5, 0.7, 1.3, 2.0, 0.9},
                           {0.0, 1.0, 0.0, 1.0, 1.0, 1.0}};
  const double h = 1e-6;
  for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
    const double *p = pts[i];
    sl_snn_moments m, a, b;
    cr_assert_eq(sl_snn_moments_eval(p[0], p[1], p[2], p[3], p[4], p[5], &m), SL_OK);
    for (int k = 0; k < 2; k++) {
      double dmu = k == 0 ? h : 0, dnu = k == 1 ? h : 0;
      sl_snn_moments_eval(p[0] + dmu, p[1] + dnu, p[2], p[3], p[4], p[5], &a);
      sl_snn_moments_eval(p[0] - dmu, p[1] - dnu, p[2], p[3], p[4], p[5], &b);
      double nm = (a.mean - b.mean) / (2 * h), nv = (a.var - b.var) / (2 * h);
      cr_expect(fabs(nm - m.jac[0][k]) < 1e-7, "point %zu d mean/d%s: %.10g vs numeric %.10g", i, k ? "nu" : "mu",
                m.jac[0][k], nm);
      cr_expect(fabs(nv - m.jac[1][k]) < 1e-7, "point %zu d var/d%s: %.10g vs numeric %.10g", i, k ? "nu" : "mu",
                m.jac[1][k], nv);
    }
  }
  NN_LEAK_CHECK();
}

Test(snn, moments_reject_bad_arguments_naming_them) {
  sl_snn_moments m;
  cr_expect_eq(sl_snn_moments_eval(0, -1, 0, 1, 1, 1, &m), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "snn.moments: var must be > 0, got -1"), "%s", sl_last_error());
  cr_expect_eq(sl_snn_moments_eval(0, 1, 0, 0, 1, 1, &m), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "tau must be > 0, got 0"), "%s", sl_last_error());
  cr_expect_eq(sl_snn_moments_eval(0, 1, 0, 1, 1, 0, &m), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "scale must be > 0"), "%s", sl_last_error());
  cr_expect_eq(sl_snn_moments_eval(0, 1, INFINITY, 1, 1, 1, &m), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "omega must be finite"), "%s", sl_last_error());
  NN_LEAK_CHECK();
}

/* Far tails stay finite and accurate (Mills ratio branch for b > 25). */
Test(snn, moment_map_is_finite_far_from_zero) {
  sl_snn_moments m;
  cr_assert_eq(sl_snn_moments_eval(60.0, 1.0, 1.0, 1.0, PAPER_ALPHA, PAPER_SCALE, &m), SL_OK);
  cr_expect(fabs(m.mean - 60.0 * PAPER_SCALE) < 1e-9 && fabs(m.var - PAPER_SCALE * PAPER_SCALE) < 1e-9,
            "(60, 1): %.15g %.15g", m.mean, m.var);
  cr_assert_eq(sl_snn_moments_eval(-60.0, 1.0, 1.0, 1.0, PAPER_ALPHA, PAPER_SCALE, &m), SL_OK);
  /* the exact variance is ~1e-780; E[f^2] - E[f]^2 cancels to a few ulp of 3.1 */
  cr_expect(fabs(m.mean + PAPER_ALPHA * PAPER_SCALE) < 1e-12 && m.var >= 0 && m.var < 1e-14,
            "(-60, 1): %.17g %.3g", m.mean, m.var);
  cr_assert_eq(sl_snn_moments_eval(-2.0, 0.001, 1.0, 1.0, PAPER_ALPHA, PAPER_SCALE, &m), SL_OK);
  cr_expect(isfinite(m.mean) && isfinite(m.var) && isfinite(m.spectral_norm));
  NN_LEAK_CHECK();
}

/* ---- AlphaDropout, general fixed point ---- */

/* Exact moments of y = mask ? a x + b : dropped for x with mean mu, var nu. */
static void dropout_moments(double p, double a, double b, double dropped, double mu, double nu, double *m,
                            double *v) {
  double q = 1 - p;
  double e = q * (a * mu + b) + p * dropped;
  double e2 = q * (a * a * (nu + mu * mu) + 2 * a * b * mu + b * b) + p * dropped * dropped;
  *m = e;
  *v = e2 - e * e;
}

Test(snn, alpha_dropout_general_correction_keeps_the_fixed_point_exactly) {
  const double cases[][3] = {{0.05, 0, 1}, {0.1, -0.1, 2}, {0.2, 0.3, 0.7}, {0.5, 0, 1}, {0.0, 0.1, 1.5}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double p = cases[i][0], mu = cases[i][1], nu = cases[i][2], alpha, scale, a, b, d, m, v;
    cr_assert_eq(sl_snn_params(mu, nu, &alpha, &scale), SL_OK);
    cr_assert_eq(sl_snn_alpha_dropout_coeffs(p, mu, nu, -scale * alpha, &a, &b, &d), SL_OK);
    dropout_moments(p, a, b, d, mu, nu, &m, &v);
    cr_expect(fabs(m - mu) < 1e-12 && fabs(v - nu) < 1e-12, "p %g (%g, %g): moments (%.15g, %.15g)", p, mu, nu, m, v);
  }
  /* (0, 1) with PyTorch's alpha' is the standard AlphaDropout (docs/snn.md) */
  double a0, b0, d0, a1, b1, d1;
  sl_alpha_dropout_coeffs(0.05, &a0, &b0, &d0);
  cr_assert_eq(sl_snn_alpha_dropout_coeffs(0.05, 0, 1, -1.7580993408473766, &a1, &b1, &d1), SL_OK);
  cr_expect(fabs(a0 - a1) < 1e-15 && fabs(b0 - b1) < 1e-15 && fabs(d0 - d1) < 1e-15);
  cr_expect(fabs(a1 - 0.954844476005) < 1e-12 && fabs(b1 - 0.083935572194) < 1e-12);
  cr_expect_eq(sl_snn_alpha_dropout_coeffs(1.0, 0, 1, -1.7, &a1, &b1, &d1), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "AlphaDropout: probability p has to be in [0, 1), got 1"), "%s", sl_last_error());
  NN_LEAK_CHECK();
}

/* Through the layer: 200k samples of N(-0.1, 2) keep mean -0.1 and var 2
 * (sampling sd ~0.003 and ~0.007; tolerances 0.02 and 0.04), and the dropped
 * value is the one the formula gives. */
Test(snn, alpha_dropout_layer_keeps_a_custom_fixed_point) {
  sl_rng rng;
  sl_rng_seed(&rng, 7);
  sl_module *m = sl_alpha_dropout_new_ex(0.1, -0.1, 2.0, NAN, &rng);
  cr_assert_not_null(m, "%s", sl_last_error());
  double p, a, b, dropped, alpha, scale, ea, eb, ed;
  cr_assert_eq(sl_dropout_coeffs_of(m, &p, &a, &b, &dropped), SL_OK);
  sl_snn_params(-0.1, 2.0, &alpha, &scale);
  sl_snn_alpha_dropout_coeffs(0.1, -0.1, 2.0, -scale * alpha, &ea, &eb, &ed);
  cr_expect(p == 0.1 && fabs(a - ea) < 1e-6 && fabs(b - eb) < 1e-6 && fabs(dropped - ed) < 1e-6);
  sl_tensor *x = nn_randn2(1000, 200, &rng);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)(-0.1 + sqrt(2.0) * (double)x->data[i]);
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK);
  double s = 0, s2 = 0;
  int64_t ndrop = 0;
  for (int64_t i = 0; i < y->numel; i++) {
    s += (double)y->data[i];
    s2 += (double)y->data[i] * (double)y->data[i];
    ndrop += y->data[i] == (float)ed;
  }
  double mean = s / (double)y->numel, var = s2 / (double)y->numel - mean * mean;
  cr_expect(fabs(mean + 0.1) < 0.02 && fabs(var - 2.0) < 0.04, "mean %.4f var %.4f", mean, var);
  cr_expect(fabs((double)ndrop / (double)y->numel - 0.1) < 0.005, "dropped fraction %.4f", (double)ndrop / (double)y->numel);
  sl_module_train(m, false);
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK);
  cr_expect(memcmp(y->data, x->data, sizeof(float) * (size_t)x->numel) == 0, "evaluation mode is the identity");
  sl_tensor_release(x);
  sl_module_release(m);
  cr_expect_null(sl_alpha_dropout_new_ex(0.1, 0, -1, NAN, &rng));
  cr_expect(strstr(sl_last_error(), "var must be > 0"), "%s", sl_last_error());
  NN_LEAK_CHECK();
}

/* ---- SELU with custom constants ---- */

Test(snn, custom_selu_matches_pytorch_scale_times_elu) {
  for (int c = 0; c < SNN_REF_COUNT(snn_ref_selus); c++) {
    const snn_ref_selu *r = &snn_ref_selus[c];
    sl_module *m = sl_selu_new_custom(r->alpha, r->scale);
    cr_assert_not_null(m);
    double a, s;
    cr_assert_eq(sl_activation_constants(m, &a, &s), SL_OK);
    cr_expect(fabs(a - r->alpha) < 1e-6 && fabs(s - r->scale) < 1e-6);
    sl_tensor *x = nn_t2(4, 5, r->x), *gy = nn_t2(4, 5, r->gy);
    const sl_tensor *y, *gx;
    cr_assert_eq(sl_module_forward(m, x, &y), SL_OK);
    nn_expect_close(y->data, r->y, 20, 1e-5, 1e-6, "custom SELU y");
    cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK);
    nn_expect_close(gx->data, r->gx, 20, 1e-5, 1e-6, "custom SELU gx");
    sl_tensor_release(x);
    sl_tensor_release(gy);
    sl_module_release(m);
  }
  sl_module *relu = sl_relu_new();
  cr_expect_eq(sl_activation_constants(relu, NULL, NULL), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "module is a ReLU"), "%s", sl_last_error());
  sl_module_release(relu);
  NN_LEAK_CHECK();
}

/* ---- BatchNorm1d ---- */

static sl_tensor *bn_tensor(const snn_ref_bn *r, const float *data) {
  int64_t shape[3] = {r->n, r->c, r->l};
  sl_tensor *t = sl_tensor_from_array(r->l ? 3 : 2, shape, data);
  cr_assert_not_null(t);
  return t;
}

Test(snn, batchnorm1d_matches_pytorch_in_training_and_evaluation) {
  for (int c = 0; c < SNN_REF_COUNT(snn_ref_bns); c++) {
    const snn_ref_bn *r = &snn_ref_bns[c];
    char what[96];
    sl_batchnorm_opts o = sl_batchnorm_defaults();
    o.eps = r->eps, o.momentum = r->momentum, o.affine = r->affine, o.track_running_stats = r->track;
    sl_module *m = sl_batchnorm1d_new(r->c, o);
    cr_assert_not_null(m, "%s", sl_last_error());
    cr_assert_eq(m->nparams, r->affine ? 2 : 0);
    if (r->affine) {
      memcpy(m->params[0]->data, r->w, sizeof(float) * (size_t)r->c);
      memcpy(m->params[1]->data, r->b, sizeof(float) * (size_t)r->c);
    }
    sl_tensor *x1 = bn_tensor(r, r->x1), *x2 = bn_tensor(r, r->x2), *x3 = bn_tensor(r, r->x3);
    sl_tensor *gy = bn_tensor(r, r->gy), *gy3 = bn_tensor(r, r->gy3);
    const sl_tensor *y, *gx;
    int64_t numel = x1->numel;
    cr_assert_eq(sl_module_forward(m, x1, &y), SL_OK, "%s", sl_last_error());
    cr_assert_eq(sl_module_forward(m, x2, &y), SL_OK);
    snprintf(what, sizeof what, "case %d train y", c);
    nn_expect_close(y->data, r->y2, numel, 1e-5, 2e-5, what);
    cr_assert_eq(sl_module_backward(m, x2, gy, &gx), SL_OK, "%s", sl_last_error());
    snprintf(what, sizeof what, "case %d train gx", c);
    nn_expect_close(gx->data, r->gx, numel, 1e-4, 2e-5, what);
    if (r->affine) {
      nn_expect_close(m->grads[0]->data, r->gw, r->c, 1e-5, 2e-5, "train dweight");
      nn_expect_close(m->grads[1]->data, r->gb, r->c, 1e-5, 2e-5, "train dbias");
    }
    sl_tensor *rm, *rv;
    int64_t nbt, nf;
    cr_assert_eq(sl_batchnorm_state(m, &nf, &rm, &rv, &nbt, NULL), SL_OK);
    cr_expect_eq(nf, r->c);
    if (r->track) {
      cr_expect_eq(nbt, 2);
      nn_expect_close(rm->data, r->rm, r->c, 1e-5, 1e-6, "running_mean");
      nn_expect_close(rv->data, r->rv, r->c, 1e-5, 1e-6, "running_var");
    } else {
      cr_expect(rm == NULL && rv == NULL && nbt == 0);
    }
    sl_module_zero_grad(m);
    sl_module_train(m, false);
    cr_assert_eq(sl_module_forward(m, x3, &y), SL_OK);
    snprintf(what, sizeof what, "case %d eval y", c);
    nn_expect_close(y->data, r->y3, numel, 1e-5, 2e-5, what);
    cr_assert_eq(sl_module_backward(m, x3, gy3, &gx), SL_OK);
    snprintf(what, sizeof what, "case %d eval gx", c);
    nn_expect_close(gx->data, r->gx3, numel, 1e-4, 2e-5, what);
    if (r->affine) {
      nn_expect_close(m->grads[0]->data, r->gw3, r->c, 1e-5, 2e-5, "eval dweight");
      nn_expect_close(m->grads[1]->data, r->gb3, r->c, 1e-5, 2e-5, "eval dbias");
    }
    if (r->track) cr_expect_eq((sl_batchnorm_state(m, NULL, NULL, NULL, &nbt, NULL), nbt), 2, "eval does not count");
    sl_tensor_release(x1);
    sl_tensor_release(x2);
    sl_tensor_release(x3);
    sl_tensor_release(gy);
    sl_tensor_release(gy3);
    sl_module_release(m);
  }
  NN_LEAK_CHECK();
}

Test(snn, batchnorm1d_gradients_pass_a_finite_difference_check) {
  sl_rng rng;
  sl_rng_seed(&rng, 3);
  sl_module *m = sl_batchnorm1d_new(3, sl_batchnorm_defaults());
  cr_assert_not_null(m);
  for (int c = 0; c < 3; c++) m->params[0]->data[c] = 0.5f + 0.4f * (float)c, m->params[1]->data[c] = 0.1f * (float)c;
  sl_tensor *x = nn_randn2(5, 3, &rng);
  nn_gradcheck(m, x, NULL, "BatchNorm1d train");
  sl_module_train(m, false);
  nn_gradcheck(m, x, NULL, "BatchNorm1d eval");
  sl_tensor_release(x);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

Test(snn, batchnorm1d_errors_name_the_problem) {
  sl_batchnorm_opts o = sl_batchnorm_defaults();
  cr_expect_null(sl_batchnorm1d_new(0, o));
  cr_expect(strstr(sl_last_error(), "num_features must be >= 1, got 0"), "%s", sl_last_error());
  o.momentum = 1.5;
  cr_expect_null(sl_batchnorm1d_new(4, o));
  cr_expect(strstr(sl_last_error(), "momentum must be in [0, 1], got 1.5"), "%s", sl_last_error());
  sl_module *m = sl_batchnorm1d_new(4, sl_batchnorm_defaults());
  sl_tensor *one = nn_t2(1, 4, NULL), *bad = nn_t2(3, 5, NULL);
  cr_expect_eq(sl_module_forward(m, one, NULL), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "expected more than 1 value per channel when training, got input of shape [1 x 4]"),
            "%s", sl_last_error());
  cr_expect_eq(sl_module_forward(m, bad, NULL), SL_ESHAPE);
  cr_expect(strstr(sl_last_error(), "expected input of shape [N x 4] or [N x 4 x L], got [3 x 5]"), "%s",
            sl_last_error());
  sl_module_train(m, false);
  cr_expect_eq(sl_module_forward(m, one, NULL), SL_OK, "evaluation mode accepts one sample");
  sl_tensor_release(one);
  sl_tensor_release(bad);
  sl_module_release(m);
  NN_LEAK_CHECK();
}
