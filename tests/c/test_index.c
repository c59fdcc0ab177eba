/* Indexing kernels from C: 0-based indices (base 0), messages in that base,
 * nothing written by a failing in-place op, gather_into's leading block. */
#include <criterion/criterion.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

Test(index, base0_gather_and_scatter_add) {
  float x[] = {0, 1, 2, 3, 4, 5}, ix[] = {2, 0, 1, 1};
  sl_tensor *tx = sl_tensor_from_array(2, SHAPE(2, 3), x), *ti = sl_tensor_from_array(2, SHAPE(2, 2), ix);
  sl_tensor *y = sl_gather(tx, 1, ti, 0);
  cr_assert_not_null(y, "%s", sl_last_error());
  cr_assert(y->data[0] == 2 && y->data[1] == 0 && y->data[2] == 4 && y->data[3] == 4);
  sl_tensor *z = sl_tensor_zeros(2, SHAPE(2, 3));
  cr_assert_eq(sl_scatter_add_(z, 1, ti, y, 0), SL_OK);
  cr_assert(z->data[2] == 2 && z->data[0] == 0 && z->data[4] == 8); /* repeated index 1 in row 2 accumulates */
  sl_tensor_release(tx), sl_tensor_release(ti), sl_tensor_release(y), sl_tensor_release(z);
}

Test(index, failing_in_place_writes_nothing_and_names_the_index_in_its_base) {
  float ix[] = {0, 1, 3};
  sl_tensor *y = sl_tensor_zeros(1, SHAPE(3)), *ti = sl_tensor_from_array(1, SHAPE(3), ix);
  sl_tensor *src = sl_tensor_ones(1, SHAPE(3));
  cr_assert_eq(sl_scatter_add_(y, 0, ti, src, 0), SL_ERANGE);
  cr_assert_str_eq(sl_last_error(), "scatter_add: index 3 at position 2 is out of range 0..2 (dimension 1 of [3])");
  for (int i = 0; i < 3; i++) cr_assert_eq(y->data[i], 0.0f);
  cr_assert_null(sl_one_hot(ti, 3, 0));
  cr_assert_str_eq(sl_last_error(), "one_hot: index 3 at position 2 is out of range 0..2 (num_classes 3)");
  sl_tensor *oh = sl_one_hot(ti, -1, 0); /* inferred: 4 classes */
  cr_assert(oh && oh->shape[1] == 4 && oh->data[0] == 1 && oh->data[4 + 1] == 1 && oh->data[8 + 3] == 1);
  sl_tensor_release(y), sl_tensor_release(ti), sl_tensor_release(src), sl_tensor_release(oh);
}

Test(index, gather_into_fills_the_leading_block_only) {
  float x[] = {1, 2, 3, 4}, ix[] = {1, 0};
  sl_tensor *tx = sl_tensor_from_array(2, SHAPE(2, 2), x), *ti = sl_tensor_from_array(2, SHAPE(1, 2), ix);
  sl_tensor *y = sl_tensor_full(2, SHAPE(2, 3), -1);
  cr_assert_eq(sl_gather_into(y, tx, 0, ti, 0), SL_OK);
  float want[] = {3, 2, -1, -1, -1, -1};
  cr_assert_arr_eq(y->data, want, sizeof want);
  sl_tensor_release(tx), sl_tensor_release(ti), sl_tensor_release(y);
}
