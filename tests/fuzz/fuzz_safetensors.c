/* libFuzzer target: sl_safetensors_load on arbitrary bytes; a file that
 * loads must give consistent names, tensors and metadata. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("st");
  fuzz_write(path, data, size);
  sl_safetensors *st = sl_safetensors_load(path);
  if (!st) {
    fuzz_expect_message();
    return 0;
  }
  int n = sl_safetensors_count(st);
  if (n < 0) abort();
  for (int i = 0; i < n; i++) {
    const char *name = sl_safetensors_name(st, i);
    sl_tensor *t = sl_safetensors_tensor(st, i);
    if (!name || !t) abort();
    if (sl_safetensors_find(st, name) != i) abort(); /* names are unique */
    fuzz_check_tensor(t);
  }
  if (sl_safetensors_name(st, n) || sl_safetensors_tensor(st, -1)) abort();
  for (int i = 0; i < sl_safetensors_meta_count(st); i++) {
    const char *k = sl_safetensors_meta_key(st, i), *v = sl_safetensors_meta_value(st, i);
    if (!k || !v) abort();
    (void)strlen(k);
    (void)strlen(v);
  }
  sl_safetensors_free(st);
  return 0;
}
