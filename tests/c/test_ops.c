/* Elementwise arithmetic, broadcasting and reductions. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static sl_tensor *mat(int64_t r, int64_t c, const float *v) { return sl_tensor_from_array(2, SHAPE(r, c), v); }

Test(ops, add_sub_mul_div_equal_shapes) {
  float a[] = {1, 2, 3, 4}, b[] = {10, 20, 30, 40};
  sl_tensor *ta = mat(2, 2, a), *tb = mat(2, 2, b), *y = sl_tensor_zeros(2, SHAPE(2, 2));
  cr_assert_eq(sl_add(y, ta, tb), SL_OK);
  cr_assert_eq(y->data[3], 44.0f);
  cr_assert_eq(sl_sub(y, ta, tb), SL_OK);
  cr_assert_eq(y->data[1], -18.0f);
  cr_assert_eq(sl_mul(y, ta, tb), SL_OK);
  cr_assert_eq(y->data[2], 90.0f);
  cr_assert_eq(sl_div(y, tb, ta), SL_OK);
  cr_assert_eq(y->data[3], 10.0f);
  sl_tensor_release(ta); sl_tensor_release(tb); sl_tensor_release(y);
}

Test(ops, in_place_when_output_aliases_input) {
  float a[] = {1, 2, 3}, b[] = {1, 1, 1};
  sl_tensor *ta = sl_tensor_from_array(1, SHAPE(3), a), *tb = sl_tensor_from_array(1, SHAPE(3), b);
  cr_assert_eq(sl_add(ta, ta, tb), SL_OK);
  cr_assert_eq(ta->data[0], 2.0f);
  cr_assert_eq(ta->data[2], 4.0f);
  cr_assert_eq(sl_mul_scalar(ta, ta, 0.5f), SL_OK);
  cr_assert_eq(ta->data[2], 2.0f);
  sl_tensor_release(ta); sl_tensor_release(tb);
}

Test(ops, row_vector_broadcasts_over_rows) {
  float a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30};
  sl_tensor *ta = mat(2, 3, a), *tb = sl_tensor_from_array(1, SHAPE(3), b);
  sl_tensor *y = sl_tensor_zeros(2, SHAPE(2, 3));
  cr_assert_eq(sl_add(y, ta, tb), SL_OK);
  float want[] = {11, 22, 33, 14, 25, 36};
  for (int i = 0; i < 6; i++) cr_assert_eq(y->data[i], want[i]);
  sl_tensor *row = sl_tensor_from_array(2, SHAPE(1, 3), b);
  cr_assert_eq(sl_mul(y, ta, row), SL_OK);
  cr_assert_eq(y->data[5], 180.0f);
  sl_tensor_release(ta); sl_tensor_release(tb); sl_tensor_release(row); sl_tensor_release(y);
}

Test(ops, mismatched_shapes_are_rejected_with_both_shapes) {
  sl_tensor *a = sl_tensor_zeros(2, SHAPE(2, 3)), *b = sl_tensor_zeros(2, SHAPE(3, 2));
  sl_tensor *y = sl_tensor_zeros(2, SHAPE(2, 3));
  cr_assert_eq(sl_add(y, a, b), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "add: shapes [2 x 3] and [3 x 2] cannot broadcast (dim 2: 3 vs 2)"), "%s", sl_last_error());
  sl_tensor *small = sl_tensor_zeros(1, SHAPE(5));
  cr_assert_eq(sl_sub(small, a, a), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "sub: output [5] does not match the broadcast shape [2 x 3]"), "%s", sl_last_error());
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(y); sl_tensor_release(small);
}

Test(ops, scalar_ops_match_float_arithmetic) {
  float a[] = {1, -2, 3.5f, 0};
  sl_tensor *t = sl_tensor_from_array(1, SHAPE(4), a), *y = sl_tensor_zeros(1, SHAPE(4));
  sl_add_scalar(y, t, 0.1f);
  cr_assert_eq(y->data[1], -2.0f + 0.1f);
  sl_sub_scalar(y, t, 0.1f);
  cr_assert_eq(y->data[2], 3.5f - 0.1f);
  sl_div_scalar(y, t, 3.0f);
  cr_assert_eq(y->data[0], 1.0f / 3.0f); /* true division, not a*(1/3) */
  sl_rsub_scalar(y, t, 1.0f);
  cr_assert_eq(y->data[1], 3.0f);
  sl_rdiv_scalar(y, t, 1.0f);
  cr_assert(isinf(y->data[3]));
  sl_neg(y, t);
  cr_assert_eq(y->data[2], -3.5f);
  sl_tensor_release(t); sl_tensor_release(y);
}

Test(ops, axpy_and_fill) {
  sl_tensor *y = sl_tensor_ones(1, SHAPE(3)), *x = sl_tensor_arange(0, 3, 1);
  cr_assert_eq(sl_axpy(y, 2.0f, x), SL_OK);
  cr_assert_eq(y->data[2], 5.0f);
  sl_fill(y, -1.0f);
  cr_assert_eq(y->data[1], -1.0f);
  sl_tensor *z = sl_tensor_zeros(1, SHAPE(4));
  cr_assert_eq(sl_axpy(z, 1.0f, x), SL_ESHAPE);
  sl_tensor_release(y); sl_tensor_release(x); sl_tensor_release(z);
}

Test(ops, sum_mean_var_std_small) {
  float a[] = {1, 2, 3, 4};
  sl_tensor *t = sl_tensor_from_array(1, SHAPE(4), a);
  cr_assert_eq(sl_sum(t), 10.0);
  cr_assert_eq(sl_mean(t), 2.5);
  cr_assert(fabs(sl_var(t) - 5.0 / 3.0) < 1e-15); /* unbiased, torch.var default */
  cr_assert(fabs(sl_std(t) - sqrt(5.0 / 3.0)) < 1e-15);
  sl_tensor_release(t);
}

