/* libFuzzer target: sl_csv_read. The first input byte picks the options
 * (header mode, delimiter, label column), the rest is the file. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t o = data[0];
  sl_csv_options opt = sl_csv_defaults();
  opt.header = (int)(o & 3) % 3 - 1;                 /* -1 auto, 0, 1 */
  static const char delims[4] = {0, ',', ';', '\t'};
  opt.delimiter = delims[(o >> 2) & 3];
  switch ((o >> 4) & 3) {
    case 0: opt.label_index = -1; break;
    case 1: opt.label_index = 0; break;
    case 2: opt.label_index = (o >> 6); break;
    default: opt.label = (o & 0x40) ? "label" : "y"; break;
  }
  const char *path = fuzz_path("csv");
  fuzz_write(path, data + 1, size - 1);
  sl_tensor *x = NULL, *y = NULL;
  char **names = NULL;
  int64_t ncols = -1;
  int st = sl_csv_read(path, &opt, &x, &y, &names, &ncols);
  if (st != SL_OK) {
    fuzz_expect_message();
    if (x || y || names) abort(); /* "on failure nothing is returned" */
    return 0;
  }
  fuzz_check_tensor(x);
  if (y) {
    fuzz_check_tensor(y);
    if (y->shape[0] != x->shape[0]) abort();
  }
  if (names) {
    if (x->ndim != 2 || ncols != x->shape[1]) abort();
    for (int64_t i = 0; i < ncols; i++) (void)strlen(names[i]);
    sl_csv_free_names(names, ncols);
  }
  sl_tensor_release(x);
  sl_tensor_release(y);
  return 0;
}
