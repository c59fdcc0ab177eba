/* core/autograd/layer.c from C (no Lua): a C host records its layers with
 * sl_ag_layer_call and backpropagates with sl_ag_backward. The parameter
 * gradients are bit-identical to the explicit protocol's, a Linear used twice
 * adds both gradients, a stateful layer called again refuses its stale
 * backward, and nothing leaks. */
#include "test_nn_util.h"

static sl_module *mlp(uint64_t seed, sl_rng *r) {
  sl_rng_seed(r, seed);
  sl_module *seq = sl_sequential_new();
  cr_assert_not_null(seq);
  sl_module *parts[3] = {sl_linear_new(7, 5, true, r), sl_selu_new(), sl_linear_new(5, 3, true, r)};
  for (int i = 0; i < 3; i++) {
    cr_assert_not_null(parts[i], "%s", sl_last_error());
    cr_assert_eq(sl_sequential_add(seq, parts[i]), SL_OK, "%s", sl_last_error());
    sl_module_release(parts[i]);
  }
  return seq;
}

static void same_bits(const sl_tensor *a, const sl_tensor *b, const char *what) {
  cr_assert(sl_tensor_same_shape(a, b), "%s: shapes", what);
  cr_assert_eq(memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)), 0, "%s: bits differ", what);
}

Test(autograd_layer, children_recorded_match_explicit_protocol) {
  sl_rng r;
  sl_module *ex = mlp(3, &r), *ag = mlp(3, &r);
  sl_tensor *x = nn_randn2(4, 7, &r), *gy = nn_randn2(4, 3, &r);
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(ex, x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(sl_module_backward_params(ex, x, gy), SL_OK, "%s", sl_last_error());
  /* the autograd path: each child recorded, the chain through the tape */
  sl_tensor *h = sl_tensor_retain(x);
  for (int i = 0; i < 3; i++) {
    sl_tensor *next = NULL;
    cr_assert(sl_ag_layer_wants_record(ag->children[i], h) || i == 1);
    cr_assert_eq(sl_ag_layer_call(ag->children[i], h, true, &next), SL_OK, "%s", sl_last_error());
    sl_tensor_release(h);
    h = next;
  }
  same_bits(h, y, "output");
  cr_assert_str_eq(sl_ag_grad_fn(h)->name, "LinearBackward");
  cr_assert_eq(sl_ag_backward(h, gy, false), SL_OK, "%s", sl_last_error());
  for (int c = 0; c < 3; c += 2)
    for (int p = 0; p < 2; p++) same_bits(ag->children[c]->grads[p], ex->children[c]->grads[p], "gradient");
  /* the graph is freed: a second backward fails naming the node */
  cr_assert_neq(sl_ag_backward(h, gy, false), SL_OK);
  cr_assert(strstr(sl_last_error(), "LinearBackward") != NULL, "%s", sl_last_error());
  /* .grad bound to the module's gradient */
  cr_assert_eq(sl_ag_layer_bind_grads(ag), SL_OK);
  cr_assert(sl_ag_grad(ag->children[0]->params[0]) == ag->children[0]->grads[0]);
  sl_tensor_release(h);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(ex);
  sl_module_release(ag);
  NN_LEAK_CHECK();
}

Test(autograd_layer, shared_linear_gradients_add) {
  sl_rng r;
  sl_rng_seed(&r, 5);
  sl_module *lin = sl_linear_new(3, 3, true, &r);
  sl_tensor *x = nn_randn2(2, 3, &r);
  cr_assert_eq(sl_ag_set_requires_grad(x, true), SL_OK);
  sl_tensor *h = NULL, *y = NULL;
  cr_assert_eq(sl_ag_layer_call(lin, x, true, &h), SL_OK, "%s", sl_last_error());
  cr_assert_eq(sl_ag_layer_call(lin, h, true, &y), SL_OK, "%s", sl_last_error());
  sl_tensor *g = nn_randn2(2, 3, &r);
  cr_assert_eq(sl_ag_backward(y, g, false), SL_OK, "%s", sl_last_error());
  /* explicit: dW = g^T h + (g W)^T x, db = sum g + sum g W */
  sl_module *ref = sl_linear_new(3, 3, true, NULL);
  cr_assert_eq(sl_tensor_copy(ref->params[0], lin->params[0]), SL_OK);
  cr_assert_eq(sl_tensor_copy(ref->params[1], lin->params[1]), SL_OK);
  const sl_tensor *o, *gh, *gx;
  cr_assert_eq(sl_module_forward(ref, h, &o), SL_OK);
  cr_assert_eq(sl_module_backward(ref, h, g, &gh), SL_OK);
  sl_tensor *gh_copy = sl_tensor_clone(gh);
  cr_assert_eq(sl_module_forward(ref, x, &o), SL_OK);
  cr_assert_eq(sl_module_backward(ref, x, gh_copy, &gx), SL_OK);
  for (int p = 0; p < 2; p++)
    for (int64_t i = 0; i < lin->grads[p]->numel; i++)
      cr_assert_float_eq(lin->grads[p]->data[i], ref->grads[p]->data[i], 1e-6);
  same_bits(sl_ag_grad(x), gx, "input gradient");
  sl_tensor_release(gh_copy);
  sl_tensor_release(g);
  sl_tensor_release(y);
  sl_tensor_release(h);
  sl_tensor_release(x);
  sl_module_release(ref);
  sl_module_release(lin);
  NN_LEAK_CHECK();
}

Test(autograd_layer, stateful_layer_called_again_refuses_stale_backward) {
  sl_rng r;
  sl_rng_seed(&r, 6);
  sl_module *drop = sl_dropout_new(0.5, &r);
  sl_tensor *x = nn_randn2(3, 4, &r), *g = nn_randn2(3, 4, &r);
  cr_assert_eq(sl_ag_set_requires_grad(x, true), SL_OK);
  sl_tensor *a = NULL, *b = NULL;
  cr_assert_eq(sl_ag_layer_call(drop, x, true, &a), SL_OK, "%s", sl_last_error());
  cr_assert_eq(sl_ag_layer_call(drop, x, true, &b), SL_OK, "%s", sl_last_error());
  cr_assert_neq(sl_ag_backward(a, g, false), SL_OK);
  cr_assert(strstr(sl_last_error(), "Dropout ran forward again") != NULL, "%s", sl_last_error());
  cr_assert_eq(sl_ag_backward(b, g, false), SL_OK, "%s", sl_last_error()); /* the latest call is fine */
  /* an in-place activation cannot record */
  sl_module *relu = sl_relu_new();
  cr_assert_eq(sl_activation_set_inplace(relu, true), SL_OK);
  sl_tensor *c = NULL;
  cr_assert_neq(sl_ag_layer_call(relu, x, true, &c), SL_OK);
  cr_assert_null(c);
  cr_assert(strstr(sl_last_error(), "ReLU(inplace=true) cannot be recorded") != NULL, "%s", sl_last_error());
  sl_module_release(relu);
  sl_tensor_release(a);
  sl_tensor_release(b);
  sl_tensor_release(x);
  sl_tensor_release(g);
  sl_module_release(drop);
  NN_LEAK_CHECK();
}
