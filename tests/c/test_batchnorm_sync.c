/* Synchronized BatchNorm1d statistics (sl_batchnorm_set_reducer) without
 * MPI: a reducer that doubles every sum stands for a second process holding
 * the same batch, so the synchronized layer on a batch X must compute what a
 * plain layer computes on [X; X]: the same output, the input gradient of the
 * first half, running statistics with the doubled count, and weight/bias
 * gradients that are its own half of the sums. A failing reducer is a clean
 * error. (Across real processes: tests/mpi/syncbn.lua.) */
#include "../../core/nn/batchnorm.h"
#include "test_nn_util.h"

static int calls;
static int twice(void *ctx, double *buf, int n) {
  (void)ctx;
  calls++;
  for (int i = 0; i < n; i++) buf[i] *= 2.0;
  return SL_OK;
}

static int broken(void *ctx, double *buf, int n) {
  (void)ctx, (void)buf, (void)n;
  return sl_fail(SL_EIO, "reducer: the network is down");
}

Test(batchnorm_sync, a_reducer_gives_the_statistics_of_the_global_batch) {
  sl_rng rng;
  sl_rng_seed(&rng, 3);
  const int64_t n = 6, c = 4;
  sl_tensor *x = nn_randn2(n, c, &rng), *gy = nn_randn2(n, c, &rng);
  for (int64_t i = 0; i < n * c; i++) x->data[i] = x->data[i] * 3.0f + 1.0f; /* mean 1, std 3 */
  sl_tensor *x2 = nn_t2(2 * n, c, NULL), *gy2 = nn_t2(2 * n, c, NULL); /* [X; X] and [G; G] */
  for (int h = 0; h < 2; h++) {
    memcpy(x2->data + h * n * c, x->data, sizeof(float) * (size_t)(n * c));
    memcpy(gy2->data + h * n * c, gy->data, sizeof(float) * (size_t)(n * c));
  }
  sl_module *synced = sl_batchnorm1d_new(c, sl_batchnorm_defaults());
  sl_module *plain = sl_batchnorm1d_new(c, sl_batchnorm_defaults());
  cr_assert_eq(sl_batchnorm_set_reducer(synced, twice, NULL), SL_OK, "%s", sl_last_error());
  for (int step = 0; step < 2; step++) {
    const sl_tensor *y, *y2, *gx, *gx2;
    calls = 0;
    cr_assert_eq(sl_module_forward(synced, x, &y), SL_OK, "%s", sl_last_error());
    cr_assert_eq(calls, 2, "two reductions per forward: counts and sums, then squared deviations");
    cr_assert_eq(sl_module_forward(plain, x2, &y2), SL_OK, "%s", sl_last_error());
    nn_expect_close(y->data, y2->data, n * c, 1e-6, 1e-6, "output = the first half of [X; X]'s");
    cr_assert_eq(sl_module_backward(synced, x, gy, &gx), SL_OK, "%s", sl_last_error());
    cr_assert_eq(calls, 3, "one reduction per backward");
    cr_assert_eq(sl_module_backward(plain, x2, gy2, &gx2), SL_OK, "%s", sl_last_error());
    nn_expect_close(gx->data, gx2->data, n * c, 1e-5, 1e-6, "input gradient = the first half of [X; X]'s");
    for (int k = 0; k < 2; k++) /* weight, bias: half the sums of [X; X], accumulated over the steps */
      for (int64_t j = 0; j < c; j++)
        cr_expect_float_eq(synced->grads[k]->data[j] * 2.0f, plain->grads[k]->data[j], 1e-5f, "grad %d[%lld]", k,
                           (long long)j);
  }
  sl_tensor *rm, *rv, *nb, *rm2, *rv2, *nb2;
  cr_assert_eq(sl_batchnorm_buffers(synced, &rm, &rv, &nb), SL_OK);
  cr_assert_eq(sl_batchnorm_buffers(plain, &rm2, &rv2, &nb2), SL_OK);
  nn_expect_close(rm->data, rm2->data, c, 1e-6, 1e-7, "running mean");
  nn_expect_close(rv->data, rv2->data, c, 1e-6, 1e-7, "running var (unbiased with the global count 2n)");
  cr_assert_eq(nb->data[0], 2.0f);

  /* evaluation mode uses the running statistics: no reduction */
  calls = 0;
  synced->training = false;
  const sl_tensor *y;
  cr_assert_eq(sl_module_forward(synced, x, &y), SL_OK);
  cr_assert_eq(calls, 0);
  synced->training = true;

  /* a reducer error fails the forward with its message */
  cr_assert_eq(sl_batchnorm_set_reducer(synced, broken, NULL), SL_OK);
  cr_assert_eq(sl_module_forward(synced, x, &y), SL_EIO);
  cr_assert_str_eq(sl_last_error(), "reducer: the network is down");
  /* one sample per process, two processes: enough values per channel */
  cr_assert_eq(sl_batchnorm_set_reducer(synced, twice, NULL), SL_OK);
  sl_tensor *one = nn_t2(1, c, x->data);
  cr_assert_eq(sl_module_forward(synced, one, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(sl_batchnorm_set_reducer(synced, NULL, NULL), SL_OK);
  cr_assert_eq(sl_module_forward(synced, one, &y), SL_EINVAL, "local again: one value per channel is refused");
  sl_module *relu = sl_relu_new();
  cr_assert_eq(sl_batchnorm_set_reducer(relu, twice, NULL), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "module is a ReLU, not a BatchNorm1d"), "%s", sl_last_error());
  sl_module_release(relu);
  sl_tensor_release(one);
  sl_tensor_release(x);
  sl_tensor_release(gy);
  sl_tensor_release(x2);
  sl_tensor_release(gy2);
  sl_module_release(synced);
  sl_module_release(plain);
  NN_LEAK_CHECK();
}
