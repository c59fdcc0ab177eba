/* The sampling and creation kernels through the C API (sample.h): results,
 * the error status and message of each refusal, and that a refusal leaves
 * the generator untouched (checks come before the first draw). Distribution
 * tests are in tests/lua/ops_random.lua. */
#include <criterion/criterion.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static void expect_fail(const void *r, int code, const char *text) {
  cr_assert_null(r);
  cr_assert_eq(sl_last_status(), code, "status %d for '%s'", sl_last_status(), sl_last_error());
  cr_assert(strstr(sl_last_error(), text), "message '%s' lacks '%s'", sl_last_error(), text);
}

Test(sample, refusals_draw_nothing) {
  sl_rng r, fresh;
  sl_rng_seed(&r, 5);
  sl_rng_seed(&fresh, 5);
  float w[] = {1, -2, 3};
  sl_tensor *p = sl_tensor_from_array(1, SHAPE(3), w);
  expect_fail(sl_multinomial(p, 1, true, &r), SL_EINVAL, "multinomial: weight -2 at category 2");
  expect_fail(sl_bernoulli(p, &r), SL_EINVAL, "bernoulli: probability -2 at index 2 of [3]");
  expect_fail(sl_randint(2, 2, 1, SHAPE(3), &r), SL_EINVAL, "randint: range [2, 2) is empty");
  expect_fail(sl_randint(-16777217, 0, 1, SHAPE(3), &r), SL_ERANGE, "beyond float32's exact integers");
  expect_fail(sl_randperm(-3, &r), SL_EINVAL, "randperm: n is -3 (expected 0..16777216)");
  expect_fail(sl_linspace(0, 1, -1), SL_EINVAL, "linspace: n is -1");
  expect_fail(sl_eye(2, -5), SL_EINVAL, "eye: m is -5");
  cr_assert_eq(sl_normal_(p, 0, -1, &r), SL_EINVAL);
  cr_assert_eq(sl_uniform_(p, 1, 0, &r), SL_EINVAL);
  cr_assert_eq(memcmp(r.s, fresh.s, sizeof r.s), 0, "a refused call advanced the generator");
  cr_assert_eq(w[0], p->data[0]);
  sl_tensor_release(p);
}

Test(sample, multinomial_rows_and_indices) {
  sl_rng r;
  sl_rng_seed(&r, 9);
  float w[] = {0, 0, 2, 0, /* row 2 */ 1, 1, 1, 1};
  sl_tensor *p = sl_tensor_from_array(2, SHAPE(2, 4), w);
  sl_tensor *x = sl_multinomial(p, 4, true, &r);
  cr_assert_not_null(x, "%s", sl_last_error());
  cr_assert_eq(x->ndim, 2);
  cr_assert_eq(x->shape[1], 4);
  for (int i = 0; i < 4; i++) cr_assert_eq(x->data[i], 3.0f); /* the only positive weight */
  sl_tensor *y = sl_multinomial(p, 1, false, &r);
  cr_assert_eq(y->data[0], 3.0f);
  cr_assert(y->data[1] >= 1.0f && y->data[1] <= 4.0f);
  expect_fail(sl_multinomial(p, 2, false, &r), SL_EINVAL, "row 1 has 1 categories of positive weight");
  sl_tensor_release(x);
  sl_tensor_release(y);
  sl_tensor_release(p);
}

Test(sample, randperm_and_creation) {
  sl_rng r;
  sl_rng_seed(&r, 3);
  sl_tensor *x = sl_randperm(100, &r);
  int seen[101] = {0};
  for (int i = 0; i < 100; i++) seen[(int)x->data[i]]++;
  for (int v = 1; v <= 100; v++) cr_assert_eq(seen[v], 1, "value %d appears %d times", v, seen[v]);
  sl_tensor *e = sl_eye(3, 2);
  const float want[] = {1, 0, 0, 1, 0, 0};
  cr_assert_eq(memcmp(e->data, want, sizeof want), 0);
  sl_tensor *l = sl_linspace(-1, 1, 1);
  cr_assert_eq(l->numel, 1);
  cr_assert_eq(l->data[0], -1.0f);
  sl_tensor *f = sl_full_like(e, 2.5f);
  cr_assert(sl_tensor_same_shape(f, e) && f->data[5] == 2.5f);
  sl_tensor_release(x);
  sl_tensor_release(e);
  sl_tensor_release(l);
  sl_tensor_release(f);
}
