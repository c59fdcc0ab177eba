/* IDX reader (plain, gzip, every dtype, malformed files) and the
 * Fashion-MNIST loader (miniature fixture, missing files, the real set). */
#include <zlib.h>

#include "test_io_util.h"
#include "../data/io_refs.h"

static sl_tensor *read_fixture(const char *name, double scale) {
  char p[512];
  io_data_path(p, sizeof p, name);
  sl_tensor *t = sl_idx_read(p, scale);
  cr_assert_not_null(t, "%s: %s", name, sl_last_error());
  return t;
}

/* An IDX header: ubyte data, ndim dims. Returns its length. */
static size_t idx_header(unsigned char *h, int dtype, int ndim, const uint32_t *dims) {
  h[0] = 0, h[1] = 0, h[2] = (unsigned char)dtype, h[3] = (unsigned char)ndim;
  for (int i = 0; i < ndim; i++) {
    h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
    h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
    h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
    h[7 + 4 * i] = (unsigned char)dims[i];
  }
  return 4 + 4 * (size_t)ndim;
}

/* Writes header [2 x 3 x 4] of ubyte followed by ndata bytes. */
static void write_u8_file(const char *path, size_t ndata, bool gz) {
  unsigned char b[256];
  size_t h = idx_header(b, 0x08, 3, (const uint32_t[]){2, 3, 4});
  for (size_t i = 0; i < ndata; i++) b[h + i] = (unsigned char)i;
  if (gz) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, b, (unsigned)(h + ndata)), (int)(h + ndata));
    cr_assert_eq(gzclose(f), Z_OK);
  } else {
    io_write(path, b, h + ndata);
  }
}

Test(idx, reads_plain_ubyte_with_shape_and_raw_values) {
  sl_tensor *t = read_fixture("small-u8.idx", 1.0);
  cr_assert_eq(t->ndim, 3);
  cr_assert_eq(t->shape[0], 2);
  cr_assert_eq(t->shape[1], 3);
  cr_assert_eq(t->shape[2], 4);
  for (int i = 0; i < 24; i++) cr_assert_eq(t->data[i], (float)ref_small_u8[i], "element %d", i);
  sl_tensor_release(t);
  IO_LEAK_CHECK();
}

Test(idx, reads_gzip_like_plain_and_scales_like_torchvision) {
  sl_tensor *t = read_fixture("small-u8.idx.gz", 1.0 / 255);
  cr_assert_eq(t->numel, 24);
  /* bit-exact against torch: uint8 tensor .float() / 255 */
  for (int i = 0; i < 24; i++)
    cr_assert_eq(t->data[i], ref_div255[ref_small_u8[i]], "element %d", i);
  sl_tensor_release(t);
  IO_LEAK_CHECK();
}

