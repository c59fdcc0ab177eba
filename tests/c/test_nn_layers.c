/* nn layers, containers, losses, initializers, optimizers and schedules:
 * gradient checks (central differences, asserting), derivative branches,
 * buffer reuse (no allocation per step), error messages, determinism. */
#include <float.h>

#include "test_nn_util.h"

/* Inputs away from the kinks at 0 (|x| >= 0.1 > h) for the gradient checks. */
static sl_tensor *kinkfree(int64_t rows, int64_t cols, sl_rng *r) {
  sl_tensor *x = nn_randn2(rows, cols, r);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = copysignf(0.1f + fabsf(x->data[i]), x->data[i]);
  return x;
}

/* ---- gradient checks ----------------------------------------------------- */

static void gradcheck_activation(sl_module *m, const char *what) {
  sl_rng r;
  sl_rng_seed(&r, 11);
  cr_assert_not_null(m, "%s: %s", what, sl_last_error());
  sl_tensor *x = kinkfree(3, 7, &r);
  nn_gradcheck(m, x, NULL, what);
  sl_tensor_release(x);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

Test(nn_gradcheck, selu) { gradcheck_activation(sl_selu_new(), "SELU"); }
Test(nn_gradcheck, elu) { gradcheck_activation(sl_elu_new(0.7), "ELU"); }
Test(nn_gradcheck, relu) { gradcheck_activation(sl_relu_new(), "ReLU"); }
Test(nn_gradcheck, leaky_relu) { gradcheck_activation(sl_leaky_relu_new(0.1), "LeakyReLU"); }
Test(nn_gradcheck, tanh) { gradcheck_activation(sl_tanh_new(), "Tanh"); }
Test(nn_gradcheck, sigmoid) { gradcheck_activation(sl_sigmoid_new(), "Sigmoid"); }
Test(nn_gradcheck, gelu) { gradcheck_activation(sl_gelu_new(), "GELU"); }
Test(nn_gradcheck, softmax) { gradcheck_activation(sl_softmax_new(), "Softmax"); }
Test(nn_gradcheck, log_softmax) { gradcheck_activation(sl_log_softmax_new(), "LogSoftmax"); }

Test(nn_gradcheck, linear_input_weight_and_bias) {
  sl_rng r;
  sl_rng_seed(&r, 12);
  int dims[][3] = {{4, 6, 3}, {1, 1, 1}, {5, 1, 4}, {1, 7, 1}}; /* N, in, out */
  for (int c = 0; c < 4; c++) {
    sl_module *m = sl_linear_new(dims[c][1], dims[c][2], true, &r);
    cr_assert_not_null(m);
    sl_tensor *x = nn_randn2(dims[c][0], dims[c][1], &r);
    nn_gradcheck(m, x, NULL, "Linear");
    sl_tensor_release(x);
    sl_module_release(m);
  }
  NN_LEAK_CHECK();
}

Test(nn_gradcheck, dropout_and_alpha_dropout_with_a_fixed_mask) {
  sl_rng r, data;
  sl_rng_seed(&data, 13);
  sl_module *ms[2] = {sl_dropout_new(0.3, &r), sl_alpha_dropout_new(0.2, &r)};
  for (int k = 0; k < 2; k++) {
    cr_assert_not_null(ms[k]);
    sl_tensor *x = nn_randn2(6, 5, &data);
    nn_gradcheck(ms[k], x, &r, sl_module_type(ms[k]));
    sl_tensor_release(x);
    sl_module_release(ms[k]);
  }
  NN_LEAK_CHECK();
}

Test(nn_gradcheck, sequential_of_every_kind_of_layer) {
  sl_rng r, data;
  sl_rng_seed(&r, 14);
  sl_rng_seed(&data, 15);
  sl_module *seq = sl_sequential_new();
  sl_module *parts[] = {sl_linear_new(5, 8, true, &r), sl_selu_new(),   sl_alpha_dropout_new(0.1, &r),
                        sl_linear_new(8, 6, true, &r), sl_tanh_new(),   sl_dropout_new(0.2, &r),
                        sl_linear_new(6, 4, false, &r), sl_gelu_new(), sl_log_softmax_new()};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    cr_assert_not_null(parts[i]);
    cr_assert_eq(sl_sequential_add(seq, parts[i]), SL_OK);
    sl_module_release(parts[i]); /* the container holds the only reference now */
  }
  sl_tensor *x = nn_randn2(3, 5, &data);
  nn_gradcheck(seq, x, &r, "Sequential");
  sl_tensor_release(x);
  sl_module_release(seq);
  NN_LEAK_CHECK();
}