Test(ops, reductions_of_degenerate_tensors) {
  float a[] = {3};
  sl_tensor *one = sl_tensor_from_array(1, SHAPE(1), a), *empty = sl_tensor_zeros(1, SHAPE(0));
  cr_assert(isnan(sl_var(one))); /* torch.var of one element is nan */
  cr_assert(isnan(sl_mean(empty)));
  float m;
  cr_assert_eq(sl_max(empty, &m), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "max: tensor is empty"));
  sl_tensor_release(one); sl_tensor_release(empty);
}

Test(ops, mean_and_var_stay_accurate_over_1e7_values) {
  /* 1e7 values 1000 + small noise: a float accumulator would lose ~3 digits. */
  int64_t n = 10000000;
  sl_tensor *t = sl_tensor_empty(1, &n);
  double s = 0, ss = 0;
  for (int64_t i = 0; i < n; i++) t->data[i] = 1000.0f + (float)(i % 7) * 0.125f;
  for (int64_t i = 0; i < n; i++) s += (double)t->data[i];
  double mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) ss += ((double)t->data[i] - mean) * ((double)t->data[i] - mean);
  cr_assert(fabs(sl_mean(t) - mean) < 1e-9 * mean, "mean %.12g vs %.12g", sl_mean(t), mean);
  cr_assert(fabs(sl_var(t) - ss / (double)(n - 1)) < 1e-9, "var %.12g vs %.12g", sl_var(t), ss / (double)(n - 1));
  sl_tensor_release(t);
}

Test(ops, min_max_argmax_with_nan_propagation) {
  float a[] = {3, -1, 7, 7, 2};
  sl_tensor *t = sl_tensor_from_array(1, SHAPE(5), a);
  float v;
  int64_t i;
  sl_min(t, &v); cr_assert_eq(v, -1.0f);
  sl_max(t, &v); cr_assert_eq(v, 7.0f);
  sl_argmax(t, &i); cr_assert_eq(i, 2); /* first maximum */
  t->data[3] = NAN;
  sl_max(t, &v); cr_assert(isnan(v));
  sl_min(t, &v); cr_assert(isnan(v));
  sl_argmax(t, &i); cr_assert_eq(i, 3);
  sl_tensor_release(t);
}

Test(ops, sum_and_mean_along_each_dim) {
  sl_tensor *t = sl_tensor_arange(0, 6, 1);
  sl_tensor *m = sl_tensor_reshape(t, 2, SHAPE(2, 3)); /* [[0,1,2],[3,4,5]] */
  sl_tensor *cols = sl_tensor_zeros(1, SHAPE(3)), *rows = sl_tensor_zeros(1, SHAPE(2));
  cr_assert_eq(sl_sum_dim(cols, m, 0), SL_OK);
  cr_assert_eq(cols->data[0], 3.0f); cr_assert_eq(cols->data[2], 7.0f);
  cr_assert_eq(sl_sum_dim(rows, m, 1), SL_OK);
  cr_assert_eq(rows->data[0], 3.0f); cr_assert_eq(rows->data[1], 12.0f);
  cr_assert_eq(sl_mean_dim(rows, m, 1), SL_OK);
  cr_assert_eq(rows->data[1], 4.0f);
  cr_assert_eq(sl_var_dim(cols, m, 0), SL_OK);
  cr_assert_eq(cols->data[1], 4.5f);
  cr_assert_eq(sl_std_dim(cols, m, 0), SL_OK);
  cr_assert_eq(cols->data[1], sqrtf(4.5f));
  sl_tensor_release(cols); sl_tensor_release(rows); sl_tensor_release(m); sl_tensor_release(t);
}

Test(ops, max_min_argmax_along_dim_on_3d) {
  float a[] = {1, 9, 2, 8, 3, 7, /* */ 6, 0, 5, 4, 4, 10};
  sl_tensor *t = sl_tensor_from_array(3, SHAPE(2, 3, 2), a);
  sl_tensor *y = sl_tensor_zeros(2, SHAPE(2, 2));
  cr_assert_eq(sl_max_dim(y, t, 1), SL_OK);
  float want_max[] = {3, 9, 6, 10};
  for (int i = 0; i < 4; i++) cr_assert_eq(y->data[i], want_max[i]);
  cr_assert_eq(sl_min_dim(y, t, 1), SL_OK);
  float want_min[] = {1, 7, 4, 0};
  for (int i = 0; i < 4; i++) cr_assert_eq(y->data[i], want_min[i]);
  cr_assert_eq(sl_argmax_dim(y, t, 1), SL_OK);
  float want_arg[] = {2, 0, 0, 2};
  for (int i = 0; i < 4; i++) cr_assert_eq(y->data[i], want_arg[i]);
  sl_tensor_release(y); sl_tensor_release(t);
}

Test(ops, reduce_dim_errors) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(2, 3)), *y = sl_tensor_zeros(1, SHAPE(2));
  cr_assert_eq(sl_sum_dim(y, t, 2), SL_ERANGE);
  cr_assert(strstr(sl_last_error(), "sum: dimension 3 out of range 1..2 for [2 x 3]"), "%s", sl_last_error());
  cr_assert_eq(sl_sum_dim(y, t, 0), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "sum: output [2] should be [3]"), "%s", sl_last_error());
  int nd; int64_t shape[8];
  cr_assert_eq(sl_reduce_shape(t, 1, &nd, shape), SL_OK);
  cr_assert_eq(nd, 1); cr_assert_eq(shape[0], 2);
  sl_tensor_release(t); sl_tensor_release(y);
}
