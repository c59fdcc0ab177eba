/*
 * selut.dist: data-parallel training over MPI (Open MPI), docs/distributed.md.
 * This file: collectives on tensors (allreduce, broadcast, barrier),
 * rank/size queries and the loading of the MPI glue; selut.dist.DataParallel
 * is lua_dist_dp.c (and lua_dist_shared.c), its setup scripts/dist.lua. Compiled with MPI only when SELUT_MPI is defined
 * (make MPI=1, or pkg-config finds ompi-c); otherwise the collectives raise
 * "selut was built without MPI" and rank/size/is_main describe one process.
 * Ranks are 1-based in Lua (MPI's rank + 1), like every index in selut.
 *
 * Open MPI is loaded on first use, not at start-up: every MPI call goes
 * through the sl_mpi_api table of selut_mpi.so (bindings/mpi/, the only
 * object linked with libmpi), which selut.dist.init() loads with dlopen.
 *
 * Ending: after init, a rank ends through dist.finalize() (collective), or
 * simply by ending normally: the launcher (or a host) calls
 * sl_lua_dist_ending(L, 1) before lua_close and the state's sentinel then
 * finalizes MPI when it is collected (after the DataParallel objects, which
 * were created after it). If the state closes otherwise (an uncaught error,
 * or a host that did not say), the sentinel calls MPI_Abort so mpirun brings
 * the whole job down instead of leaving the other ranks blocked in a
 * collective; dist.abort(code) does the same on purpose.
 */
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "selut_lua.h"

#ifdef SELUT_MPI
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#endif

#define SL_LUA_DIST_SENTINEL "selut.dist.Sentinel"
#define DIST_SENTINEL_KEY "selut.dist.sentinel" /* registry: this state's sentinel */

double sl_dist_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- MPI state (process-wide by nature: MPI_COMM_WORLD) ---- */

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

/* The loaded glue, or NULL (loaded here only when libmpi is in the process). */
static const sl_mpi_api *mpi_glue(void) {
  const sl_mpi_api *m = atomic_load(&glue);
  if (!m && !atomic_exchange(&host_checked, 1) && dlsym(RTLD_DEFAULT, "MPI_Initialized")) {
    pthread_once(&glue_once, glue_load);
    m = atomic_load(&glue);
  }
  return m;
}

/* Loads the glue or raises "selut.dist.<fn>: cannot load MPI: <why>". */
static const sl_mpi_api *mpi_load(lua_State *L, const char *fn) {
  pthread_once(&glue_once, glue_load);
  const sl_mpi_api *m = atomic_load(&glue);
  if (!m) luaL_error(L, "selut.dist.%s: cannot load MPI: %s", fn, glue_err);
  return m;
}

/* The glue, where MPI is known to be active (after sl_dist_active()). */
const sl_mpi_api *sl_dist_mpi(void) { return atomic_load(&glue); }
#endif

int sl_dist_active(void) {
#ifdef SELUT_MPI
  const sl_mpi_api *m = mpi_glue();
  int inited = 0, fin = 0;
  if (m) m->state(&inited, &fin);
  return inited && !fin;
#else
  return 0;
#endif
}

int sl_lua_dist_info(int *rank0, int *size) {
  *rank0 = 0;
  *size = 1;
#ifdef SELUT_MPI
  if (!sl_dist_active()) return 0;
  sl_dist_mpi()->rank_size(rank0, size);
  return 1;
#else
  return 0;
#endif
}

#ifdef SELUT_MPI
/* Raises "selut.dist.<fn>: <what> failed: <MPI's message>". */
int sl_dist_mpi_error(lua_State *L, const char *fn, const char *what, int code) {
  char msg[512];
  sl_dist_mpi()->error_string(code, msg, sizeof msg);
  return luaL_error(L, "selut.dist.%s: %s failed: %s", fn, what, msg);
}

/* MPI counts are int: large buffers go in chunks. */
#define CHUNK ((int64_t)1 << 30)

void sl_dist_allreduce_floats(lua_State *L, const char *fn, float *x, int64_t n, int op) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    MPI_CHECK(L, fn, "MPI_Allreduce", sl_dist_mpi()->allreduce(x + off, c, SL_MPI_FLOAT, op));
  }
}

void sl_dist_bcast_floats(lua_State *L, const char *fn, float *x, int64_t n, int root) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    MPI_CHECK(L, fn, "MPI_Bcast", sl_dist_mpi()->bcast(x + off, c, SL_MPI_FLOAT, root));
  }
}

/* Error-checked collectives: every rank learns whether all ranks passed the
 * same number of elements (one tiny allreduce), so a mismatch raises the
 * same error on every rank instead of corrupting memory or hanging. The same
 * allreduce gives the smallest and largest n passed by the ranks. */
