/* sl_tensor_rehome: a tensor's elements move into a slice of another
 * storage, the header (and so every holder) stays the same. */
#include <criterion/criterion.h>
#include <string.h>

#include "selut.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

Test(tensor_rehome, moves_data_into_slice_and_keeps_header) {
  sl_tensor *flat = sl_tensor_zeros(1, SHAPE(10));
  sl_tensor *a = sl_tensor_full(2, SHAPE(2, 2), 3.0f);
  sl_tensor *b = sl_tensor_full(1, SHAPE(3), -1.0f);
  sl_tensor *holder = sl_tensor_retain(a); /* e.g. an optimizer's reference */
  cr_assert_eq(sl_tensor_rehome(a, flat, 1), SL_OK);
  cr_assert_eq(sl_tensor_rehome(b, flat, 5), SL_OK);
  cr_assert(sl_tensor_shares_storage(a, flat) && sl_tensor_shares_storage(b, flat));
  cr_assert_eq(a->data, flat->data + 1);
  cr_assert_eq(holder->data, flat->data + 1, "the same header: every holder sees the new home");
  cr_assert_eq(sl_tensor_storage_refcount(flat), 3);
  const float want[10] = {0, 3, 3, 3, 3, -1, -1, -1, 0, 0};
  cr_assert_arr_eq(flat->data, want, sizeof want);
  a->data[0] = 7.0f; /* writes through the tensor land in the flat buffer */
  cr_assert_eq(flat->data[1], 7.0f);
  cr_assert_eq(sl_tensor_rehome(a, flat, 1), SL_OK, "already there: a no-op");
  cr_assert_eq(flat->data[1], 7.0f);
  sl_tensor_release(flat); /* the slices keep the storage alive */
  cr_assert_eq(b->data[2], -1.0f);
  /* resize of a shared storage moves the tensor out again */
  cr_assert_eq(sl_tensor_resize(b, 1, SHAPE(3)), SL_OK);
  cr_assert(!sl_tensor_shares_storage(a, b));
  sl_tensor_release(holder);
  sl_tensor_release(a);
  sl_tensor_release(b);
}

Test(tensor_rehome, refuses_shared_storage_wrapped_buffers_and_bad_offsets) {
  sl_tensor *flat = sl_tensor_zeros(1, SHAPE(4));
  sl_tensor *a = sl_tensor_full(1, SHAPE(2), 1.0f);
  sl_tensor *v = sl_tensor_reshape(a, 2, SHAPE(1, 2)); /* another view of a's storage */
  cr_assert_eq(sl_tensor_rehome(a, flat, 0), SL_EINVAL);
  cr_assert_str_eq(sl_last_error(), "tensor.rehome: [2] shares its storage with another view, so it cannot move");
  cr_assert(!sl_tensor_shares_storage(a, flat), "a refused move leaves the tensor where it was");
  sl_tensor_release(v);
  cr_assert_eq(sl_tensor_rehome(a, flat, 3), SL_ERANGE);
  cr_assert_str_eq(sl_last_error(), "tensor.rehome: [2] (2 elements) does not fit at offset 3 of [4]");
  cr_assert_eq(sl_tensor_rehome(a, flat, -1), SL_ERANGE);
  cr_assert_eq(sl_tensor_rehome(a, flat, 2), SL_OK);
  float host[2] = {5, 6};
  sl_tensor *w = sl_tensor_wrap(1, SHAPE(2), host, NULL, NULL);
  cr_assert_eq(sl_tensor_rehome(w, flat, 0), SL_EINVAL);
  cr_assert_str_eq(sl_last_error(), "tensor.rehome: [2] wraps a host buffer, so it cannot move");
  cr_assert_eq(w->data, host);
  sl_tensor_release(w);
  sl_tensor_release(a);
  sl_tensor_release(flat);
}
