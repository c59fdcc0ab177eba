/* Shared memory for DataParallel on one machine (shm.h). */
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* FNV-1a over the host name and the kernel's boot id: two containers on one
 * host with the same name but another kernel instance differ. */
long long sl_shm_node_key(void) {
  char buf[256 + 64] = {0};
  gethostname(buf, 255);
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f) {
    size_t len = strlen(buf);
    if (!fgets(buf + len, (int)(sizeof buf - len), f)) buf[len] = 0;
    fclose(f);
  }
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)buf; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return (long long)(h >> 1); /* non-negative */
}

void sl_shm_name(char *buf, size_t n, long long pid, long long serial) {
  snprintf(buf, n, "/selut-dp-%lld-%lld", pid, serial);
}

/* A name stays in /dev/shm only when its creator (or a rank) died between
 * creating the segment and every rank mapping it: the creator's pid is in
 * the name, so a segment of ours whose creator no longer exists (ESRCH;
 * EPERM means alive) is debris. POSIX shm on Linux is /dev/shm. */
int sl_shm_sweep_stale(void) {
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long long pid, serial;
    int end = 0;
    if (sscanf(e->d_name, "selut-dp-%lld-%lld%n", &pid, &serial, &end) != 2 || e->d_name[end] != 0) continue;
    if (pid <= 0 || pid == (long long)getpid() || (pid_t)pid != pid) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid())
      continue;
    char name[300];
    snprintf(name, sizeof name, "/%s", e->d_name);
    if (shm_unlink(name) == 0) removed++;
  }
  closedir(d);
  return removed;
}

float *sl_shm_map(const char *name, size_t bytes, int create) {
  int fd = shm_open(name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
  if (fd < 0) return NULL;
  /* the pages are reserved now: a tmpfs too small for the segment (a
   * container's 64 MB /dev/shm) fails here with ENOSPC instead of raising
   * SIGBUS at the first write beyond its size */
  if (create && (ftruncate(fd, (off_t)bytes) != 0 || (errno = posix_fallocate(fd, 0, (off_t)bytes)) != 0)) {
    int e = errno;
    close(fd);
    shm_unlink(name);
    errno = e;
    return NULL;
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd); /* the mapping stays */
  if (p == MAP_FAILED) {
    if (create) shm_unlink(name);
    errno = e;
    return NULL;
  }
  return p;
}

void sl_shm_unlink(const char *name) { shm_unlink(name); }

void sl_shm_unmap(float *base, size_t bytes) { munmap(base, bytes); }

typedef struct shm_mapping {
  size_t bytes;
  sl_mem_account *charged; /* the account the mapping is charged to */
} shm_mapping;

static void shm_release(void *ctx, float *data) {
  shm_mapping *m = ctx;
  munmap(data, m->bytes);
  sl_mem_credit(m->charged, m->bytes);
  free(m);
}

sl_tensor *sl_shm_wrap(float *base, size_t bytes, sl_mem_account *charged) {
  shm_mapping *ctx = malloc(sizeof *ctx);
  int64_t shape[1] = {(int64_t)(bytes / sizeof(float))};
  sl_tensor *t = ctx ? sl_tensor_wrap(1, shape, base, shm_release, ctx) : NULL;
  if (!t) {
    free(ctx);
    munmap(base, bytes);
    sl_mem_credit(charged, bytes);
  } else {
    ctx->bytes = bytes;
    ctx->charged = charged;
  }
  return t;
}

/* In pieces of PIECE floats summed into an L1 buffer and then stored: out
 * may be any of the inputs (a pass writing out directly would overwrite
 * in[q] before pass q reads it). */
#define PIECE 1024
void sl_shm_sum(float *out, float *const *in, const float *coef, int nin, size_t a, size_t b) {
  float acc[PIECE];
  for (size_t j0 = a; j0 < b; j0 += PIECE) {
    size_t m = b - j0 < PIECE ? b - j0 : PIECE;
    const float *x0 = in[0] + j0;
    if (coef)
      for (size_t j = 0; j < m; j++) acc[j] = coef[0] * x0[j];
    else
      memcpy(acc, x0, m * sizeof *acc);
    for (int q = 1; q < nin; q++) {
      const float *xq = in[q] + j0;
      if (coef)
        for (size_t j = 0; j < m; j++) acc[j] += coef[q] * xq[j];
      else
        for (size_t j = 0; j < m; j++) acc[j] += xq[j];
    }
    memcpy(out + j0, acc, m * sizeof *acc);
  }
}
