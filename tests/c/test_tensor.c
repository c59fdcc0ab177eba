/* Tensor construction, views, refcounts, resize and error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

Test(tensor, zeros_has_shape_and_zero_values) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(3, 4));
  cr_assert_not_null(t);
  cr_assert_eq(t->ndim, 2);
  cr_assert_eq(t->shape[0], 3);
  cr_assert_eq(t->shape[1], 4);
  cr_assert_eq(t->numel, 12);
  for (int i = 0; i < 12; i++) cr_assert_eq(t->data[i], 0.0f);
  sl_tensor_release(t);
}

Test(tensor, ones_and_full_fill_every_element) {
  sl_tensor *a = sl_tensor_ones(3, SHAPE(2, 3, 5));
  sl_tensor *b = sl_tensor_full(1, SHAPE(7), -2.5f);
  cr_assert_eq(a->numel, 30);
  for (int i = 0; i < 30; i++) cr_assert_eq(a->data[i], 1.0f);
  for (int i = 0; i < 7; i++) cr_assert_eq(b->data[i], -2.5f);
  sl_tensor_release(a);
  sl_tensor_release(b);
}

Test(tensor, arange_matches_torch_arange) {
  sl_tensor *t = sl_tensor_arange(0, 5, 1);
  cr_assert_eq(t->numel, 5);
  for (int i = 0; i < 5; i++) cr_assert_eq(t->data[i], (float)i);
  sl_tensor_release(t);
  t = sl_tensor_arange(1, 2, 0.25); /* torch.arange(1, 2, 0.25) = 1, 1.25, 1.5, 1.75 */
  cr_assert_eq(t->numel, 4);
  cr_assert_eq(t->data[3], 1.75f);
  sl_tensor_release(t);
  t = sl_tensor_arange(5, 0, -2); /* 5, 3, 1 */
  cr_assert_eq(t->numel, 3);
  cr_assert_eq(t->data[2], 1.0f);
  sl_tensor_release(t);
}

Test(tensor, arange_rejects_zero_and_wrong_sign_step) {
  cr_assert_null(sl_tensor_arange(0, 5, 0));
  cr_assert(strstr(sl_last_error(), "step must be non-zero"));
  cr_assert_null(sl_tensor_arange(0, 5, -1));
  cr_assert(strstr(sl_last_error(), "wrong sign"));
  cr_assert_null(sl_tensor_arange(0, INFINITY, 1));
  cr_assert(strstr(sl_last_error(), "finite"));
}

Test(tensor, from_array_copies_data) {
  float src[6] = {1, 2, 3, 4, 5, 6};
  sl_tensor *t = sl_tensor_from_array(2, SHAPE(2, 3), src);
  src[0] = 100;
  cr_assert_eq(t->data[0], 1.0f);
  cr_assert_eq(t->data[5], 6.0f);
  sl_tensor_release(t);
}

Test(tensor, shape_errors_name_the_problem) {
  cr_assert_null(sl_tensor_zeros(0, SHAPE(1)));
  cr_assert(strstr(sl_last_error(), "0 dimensions requested, expected 1 to 8"), "%s", sl_last_error());
  cr_assert_null(sl_tensor_zeros(9, SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)));
  cr_assert(strstr(sl_last_error(), "9 dimensions"));
  cr_assert_null(sl_tensor_zeros(2, SHAPE(3, -1)));
  cr_assert(strstr(sl_last_error(), "size -1 of dimension 2 is negative"), "%s", sl_last_error());
  cr_assert_eq(sl_last_status(), SL_ESHAPE);
}

Test(tensor, overflowing_shape_is_an_error_not_a_crash) {
  cr_assert_null(sl_tensor_zeros(3, SHAPE(INT64_MAX / 2, 4, 4)));
  cr_assert_eq(sl_last_status(), SL_ENOMEM);
  cr_assert(strstr(sl_last_error(), "64 bits"), "%s", sl_last_error());
  cr_assert_null(sl_tensor_zeros(2, SHAPE((int64_t)1 << 40, (int64_t)1 << 22)));
  cr_assert_eq(sl_last_status(), SL_ENOMEM);
}