Test(idx, scale_one_over_255_equals_float_division_for_all_bytes) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/all.idx", dir);
  unsigned char b[8 + 256];
  size_t h = idx_header(b, 0x08, 1, (const uint32_t[]){256});
  for (int i = 0; i < 256; i++) b[h + (size_t)i] = (unsigned char)i;
  io_write(p, b, h + 256);
  sl_tensor *t = sl_idx_read(p, 1.0 / 255);
  cr_assert_not_null(t, "%s", sl_last_error());
  for (int i = 0; i < 256; i++) cr_assert_eq(t->data[i], ref_div255[i], "value %d", i);
  sl_tensor_release(t);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, reads_every_signed_and_float_dtype_big_endian) {
  sl_tensor *t = read_fixture("small-i8.idx", 1.0);
  cr_assert_eq(t->numel, 4);
  cr_assert_eq(t->data[0], -128.0f);
  cr_assert_eq(t->data[1], -1.0f);
  cr_assert_eq(t->data[3], 127.0f);
  sl_tensor_release(t);
  t = read_fixture("small-i16.idx", 1.0);
  cr_assert_eq(t->ndim, 2);
  cr_assert_eq(t->data[0], -32768.0f);
  cr_assert_eq(t->data[1], -2.0f);
  cr_assert_eq(t->data[2], 3.0f);
  cr_assert_eq(t->data[3], 32767.0f);
  sl_tensor_release(t);
  t = read_fixture("small-i32.idx", 0.5);
  cr_assert_eq(t->data[0], -1073741824.0f);
  cr_assert_eq(t->data[1], 2.5f);
  cr_assert_eq(t->data[2], (float)(2147483647.0 * 0.5));
  sl_tensor_release(t);
  t = read_fixture("small-f32.idx", 1.0);
  cr_assert_eq(t->data[0], 1.5f);
  cr_assert_eq(t->data[1], -0.25f);
  sl_tensor_release(t);
  t = read_fixture("small-f64.idx", 1.0);
  cr_assert_eq(t->shape[0], 1);
  cr_assert_eq(t->shape[1], 3);
  cr_assert_eq(t->data[0], 0.1f);
  cr_assert_eq(t->data[1], -2.0f);
  cr_assert(isinf(t->data[2])); /* 1e300 does not fit a float */
  sl_tensor_release(t);
  IO_LEAK_CHECK();
}

Test(idx, truncated_data_names_file_and_both_byte_counts) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  for (int gz = 0; gz < 2; gz++) {
    snprintf(p, sizeof p, "%s/short%s.idx", dir, gz ? ".gz" : "");
    write_u8_file(p, 10, gz);
    cr_assert_null(sl_idx_read(p, 1.0));
    cr_assert_eq(sl_last_status(), SL_EFORMAT);
    IO_ASSERT_ERR(p);
    IO_ASSERT_ERR("truncated");
    IO_ASSERT_ERR("[2 x 3 x 4]");
    IO_ASSERT_ERR("needs 24 data bytes, file has 10");
  }
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, trailing_garbage_is_an_error) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  for (int gz = 0; gz < 2; gz++) {
    snprintf(p, sizeof p, "%s/long%s.idx", dir, gz ? ".gz" : "");
    write_u8_file(p, 29, gz);
    cr_assert_null(sl_idx_read(p, 1.0));
    cr_assert_eq(sl_last_status(), SL_EFORMAT);
    IO_ASSERT_ERR("trailing data");
    IO_ASSERT_ERR("needs 24 data bytes, file has 29");
  }
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, lying_header_fails_without_allocating_its_claimed_size) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/liar.idx", dir);
  unsigned char b[64];
  /* claims 60000 x 28 x 28 images (47 MB), holds 24 bytes */
  size_t h = idx_header(b, 0x08, 3, (const uint32_t[]){60000, 28, 28});
  memset(b + h, 7, 24);
  io_write(p, b, h + 24);
  size_t before = sl_alloc_bytes();
  cr_assert_null(sl_idx_read(p, 1.0));
  cr_assert_eq(sl_alloc_bytes(), before);
  IO_ASSERT_ERR("[60000 x 28 x 28] of ubyte needs 47040000 data bytes, file has 24");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, bad_magic_unknown_dtype_and_bad_ndim_are_rejected) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/bad.idx", dir);
  unsigned char b[64];
  size_t h = idx_header(b, 0x08, 1, (const uint32_t[]){2});
  b[h] = b[h + 1] = 1;
  b[0] = 0x1f; /* not 0x00 0x00 */
  io_write(p, b, h + 2);
  cr_assert_null(sl_idx_read(p, 1.0));
  cr_assert_eq(sl_last_status(), SL_EFORMAT);
  IO_ASSERT_ERR("bad magic 0x1f000801");

  b[0] = 0, b[2] = 0x0A;
  io_write(p, b, h + 2);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("unknown data type 0x0a");

  b[2] = 0x08, b[3] = 0;
  io_write(p, b, 4);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("0 dimensions");
  b[3] = 9;
  io_write(p, b, 4);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("9 dimensions (supported: 1 to 8)");

  b[3] = 3; /* header cut inside the dims */
  io_write(p, b, 8);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("truncated header: 3 dimensions need 16 bytes, file has 8");

  io_write(p, b, 2);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("too short for an IDX header (2 bytes)");
  io_write(p, b, 0);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("(0 bytes)");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, huge_dims_overflow_is_rejected_before_reading) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/huge.idx", dir);
  unsigned char b[64];
  size_t h = idx_header(b, 0x0E, 4, (const uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2});
  io_write(p, b, h);
  cr_assert_null(sl_idx_read(p, 1.0));
  cr_assert_eq(sl_last_status(), SL_EFORMAT);
  IO_ASSERT_ERR("[4294967295 x 4294967295 x 4294967295 x 2] exceeds the 17179869184-byte limit");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, corrupt_gzip_stream_is_a_format_error) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  char src[512];
  io_data_path(src, sizeof src, "small-u8.idx.gz");
  size_t n;
  unsigned char *gz = io_read(src, &n);
  snprintf(p, sizeof p, "%s/cut.idx.gz", dir);
  io_write(p, gz, n - 12); /* cut the deflate stream and the trailer */
  cr_assert_null(sl_idx_read(p, 1.0));
  cr_assert_eq(sl_last_status(), SL_EFORMAT);
  IO_ASSERT_ERR(p);
  gz[n - 5] ^= 0xFF; /* flip a bit of the length trailer: CRC/length check fails */
  io_write(p, gz, n);
  cr_assert_null(sl_idx_read(p, 1.0));
  IO_ASSERT_ERR("corrupt gzip stream");
  free(gz);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(idx, missing_file_is_an_io_error_naming_it) {
  cr_assert_null(sl_idx_read("/nonexistent/x.idx", 1.0));
  cr_assert_eq(sl_last_status(), SL_EIO);
  IO_ASSERT_ERR("cannot open /nonexistent/x.idx");
  IO_LEAK_CHECK();
}