/* Loss gradients: central differences of the loss itself. */
Test(nn_gradcheck, cross_entropy_and_mse) {
  sl_rng r;
  sl_rng_seed(&r, 16);
  sl_tensor *logits = nn_randn2(5, 4, &r), *grad = nn_t2(5, 4, NULL);
  float lab[5] = {0, 3, 1, 1, 2};
  sl_tensor *labels = nn_t1(5, lab);
  cr_assert_eq(sl_cross_entropy_backward(grad, logits, labels), SL_OK);
  for (int64_t j = 0; j < logits->numel; j++) {
    float o = logits->data[j], h = 1e-2f;
    double lp, lm;
    logits->data[j] = o + h;
    sl_cross_entropy_forward(logits, labels, &lp);
    logits->data[j] = o - h;
    sl_cross_entropy_forward(logits, labels, &lm);
    logits->data[j] = o;
    double num = (lp - lm) / ((double)(o + h) - (double)(o - h));
    cr_assert(fabs(num - (double)grad->data[j]) <= 1e-4 + 1e-3 * fabs(num), "CE d[%lld]: %g vs %g", (long long)j,
              (double)grad->data[j], num);
  }
  sl_tensor *target = nn_randn2(5, 4, &r);
  cr_assert_eq(sl_mse_backward(grad, logits, target), SL_OK);
  for (int64_t j = 0; j < logits->numel; j++) {
    float o = logits->data[j], h = 1e-2f;
    double lp, lm;
    logits->data[j] = o + h;
    sl_mse_forward(logits, target, &lp);
    logits->data[j] = o - h;
    sl_mse_forward(logits, target, &lm);
    logits->data[j] = o;
    double num = (lp - lm) / ((double)(o + h) - (double)(o - h));
    cr_assert(fabs(num - (double)grad->data[j]) <= 1e-5 + 1e-4 * fabs(num), "MSE d[%lld]: %g vs %g",
              (long long)j, (double)grad->data[j], num);
  }
  sl_tensor_release(logits);
  sl_tensor_release(grad);
  sl_tensor_release(labels);
  sl_tensor_release(target);
  NN_LEAK_CHECK();
}

/* ---- activation conventions --------------------------------------------- */

Test(nn_activation, derivative_at_zero_takes_the_negative_branch_for_elu_family_and_zero_for_relu) {
  const float x[2] = {0.0f, -0.0f}, gy[2] = {1.0f, 2.0f};
  float gx[2];
  const float la = (float)SL_SELU_ALPHA * (float)SL_SELU_SCALE;
  sl_selu_backward_f32(gx, x, gy, 2);
  cr_expect_eq(gx[0], la, "SELU'(0) = %.9g, expected lambda*alpha = %.9g", (double)gx[0], (double)la);
  cr_expect_eq(gx[1], 2.0f * la);
  cr_expect(fabs((double)la - 1.7580993408473766) < 2e-7);
  sl_elu_backward_f32(gx, x, gy, 2, 0.5f, 1.0f);
  cr_expect_eq(gx[0], 0.5f, "ELU'(0) = %g, expected alpha", (double)gx[0]);
  sl_relu_backward_f32(gx, x, gy, 2);
  cr_expect_eq(gx[0], 0.0f);
  cr_expect_eq(gx[1], 0.0f);
  /* just beside 0 the branches differ: lambda on the right */
  const float xs[2] = {1e-30f, -1e-30f};
  sl_selu_backward_f32(gx, xs, gy, 2);
  cr_expect_eq(gx[0], (float)SL_SELU_SCALE);
  cr_expect(fabsf(gx[1] - 2.0f * la) < 1e-6f);
}

Test(nn_activation, selu_constants_and_values) {
  const float x[4] = {1.0f, -1.0f, -1000.0f, 0.0f};
  float y[4];
  sl_selu_forward_f32(y, x, 4);
  cr_expect(fabs((double)y[0] - 1.0507009873554805) < 1e-7, "SELU(1) = %.9g", (double)y[0]);
  cr_expect(fabs((double)y[1] - 1.0507009873554805 * 1.6732632423543772 * expm1(-1.0)) < 1e-6, "SELU(-1) = %.9g",
            (double)y[1]);
  cr_expect(fabs((double)y[2] + 1.7580993408473766) < 2e-7, "SELU(-1000) = %.9g", (double)y[2]);
  cr_expect_eq(y[3], 0.0f);
}