Test(tensor, huge_allocation_fails_cleanly) {
  /* 2^44 floats = 64 TiB: passes the overflow check, fails in malloc */
  sl_tensor *t = sl_tensor_empty(2, SHAPE((int64_t)1 << 22, (int64_t)1 << 22));
  cr_assert_null(t);
  cr_assert_eq(sl_last_status(), SL_ENOMEM);
  cr_assert(strstr(sl_last_error(), "out of memory"), "%s", sl_last_error());
}

Test(tensor, zero_sized_dimension_is_allowed) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(0, 5));
  cr_assert_not_null(t);
  cr_assert_eq(t->numel, 0);
  cr_assert_eq(sl_sum(t), 0.0);
  sl_tensor_release(t);
}

Test(tensor, shape_str_formats_like_torch) {
  char buf[64];
  sl_tensor *t = sl_tensor_zeros(3, SHAPE(128, 1, 784));
  cr_assert_str_eq(sl_shape_str(t, buf, sizeof buf), "[128 x 1 x 784]");
  cr_assert_str_eq(sl_shape_str(t, buf, 6), "[128 ");
  sl_tensor_release(t);
}

Test(tensor, reshape_shares_storage_and_infers_minus_one) {
  sl_tensor *t = sl_tensor_arange(0, 12, 1);
  sl_tensor *r = sl_tensor_reshape(t, 2, SHAPE(3, -1));
  cr_assert_not_null(r);
  cr_assert_eq(r->shape[1], 4);
  cr_assert(sl_tensor_shares_storage(t, r));
  cr_assert_eq(sl_tensor_storage_refcount(t), 2);
  r->data[5] = 42;
  cr_assert_eq(t->data[5], 42.0f);
  sl_tensor_release(r);
  cr_assert_eq(sl_tensor_storage_refcount(t), 1);
  sl_tensor_release(t);
}

Test(tensor, reshape_rejects_wrong_element_count) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(3, 4));
  cr_assert_null(sl_tensor_reshape(t, 2, SHAPE(5, 2)));
  cr_assert(strstr(sl_last_error(), "reshape: shape [5 x 2] (10 elements) does not match [3 x 4] (12 elements)"),
            "%s", sl_last_error());
  cr_assert_null(sl_tensor_reshape(t, 2, SHAPE(-1, -1)));
  cr_assert(strstr(sl_last_error(), "only one dimension"));
  cr_assert_null(sl_tensor_reshape(t, 2, SHAPE(5, -1)));
  cr_assert(strstr(sl_last_error(), "cannot infer"));
  sl_tensor_release(t);
}

Test(tensor, view_outlives_its_parent) {
  sl_tensor *t = sl_tensor_arange(0, 6, 1);
  sl_tensor *r = sl_tensor_reshape(t, 2, SHAPE(2, 3));
  sl_tensor_release(t); /* storage stays alive through the view */
  cr_assert_eq(r->data[4], 4.0f);
  cr_assert_eq(sl_tensor_storage_refcount(r), 1);
  sl_tensor_release(r);
}

Test(tensor, narrow_dim0_is_a_view) {
  sl_tensor *t = sl_tensor_arange(0, 20, 1);
  sl_tensor *m = sl_tensor_reshape(t, 2, SHAPE(5, 4));
  sl_tensor *n = sl_tensor_narrow(m, 0, 1, 2);
  cr_assert_eq(n->shape[0], 2);
  cr_assert_eq(n->shape[1], 4);
  cr_assert_eq(n->data[0], 4.0f);
  cr_assert(sl_tensor_shares_storage(n, t));
  n->data[0] = -1;
  cr_assert_eq(t->data[4], -1.0f);
  sl_tensor_release(n);
  sl_tensor_release(m);
  sl_tensor_release(t);
}

Test(tensor, narrow_inner_dim_copies_the_columns) {
  sl_tensor *t = sl_tensor_arange(0, 12, 1);
  sl_tensor *m = sl_tensor_reshape(t, 2, SHAPE(3, 4));
  sl_tensor *n = sl_tensor_narrow(m, 1, 1, 2);
  cr_assert_eq(n->shape[0], 3);
  cr_assert_eq(n->shape[1], 2);
  float want[6] = {1, 2, 5, 6, 9, 10};
  for (int i = 0; i < 6; i++) cr_assert_eq(n->data[i], want[i]);
  cr_assert_not(sl_tensor_shares_storage(n, t));
  sl_tensor_release(n);
  sl_tensor_release(m);
  sl_tensor_release(t);
}

