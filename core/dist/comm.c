/* selut.dist's communication layer (comm.h): loading the MPI glue and
 * error-checked collectives over it. */
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT */
#include "comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/error.h"

#ifdef SELUT_MPI
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#endif

double sl_comm_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the glue (process-wide by nature: MPI_COMM_WORLD) ---- */

#ifdef SELUT_MPI
/* The MPI glue (selut_mpi.so), loaded once per process and never unloaded:
 * by selut.dist.init(), or as soon as rank()/size() are asked in a process
 * that already has libmpi (a host that linked and initialized MPI itself). */
static _Atomic(const sl_mpi_api *) glue;
static pthread_once_t glue_once = PTHREAD_ONCE_INIT;
static char glue_err[512]; /* why loading failed (written under glue_once) */
static atomic_int host_checked;

/* buf = dir/rel when that file is readable. */
static int glue_at(char *buf, size_t n, const char *dir, const char *rel) {
  int w = snprintf(buf, n, "%s/%s", dir, rel);
  return w > 0 && (size_t)w < n && access(buf, R_OK) == 0;
}

/* The directory part of path (in place). */
static void strip_name(char *path) {
  char *slash = strrchr(path, '/');
  if (slash == path) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else strcpy(path, ".");
}

/* Finds selut_mpi.so: $SELUT_MPI_GLUE, else beside the object holding this
 * code (the launcher, libselut.so or selut.so) or the executable, or in
 * selut/, ../lib/selut/ or ../../../selut/ from there (make install), else the installed path
 * compiled in. 1 with its path in buf, 0 when there is none. */
static int glue_find(char *buf, size_t n) {
  const char *env = getenv("SELUT_MPI_GLUE");
  if (env && *env) return snprintf(buf, n, "%s", env) < (int)n && access(buf, R_OK) == 0;
  static const char *const rel[] = {SL_MPI_GLUE_NAME, "selut/" SL_MPI_GLUE_NAME, "../lib/selut/" SL_MPI_GLUE_NAME,
                                    "../../../selut/" SL_MPI_GLUE_NAME}; /* selut.so in lib/<triplet>/lua/5.4 */
  char dirs[2][PATH_MAX];
  int nd = 0;
  Dl_info info;
  if (dladdr(&glue_once, &info) && info.dli_fname && strchr(info.dli_fname, '/') &&
      strlen(info.dli_fname) < PATH_MAX) {
    strcpy(dirs[0], info.dli_fname);
    strip_name(dirs[0]);
    nd = 1;
  }
  ssize_t len = readlink("/proc/self/exe", dirs[nd], PATH_MAX - 1);
  if (len > 0) {
    dirs[nd][len] = '\0';
    strip_name(dirs[nd]);
    if (nd == 0 || strcmp(dirs[0], dirs[1]) != 0) nd++;
  }
  for (int d = 0; d < nd; d++)
    for (size_t r = 0; r < sizeof rel / sizeof *rel; r++)
      if (glue_at(buf, n, dirs[d], rel[r])) return 1;
#ifdef SL_MPI_GLUE_INSTALLED
  if (snprintf(buf, n, "%s", SL_MPI_GLUE_INSTALLED) < (int)n && access(buf, R_OK) == 0) return 1;
#endif
  return 0;
}

static void glue_load(void) {
  char path[PATH_MAX + 64];
  if (!glue_find(path, sizeof path)) {
    snprintf(glue_err, sizeof glue_err, "%s not found beside selut (set SELUT_MPI_GLUE to its path)",
             SL_MPI_GLUE_NAME);
    return;
  }
  /* RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols in the global scope */
  void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(glue_err, sizeof glue_err, "%.500s", e ? e : path);
    return;
  }
  const sl_mpi_api *api = dlsym(h, SL_MPI_API_SYMBOL);
  if (!api || api->version != SL_MPI_API_VERSION) {
    snprintf(glue_err, sizeof glue_err, "%.440s: no %s of version %d", path, SL_MPI_API_SYMBOL, SL_MPI_API_VERSION);
    return;
  }
  atomic_store(&glue, api);
}

const sl_mpi_api *sl_comm_glue(void) {
  const sl_mpi_api *m = atomic_load(&glue);
  if (!m && !atomic_exchange(&host_checked, 1) && dlsym(RTLD_DEFAULT, "MPI_Initialized")) {
    pthread_once(&glue_once, glue_load);
    m = atomic_load(&glue);
  }
  return m;
}

const sl_mpi_api *sl_comm_load(const char *fn) {
  pthread_once(&glue_once, glue_load);
  const sl_mpi_api *m = atomic_load(&glue);
  if (!m) sl_fail(SL_EIO, "selut.dist.%s: cannot load MPI: %s", fn, glue_err);
  return m;
}

int sl_comm_findable(void) {
  char path[PATH_MAX + 64];
  return atomic_load(&glue) != NULL || glue_find(path, sizeof path);
}