Test(nn_activation, no_nan_or_overflow_at_extreme_inputs) {
  const float x[8] = {-1000.0f, -88.0f, -87.5f, 88.0f, 88.7f, 1000.0f, -1e-38f, 1e-45f};
  const float gy[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  sl_module *ms[] = {sl_selu_new(), sl_elu_new(1.0), sl_relu_new(), sl_leaky_relu_new(0.01), sl_tanh_new(),
                     sl_sigmoid_new(), sl_gelu_new(), sl_softmax_new(), sl_log_softmax_new()};
  sl_tensor *xt = nn_t2(1, 8, x), *gt = nn_t2(1, 8, gy);
  for (size_t k = 0; k < sizeof ms / sizeof *ms; k++) {
    const sl_tensor *y, *gx;
    cr_assert_eq(sl_module_forward(ms[k], xt, &y), SL_OK);
    cr_assert_eq(sl_module_backward(ms[k], xt, gt, &gx), SL_OK);
    for (int i = 0; i < 8; i++)
      cr_expect(isfinite(y->data[i]) && isfinite(gx->data[i]), "%s at %g: y %g, gx %g", sl_module_type(ms[k]),
                (double)x[i], (double)y->data[i], (double)gx->data[i]);
    sl_module_release(ms[k]);
  }
  sl_tensor_release(xt);
  sl_tensor_release(gt);
  NN_LEAK_CHECK();
}

Test(nn_activation, backward_rejects_mismatched_gradient_shape) {
  sl_module *m = sl_selu_new();
  sl_tensor *x = nn_t2(2, 3, NULL), *gy = nn_t2(3, 2, NULL);
  cr_assert_eq(sl_module_backward(m, x, gy, NULL), SL_ESHAPE);
  cr_expect_str_eq(sl_last_error(), "SELU.backward: gradOutput shape [3 x 2] does not match input shape [2 x 3]");
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

/* ---- Linear --------------------------------------------------------------- */

Test(nn_linear, backward_accumulates_parameter_grads_and_writes_grad_input) {
  sl_rng r;
  sl_rng_seed(&r, 21);
  sl_module *m = sl_linear_new(4, 3, true, &r);
  sl_tensor *x = nn_randn2(5, 4, &r), *gy = nn_randn2(5, 3, &r);
  const sl_tensor *gx;
  cr_assert_eq(sl_module_forward(m, x, NULL), SL_OK);
  cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK);
  sl_tensor *gw1 = sl_tensor_clone(m->grads[0]), *gb1 = sl_tensor_clone(m->grads[1]), *gx1 = sl_tensor_clone(gx);
  cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK);
  for (int64_t i = 0; i < gw1->numel; i++) cr_expect_eq(m->grads[0]->data[i], 2.0f * gw1->data[i]);
  for (int64_t i = 0; i < gb1->numel; i++) cr_expect_eq(m->grads[1]->data[i], 2.0f * gb1->data[i]);
  for (int64_t i = 0; i < gx1->numel; i++) cr_expect_eq(gx->data[i], gx1->data[i]);
  sl_module_zero_grad(m);
  for (int64_t i = 0; i < gw1->numel; i++) cr_expect_eq(m->grads[0]->data[i], 0.0f);
  cr_expect_str_eq(m->param_names[0], "weight");
  cr_expect_str_eq(m->param_names[1], "bias");
  cr_expect_eq(m->params[0]->shape[0], 3); /* PyTorch layout: out x in */
  cr_expect_eq(m->params[0]->shape[1], 4);
  sl_tensor_release(gw1);
  sl_tensor_release(gb1);
  sl_tensor_release(gx1);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

Test(nn_linear, default_init_is_pytorch_uniform_and_zero_without_rng) {
  sl_rng r;
  sl_rng_seed(&r, 22);
  sl_module *m = sl_linear_new(100, 50, true, &r);
  float bound = 0.1f, mn, mx;
  sl_min(m->params[0], &mn);
  sl_max(m->params[0], &mx);
  cr_expect(mn >= -bound && mx <= bound && mn < -0.09f && mx > 0.09f, "weights in [%g, %g]", (double)mn, (double)mx);
  sl_max(m->params[1], &mx);
  cr_expect(mx <= bound && mx > 0.0f);
  sl_module *z = sl_linear_new(3, 2, false, NULL);
  cr_assert_eq(z->nparams, 1);
  for (int64_t i = 0; i < z->params[0]->numel; i++) cr_expect_eq(z->params[0]->data[i], 0.0f);
  sl_module_release(m);
  sl_module_release(z);
  NN_LEAK_CHECK();
}

Test(nn_linear, shape_errors_name_the_shapes) {
  sl_module *m = sl_linear_new(5, 3, true, NULL);
  sl_tensor *x = nn_t2(2, 4, NULL), *x5 = nn_t2(2, 5, NULL), *gy = nn_t2(2, 4, NULL);
  cr_assert_eq(sl_module_forward(m, x, NULL), SL_ESHAPE);
  cr_expect_str_eq(sl_last_error(), "Linear.forward: input shape [2 x 4] does not match in_features 5");
  cr_assert_eq(sl_module_backward(m, x5, gy, NULL), SL_ESHAPE);
  cr_expect(strstr(sl_last_error(), "gradOutput shape [2 x 4]") != NULL, "%s", sl_last_error());
  cr_assert_null(sl_linear_new(0, 3, true, NULL));
  cr_expect(strstr(sl_last_error(), "got 0 and 3") != NULL, "%s", sl_last_error());
  sl_tensor_release(x);
  sl_tensor_release(x5);
  sl_tensor_release(gy);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

/* ---- Dropout ------------------------------------------------------------- */

Test(nn_dropout, probability_outside_0_1_is_an_error_naming_the_value) {
  sl_rng r;
  sl_rng_seed(&r, 1);
  double bad[] = {1.0, -0.1, 1.5, NAN};
  const char *want[] = {"got 1", "got -0.1", "got 1.5", "got nan"};
  for (int i = 0; i < 4; i++) {
    cr_expect_null(sl_dropout_new(bad[i], &r));
    cr_expect_eq(sl_last_status(), SL_EINVAL);
    cr_expect(strstr(sl_last_error(), want[i]) && strstr(sl_last_error(), "Dropout: probability p has to be in [0, 1)"),
              "%s", sl_last_error());
    cr_expect_null(sl_alpha_dropout_new(bad[i], &r));
    cr_expect(strstr(sl_last_error(), want[i]) && strstr(sl_last_error(), "AlphaDropout"), "%s", sl_last_error());
  }
  cr_expect_null(sl_alpha_dropout_new(0.1, NULL));
  cr_expect(strstr(sl_last_error(), "random generator") != NULL);
  NN_LEAK_CHECK();
}

Test(nn_dropout, evaluation_mode_and_p_zero_are_the_identity_and_draw_nothing) {
  sl_rng r;
  memset(&r, 0, sizeof r); /* the memcmp below also compares padding (valgrind) */
  sl_rng_seed(&r, 2);
  sl_tensor *x = nn_randn2(10, 10, &r);
  sl_module *ms[] = {sl_dropout_new(0.5, &r), sl_alpha_dropout_new(0.5, &r), sl_alpha_dropout_new(0.0, &r),
                     sl_dropout_new(0.0, &r)};
  for (int k = 0; k < 4; k++) {
    if (k < 2) sl_module_train(ms[k], false);
    sl_rng before = r;
    const sl_tensor *y, *gx;
    cr_assert_eq(sl_module_forward(ms[k], x, &y), SL_OK);
    cr_expect_eq(memcmp(y->data, x->data, sizeof(float) * 100), 0, "module %d is not the identity", k);
    cr_assert_eq(sl_module_backward(ms[k], x, x, &gx), SL_OK);
    cr_expect_eq(memcmp(gx->data, x->data, sizeof(float) * 100), 0);
    cr_expect_eq(memcmp(&before, &r, sizeof r), 0, "module %d consumed random numbers", k);
    sl_module_release(ms[k]);
  }
  sl_tensor_release(x);
  NN_LEAK_CHECK();
}

Test(nn_dropout, inverted_scaling_and_backward_reuses_the_forward_mask) {
  sl_rng r;
  sl_rng_seed(&r, 3);
  sl_module *d = sl_dropout_new(0.25, &r), *ad = sl_alpha_dropout_new(0.25, &r);
  sl_tensor *x = nn_randn2(40, 50, &r), *gy = nn_randn2(40, 50, &r);
  const sl_tensor *y, *gx;
  cr_assert_eq(sl_module_forward(d, x, &y), SL_OK);
  cr_assert_eq(sl_module_backward(d, x, gy, &gx), SL_OK);
  int64_t dropped = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    if (y->data[i] == 0.0f) {
      dropped++;
      cr_expect_eq(gx->data[i], 0.0f);
    } else {
      cr_expect_eq(y->data[i], x->data[i] * (float)(1.0 / 0.75));
      cr_expect_eq(gx->data[i], gy->data[i] * (float)(1.0 / 0.75));
    }
  }
  cr_expect(dropped > 400 && dropped < 600, "dropped %lld of 2000", (long long)dropped);
  double a, b, dv;
  sl_alpha_dropout_coeffs(0.25, &a, &b, &dv);
  cr_assert_eq(sl_module_forward(ad, x, &y), SL_OK);
  cr_assert_eq(sl_module_backward(ad, x, gy, &gx), SL_OK);
  for (int64_t i = 0; i < x->numel; i++) {
    if (y->data[i] == (float)dv) cr_expect_eq(gx->data[i], 0.0f);
    else {
      cr_expect_eq(y->data[i], x->data[i] * (float)a + (float)b);
      cr_expect_eq(gx->data[i], gy->data[i] * (float)a);
    }
  }
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(d);
  sl_module_release(ad);
  NN_LEAK_CHECK();
}

Test(nn_dropout, same_seed_gives_the_same_mask) {
  sl_rng r1, r2;
  sl_rng_seed(&r1, 77);
  sl_rng_seed(&r2, 77);
  sl_module *a = sl_alpha_dropout_new(0.1, &r1), *b = sl_alpha_dropout_new(0.1, &r2);
  sl_tensor *x = nn_randn2(30, 30, &r1);
  sl_rng_seed(&r1, 5);
  sl_rng_seed(&r2, 5);
  const sl_tensor *ya, *yb;
  cr_assert_eq(sl_module_forward(a, x, &ya), SL_OK);
  cr_assert_eq(sl_module_forward(b, x, &yb), SL_OK);
  cr_expect_eq(memcmp(ya->data, yb->data, 900 * sizeof(float)), 0);
  cr_assert_eq(sl_module_forward(a, x, &ya), SL_OK); /* a new draw: a different mask */
  cr_expect_neq(memcmp(ya->data, yb->data, 900 * sizeof(float)), 0);
  sl_tensor_release(x);
  sl_module_release(a);
  sl_module_release(b);
  NN_LEAK_CHECK();
}

/* ---- Sequential ----------------------------------------------------------- */

Test(nn_sequential, forward_chains_children_and_modes_are_recursive) {
  sl_rng r;
  sl_rng_seed(&r, 31);
  sl_module *l1 = sl_linear_new(4, 6, true, &r), *act = sl_selu_new(), *drop = sl_alpha_dropout_new(0.3, &r),
            *l2 = sl_linear_new(6, 2, true, &r);
  sl_module *inner = sl_sequential_new(), *seq = sl_sequential_new();
  cr_assert_eq(sl_sequential_add(inner, act), SL_OK);
  cr_assert_eq(sl_sequential_add(inner, drop), SL_OK);
  cr_assert_eq(sl_sequential_add(seq, l1), SL_OK);
  cr_assert_eq(sl_sequential_add(seq, inner), SL_OK);
  cr_assert_eq(sl_sequential_add(seq, l2), SL_OK);
  cr_expect_eq(sl_sequential_add(seq, l2), SL_EINVAL);
  cr_expect(strstr(sl_last_error(), "already child 3") != NULL, "%s", sl_last_error());
  cr_expect_eq(sl_sequential_add(l1, act), SL_EINVAL);
  cr_expect_str_eq(sl_module_type(seq), "Sequential");
  sl_module_train(seq, false);
  cr_expect(!l1->training && !drop->training && !inner->training);
  sl_tensor *x = nn_randn2(3, 4, &r);
  const sl_tensor *y, *t;
  cr_assert_eq(sl_module_forward(seq, x, &y), SL_OK);
  cr_assert_eq(sl_module_forward(l1, x, &t), SL_OK);
  cr_assert_eq(sl_module_forward(act, t, &t), SL_OK);
  cr_assert_eq(sl_module_forward(l2, t, &t), SL_OK);
  cr_assert_eq(y->numel, 6);
  for (int i = 0; i < 6; i++) cr_expect_eq(y->data[i], t->data[i]);
  sl_module_train(seq, true);
  cr_expect(drop->training && l2->training);
  /* The container owns references: releasing ours keeps the children alive. */
  sl_module_release(l1);
  sl_module_release(act);
  sl_module_release(drop);
  sl_module_release(l2);
  sl_module_release(inner);
  cr_assert_eq(sl_module_forward(seq, x, &y), SL_OK);
  sl_tensor_release(x);
  sl_module_release(seq);
  NN_LEAK_CHECK();
}

Test(nn_sequential, empty_container_is_the_identity) {
  sl_module *seq = sl_sequential_new();
  float v[3] = {1, -2, 3};
  sl_tensor *x = nn_t1(3, v);
  const sl_tensor *y, *gx;
  cr_assert_eq(sl_module_forward(seq, x, &y), SL_OK);
  cr_assert_eq(sl_module_backward(seq, x, x, &gx), SL_OK);
  for (int i = 0; i < 3; i++) cr_expect(y->data[i] == v[i] && gx->data[i] == v[i]);
  sl_tensor_release(x);
  sl_module_release(seq);
  NN_LEAK_CHECK();
}

/* Steps 2..5 of forward + loss + backward + optimizer step allocate nothing. */
static void no_alloc_training_steps(bool adam) {
  sl_rng r;
  sl_rng_seed(&r, 41);
  sl_module *seq = sl_sequential_new();
  sl_module *parts[] = {sl_linear_new(20, 32, true, &r), sl_selu_new(), sl_alpha_dropout_new(0.1, &r),
                        sl_linear_new(32, 32, true, &r), sl_relu_new(), sl_dropout_new(0.2, &r),
                        sl_linear_new(32, 5, true, &r), sl_log_softmax_new()};
  sl_tensor *params[8], *grads[8];
  int np = 0;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    cr_assert_eq(sl_sequential_add(seq, parts[i]), SL_OK);
    for (int k = 0; k < parts[i]->nparams; k++) {
      params[np] = parts[i]->params[k];
      grads[np++] = parts[i]->grads[k];
    }
    sl_module_release(parts[i]);
  }
  sl_optim *opt = adam ? sl_adam_new(params, grads, np, sl_adam_defaults())
                       : sl_sgd_new(params, grads, np, (sl_sgd_opts){0.01, 0.9, 0.0, 1e-4, true});
  cr_assert_not_null(opt, "%s", sl_last_error());
  sl_tensor *x = nn_randn2(16, 20, &r), *gy = nn_t2(16, 5, NULL), *labels = nn_t1(16, NULL);
  for (int i = 0; i < 16; i++) labels->data[i] = (float)(i % 5);
  double losses[6];
  uint64_t count = 0;
  for (int step = 1; step <= 5; step++) {
    if (step == 2) count = sl_alloc_count();
    const sl_tensor *y;
    sl_optim_zero_grad(opt);
    cr_assert_eq(sl_module_forward(seq, x, &y), SL_OK, "%s", sl_last_error());
    cr_assert_eq(sl_cross_entropy_forward(y, labels, &losses[step]), SL_OK);
    cr_assert_eq(sl_cross_entropy_backward(gy, y, labels), SL_OK);
    cr_assert_eq(sl_module_backward(seq, x, gy, NULL), SL_OK, "%s", sl_last_error());
    cr_assert_eq(sl_optim_step(opt), SL_OK);
  }
  cr_expect_eq(sl_alloc_count(), count, "%llu allocations in steps 2..5",
               (unsigned long long)(sl_alloc_count() - count));
  cr_expect(isfinite(losses[5]));
  sl_optim_free(opt);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_tensor_release(labels);
  sl_module_release(seq);
  NN_LEAK_CHECK();
}

