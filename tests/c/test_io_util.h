/* Helpers shared by the tests/c/test_io_*.c suites: fixture paths, a
 * per-test temporary directory, whole-file read/write and the in-body leak
 * check (Criterion ignores LSan reports, see STYLE.md). */
#ifndef TEST_IO_UTIL_H
#define TEST_IO_UTIL_H
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selut.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define IO_LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define IO_LEAK_CHECK() ((void)0)
#endif

#define IO_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* tests/data/<name> under $SELUT_ROOT (set by make test) or the cwd. */
static inline void io_data_path(char *out, size_t n, const char *name) {
  const char *root = getenv("SELUT_ROOT");
  snprintf(out, n, "%s/tests/data/%s", root && *root ? root : ".", name);
}

static inline void io_tmpdir(char *out, size_t n) {
  snprintf(out, n, "/tmp/selut-io-XXXXXX");
  cr_assert_not_null(mkdtemp(out), "mkdtemp failed");
}

/* Removes every entry of dir (one level; subdirectories must be empty). */
static inline void io_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  closedir(d);
  rmdir(dir);
}

static inline int io_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static inline void io_write(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  cr_assert_eq(fclose(f), 0);
}

/* Reads a whole file into a malloc'ed buffer (NUL-terminated). */
static inline unsigned char *io_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  b[len] = 0;
  *n = (size_t)len;
  return b;
}

#define IO_ASSERT_ERR(needle)                                                              \
  cr_assert(strstr(sl_last_error(), (needle)) != NULL, "error \"%s\" lacks \"%s\"",        \
            sl_last_error(), (needle))

#endif