/* ---- Fashion-MNIST ------------------------------------------------------ */

Test(fashion_mnist, loads_miniature_copy_as_rows_in_unit_range) {
  char dir[512];
  io_data_path(dir, sizeof dir, "fashion-mini");
  sl_tensor *x, *y;
  cr_assert_eq(sl_fashion_mnist_load(dir, true, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->ndim, 2);
  cr_assert_eq(x->shape[0], 3);
  cr_assert_eq(x->shape[1], 784);
  cr_assert_eq(y->ndim, 1);
  cr_assert_eq(y->shape[0], 3);
  cr_assert_eq(y->data[0], 9.0f);
  cr_assert_eq(y->data[1], 0.0f);
  cr_assert_eq(y->data[2], 3.0f);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 784; k++)
      cr_assert_eq(x->data[i * 784 + k], ref_div255[(k * 13 + 7 * i) % 256]);
  sl_tensor_release(x);
  sl_tensor_release(y);
  cr_assert_eq(sl_fashion_mnist_load(dir, false, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->shape[0], 2);
  cr_assert_eq(y->data[1], 7.0f);
  sl_tensor_release(x);
  sl_tensor_release(y);
  IO_LEAK_CHECK();
}

Test(fashion_mnist, missing_dataset_says_which_package_to_install) {
  sl_tensor *x = (sl_tensor *)1, *y = (sl_tensor *)1;
  cr_assert_eq(sl_fashion_mnist_load("/nonexistent/fmnist", true, &x, &y), SL_EIO);
  cr_assert_null(x);
  cr_assert_null(y);
  IO_ASSERT_ERR("/nonexistent/fmnist/train-images-idx3-ubyte.gz");
  IO_ASSERT_ERR("install the Debian package dataset-fashion-mnist "
                "(apt-get install dataset-fashion-mnist)");
  IO_LEAK_CHECK();
}

Test(fashion_mnist, rejects_out_of_range_labels_and_count_mismatch) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  unsigned char b[16 + 2 * 784];
  size_t h = idx_header(b, 0x08, 3, (const uint32_t[]){2, 28, 28});
  memset(b + h, 0, 2 * 784);
  snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir); /* uncompressed name works too */
  io_write(p, b, h + 2 * 784);
  h = idx_header(b, 0x08, 1, (const uint32_t[]){2});
  b[h] = 3, b[h + 1] = 10;
  snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
  io_write(p, b, h + 2);
  sl_tensor *x, *y;
  cr_assert_eq(sl_fashion_mnist_load(dir, false, &x, &y), SL_EFORMAT);
  cr_assert_null(x);
  IO_ASSERT_ERR("label 10 at index 1 is outside 0..9");
  h = idx_header(b, 0x08, 1, (const uint32_t[]){3});
  b[h] = b[h + 1] = b[h + 2] = 1;
  io_write(p, b, h + 3);
  cr_assert_eq(sl_fashion_mnist_load(dir, false, &x, &y), SL_EFORMAT);
  IO_ASSERT_ERR("labels have shape [3], expected [2]");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(fashion_mnist, real_dataset_has_documented_shapes_and_labels, .timeout = 120) {
  FILE *f = fopen(SL_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", "rb");
  if (!f) cr_skip_test("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  fclose(f);
  sl_tensor *x, *y;
  cr_assert_eq(sl_fashion_mnist_load(NULL, true, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->shape[0], 60000);
  cr_assert_eq(x->shape[1], 784);
  cr_assert_eq(y->shape[0], 60000);
  int counts[10] = {0};
  for (int i = 0; i < 60000; i++) counts[(int)y->data[i]]++;
  for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 6000, "class %d", c);
  /* torch: labels[:5] = 9 0 0 3 0, x[0].sum() = 299.00787353515625 (float32) */
  cr_assert_eq(y->data[0], 9.0f);
  cr_assert_eq(y->data[3], 3.0f);
  double s0 = 0, s = 0;
  for (int k = 0; k < 784; k++) s0 += (double)x->data[k];
  for (int64_t i = 0; i < x->numel; i++) s += (double)x->data[i];
  cr_assert_float_eq(s0, 299.0078740, 1e-4);
  cr_assert_float_eq(s, 13455349.927203545, 1e-3); /* torch x.double().sum() */
  float mn, mx;
  sl_min(x, &mn);
  sl_max(x, &mx);
  cr_assert_eq(mn, 0.0f);
  cr_assert_eq(mx, 1.0f);
  sl_tensor_release(x);
  sl_tensor_release(y);

  cr_assert_eq(sl_fashion_mnist_load(NULL, false, &x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(x->shape[0], 10000);
  cr_assert_eq(x->shape[1], 784);
  cr_assert_eq(y->shape[0], 10000);
  cr_assert_eq(y->data[0], 9.0f); /* torch: 9 2 1 1 6 */
  cr_assert_eq(y->data[1], 2.0f);
  cr_assert_eq(y->data[4], 6.0f);
  sl_tensor_release(x);
  sl_tensor_release(y);
  IO_LEAK_CHECK();
}

Test(idx, every_truncation_of_a_gzip_file_is_rejected) {
  char src[512], dir[64], p[128];
  io_data_path(src, sizeof src, "small-u8.idx.gz");
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/cut.idx.gz", dir);
  size_t n;
  unsigned char *gz = io_read(src, &n);
  for (size_t len = 0; len < n; len++) {
    io_write(p, gz, len);
    sl_tensor *t = sl_idx_read(p, 1.0);
    cr_assert_null(t, "prefix of %zu bytes accepted", len);
    cr_assert(strstr(sl_last_error(), p) != NULL, "%s", sl_last_error());
  }
  free(gz);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}