Test(nn_sequential, training_steps_after_the_first_allocate_nothing_sgd) { no_alloc_training_steps(false); }
Test(nn_sequential, training_steps_after_the_first_allocate_nothing_adam) { no_alloc_training_steps(true); }

/* ---- initializers -------------------------------------------------------- */

static void moments(const sl_tensor *t, double *mean, double *var) {
  *mean = sl_mean(t);
  *var = sl_var(t);
}

Test(nn_init, lecun_he_and_xavier_have_the_prescribed_variance_and_zero_bias) {
  sl_rng r;
  sl_rng_seed(&r, 51);
  sl_module *m = sl_linear_new(400, 300, true, &r), *seq = sl_sequential_new();
  sl_sequential_add(seq, m);
  double mean, var;
  cr_assert_eq(sl_init_lecun_normal(seq, &r), SL_OK);
  moments(m->params[0], &mean, &var);
  cr_expect(fabs(mean) < 1e-3 && fabs(var * 400 - 1.0) < 0.02, "lecun: mean %g var*fan_in %g", mean, var * 400);
  for (int64_t i = 0; i < 300; i++) cr_expect_eq(m->params[1]->data[i], 0.0f);
  cr_assert_eq(sl_init_he_normal(m, &r), SL_OK);
  moments(m->params[0], &mean, &var);
  cr_expect(fabs(var * 400 - 2.0) < 0.04, "he: var*fan_in %g", var * 400);
  cr_assert_eq(sl_init_xavier_uniform(m, &r), SL_OK);
  moments(m->params[0], &mean, &var);
  double bound = sqrt(6.0 / 700.0);
  float mx;
  sl_max(m->params[0], &mx);
  cr_expect((double)mx <= bound && (double)mx > 0.99 * bound);
  cr_expect(fabs(var / (bound * bound / 3.0) - 1.0) < 0.02, "xavier var %g", var);
  cr_expect_eq(sl_init_lecun_normal(m, NULL), SL_EINVAL);
  sl_module_release(m);
  sl_module_release(seq);
  NN_LEAK_CHECK();
}