Test(tensor, narrow_out_of_range_is_an_error) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(8, 2));
  cr_assert_null(sl_tensor_narrow(t, 0, 9, 1));
  cr_assert(strstr(sl_last_error(), "start 10 out of range 1..8"), "%s", sl_last_error());
  cr_assert_null(sl_tensor_narrow(t, 0, 6, 3));
  cr_assert(strstr(sl_last_error(), "length 3"), "%s", sl_last_error());
  cr_assert_null(sl_tensor_narrow(t, 2, 0, 1));
  cr_assert(strstr(sl_last_error(), "dimension 3 out of range"), "%s", sl_last_error());
  sl_tensor_release(t);
}

Test(tensor, select_returns_row_view) {
  sl_tensor *t = sl_tensor_arange(0, 24, 1);
  sl_tensor *m = sl_tensor_reshape(t, 3, SHAPE(2, 3, 4));
  sl_tensor *row = sl_tensor_select(m, 1);
  cr_assert_eq(row->ndim, 2);
  cr_assert_eq(row->shape[0], 3);
  cr_assert_eq(row->data[0], 12.0f);
  cr_assert(sl_tensor_shares_storage(row, t));
  cr_assert_null(sl_tensor_select(m, 2));
  cr_assert(strstr(sl_last_error(), "index 3 out of range 1..2"), "%s", sl_last_error());
  cr_assert_null(sl_tensor_select(t, 0));
  sl_tensor_release(row);
  sl_tensor_release(m);
  sl_tensor_release(t);
}

Test(tensor, clone_is_independent) {
  sl_tensor *t = sl_tensor_arange(0, 4, 1);
  sl_tensor *c = sl_tensor_clone(t);
  c->data[0] = 9;
  cr_assert_eq(t->data[0], 0.0f);
  cr_assert_not(sl_tensor_shares_storage(t, c));
  sl_tensor_release(c);
  sl_tensor_release(t);
}

Test(tensor, copy_requires_equal_numel) {
  sl_tensor *a = sl_tensor_arange(0, 6, 1);
  sl_tensor *b = sl_tensor_zeros(2, SHAPE(2, 3));
  sl_tensor *c = sl_tensor_zeros(1, SHAPE(5));
  cr_assert_eq(sl_tensor_copy(b, a), SL_OK);
  cr_assert_eq(b->data[5], 5.0f);
  cr_assert_eq(sl_tensor_copy(c, a), SL_ESHAPE);
  cr_assert(strstr(sl_last_error(), "copy: source [6] has 6 elements, destination [5] has 5"), "%s", sl_last_error());
  sl_tensor_release(a);
  sl_tensor_release(b);
  sl_tensor_release(c);
}

Test(tensor, retain_release_counts_references) {
  sl_tensor *t = sl_tensor_zeros(1, SHAPE(3));
  cr_assert_eq(sl_tensor_retain(t), t);
  cr_assert_eq(t->refcount, 2);
  sl_tensor_release(t);
  cr_assert_eq(t->refcount, 1);
  sl_tensor_release(t);
  sl_tensor_release(NULL); /* no-op */
}

Test(tensor, ensure_reuses_buffer_without_allocating) {
  sl_tensor *buf = NULL;
  cr_assert_eq(sl_tensor_ensure(&buf, 2, SHAPE(128, 512)), SL_OK);
  float *data = buf->data;
  uint64_t before = sl_alloc_count();
  for (int i = 0; i < 10; i++) cr_assert_eq(sl_tensor_ensure(&buf, 2, SHAPE(128, 512)), SL_OK);
  cr_assert_eq(sl_tensor_ensure(&buf, 2, SHAPE(64, 512)), SL_OK); /* smaller: same storage */
  cr_assert_eq(sl_alloc_count(), before);
  cr_assert_eq(buf->data, data);
  cr_assert_eq(buf->numel, 64 * 512);
  cr_assert_eq(sl_tensor_ensure(&buf, 2, SHAPE(256, 512)), SL_OK); /* larger: reallocates */
  cr_assert_gt(sl_alloc_count(), before);
  sl_tensor_release(buf);
}

