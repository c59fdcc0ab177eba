/* sl_module_backward_params: the first layer of a net needs no input
 * gradient. Parameter gradients must be bit-identical to a full backward,
 * the input-gradient buffer must not even be allocated for a Linear, and a
 * Sequential must skip it for its first child only. */
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

static void run(sl_module *net, const sl_tensor *x, const sl_tensor *gy, bool params_only) {
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(net, x, &y), SL_OK, "%s", sl_last_error());
  int st = params_only ? sl_module_backward_params(net, x, gy) : sl_module_backward(net, x, gy, NULL);
  cr_assert_eq(st, SL_OK, "%s", sl_last_error());
}

Test(nn_backward_params, same_parameter_gradients_no_input_gradient) {
  sl_rng r;
  sl_module *full = mlp(9, &r), *lean = mlp(9, &r);
  sl_tensor *x = nn_randn2(4, 7, &r), *gy = nn_randn2(4, 3, &r);
  for (int step = 0; step < 2; step++) { /* twice: gradients accumulate the same way */
    run(full, x, gy, false);
    run(lean, x, gy, true);
  }
  for (int c = 0; c < 3; c += 2) {
    sl_module *a = full->children[c], *b = lean->children[c];
    for (int p = 0; p < a->nparams; p++)
      cr_assert_eq(memcmp(a->grads[p]->data, b->grads[p]->data, (size_t)a->grads[p]->numel * sizeof(float)), 0,
                   "child %d param %d: gradients differ", c, p);
  }
  cr_assert_not_null(full->children[0]->grad_input, "a full backward computes dL/dx");
  cr_assert_null(lean->children[0]->grad_input, "the first Linear never allocated dL/dx");
  cr_assert_not_null(lean->children[2]->grad_input, "later layers still pass gradients down");
  cr_assert(!lean->skip_grad_input && !lean->children[0]->skip_grad_input, "the flag is reset");
  /* a normal backward afterwards works and computes dL/dx again */
  const sl_tensor *gx = NULL;
  cr_assert_eq(sl_module_backward(lean, x, gy, &gx), SL_OK, "%s", sl_last_error());
  cr_assert_not_null(gx);
  cr_assert_eq(memcmp(gx->data, full->children[0]->grad_input->data, 4 * 7 * sizeof(float)), 0);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(full);
  sl_module_release(lean);
  NN_LEAK_CHECK();
}

Test(nn_backward_params, errors_still_reported) {
  sl_rng r;
  sl_module *net = mlp(1, &r);
  sl_tensor *x = nn_randn2(4, 6, &r), *gy = nn_randn2(4, 3, &r);
  cr_assert_neq(sl_module_backward_params(net, x, gy), SL_OK, "wrong input width must fail");
  cr_assert(!net->skip_grad_input, "the flag is reset after a failure");
  cr_assert_neq(sl_module_backward_params(NULL, x, gy), SL_OK);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_module_release(net);
  NN_LEAK_CHECK();
}