void sl_dist_check_same_numel_n(lua_State *L, const char *fn, int64_t numel, int64_t n, int64_t *nmin, int64_t *nmax) {
  long long v[4] = {(long long)numel, -(long long)numel, (long long)n, -(long long)n};
  MPI_CHECK(L, fn, "MPI_Allreduce", sl_dist_mpi()->allreduce(v, 4, SL_MPI_LONG_LONG, SL_MPI_MAX));
  if (v[0] != -v[1]) {
    int r = 0, size = 1;
    sl_dist_mpi()->rank_size(&r, &size);
    luaL_error(L, "selut.dist.%s: ranks disagree on the tensor size: %I elements on rank %d, between %I and "
                  "%I across ranks (every rank must pass a tensor of the same size)",
               fn, (lua_Integer)numel, r + 1, (lua_Integer)-v[1], (lua_Integer)v[0]);
  }
  *nmax = (int64_t)v[2];
  *nmin = (int64_t)-v[3];
}

static void check_same_numel(lua_State *L, const char *fn, int64_t numel) {
  int64_t lo, hi;
  sl_dist_check_same_numel_n(L, fn, numel, 0, &lo, &hi);
}
#endif

/* Raises unless MPI is built in and initialized. */
void sl_dist_need_init(lua_State *L, const char *fn) {
#ifdef SELUT_MPI
  if (!sl_dist_active()) {
    char path[PATH_MAX + 64]; /* without the glue init could not help: say why it cannot load */
    if (!atomic_load(&glue) && !glue_find(path, sizeof path)) mpi_load(L, fn);
    luaL_error(L, "selut.dist.%s: call selut.dist.init() first", fn);
  }
#else
  luaL_error(L, "selut.dist.%s: " NO_MPI, fn);
#endif
}

/* ---- the sentinel: aborts the job when the initializing state closes early ---- */

#ifdef SELUT_MPI
typedef struct lsentinel {
  int armed;    /* 1 between init and finalize */
  int ended_ok; /* the script ended normally (sl_lua_dist_ending): finalize instead of aborting */
} lsentinel;

static int sentinel_gc(lua_State *L) {
  lsentinel *s = lua_touserdata(L, 1);
  if (s->armed && s->ended_ok && sl_dist_active()) {
    s->armed = 0;
    fflush(stdout);
    sl_dist_mpi()->finalize(); /* collective: every rank that ended normally gets here */
    return 0;
  }
  if (s->armed && sl_dist_active()) {
    int r = 0, size = 1;
    sl_dist_mpi()->rank_size(&r, &size);
    fprintf(stderr, "selut.dist: rank %d is ending without selut.dist.finalize() (an error or an early exit): "
                    "aborting the MPI job\n", r + 1);
    fflush(stderr);
    sl_dist_mpi()->abort(1); /* MPI_Abort: the documented failure path (docs/distributed.md) */
  }
  s->armed = 0;
  return 0;
}

static lsentinel *get_sentinel(lua_State *L) {
  lsentinel *s;
  if (lua_getfield(L, LUA_REGISTRYINDEX, DIST_SENTINEL_KEY) == LUA_TUSERDATA) {
    s = lua_touserdata(L, -1);
  } else {
    s = lua_newuserdatauv(L, sizeof *s, 0);
    s->armed = 0;
    s->ended_ok = 0;
    if (luaL_newmetatable(L, SL_LUA_DIST_SENTINEL)) {
      lua_pushcfunction(L, sentinel_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, DIST_SENTINEL_KEY);
  }
  lua_pop(L, 1); /* the registry's value (or the nil found there) */
  return s;
}
#endif

void sl_lua_dist_ending(lua_State *L, int ok) {
#ifdef SELUT_MPI
  if (lua_getfield(L, LUA_REGISTRYINDEX, DIST_SENTINEL_KEY) == LUA_TUSERDATA) {
    lsentinel *s = lua_touserdata(L, -1);
    s->ended_ok = ok != 0;
  }
  lua_pop(L, 1);
#else
  (void)L;
  (void)ok;
#endif
}

/* ---- selut.dist.* ---- */

static int dist_init(lua_State *L) {
#ifdef SELUT_MPI
  const sl_mpi_api *m = mpi_load(L, "init"); /* loads Open MPI */
  int inited = 0, fin = 0;
  m->state(&inited, &fin);
  if (fin) return luaL_error(L, "selut.dist.init: MPI was already finalized in this process");
  lsentinel *s = get_sentinel(L);
  /* MPI_Init_thread unless initialized; errors then come back as codes
   * (MPI_ERRORS_RETURN), so they become Lua errors with MPI's text */
  if (m->init() != 0) return luaL_error(L, "selut.dist.init: MPI_Init_thread failed");
  s->armed = 1;
  int r, n;
  sl_lua_dist_info(&r, &n);
  lua_pushinteger(L, r + 1);
  lua_pushinteger(L, n);
  return 2;
#else
  return luaL_error(L, "selut.dist.init: " NO_MPI);
#endif
}

static int dist_finalize(lua_State *L) {
  sl_dist_need_init(L, "finalize");
#ifdef SELUT_MPI
  lsentinel *s = get_sentinel(L);
  s->armed = 0;
  MPI_CHECK(L, "finalize", "MPI_Finalize", sl_dist_mpi()->finalize());
#endif
  return 0;
}

static int dist_abort(lua_State *L) {
  lua_Integer code = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, code >= 0 && code <= 255, 1, lua_pushfstring(L, "exit code must be in 0..255, got %I", code));
  sl_dist_need_init(L, "abort");
#ifdef SELUT_MPI
  fflush(stdout);
  fflush(stderr);
  sl_dist_mpi()->abort((int)code); /* MPI_Abort: ends every rank; does not return */
#endif
  return 0;
}