Test(nn_init, same_seed_reproduces_a_network_bit_for_bit) {
  sl_module *nets[3];
  for (int k = 0; k < 3; k++) {
    sl_rng r;
    sl_rng_seed(&r, k < 2 ? 123 : 124);
    nets[k] = sl_sequential_new();
    sl_module *a = sl_linear_new(30, 20, true, NULL), *b = sl_linear_new(20, 10, true, NULL);
    sl_sequential_add(nets[k], a);
    sl_sequential_add(nets[k], b);
    sl_module_release(a);
    sl_module_release(b);
    sl_init_lecun_normal(nets[k], &r);
  }
  for (int c = 0; c < 2; c++) {
    const sl_tensor *w0 = nets[0]->children[c]->params[0], *w1 = nets[1]->children[c]->params[0],
                    *w2 = nets[2]->children[c]->params[0];
    cr_expect_eq(memcmp(w0->data, w1->data, (size_t)w0->numel * sizeof(float)), 0);
    cr_expect_neq(memcmp(w0->data, w2->data, (size_t)w0->numel * sizeof(float)), 0);
  }
  for (int k = 0; k < 3; k++) sl_module_release(nets[k]);
  NN_LEAK_CHECK();
}

/* ---- losses: errors ----------------------------------------------------- */

Test(nn_loss, cross_entropy_errors_name_the_offending_value) {
  sl_tensor *logits = nn_t2(4, 3, NULL), *grad = nn_t2(4, 3, NULL);
  float bad_range[4] = {0, 1, 3, 2}, bad_frac[4] = {0, 1.5f, 1, 2}, neg[4] = {0, -1, 1, 2}, ok[4] = {0, 1, 2, 2};
  sl_tensor *l1 = nn_t1(4, bad_range), *l2 = nn_t1(4, bad_frac), *l3 = nn_t1(3, ok), *l4 = nn_t1(4, neg);
  double loss;
  cr_expect_eq(sl_cross_entropy_forward(logits, l1, &loss), SL_ERANGE);
  cr_expect_str_eq(sl_last_error(), "cross_entropy.forward: label 3 (row 2) is out of range 0..2");
  cr_expect_eq(sl_cross_entropy_backward(grad, logits, l4), SL_ERANGE);
  cr_expect_str_eq(sl_last_error(), "cross_entropy.backward: label -1 (row 1) is out of range 0..2");
  cr_expect_eq(sl_cross_entropy_forward(logits, l2, &loss), SL_EINVAL);
  cr_expect_str_eq(sl_last_error(), "cross_entropy.forward: label 1.5 (row 1) is not an integer class index");
  cr_expect_eq(sl_cross_entropy_forward(logits, l3, &loss), SL_ESHAPE);
  cr_expect(strstr(sl_last_error(), "3 labels") && strstr(sl_last_error(), "batch of 4"), "%s", sl_last_error());
  /* 1-based labels, as the Lua API passes them */
  cr_expect_eq(sl_cross_entropy_forward_ex(logits, l1, 1, &loss), SL_ERANGE);
  cr_expect_str_eq(sl_last_error(), "cross_entropy.forward: label 0 (row 1) is out of range 1..3");
  float one_based[4] = {1, 2, 3, 3};
  sl_tensor *l5 = nn_t1(4, one_based), *l6 = nn_t1(4, ok);
  double a, b;
  cr_assert_eq(sl_cross_entropy_forward_ex(logits, l5, 1, &a), SL_OK);
  cr_assert_eq(sl_cross_entropy_forward(logits, l6, &b), SL_OK);
  cr_expect(a == b && fabs(a - log(3.0)) < 1e-12);
  sl_tensor *p = nn_t2(2, 3, NULL), *t = nn_t2(3, 2, NULL);
  cr_expect_eq(sl_mse_forward(p, t, &loss), SL_ESHAPE);
  cr_expect_str_eq(sl_last_error(), "mse.forward: input shape [2 x 3] does not match target shape [3 x 2]");
  sl_tensor *ts[] = {logits, grad, l1, l2, l3, l4, l5, l6, p, t};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) sl_tensor_release(ts[i]);
  NN_LEAK_CHECK();
}

