/*
 * Shared by the fuzz targets: the readers take paths, so each input is
 * written to a per-process scratch file (in /dev/shm when it exists, so no
 * disk I/O) and read back. Also checks that a failure always left a message.
 */
#ifndef SL_FUZZ_UTIL_H
#define SL_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selut.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_scratch[256];
static inline void fuzz_remove_scratch(void) { remove(fuzz_scratch); }

/* Path of this process's scratch file for tag (stable across calls; removed
 * at exit). */
static inline const char *fuzz_path(const char *tag) {
  if (!fuzz_scratch[0]) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/selut-fuzz-%s-%ld", dir, tag, (long)getpid());
    atexit(fuzz_remove_scratch);
  }
  return fuzz_scratch;
}

/* Writes data to path; aborts the fuzzer (a harness bug, not a finding) on failure. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* A failed call must leave a non-empty message: crash otherwise so the
 * fuzzer reports it. */
static inline void fuzz_expect_message(void) {
  if (sl_last_error()[0] == '\0') {
    fprintf(stderr, "fuzz: failure without an error message\n");
    abort();
  }
}

/* Tensor invariants every loader result must satisfy. */
static inline void fuzz_check_tensor(const sl_tensor *t) {
  int64_t n = 1;
  if (t->ndim < 1 || t->ndim > SL_MAX_DIMS) abort();
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0) abort();
    n *= t->shape[i];
  }
  if (n != t->numel) abort();
  volatile float sink = 0; /* touch every element: ASan checks the buffer size */
  for (int64_t i = 0; i < t->numel; i++) sink += t->data[i];
  (void)sink;
}
#endif
