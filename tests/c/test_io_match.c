/* Loading into existing tensors (sl_safetensors_match, sl_safetensors_copy_into):
 * every mismatch is counted and the first one described before anything is
 * copied; the copy then fills exactly the targets the file names. */
#include "test_io_util.h"

static sl_tensor *filled(int ndim, const int64_t *shape, float v) {
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
  return t;
}

Test(safetensors_match, first_mismatch_and_count_then_copy) {
  char dir[64], p[128];
  io_tmpdir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/m.safetensors", dir);
  sl_tensor *ts[3] = {filled(2, IO_SHAPE(2, 3), 1.0f), filled(1, IO_SHAPE(2), 2.0f), filled(1, IO_SHAPE(1), 0.5f)};
  const char *names[3] = {"w", "b", "n"};
  cr_assert_eq(sl_safetensors_save(p, 3, names, ts, 0, NULL, NULL), SL_OK, "%s", sl_last_error());
  sl_safetensors *st = sl_safetensors_load(p);
  cr_assert_not_null(st, "%s", sl_last_error());

  /* targets: w fits, b has another shape, n must take integers, c is not in the file */
  const char *tn[4] = {"w", "b", "n", "c"};
  sl_tensor *dst[4] = {filled(2, IO_SHAPE(2, 3), 0.0f), filled(1, IO_SHAPE(3), 0.0f), filled(1, IO_SHAPE(1), 0.0f),
                       filled(1, IO_SHAPE(4), 0.0f)};
  const int fmt[4] = {SL_ST_F32, SL_ST_F32, SL_ST_I64 | SL_ST_SCALAR, SL_ST_F32};
  sl_st_mismatch m;
  cr_assert_eq(sl_safetensors_match(st, 4, tn, dst, fmt, 1, &m), 3);
  cr_assert_eq(m.kind, SL_ST_SHAPE);
  cr_assert_eq(m.target, 1);
  cr_assert_str_eq(sl_safetensors_name(st, m.entry), "b");
  cr_assert_eq(sl_safetensors_match(st, 4, tn, dst, fmt, 0, &m), 2, "not strict: a missing name is no mismatch");
  cr_assert_eq(sl_safetensors_match(st, 1, tn + 2, dst + 2, fmt + 2, 0, &m), 1);
  cr_assert_eq(m.kind, SL_ST_NOT_INTEGER);
  cr_assert_eq(m.element, 0);
  cr_assert_eq(sl_safetensors_match(st, 1, tn + 3, dst + 3, NULL, 1, &m), 4, "c missing, w b n extra");
  cr_assert_eq(m.kind, SL_ST_MISSING);
  cr_assert_eq(m.target, 0);
  cr_assert_eq(sl_safetensors_match(st, 1, tn, dst, NULL, 1, &m), 2);
  cr_assert_eq(m.kind, SL_ST_EXTRA);
  cr_assert_str_eq(sl_safetensors_name(st, m.entry), "b");

  /* w alone, not strict: nothing to report, and the copy fills w only */
  cr_assert_eq(sl_safetensors_match(st, 2, (const char *[]){"w", "c"}, (sl_tensor *[]){dst[0], dst[3]}, NULL, 0, &m), 0);
  cr_assert_eq(sl_safetensors_copy_into(st, 2, (const char *[]){"w", "c"}, (sl_tensor *[]){dst[0], dst[3]}), SL_OK);
  for (int i = 0; i < 6; i++) cr_assert_eq(dst[0]->data[i], 1.0f);
  for (int i = 0; i < 4; i++) cr_assert_eq(dst[3]->data[i], 0.0f);

  sl_safetensors_free(st);
  for (int i = 0; i < 3; i++) sl_tensor_release(ts[i]);
  for (int i = 0; i < 4; i++) sl_tensor_release(dst[i]);
  io_rmdir(dir);
  IO_LEAK_CHECK();
}