/* ---- optimizers and schedules --------------------------------------------- */

Test(nn_optim, state_tensors_are_named_for_checkpoints) {
  sl_tensor *p[2] = {nn_t2(2, 2, NULL), nn_t1(2, NULL)}, *g[2] = {nn_t2(2, 2, NULL), nn_t1(2, NULL)};
  sl_optim *adam = sl_adam_new(p, g, 2, sl_adamw_defaults());
  cr_assert_not_null(adam);
  cr_expect_str_eq(sl_optim_type(adam), "AdamW");
  cr_assert_eq(sl_optim_state_count(adam), 4);
  const char *name;
  sl_tensor *s = sl_optim_state_tensor(adam, 3, &name);
  cr_expect_str_eq(name, "1.exp_avg_sq");
  cr_expect(sl_tensor_same_shape(s, p[1]));
  sl_optim_state_tensor(adam, 0, &name);
  cr_expect_str_eq(name, "0.exp_avg");
  cr_expect_null(sl_optim_state_tensor(adam, 4, &name));
  sl_optim_set_step(adam, 7);
  cr_expect_eq(sl_optim_get_step(adam), 7);
  cr_expect(fabs(sl_optim_get_lr(adam) - 1e-3) < 1e-15);
  sl_optim_set_lr(adam, 0.5);
  cr_expect_eq(sl_optim_get_lr(adam), 0.5);
  sl_optim *sgd = sl_sgd_new(p, g, 2, sl_sgd_defaults(0.1));
  cr_expect_eq(sl_optim_state_count(sgd), 0);
  sl_optim *sgdm = sl_sgd_new(p, g, 2, (sl_sgd_opts){0.1, 0.9, 0, 0, false});
  cr_expect_eq(sl_optim_state_count(sgdm), 2);
  sl_optim_state_tensor(sgdm, 1, &name);
  cr_expect_str_eq(name, "1.momentum_buffer");
  g[0]->data[0] = 3.0f;
  sl_optim_zero_grad(sgdm);
  cr_expect_eq(g[0]->data[0], 0.0f);
  sl_optim_free(adam);
  sl_optim_free(sgd);
  sl_optim_free(sgdm);
  for (int i = 0; i < 2; i++) {
    sl_tensor_release(p[i]);
    sl_tensor_release(g[i]);
  }
  NN_LEAK_CHECK();
}

