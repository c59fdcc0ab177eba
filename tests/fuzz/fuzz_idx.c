/* libFuzzer target: sl_idx_read on arbitrary bytes (plain IDX, or a gzip
 * stream when the input starts with the gzip magic). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("idx");
  fuzz_write(path, data, size);
  sl_tensor *t = sl_idx_read(path, 1.0);
  if (t) {
    fuzz_check_tensor(t);
    sl_tensor_release(t);
  } else {
    fuzz_expect_message();
  }
  return 0;
}
