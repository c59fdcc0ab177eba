/* The broadcasting shape rule and iterator (core/tensor/broadcast.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

Test(broadcast, shape_rule_aligns_on_the_last_dim) {
  int nd;
  int64_t out[SL_MAX_DIMS];
  cr_assert_eq(sl_broadcast_shape("add", 2, SHAPE(4, 1), 1, SHAPE(3), &nd, out), SL_OK);
  cr_assert(nd == 2 && out[0] == 4 && out[1] == 3);
  cr_assert_eq(sl_broadcast_shape("mul", 3, SHAPE(2, 1, 3), 2, SHAPE(4, 1), &nd, out), SL_OK);
  cr_assert(nd == 3 && out[0] == 2 && out[1] == 4 && out[2] == 3);
  cr_assert_eq(sl_broadcast_shape("add", 2, SHAPE(2, 0), 1, SHAPE(1), &nd, out), SL_OK);
  cr_assert(nd == 2 && out[0] == 2 && out[1] == 0);
}

Test(broadcast, mismatch_names_both_shapes_and_the_dim) {
  int nd;
  int64_t out[SL_MAX_DIMS];
  cr_assert_eq(sl_broadcast_shape("add", 2, SHAPE(4, 3), 2, SHAPE(2, 3), &nd, out), SL_ESHAPE);
  cr_assert_str_eq(sl_last_error(), "add: shapes [4 x 3] and [2 x 3] cannot broadcast (dim 1: 4 vs 2)");
  cr_assert_eq(sl_broadcast_shape("sub", 3, SHAPE(5, 4, 3), 1, SHAPE(2), &nd, out), SL_ESHAPE);
  cr_assert_str_eq(sl_last_error(), "sub: shapes [5 x 4 x 3] and [2] cannot broadcast (dim 3: 3 vs 2)");
}

/* Records the runs the iterator hands a kernel (serial: small outputs). */
typedef struct runs {
  int n;
  int64_t len[64], s0[64], s1[64];
} runs;

static void record(const void *ctx, float *y, const float *const *in, const int64_t *s, int64_t n) {
  runs *r = (runs *)ctx;
  if (r->n < 64) r->len[r->n] = n, r->s0[r->n] = s[0], r->s1[r->n] = s[1];
  r->n++;
  for (int64_t i = 0; i < n; i++) y[i] = in[0][i * s[0]] + in[1][i * s[1]];
}

static runs run2(sl_tensor *y, const sl_tensor *a, const sl_tensor *b) {
  runs r = {0};
  const sl_tensor *in[2] = {a, b};
  cr_assert_eq(sl_broadcast_run("test", y, 2, in, record, &r), SL_OK);
  return r;
}

Test(broadcast, iterator_merges_contiguous_dims_into_runs_with_strides_0_or_1) {
  sl_tensor *y = sl_tensor_zeros(3, SHAPE(2, 3, 4)), *a = sl_tensor_zeros(3, SHAPE(2, 3, 4));
  sl_tensor *col = sl_tensor_zeros(3, SHAPE(2, 3, 1)), *row = sl_tensor_zeros(1, SHAPE(4));
  sl_tensor *mid = sl_tensor_zeros(3, SHAPE(2, 1, 4)), *one = sl_tensor_zeros(1, SHAPE(1));
  runs r = run2(y, a, a); /* same shapes: one run over everything */
  cr_assert(r.n == 1 && r.len[0] == 24 && r.s0[0] == 1 && r.s1[0] == 1);
  r = run2(y, a, row); /* a row repeats: runs of 4, both inputs advance */
  cr_assert(r.n == 6 && r.len[0] == 4 && r.s1[0] == 1);
  r = run2(y, a, col); /* a column: the inner run holds it fixed */
  cr_assert(r.n == 6 && r.len[5] == 4 && r.s0[5] == 1 && r.s1[5] == 0);
  r = run2(y, a, mid); /* repeats over the middle dim */
  cr_assert(r.n == 6 && r.s1[0] == 1);
  r = run2(y, one, a); /* a scalar on the left */
  cr_assert(r.n == 1 && r.s0[0] == 0 && r.s1[0] == 1);
  sl_tensor_release(y); sl_tensor_release(a); sl_tensor_release(col); sl_tensor_release(row);
  sl_tensor_release(mid); sl_tensor_release(one);
}

