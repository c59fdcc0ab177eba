/* safetensors I64 (PyTorch's int64 buffers, e.g. BatchNorm's
 * num_batches_tracked): the writer's formats (I64, 0-dim scalars), the
 * reader's size and value checks, and the hostile-file guarantees for the
 * new dtype. */
#include "test_io_util.h"

/* 8-byte length + header + raw data bytes */
static void write_raw(const char *path, const char *header, const unsigned char *data, size_t nd) {
  size_t hn = strlen(header);
  unsigned char *b = calloc(1, 8 + hn + nd + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hn >> (8 * i));
  memcpy(b + 8, header, hn);
  if (nd) memcpy(b + 8 + hn, data, nd);
  io_write(path, b, 8 + hn + nd);
  free(b);
}

static void le64(unsigned char *p, int64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)((uint64_t)v >> (8 * i));
}

Test(safetensors_i64, writes_i64_and_scalars_as_pytorch_does) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/i.safetensors", dir);
  sl_tensor *a = sl_tensor_zeros(1, IO_SHAPE(2)), *n = sl_tensor_zeros(1, IO_SHAPE(1));
  a->data[0] = 1.5f;
  a->data[1] = -2.0f;
  n->data[0] = 16777216.0f;
  const char *names[2] = {"a", "n"};
  sl_tensor *ts[2] = {a, n};
  int fmts[2] = {SL_ST_F32, SL_ST_I64 | SL_ST_SCALAR};
  cr_assert_eq(sl_safetensors_save_ex(p, 2, names, ts, fmts, 0, NULL, NULL), SL_OK, "%s", sl_last_error());
  size_t len;
  unsigned char *raw = io_read(p, &len);
  const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
  size_t jl = strlen(json), pad = (8 - jl % 8) % 8;
  cr_assert(memcmp(raw + 8, json, jl) == 0, "header: %.*s", (int)jl, raw + 8);
  cr_assert_eq(len, 8 + jl + pad + 16);
  unsigned char want[8];
  le64(want, 16777216);
  cr_assert(memcmp(raw + len - 8, want, 8) == 0, "int64 little-endian");
  free(raw);
  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());
  cr_assert_eq(sl_safetensors_dtype(st, 0), SL_ST_F32);
  cr_assert_eq(sl_safetensors_dtype(st, 1), SL_ST_I64);
  cr_assert_eq(sl_safetensors_dtype(st, 2), -1);
  cr_assert_eq(sl_safetensors_format(st, 0), SL_ST_F32);
  cr_assert_eq(sl_safetensors_format(st, 1), SL_ST_I64 | SL_ST_SCALAR, "the 0-dim shape is remembered");
  cr_assert_eq(sl_safetensors_format(st, 2), -1);
  sl_tensor *t = sl_safetensors_tensor(st, 1);
  cr_assert_eq(t->ndim, 1); /* a 0-dim tensor loads as [1] */
  cr_assert_eq(t->shape[0], 1);
  cr_assert_eq(t->data[0], 16777216.0f);
  sl_safetensors_free(st);

  /* refused by the writer: non-integers as I64, a scalar with 2 elements,
   * unknown formats; the earlier file stays */
  int bad1[2] = {SL_ST_I64, SL_ST_I64};
  cr_assert_eq(sl_safetensors_save_ex(p, 2, names, ts, bad1, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("tensor \"a\" is stored as I64 but element 1 is 1.5, not an integer");
  int bad2[2] = {SL_ST_F32 | SL_ST_SCALAR, SL_ST_F32};
  cr_assert_eq(sl_safetensors_save_ex(p, 2, names, ts, bad2, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("tensor \"a\" is stored as a 0-dim scalar but has 2 elements");
  int bad3[2] = {7, SL_ST_F32};
  cr_assert_eq(sl_safetensors_save_ex(p, 2, names, ts, bad3, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("unknown format 7");
  a->data[0] = NAN;
  int bad4[2] = {SL_ST_F32, SL_ST_I64};
  ts[1] = a;
  cr_assert_eq(sl_safetensors_save_ex(p, 2, names, ts, bad4, 0, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("not an integer");
  raw = io_read(p, &len);
  cr_assert_eq(len, 8 + jl + pad + 16, "failed saves leave the file");
  free(raw);
  cr_assert_eq(io_count_entries(dir), 1, "no temporary file left");
  sl_tensor_release(a);
  sl_tensor_release(n);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors_i64, values_load_only_when_float32_holds_them_exactly) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/v.safetensors", dir);
  const char *h = "{\"v\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}";
  const int64_t ok[][3] = {{0, -7, 16777216}, {INT64_MIN, 1099511627776, -16777216}};
  for (int c = 0; c < 2; c++) {
    unsigned char d[24];
    for (int i = 0; i < 3; i++) le64(d + 8 * i, ok[c][i]);
    write_raw(p, h, d, 24);
    sl_safetensors *st = sl_safetensors_load(p);
    cr_assert_not_null(st, "case %d: %s", c, sl_last_error());
    for (int i = 0; i < 3; i++) cr_assert_eq((int64_t)sl_safetensors_tensor(st, 0)->data[i], ok[c][i]);
    sl_safetensors_free(st);
  }
  const int64_t bad[] = {16777217, INT64_MAX, -16777217, 9007199254740993};
  const char *msg[] = {"element 2 is 16777217, which float32 cannot represent exactly",
                       "element 2 is 9223372036854775807", "element 2 is -16777217",
                       "element 2 is 9007199254740993"};
  for (int c = 0; c < 4; c++) {
    unsigned char d[24];
    le64(d, 1);
    le64(d + 8, bad[c]);
    le64(d + 16, 2);
    write_raw(p, h, d, 24);
    cr_assert_null(sl_safetensors_load(p), "case %d accepted", c);
    cr_assert_eq(sl_last_status(), SL_EFORMAT);
    IO_ASSERT_ERR(msg[c]);
    IO_ASSERT_ERR("tensor \"v\" (I64)");
  }
  io_rmdir(dir);
  IO_LEAK_CHECK();
}

Test(safetensors_i64, sizes_are_checked_for_eight_byte_elements) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/s.safetensors", dir);
  unsigned char zero[32] = {0};
  /* 2 elements of I64 need 16 bytes, not 8 */
  write_raw(p, "{\"v\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", zero, 8);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("data_offsets [0, 8] span 8 bytes, shape [2] of I64 needs 16");
  /* a shape whose byte size overflows only at 8 bytes per element */
  write_raw(p, "{\"v\":{\"dtype\":\"I64\",\"shape\":[1152921504606846976],\"data_offsets\":[0,8]}}", zero, 8);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("shape too large");
  /* mixed dtypes tile the data section: F32 [2] (8 bytes) then I64 [] (8) */
  write_raw(p, "{\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]},"
               "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zero, 20);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("the data section has 20 bytes but the tensors cover 16");
  write_raw(p, "{\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12]},"
               "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zero, 12);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("overlaps");
  /* other integer dtypes stay refused */
  write_raw(p, "{\"v\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zero, 8);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("has dtype I32; only F32 and I64 are supported");
  /* a truncated I64 payload is an error, not a short read into the tensor */
  write_raw(p, "{\"v\":{\"dtype\":\"I64\",\"shape\":[600],\"data_offsets\":[0,4800]}}", zero, 32);
  cr_assert_null(sl_safetensors_load(p));
  IO_ASSERT_ERR("lie outside");
  io_rmdir(dir);
  IO_LEAK_CHECK();
}
