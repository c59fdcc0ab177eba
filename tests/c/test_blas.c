/* Matrix products against a naive double-precision triple loop. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* c = alpha op(a) op(b) + beta c in double */
static void naive(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  const float *b, float beta, float *c) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) {
        double av = ta ? a[p * m + i] : a[i * k + p];
        double bv = tb ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      c[i * n + j] = (float)((double)alpha * s + (double)beta * (double)c[i * n + j]);
    }
}

struct gemm_case { int64_t m, n, k; bool ta, tb; float alpha, beta; };

ParameterizedTestParameters(blas, gemm_matches_naive_loop) {
  static struct gemm_case cases[] = {
      {1, 1, 1, false, false, 1, 0},   {1, 7, 3, false, false, 1, 0},  {7, 1, 3, true, false, 1, 0},
      {5, 3, 4, false, true, 1, 0},    {5, 3, 4, true, true, 2, 0},    {13, 17, 11, false, false, 1, 1},
      {33, 1, 65, true, false, 0.5f, 1}, {1, 100, 1, false, true, 1, 0.25f}, {64, 48, 96, true, true, 1, 1},
  };
  return cr_make_param_array(struct gemm_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct gemm_case *g, blas, gemm_matches_naive_loop) {
  sl_rng r;
  sl_rng_seed(&r, 7);
  sl_tensor *a = g->ta ? sl_tensor_randn(2, SHAPE(g->k, g->m), &r) : sl_tensor_randn(2, SHAPE(g->m, g->k), &r);
  sl_tensor *b = g->tb ? sl_tensor_randn(2, SHAPE(g->n, g->k), &r) : sl_tensor_randn(2, SHAPE(g->k, g->n), &r);
  sl_tensor *c = sl_tensor_randn(2, SHAPE(g->m, g->n), &r);
  sl_tensor *want = sl_tensor_clone(c);
  naive(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a->data, b->data, g->beta, want->data);
  cr_assert_eq(sl_gemm(c, a, g->ta, b, g->tb, g->alpha, g->beta), SL_OK);
  for (int64_t i = 0; i < c->numel; i++) /* float32 sum of k products: tolerance grows with k */
    cr_assert(fabsf(c->data[i] - want->data[i]) <= 1e-5f * (float)g->k + 1e-5f * fabsf(want->data[i]),
              "element %ld: %g vs %g", (long)i, (double)c->data[i], (double)want->data[i]);
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(c); sl_tensor_release(want);
}

Test(blas, beta_one_accumulates_gradients) {
  float av[] = {1, 2}, bv[] = {3, 4};
  sl_tensor *a = sl_tensor_from_array(2, SHAPE(2, 1), av), *b = sl_tensor_from_array(2, SHAPE(1, 2), bv);
  sl_tensor *c = sl_tensor_ones(2, SHAPE(2, 2));
  sl_gemm(c, a, false, b, false, 1, 1);
  sl_gemm(c, a, false, b, false, 1, 1);
  float want[] = {7, 9, 13, 17};
  for (int i = 0; i < 4; i++) cr_assert_eq(c->data[i], want[i]);
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(c);
}

Test(blas, matmul_shape_error_message) {
  sl_tensor *a = sl_tensor_zeros(2, SHAPE(2, 3)), *b = sl_tensor_zeros(2, SHAPE(4, 5));
  cr_assert_null(sl_matmul(a, b));
  cr_assert(strstr(sl_last_error(), "matmul: shapes [2 x 3] and [4 x 5] cannot be multiplied (3 != 4)"),
            "%s", sl_last_error());
  sl_tensor *c = sl_tensor_zeros(2, SHAPE(2, 5));
  cr_assert_eq(sl_gemm(c, a, false, b, false, 1, 0), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "matmul: shapes 2x3 and 4x5 cannot be multiplied (3 != 4)"), "%s", sl_last_error());
  sl_tensor *c3 = sl_tensor_zeros(3, SHAPE(1, 2, 5));
  cr_assert_eq(sl_gemm(c3, a, false, b, true, 1, 0), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "expected 2-D"), "%s", sl_last_error());
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(c); sl_tensor_release(c3);
}

Test(blas, gemm_wrong_output_shape_and_aliasing) {
  sl_tensor *a = sl_tensor_ones(2, SHAPE(3, 3)), *c = sl_tensor_zeros(2, SHAPE(3, 2));
  cr_assert_eq(sl_gemm(c, a, false, a, false, 1, 0), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "output [3 x 2] should be [3 x 3]"), "%s", sl_last_error());
  cr_assert_eq(sl_gemm(a, a, false, a, false, 1, 0), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "alias"));
  sl_tensor_release(a); sl_tensor_release(c);
}

Test(blas, matmul_vector_cases) {
  float m[] = {1, 2, 3, 4, 5, 6}, v[] = {1, 0, -1};
  sl_tensor *a = sl_tensor_from_array(2, SHAPE(2, 3), m), *x = sl_tensor_from_array(1, SHAPE(3), v);
  sl_tensor *y = sl_matmul(a, x); /* [2] */
  cr_assert_eq(y->ndim, 1); cr_assert_eq(y->shape[0], 2);
  cr_assert_eq(y->data[0], -2.0f); cr_assert_eq(y->data[1], -2.0f);
  sl_tensor *d = sl_matmul(x, x); /* dot product */
  cr_assert_eq(d->numel, 1); cr_assert_eq(d->data[0], 2.0f);
  sl_tensor_release(a); sl_tensor_release(x); sl_tensor_release(y); sl_tensor_release(d);
}

Test(blas, empty_inner_dimension_gives_zeros) {
  sl_tensor *a = sl_tensor_zeros(2, SHAPE(2, 0)), *b = sl_tensor_zeros(2, SHAPE(0, 3));
  sl_tensor *c = sl_matmul(a, b);
  cr_assert_not_null(c);
  cr_assert_eq(c->numel, 6);
  for (int i = 0; i < 6; i++) cr_assert_eq(c->data[i], 0.0f);
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(c);
}
