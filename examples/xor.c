/* XOR with a small SELU network, using only the C core (no Lua):
 * Linear(2,16) - SELU - Linear(16,16) - SELU - Linear(16,2), LeCun normal
 * init, cross entropy, Adam. Prints the loss every 100 steps and the final
 * loss and predictions; exits 1 if the loss did not fall below 0.01.
 *   make examples && build/examples/xor */
#include <stdio.h>

#include "selut.h"

#define CHECK(call)                                              \
  do {                                                           \
    if ((call) != SL_OK) {                                       \
      fprintf(stderr, "xor: %s\n", sl_last_error());             \
      goto done;                                                 \
    }                                                            \
  } while (0)

int main(void) {
  static const float xs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  static const float ys[4] = {0, 1, 1, 0};
  int status = 1;
  sl_rng rng;
  sl_rng_seed(&rng, 42);

  int64_t xshape[2] = {4, 2}, n = 4;
  sl_tensor *x = sl_tensor_from_array(2, xshape, &xs[0][0]);
  sl_tensor *labels = sl_tensor_from_array(1, &n, ys);
  sl_tensor *gy = sl_tensor_zeros(2, xshape); /* logits are 4 x 2 too */
  sl_module *net = sl_sequential_new();
  sl_optim *opt = NULL;
  if (!x || !labels || !gy || !net) {
    fprintf(stderr, "xor: %s\n", sl_last_error());
    goto done;
  }
  sl_module *layers[] = {sl_linear_new(2, 16, true, NULL), sl_selu_new(), sl_linear_new(16, 16, true, NULL),
                         sl_selu_new(), sl_linear_new(16, 2, true, NULL)};
  for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
    int st = layers[i] ? sl_sequential_add(net, layers[i]) : sl_last_status();
    sl_module_release(layers[i]);
    CHECK(st);
  }
  CHECK(sl_init_lecun_normal(net, &rng));

  sl_tensor *params[SL_MAX_PARAMS * 3], *grads[SL_MAX_PARAMS * 3];
  int np = 0;
  for (int i = 0; i < net->nchildren; i++)
    for (int k = 0; k < net->children[i]->nparams; k++) {
      params[np] = net->children[i]->params[k];
      grads[np++] = net->children[i]->grads[k];
    }
  sl_adam_opts ao = sl_adam_defaults();
  ao.lr = 0.01;
  opt = sl_adam_new(params, grads, np, ao);
  if (!opt) {
    fprintf(stderr, "xor: %s\n", sl_last_error());
    goto done;
  }

  double loss = 0.0;
  int step;
  for (step = 1; step <= 2000; step++) {
    const sl_tensor *logits;
    sl_optim_zero_grad(opt);
    CHECK(sl_module_forward(net, x, &logits));
    CHECK(sl_cross_entropy_forward(logits, labels, &loss));
    CHECK(sl_cross_entropy_backward(gy, logits, labels));
    CHECK(sl_module_backward(net, x, gy, NULL));
    CHECK(sl_optim_step(opt));
    if (step % 100 == 0) printf("step %4d  loss %.6f\n", step, loss);
    if (loss < 0.001) break;
  }
  const sl_tensor *logits;
  CHECK(sl_module_forward(net, x, &logits));
  CHECK(sl_cross_entropy_forward(logits, labels, &loss));
  for (int i = 0; i < 4; i++)
    printf("%g xor %g -> %d\n", (double)xs[i][0], (double)xs[i][1],
           logits->data[2 * i + 1] > logits->data[2 * i] ? 1 : 0);
  printf("final loss %.6f after %d steps\n", loss, step > 2000 ? 2000 : step);
  status = loss < 0.01 ? 0 : 1;

done:
  sl_optim_free(opt);
  sl_module_release(net);
  sl_tensor_release(x);
  sl_tensor_release(labels);
  sl_tensor_release(gy);
  return status;
}