Test(tensor, resize_does_not_clobber_a_shared_view) {
  sl_tensor *t = sl_tensor_full(1, SHAPE(4), 3.0f);
  sl_tensor *v = sl_tensor_reshape(t, 2, SHAPE(2, 2));
  cr_assert_eq(sl_tensor_resize(t, 1, SHAPE(2)), SL_OK);
  cr_assert_not(sl_tensor_shares_storage(t, v));
  t->data[0] = 0;
  cr_assert_eq(v->data[0], 3.0f);
  sl_tensor_release(v);
  sl_tensor_release(t);
}

static int released;
static void count_release(void *ctx, float *data) {
  (void)data;
  *(int *)ctx += 1;
}

Test(tensor, wrap_does_not_copy_and_calls_release_once) {
  float host[6] = {1, 2, 3, 4, 5, 6};
  released = 0;
  sl_tensor *t = sl_tensor_wrap(2, SHAPE(2, 3), host, count_release, &released);
  cr_assert_eq(t->data, host);
  sl_tensor *v = sl_tensor_select(t, 1);
  sl_tensor_release(t);
  cr_assert_eq(released, 0);
  v->data[0] = 40;
  cr_assert_eq(host[3], 40.0f);
  sl_tensor_release(v);
  cr_assert_eq(released, 1);
}

Test(tensor, get_and_set_check_bounds) {
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(2, 3));
  float v;
  cr_assert_eq(sl_tensor_set(t, SHAPE(1, 2), 7.0f), SL_OK);
  cr_assert_eq(sl_tensor_get(t, SHAPE(1, 2), &v), SL_OK);
  cr_assert_eq(v, 7.0f);
  cr_assert_eq(t->data[5], 7.0f);
  cr_assert_eq(sl_tensor_get(t, SHAPE(2, 0), &v), SL_ERANGE);
  cr_assert(strstr(sl_last_error(), "index 3 out of range 1..2 for dimension 1"), "%s", sl_last_error());
  sl_tensor_release(t);
}

Test(tensor, memory_limit_makes_allocation_fail_with_limit_error) {
  sl_set_memory_limit(sl_alloc_bytes() + 1024 * 1024);
  sl_tensor *t = sl_tensor_zeros(1, SHAPE(1024 * 1024));
  cr_assert_null(t);
  cr_assert_eq(sl_last_status(), SL_ELIMIT);
  cr_assert(strstr(sl_last_error(), "memory limit exceeded"), "%s", sl_last_error());
  sl_tensor *small = sl_tensor_zeros(1, SHAPE(1024));
  cr_assert_not_null(small);
  sl_tensor_release(small);
  sl_set_memory_limit(0);
}

Test(tensor, alloc_bytes_returns_to_baseline_after_release) {
  size_t base = sl_alloc_bytes();
  sl_tensor *t = sl_tensor_zeros(2, SHAPE(100, 100));
  cr_assert_geq(sl_alloc_bytes(), base + 40000);
  sl_tensor_release(t);
  cr_assert_eq(sl_alloc_bytes(), base);
}

/* A message longer than the error buffer (a long path, say) is cut with
 * "..." at the end, not silently; a short one is kept whole. */
Test(tensor, long_error_messages_are_cut_visibly) {
  char path[3000];
  memset(path, 'p', sizeof path - 1);
  path[sizeof path - 1] = '\0';
  cr_assert_eq(sl_fail(SL_EIO, "cannot open '%s'", path), SL_EIO);
  const char *m = sl_last_error();
  size_t n = strlen(m);
  cr_assert(n > 1000 && n < sizeof path, "message of %zu bytes", n);
  cr_assert_str_eq(m + n - 3, "...");
  cr_assert(strncmp(m, "cannot open 'ppp", 16) == 0);
  sl_fail(SL_EINVAL, "short %d", 7);
  cr_assert_str_eq(sl_last_error(), "short 7");
}
