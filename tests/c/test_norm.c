/* LayerNorm, GroupNorm, BatchNorm2d and Embedding against PyTorch
 * (tests/ref/layer_refs.h from tests/ref/gen_layer_refs.py), gradient checks,
 * padding_idx, and the bad-input messages. */
#include "../ref/layer_refs.h"
#include "test_nn_util.h"

static double max_abs(const float *v, int64_t n) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
  return m;
}

/* 1e-5 relative, plus 1e-6 of the array's largest magnitude (sums of mixed signs) */
static void expect_ref(const float *got, const float *want, int64_t n, const char *what) {
  nn_expect_close(got, want, n, 1e-5, 1e-6 * max_abs(want, n), what);
}

static sl_module *norm_of(const layer_ref_norm *r) {
  int64_t shape[4] = {r->shape[0], r->shape[1], r->shape[2], r->shape[3]};
  sl_module *m;
  if (r->kind == 0) {
    m = sl_layernorm_new(r->param, shape + r->ndim - r->param, 1e-5, r->affine);
  } else if (r->kind == 1) {
    m = sl_groupnorm_new(r->param, shape[1], 1e-5, r->affine);
  } else {
    sl_batchnorm_opts o = sl_batchnorm_defaults();
    o.affine = r->affine;
    m = sl_batchnorm2d_new(shape[1], o);
  }
  cr_assert_not_null(m, "%s", sl_last_error());
  if (r->affine) {
    memcpy(m->params[0]->data, r->wt, (size_t)m->params[0]->numel * sizeof(float));
    memcpy(m->params[1]->data, r->b, (size_t)m->params[1]->numel * sizeof(float));
  }
  return m;
}

Test(norm, layernorm_groupnorm_batchnorm2d_match_pytorch) {
  static const char *const kinds[] = {"LayerNorm", "GroupNorm", "BatchNorm2d"};
  for (int c = 0; c < LAYER_REF_COUNT(layer_ref_norms); c++) {
    const layer_ref_norm *r = &layer_ref_norms[c];
    char what[96];
    sl_module *m = norm_of(r);
    cr_assert_str_eq(sl_module_type(m), kinds[r->kind]);
    int64_t shape[4] = {r->shape[0], r->shape[1], r->shape[2], r->shape[3]};
    sl_tensor *x = sl_tensor_from_array(r->ndim, shape, r->x), *gy = sl_tensor_from_array(r->ndim, shape, r->gy);
    sl_tensor *rm = NULL, *rv = NULL, *nbt = NULL;
    if (r->kind == 2) {
      cr_assert_eq(sl_batchnorm_buffers(m, &rm, &rv, &nbt), SL_OK);
      if (!r->param) { /* evaluation with given running statistics */
        memcpy(rm->data, r->rm, (size_t)rm->numel * sizeof(float));
        memcpy(rv->data, r->rv, (size_t)rv->numel * sizeof(float));
        sl_module_train(m, false);
      }
    }
    const sl_tensor *y, *gx;
    cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "case %d: %s", c, sl_last_error());
    snprintf(what, sizeof what, "%s case %d y", kinds[r->kind], c);
    expect_ref(y->data, r->y, y->numel, what);
    if (r->kind == 2 && r->param) {
      snprintf(what, sizeof what, "%s case %d running_mean", kinds[r->kind], c);
      expect_ref(rm->data, r->rm, rm->numel, what);
      snprintf(what, sizeof what, "%s case %d running_var", kinds[r->kind], c);
      expect_ref(rv->data, r->rv, rv->numel, what);
    }
    cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK, "case %d: %s", c, sl_last_error());
    snprintf(what, sizeof what, "%s case %d gx", kinds[r->kind], c);
    expect_ref(gx->data, r->gx, gx->numel, what);
    if (r->affine) {
      snprintf(what, sizeof what, "%s case %d gw", kinds[r->kind], c);
      expect_ref(m->grads[0]->data, r->gw, m->grads[0]->numel, what);
      snprintf(what, sizeof what, "%s case %d gb", kinds[r->kind], c);
      expect_ref(m->grads[1]->data, r->gb, m->grads[1]->numel, what);
    }
    sl_tensor_release(x);
    sl_tensor_release(gy);
    sl_module_release(m);
  }
  NN_LEAK_CHECK();
}

Test(norm, embedding_matches_pytorch_with_padding_idx_and_repeated_indices) {
  for (int c = 0; c < LAYER_REF_COUNT(layer_ref_embs); c++) {
    const layer_ref_emb *r = &layer_ref_embs[c];
    char what[96];
    sl_module *m = sl_embedding_new(r->num, r->dim, r->pad < 0 ? SL_EMBEDDING_NO_PADDING : r->pad, 0, NULL);
    cr_assert_not_null(m, "%s", sl_last_error());
    memcpy(m->params[0]->data, r->wt, (size_t)m->params[0]->numel * sizeof(float));
    int64_t n = r->nidx;
    sl_tensor *x = sl_tensor_from_array(1, &n, r->idx);
    const sl_tensor *y, *gx;
    cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "%s", sl_last_error());
    cr_assert(y->ndim == 2 && y->shape[0] == n && y->shape[1] == r->dim);
    snprintf(what, sizeof what, "Embedding case %d y", c);
    expect_ref(y->data, r->y, y->numel, what);
    sl_tensor *gy = sl_tensor_from_array(2, y->shape, r->gy);
    cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK, "%s", sl_last_error());
    snprintf(what, sizeof what, "Embedding case %d gw", c);
    expect_ref(m->grads[0]->data, r->gw, m->grads[0]->numel, what);
    for (int64_t i = 0; i < gx->numel; i++) cr_assert_eq(gx->data[i], 0.0f);
    sl_tensor_release(gy);
    sl_tensor_release(x);
    sl_module_release(m);
  }
  NN_LEAK_CHECK();
}