Test(nn_optim, invalid_hyperparameters_are_errors_naming_the_value) {
  sl_tensor *p = nn_t1(3, NULL), *g = nn_t1(3, NULL), *g4 = nn_t1(4, NULL);
  cr_expect_null(sl_sgd_new(&p, &g, 1, sl_sgd_defaults(-0.1)));
  cr_expect_str_eq(sl_last_error(), "SGD: invalid learning rate: -0.1");
  cr_expect_null(sl_sgd_new(&p, &g, 1, (sl_sgd_opts){0.1, 0.0, 0.0, 0.0, true}));
  cr_expect(strstr(sl_last_error(), "Nesterov momentum requires a momentum and zero dampening") != NULL);
  sl_adam_opts o = sl_adam_defaults();
  o.beta2 = 1.0;
  cr_expect_null(sl_adam_new(&p, &g, 1, o));
  cr_expect_str_eq(sl_last_error(), "Adam: invalid beta parameter at index 1: 1");
  cr_expect_null(sl_adam_new(&p, &g4, 1, sl_adam_defaults()));
  cr_expect(strstr(sl_last_error(), "parameter 0 has shape [3] but its gradient has shape [4]") != NULL, "%s",
            sl_last_error());
  sl_tensor_release(p);
  sl_tensor_release(g);
  sl_tensor_release(g4);
  NN_LEAK_CHECK();
}

Test(nn_optim, optimizer_keeps_its_tensors_alive) {
  sl_tensor *p = nn_t1(2, NULL), *g = nn_t1(2, NULL);
  sl_optim *o = sl_sgd_new(&p, &g, 1, sl_sgd_defaults(1.0));
  cr_assert_not_null(o);
  sl_tensor_release(p);
  sl_tensor_release(g);
  cr_assert_eq(sl_optim_step(o), SL_OK); /* ASan would report a use after free */
  cr_assert_eq(sl_optim_step(o), SL_OK);
  sl_optim_free(o);
  NN_LEAK_CHECK();
}

