/* libFuzzer target: the input is gzip-compressed before sl_idx_read sees it,
 * so the fuzzer explores the IDX parser behind the gzip reader (header,
 * short/long data sections through gzread). The last input byte, when
 * present, picks where to cut the compressed stream (255 = keep it whole),
 * to exercise truncated gzip files too. */
#include <zlib.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0;
  unsigned cut = 255;
  if (size > 0) cut = data[--size];
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  uLong cap = deflateBound(&zs, (uLong)size) + 64;
  uint8_t *gz = malloc(cap);
  if (!gz) abort();
  zs.next_in = (Bytef *)(uintptr_t)data;
  zs.avail_in = (uInt)size;
  zs.next_out = gz;
  zs.avail_out = (uInt)cap;
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (cut != 255) n = n * cut / 255;

  const char *path = fuzz_path("idxgz");
  fuzz_write(path, gz, n);
  free(gz);
  sl_tensor *t = sl_idx_read(path, 1.0 / 255);
  if (t) {
    fuzz_check_tensor(t);
    sl_tensor_release(t);
  } else {
    fuzz_expect_message();
  }
  return 0;
}