Test(norm, padding_row_starts_at_zero_and_indices_are_one_based_for_lua) {
  sl_rng r;
  sl_rng_seed(&r, 4);
  sl_module *m = sl_embedding_new(6, 3, 2, 1, &r); /* 1-based: row 2 */
  cr_assert_not_null(m);
  for (int j = 0; j < 3; j++) cr_assert_eq(m->params[0]->data[3 + j], 0.0f);
  sl_tensor *x = sl_tensor_from_array(1, (const int64_t[]){3}, (const float[]){1, 6, 2});
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_arr_eq(y->data, m->params[0]->data, 3 * sizeof(float));
  cr_assert_arr_eq(y->data + 3, m->params[0]->data + 15, 3 * sizeof(float));
  sl_tensor *bad = sl_tensor_from_array(1, (const int64_t[]){2}, (const float[]){1, 0});
  cr_assert_eq(sl_module_forward(m, bad, &y), SL_ERANGE);
  cr_assert(strstr(sl_last_error(), "Embedding.forward: index 0 at position 2 is out of range 1..6"), "%s",
            sl_last_error());
  sl_tensor_release(bad);
  sl_tensor_release(x);
  sl_module_release(m);
  NN_LEAK_CHECK();
}

Test(norm, gradcheck_layernorm_groupnorm_batchnorm2d) {
  sl_rng r;
  sl_rng_seed(&r, 9);
  sl_batchnorm_opts o = sl_batchnorm_defaults();
  sl_module *ms[] = {sl_layernorm_new(2, (const int64_t[]){3, 4}, 1e-5, true), sl_groupnorm_new(2, 4, 1e-5, true),
                     sl_batchnorm2d_new(4, o)};
  sl_tensor *x = sl_tensor_randn(4, (const int64_t[]){2, 4, 3, 4}, &r);
  for (int i = 0; i < 3; i++) {
    cr_assert_not_null(ms[i], "%s", sl_last_error());
    for (int k = 0; k < ms[i]->nparams; k++) /* away from the trivial ones / zeros */
      for (int64_t j = 0; j < ms[i]->params[k]->numel; j++) ms[i]->params[k]->data[j] += 0.3f * (float)sl_rng_normal(&r);
    nn_gradcheck(ms[i], x, NULL, sl_module_type(ms[i]));
    sl_module_release(ms[i]);
  }
  sl_tensor_release(x);
  NN_LEAK_CHECK();
}

static void expect_error(const char *want) {
  cr_expect(strstr(sl_last_error(), want) != NULL, "message\n  %s\ndoes not contain\n  %s", sl_last_error(), want);
}

Test(norm, bad_arguments_and_inputs_name_layer_argument_and_shapes) {
  cr_assert_null(sl_groupnorm_new(4, 6, 1e-5, true));
  expect_error("GroupNorm: num_groups 4 must divide num_channels 6");
  cr_assert_null(sl_layernorm_new(1, (const int64_t[]){0}, 1e-5, true));
  expect_error("LayerNorm: normalized_shape[1] must be >= 1, got 0");
  cr_assert_null(sl_embedding_new(10, 3, 11, 1, NULL));
  expect_error("Embedding: padding_idx 11 out of range 1..10 (or -10..-1)");
  cr_assert_null(sl_embedding_new(10, 3, -11, 1, NULL));
  expect_error("Embedding: padding_idx -11 out of range 1..10 (or -10..-1)");
  sl_module *ln = sl_layernorm_new(1, (const int64_t[]){5}, 1e-5, true), *gn = sl_groupnorm_new(2, 4, 1e-5, false);
  sl_module *bn = sl_batchnorm2d_new(3, sl_batchnorm_defaults()), *em = sl_embedding_new(4, 2, SL_EMBEDDING_NO_PADDING, 1, NULL);
  sl_tensor *x = sl_tensor_zeros(3, (const int64_t[]){2, 3, 4});
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(ln, x, &y), SL_ESHAPE);
  expect_error("LayerNorm.forward: input [2 x 3 x 4] does not end with normalized_shape [5]");
  cr_assert_eq(sl_module_forward(gn, x, &y), SL_ESHAPE);
  expect_error("GroupNorm.forward: expected input of shape [N x 4 x *], got [2 x 3 x 4]");
  cr_assert_eq(sl_module_forward(bn, x, &y), SL_ESHAPE);
  expect_error("BatchNorm2d.forward: expected input of shape [N x 3 x H x W], got [2 x 3 x 4]");
  sl_tensor *one = sl_tensor_zeros(4, (const int64_t[]){1, 3, 1, 1});
  cr_assert_eq(sl_module_forward(bn, one, &y), SL_EINVAL);
  expect_error("BatchNorm2d.forward: expected more than 1 value per channel when training, got input of shape "
               "[1 x 3 x 1 x 1]");
  sl_tensor *frac = sl_tensor_from_array(1, (const int64_t[]){2}, (const float[]){1, 2.5f});
  cr_assert_eq(sl_module_forward(em, frac, &y), SL_ERANGE);
  expect_error("Embedding.forward: index 2.5 at position 2 is not an integer in the range 1..4");
  sl_tensor_release(frac);
  sl_tensor_release(one);
  sl_tensor_release(x);
  sl_module_release(ln);
  sl_module_release(gn);
  sl_module_release(bn);
  sl_module_release(em);
  NN_LEAK_CHECK();
}