Test(broadcast, column_plus_row_and_size_zero) {
  sl_tensor *col = sl_tensor_from_array(2, SHAPE(4, 1), (const float[]){1, 2, 3, 4});
  sl_tensor *row = sl_tensor_from_array(1, SHAPE(3), (const float[]){10, 20, 30});
  sl_tensor *y = sl_binary_new(SL_ADD, col, row);
  cr_assert(y && y->ndim == 2 && y->shape[0] == 4 && y->shape[1] == 3);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) cr_assert_eq(y->data[i * 3 + j], (float)(i + 1) + (float)(10 * (j + 1)));
  sl_tensor *e = sl_tensor_zeros(3, SHAPE(2, 0, 3)), *z = sl_binary_new(SL_MUL, e, row);
  cr_assert(z && z->numel == 0 && z->ndim == 3 && z->shape[1] == 0);
  sl_tensor_release(col); sl_tensor_release(row); sl_tensor_release(y); sl_tensor_release(e); sl_tensor_release(z);
}

Test(broadcast, thread_split_inside_rows_gives_the_same_bits) {
  /* [3 x 1 x 50000] * [7 x 1]: 1.05e6 outputs, pieces cut inside rows */
  sl_tensor *a = sl_tensor_arange(0, 150000, 1), *b = sl_tensor_arange(1, 8, 1);
  sl_tensor *a3 = sl_tensor_reshape(a, 3, SHAPE(3, 1, 50000)), *b2 = sl_tensor_reshape(b, 2, SHAPE(7, 1));
  sl_set_num_threads(1);
  sl_tensor *y1 = sl_binary_new(SL_MUL, a3, b2);
  sl_set_num_threads(2);
  sl_tensor *y2 = sl_binary_new(SL_MUL, a3, b2);
  sl_set_num_threads(1);
  cr_assert(y1 && y2 && y1->numel == 3 * 7 * 50000);
  cr_assert(memcmp(y1->data, y2->data, (size_t)y1->numel * sizeof(float)) == 0);
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 7; j++)
      for (int64_t k = 0; k < 50000; k += 997)
        cr_assert_eq(y1->data[(i * 7 + j) * 50000 + k], (float)(i * 50000 + k) * (float)(j + 1));
  sl_tensor_release(a); sl_tensor_release(b); sl_tensor_release(a3); sl_tensor_release(b2);
  sl_tensor_release(y1); sl_tensor_release(y2);
}

Test(broadcast, an_output_of_the_wrong_shape_is_refused) {
  sl_tensor *a = sl_tensor_ones(2, SHAPE(2, 3)), *row = sl_tensor_ones(1, SHAPE(3)), *y = sl_tensor_ones(1, SHAPE(3));
  const sl_tensor *in[2] = {row, a};
  runs r = {0};
  cr_assert_eq(sl_broadcast_run("test", y, 2, in, record, &r), SL_ESHAPE);
  cr_assert_str_eq(sl_last_error(), "test: input [2 x 3] does not broadcast to output [3]");
  cr_assert_eq(r.n, 0);
  sl_tensor_release(a); sl_tensor_release(row); sl_tensor_release(y);
}

/* The rows kernel gets blocks of whole rows within one index of the outer
 * dims; pieces of the thread split cut rows and cross outer indices. Every
 * broadcast form of a 3-D shape against a naive loop, at 1 and 2 threads. */
Test(broadcast, row_blocks_across_outer_dims_match_a_naive_loop_at_1_and_2_threads) {
  int64_t d0 = 5, d1 = 301, d2 = 129, n = d0 * d1 * d2; /* 194145 outputs: split over the pool */
  sl_tensor *a = sl_tensor_empty(3, SHAPE(d0, d1, d2));
  for (int64_t i = 0; i < n; i++) a->data[i] = (float)(i % 1000) * 0.5f - 17.0f;
  const int64_t forms[][3] = {{1, d1, 1}, {d0, 1, d2}, {1, 1, d2}, {d0, d1, 1}, {d0, 1, 1}, {1, d1, d2}};
  for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
    sl_tensor *b = sl_tensor_empty(3, forms[f]);
    for (int64_t i = 0; i < b->numel; i++) b->data[i] = (float)(i % 37) * 0.25f + 1.0f;
    for (int t = 1; t <= 2; t++) {
      sl_set_num_threads(t);
      sl_tensor *y = sl_binary_new(SL_MUL, a, b);
      cr_assert(y && y->numel == n);
      for (int64_t i = 0; i < d0; i++)
        for (int64_t j = 0; j < d1; j++)
          for (int64_t k = 0; k < d2; k++) {
            int64_t bi = (forms[f][0] > 1 ? i : 0), bj = (forms[f][1] > 1 ? j : 0), bk = (forms[f][2] > 1 ? k : 0);
            float want = a->data[(i * d1 + j) * d2 + k] * b->data[(bi * forms[f][1] + bj) * forms[f][2] + bk];
            cr_assert_eq(y->data[(i * d1 + j) * d2 + k], want, "form %zu at %d threads: [%lld, %lld, %lld]", f, t,
                         (long long)i, (long long)j, (long long)k);
          }
      sl_tensor_release(y);
    }
    sl_set_num_threads(1);
    sl_tensor_release(b);
  }
  sl_tensor_release(a);
}
