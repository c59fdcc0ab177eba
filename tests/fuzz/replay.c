/*
 * Replays fuzz inputs without libFuzzer: links with one fuzz_*.c target and
 * calls LLVMFuzzerTestOneInput on every file named on the command line (a
 * directory stands for the files inside it). Used by `make test` (any
 * compiler, sanitizers from SAN=1) to replay the committed corpora and the
 * crash regressions. Exits 1 when nothing was replayed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); return -1; }
  size_t cap = 1 << 12, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) { fclose(f); return -1; }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
  }
  int err = ferror(f);
  fclose(f);
  if (err) { free(buf); return -1; }
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays path (a file, or the regular files in a directory, sorted);
 * returns the number of inputs replayed or -1. */
static long replay(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) { perror(path); return -1; }
  if (!S_ISDIR(sb.st_mode)) return replay_file(path) == 0 ? 1 : -1;
  DIR *d = opendir(path);
  if (!d) { perror(path); return -1; }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  long count = 0;
  for (size_t i = 0; i < n; i++) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", path, names[i]);
    if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (replay_file(full) != 0) { count = -1; }
      else if (count >= 0) count++;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; i++) {
    long c = replay(argv[i]);
    if (c < 0) return 1;
    total += c;
  }
  const char *slash = strrchr(argv[0], '/');
  printf("%s: replayed %ld inputs\n", slash ? slash + 1 : argv[0], total);
  return total > 0 ? 0 : 1;
}