static int dist_rank(lua_State *L) {
  int r, n;
  sl_lua_dist_info(&r, &n);
  lua_pushinteger(L, r + 1);
  return 1;
}

static int dist_size(lua_State *L) {
  int r, n;
  sl_lua_dist_info(&r, &n);
  lua_pushinteger(L, n);
  return 1;
}

static int dist_is_main(lua_State *L) {
  int r, n;
  sl_lua_dist_info(&r, &n);
  lua_pushboolean(L, r == 0);
  return 1;
}

static int dist_barrier(lua_State *L) {
  sl_dist_need_init(L, "barrier");
#ifdef SELUT_MPI
  MPI_CHECK(L, "barrier", "MPI_Barrier", sl_dist_mpi()->barrier());
#endif
  return 0;
}

/* allreduce(t[, op = "sum"]) -> t, reduced in place over all ranks. */
static int dist_allreduce(lua_State *L) {
  static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int op = luaL_checkoption(L, 2, "sum", ops);
  sl_dist_need_init(L, "allreduce");
#ifdef SELUT_MPI
  check_same_numel(L, "allreduce", t->numel);
  int mop = op == 2 ? SL_MPI_MAX : op == 3 ? SL_MPI_MIN : SL_MPI_SUM;
  sl_dist_allreduce_floats(L, "allreduce", t->data, t->numel, mop);
  if (op == 1) {
    int r, n;
    sl_dist_mpi()->rank_size(&r, &n);
    float inv = 1.0f / (float)n;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] *= inv;
  }
#else
  (void)t;
  (void)op;
#endif
  lua_settop(L, 1);
  return 1;
}

int sl_dist_check_root(lua_State *L, int arg) {
  int r, n;
  sl_lua_dist_info(&r, &n);
  lua_Integer root = luaL_optinteger(L, arg, 1);
  if (root < 1 || root > n)
    luaL_argerror(L, arg, lua_pushfstring(L, "root must be a rank in 1..%d, got %I", n, root));
  return (int)root - 1;
}

/* broadcast(t[, root = 1]) -> t, overwritten on every rank with root's. */
static int dist_broadcast(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_dist_need_init(L, "broadcast");
  int root = sl_dist_check_root(L, 2);
#ifdef SELUT_MPI
  check_same_numel(L, "broadcast", t->numel);
  sl_dist_bcast_floats(L, "broadcast", t->data, t->numel, root);
#else
  (void)t;
  (void)root;
#endif
  lua_settop(L, 1);
  return 1;
}

/* selut.dist.sample_offset([k]) -> k: the rows of the global batch before
 * this process's rows, for the dropout masks (docs/distributed.md); 0 by
 * default, set by dp:batches on every step. Works without MPI. */
static int dist_sample_offset(lua_State *L) {
  sl_lua_ctx *ctx = sl_lua_context(L);
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    lua_Integer k = lua_tointegerx(L, 1, &isint);
    if (!isint)
      return luaL_argerror(L, 1, lua_pushfstring(L, "sample offset must be an integer, got %s", luaL_tolstring(L, 1, NULL)));
    if (k < 0) return luaL_argerror(L, 1, lua_pushfstring(L, "sample offset must be >= 0, got %I", k));
    ctx->sample_offset = (int64_t)k;
  }
  lua_pushinteger(L, (lua_Integer)ctx->sample_offset);
  return 1;
}

static const luaL_Reg dist_funcs[] = {
    {"init", dist_init},           {"finalize", dist_finalize},   {"abort", dist_abort},
    {"rank", dist_rank},           {"size", dist_size},           {"is_main", dist_is_main},
    {"barrier", dist_barrier},     {"allreduce", dist_allreduce}, {"broadcast", dist_broadcast},
    {"sample_offset", dist_sample_offset}, {NULL, NULL}};

void sl_lua_open_dist(lua_State *L) {
  sl_lua_newlib(L, dist_funcs);
  sl_lua_open_dataparallel(L);
#ifdef SELUT_MPI
  char path[PATH_MAX + 64]; /* the glue is found (not loaded: init loads it) */
  lua_pushboolean(L, atomic_load(&glue) != NULL || glue_find(path, sizeof path));
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "available");
  lua_setfield(L, -2, "dist");
}