int sl_comm_active(void) {
  const sl_mpi_api *m = sl_comm_glue();
  int inited = 0, fin = 0;
  if (m) m->state(&inited, &fin);
  return inited && !fin;
}

int sl_comm_info(int *rank0, int *size) {
  *rank0 = 0;
  *size = 1;
  if (!sl_comm_active()) return 0;
  atomic_load(&glue)->rank_size(rank0, size);
  return 1;
}

int sl_comm_fail(const char *fn, const char *what, int code) {
  char msg[512];
  atomic_load(&glue)->error_string(code, msg, sizeof msg);
  return sl_fail(SL_EIO, "selut.dist.%s: %s failed: %s", fn, what, msg);
}

/* MPI counts are int: large buffers go in chunks. */
#define CHUNK ((int64_t)1 << 30)

int sl_comm_allreduce_floats(const char *fn, float *x, int64_t n, int op) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    int rc = atomic_load(&glue)->allreduce(x + off, c, SL_MPI_FLOAT, op);
    if (rc != 0) return sl_comm_fail(fn, "MPI_Allreduce", rc);
  }
  return SL_OK;
}

int sl_comm_bcast_floats(const char *fn, float *x, int64_t n, int root) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    int rc = atomic_load(&glue)->bcast(x + off, c, SL_MPI_FLOAT, root);
    if (rc != 0) return sl_comm_fail(fn, "MPI_Bcast", rc);
  }
  return SL_OK;
}

/* One tiny allreduce of {numel, -numel, n, -n} under MAX: a mismatch fails
 * with the same message on every rank instead of corrupting memory or
 * hanging, and the same allreduce gives the smallest and largest n. */
int sl_comm_check_same_numel_n(const char *fn, int64_t numel, int64_t n, int64_t *nmin, int64_t *nmax) {
  long long v[4] = {(long long)numel, -(long long)numel, (long long)n, -(long long)n};
  int rc = atomic_load(&glue)->allreduce(v, 4, SL_MPI_LONG_LONG, SL_MPI_MAX);
  if (rc != 0) return sl_comm_fail(fn, "MPI_Allreduce", rc);
  if (v[0] != -v[1]) {
    int r = 0, size = 1;
    atomic_load(&glue)->rank_size(&r, &size);
    return sl_fail(SL_EINVAL, "selut.dist.%s: ranks disagree on the tensor size: %lld elements on rank %d, between "
                              "%lld and %lld across ranks (every rank must pass a tensor of the same size)",
                   fn, (long long)numel, r + 1, -v[1], v[0]);
  }
  *nmax = (int64_t)v[2];
  *nmin = (int64_t)-v[3];
  return SL_OK;
}

int sl_comm_bn_allreduce(void *ctx, double *buf, int n) {
  (void)ctx;
  int r, size;
  if (!sl_comm_info(&r, &size) || size < 2) return SL_OK;
  int rc = atomic_load(&glue)->allreduce(buf, n, SL_MPI_DOUBLE, SL_MPI_SUM);
  if (rc != 0) {
    char msg[256];
    atomic_load(&glue)->error_string(rc, msg, sizeof msg);
    return sl_fail(SL_EIO, "selut.dist: MPI_Allreduce of BatchNorm1d statistics failed: %s", msg);
  }
  return SL_OK;
}

#else /* built without MPI: one process, nothing to load */
const sl_mpi_api *sl_comm_glue(void) { return NULL; }
const sl_mpi_api *sl_comm_load(const char *fn) {
  sl_fail(SL_EINVAL, "selut.dist.%s: cannot load MPI: built without MPI", fn);
  return NULL;
}
int sl_comm_findable(void) { return 0; }
int sl_comm_active(void) { return 0; }
int sl_comm_info(int *rank0, int *size) {
  *rank0 = 0;
  *size = 1;
  return 0;
}
int sl_comm_fail(const char *fn, const char *what, int code) {
  return sl_fail(SL_EIO, "selut.dist.%s: %s failed: error %d", fn, what, code);
}
int sl_comm_allreduce_floats(const char *fn, float *x, int64_t n, int op) {
  (void)x, (void)n, (void)op;
  return sl_fail(SL_EINVAL, "selut.dist.%s: built without MPI", fn);
}
int sl_comm_bcast_floats(const char *fn, float *x, int64_t n, int root) {
  (void)x, (void)n, (void)root;
  return sl_fail(SL_EINVAL, "selut.dist.%s: built without MPI", fn);
}
int sl_comm_check_same_numel_n(const char *fn, int64_t numel, int64_t n, int64_t *nmin, int64_t *nmax) {
  (void)numel;
  *nmin = *nmax = n;
  return sl_fail(SL_EINVAL, "selut.dist.%s: built without MPI", fn);
}
int sl_comm_bn_allreduce(void *ctx, double *buf, int n) {
  (void)ctx, (void)buf, (void)n;
  return SL_OK;
}
#endif