Test(nn_schedule, step_and_cosine_closed_forms) {
  cr_expect(fabs(sl_lr_step(0.1, 0, 30, 0.1) - 0.1) < 1e-15);
  cr_expect(fabs(sl_lr_step(0.1, 29, 30, 0.1) - 0.1) < 1e-15);
  cr_expect(fabs(sl_lr_step(0.1, 30, 30, 0.1) - 0.01) < 1e-15);
  cr_expect(fabs(sl_lr_step(0.1, 95, 30, 0.5) - 0.0125) < 1e-15);
  cr_expect(fabs(sl_lr_cosine(0.1, 0, 100, 0.001) - 0.1) < 1e-15);
  cr_expect(fabs(sl_lr_cosine(0.1, 50, 100, 0.0) - 0.05) < 1e-15);
  cr_expect(fabs(sl_lr_cosine(0.1, 100, 100, 0.001) - 0.001) < 1e-15);
  cr_expect(fabs(sl_lr_cosine(0.1, 25, 100, 0.0) - 0.05 * (1 + sqrt(0.5))) < 1e-15);
  cr_expect(isnan(sl_lr_step(0.1, 3, 0, 0.1)));
  cr_expect_str_eq(sl_last_error(), "lr_step: step_size must be positive, got 0");
  cr_expect(isnan(sl_lr_cosine(0.1, 3, -1, 0.0)));
}

/* sl_optim_step_flat (selut.dist's shared step) on flat copies of the
 * parameters, gradients and state, stepped in two slices by two optimizer
 * objects as two ranks would, gives the bits of sl_optim_step; and an
 * optimizer marked external refuses sl_optim_step with the owner's name. */
static void flat_matches_step(int adam) {
  enum { N0 = 6, N1 = 3, T = N0 + N1 };
  float init[T], grad[T];
  for (int i = 0; i < T; i++) init[i] = 0.1f * (float)(i - 4), grad[i] = 0.3f - 0.07f * (float)i;
  sl_tensor *p[2] = {nn_t2(2, 3, init), nn_t1(N1, init + N0)}, *g[2] = {nn_t2(2, 3, grad), nn_t1(N1, grad + N0)};
  sl_sgd_opts so = {0.1, 0.9, 0.0, 0.01, true}; /* nesterov needs dampening 0 */
  sl_optim *ref = adam ? sl_adam_new(p, g, 2, sl_adam_defaults()) : sl_sgd_new(p, g, 2, so);
  /* two "ranks": each an optimizer over the same parameters, stepping one slice of the flat copies */
  sl_optim *r0 = adam ? sl_adam_new(p, g, 2, sl_adam_defaults()) : sl_sgd_new(p, g, 2, so);
  sl_optim *r1 = adam ? sl_adam_new(p, g, 2, sl_adam_defaults()) : sl_sgd_new(p, g, 2, so);
  cr_assert(ref && r0 && r1, "%s", sl_last_error());
  cr_assert_eq(sl_optim_state_kinds(ref), adam ? 2 : 1);
  float fp[T], s0[T] = {0}, s1[T] = {0};
  memcpy(fp, init, sizeof fp);
  for (int step = 0; step < 3; step++) {
    cr_assert_eq(sl_optim_step(ref), SL_OK);
    cr_assert_eq(sl_optim_step_flat(r0, fp, grad, s0, adam ? s1 : NULL, 4), SL_OK);
    cr_assert_eq(sl_optim_step_flat(r1, fp + 4, grad + 4, s0 + 4, adam ? s1 + 4 : NULL, T - 4), SL_OK);
  }
  cr_assert_arr_eq(fp, p[0]->data, N0 * sizeof(float), "%s: parameter 0", adam ? "Adam" : "SGD");
  cr_assert_arr_eq(fp + N0, p[1]->data, N1 * sizeof(float), "%s: parameter 1", adam ? "Adam" : "SGD");
  cr_assert_eq(sl_optim_step_flat(r0, fp, grad, NULL, NULL, 4), SL_EINVAL, "state arrays are required");
  sl_optim_set_external(ref, "a test owner");
  cr_assert_eq(sl_optim_step(ref), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "stepped by a test owner") != NULL, "%s", sl_last_error());
  sl_optim_set_external(ref, NULL);
  cr_assert_eq(sl_optim_step(ref), SL_OK);
  cr_assert_eq(sl_optim_param_count(ref), 2);
  cr_assert(sl_optim_param(ref, 1) == p[1] && sl_optim_param(ref, 2) == NULL);
  sl_optim_free(ref);
  sl_optim_free(r0);
  sl_optim_free(r1);
  for (int i = 0; i < 2; i++) {
    sl_tensor_release(p[i]);
    sl_tensor_release(g[i]);
  }
}

Test(nn_optim, flat_slices_step_like_the_optimizer) {
  flat_matches_step(0);
  flat_matches_step(1);
  NN_LEAK_CHECK();
}
