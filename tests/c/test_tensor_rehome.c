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

/* The flags DataParallel's shared-memory step uses: NOCOPY points a tensor at
 * elements another process wrote; DETACH moves one view out of a shared or
 * wrapped storage, leaving the other views where they are. */
Test(tensor_rehome, nocopy_keeps_the_new_home_and_detach_leaves_shared_storage) {
  sl_tensor *flat = sl_tensor_full(1, SHAPE(4), 9.0f);
  sl_tensor *a = sl_tensor_full(1, SHAPE(2), 1.0f);
  cr_assert_eq(sl_tensor_rehome_ex(a, flat, 1, SL_REHOME_NOCOPY), SL_OK);
  const float kept[4] = {9, 9, 9, 9};
  cr_assert_arr_eq(flat->data, kept, sizeof kept, "NOCOPY: the home's values stay");
  cr_assert_eq(a->data, flat->data + 1);
  /* a now shares flat's storage: a plain move out is refused, DETACH is not */
  sl_tensor *priv = sl_tensor_zeros(1, SHAPE(2));
  cr_assert_eq(sl_tensor_rehome(a, priv, 0), SL_EINVAL);
  cr_assert_eq(sl_tensor_rehome_ex(a, priv, 0, SL_REHOME_DETACH), SL_OK);
  cr_assert(sl_tensor_shares_storage(a, priv) && !sl_tensor_shares_storage(a, flat));
  cr_assert_eq(a->data[0], 9.0f, "DETACH copies unless NOCOPY");
  a->data[0] = 2.0f;
  cr_assert_eq(flat->data[1], 9.0f, "the other views no longer see a");
  cr_assert_eq(sl_tensor_storage_refcount(flat), 1);
  /* and out of a wrapped buffer (the shared-memory segment) */
  float host[3] = {4, 5, 6};
  sl_tensor *w = sl_tensor_wrap(1, SHAPE(3), host, NULL, NULL);
  sl_tensor *b = sl_tensor_zeros(1, SHAPE(2));
  cr_assert_eq(sl_tensor_rehome_ex(b, w, 1, SL_REHOME_NOCOPY), SL_OK);
  cr_assert_eq(b->data, host + 1);
  sl_tensor *home = sl_tensor_empty(1, SHAPE(2));
  cr_assert_eq(sl_tensor_rehome_ex(b, home, 0, SL_REHOME_DETACH), SL_OK);
  cr_assert(b->data[0] == 5.0f && b->data[1] == 6.0f && !sl_tensor_owns_storage(w) && sl_tensor_owns_storage(b));
  sl_tensor_release(home);
  sl_tensor_release(w);
  sl_tensor_release(b);
  sl_tensor_release(priv);
  sl_tensor_release(a);
  sl_tensor_release(flat);
}
