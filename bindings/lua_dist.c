/*
 * selut.dist: data-parallel training over MPI (Open MPI), docs/distributed.md.
 * Collectives on tensors (allreduce, broadcast, barrier), rank/size queries,
 * and selut.dist.DataParallel: one flat buffer per model, so a step averages
 * every gradient in one allreduce, and the initial weights come from the main
 * rank in one broadcast. Compiled with MPI only when SELUT_MPI is defined
 * (make MPI=1, or pkg-config finds ompi-c); otherwise the collectives raise
 * "selut was built without MPI" and rank/size/is_main describe one process.
 * Ranks are 1-based in Lua (MPI's rank + 1), like every index in selut.
 *
 * Open MPI is loaded on first use, not at start-up: every MPI call goes
 * through the sl_mpi_api table of selut_mpi.so (bindings/mpi/, the only
 * object linked with libmpi), which selut.dist.init() loads with dlopen.
 *
 * Ending: after init, a rank must end through dist.finalize() (collective). If
 * the Lua state that called init closes without it (an uncaught error), the
 * state's sentinel calls MPI_Abort so mpirun brings the whole job down instead
 * of leaving the other ranks blocked in a collective; dist.abort(code) does
 * the same on purpose.
 */
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_shm.h"
#include "sl_lua.h"

#ifdef SELUT_MPI
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "mpi/selut_mpi.h"
#endif

#define SL_LUA_DP "selut.dist.DataParallel"
#define SL_LUA_DIST_SENTINEL "selut.dist.Sentinel"
#define DIST_SENTINEL_KEY "selut.dist.sentinel" /* registry: this state's sentinel */
#define NO_MPI "selut was built without MPI (rebuild with make MPI=1 after apt-get install libopenmpi-dev)"

/* A model's parameters and gradients (one reference each) and the flat
 * buffer (numel + 1 floats: the last one carries the sample count). Each
 * gradient lives in its slice of the flat buffer (sl_tensor_rehome), so the
 * allreduce runs in place with no copies; a gradient that cannot move (its
 * storage is shared with another view, or wraps a host buffer) is copied in
 * and out instead (homed[i] == 0). */
typedef struct ldp {
  int n;
  sl_tensor **params, **grads;
  int64_t *offset; /* of each tensor in flat */
  char *homed;     /* 1: grads[i] lives at flat + offset[i] (when it moved: tried again) */
  sl_tensor *flat;
  int64_t total; /* parameter elements */
  int64_t steps;
  double pack_seconds, comm_seconds;
  int scaled;             /* 1 after loss_scale(n) until allreduce_gradients */
  lua_Integer scaled_n;   /* its n */
  int nbuf;
  sl_tensor **bufs; /* the model's buffers (m:buffers(), e.g. running stats): broadcast with the weights */
  long long scaled_sum;   /* sum(n_r) of the last loss_scale */
  /* dp:step(opt) on ranks of one machine: one shared segment holds the
   * parameters P, the optimizer state S0/S1 (at P's offsets) and every
   * rank's gradients G + r * seg; each rank steps its slice of P from the
   * sum of all ranks' gradients (docs/distributed.md). */
  int shared_tried;       /* the first dp:step decided (collectively) */
  int shared;             /* 1: on */
  const char *shared_why; /* why not, when tried and off (static text) */
  sl_tensor *seg_t;       /* the mapping (unmapped when its last view goes) */
  float *P, *S0, *S1, *G;
  int64_t seg;            /* floats per segment (total rounded up to 16) */
  int shared_rank;        /* this rank (0-based): its gradients are at G + shared_rank * seg */
  int swept;              /* stale segments of dead jobs the creator unlinked (dp:stats().swept) */
  int nbn;                /* BatchNorm1d layers with synchronized statistics (user value 2 keeps them) */
  struct sl_optim *opt;   /* the optimizer it steps (kept alive in user value 1) */
} ldp;

static double now(void) {
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

/* The glue, where MPI is known to be active (after dist_active()). */
static const sl_mpi_api *mpi(void) { return atomic_load(&glue); }
#endif

static int dist_active(void) {
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
  if (!dist_active()) return 0;
  mpi()->rank_size(rank0, size);
  return 1;
#else
  return 0;
#endif
}

#ifdef SELUT_MPI
/* Raises "selut.dist.<fn>: <what> failed: <MPI's message>". */
static int mpi_error(lua_State *L, const char *fn, const char *what, int code) {
  char msg[512];
  mpi()->error_string(code, msg, sizeof msg);
  return luaL_error(L, "selut.dist.%s: %s failed: %s", fn, what, msg);
}
#define MPI_CHECK(L, fn, what, call)                           \
  do {                                                         \
    int mpi_rc_ = (call);                                      \
    if (mpi_rc_ != 0) mpi_error(L, fn, what, mpi_rc_);         \
  } while (0)

/* MPI counts are int: large buffers go in chunks. */
#define CHUNK ((int64_t)1 << 30)

static void allreduce_floats(lua_State *L, const char *fn, float *x, int64_t n, int op) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    MPI_CHECK(L, fn, "MPI_Allreduce", mpi()->allreduce(x + off, c, SL_MPI_FLOAT, op));
  }
}

static void bcast_floats(lua_State *L, const char *fn, float *x, int64_t n, int root) {
  for (int64_t off = 0; off < n; off += CHUNK) {
    int c = (int)(n - off < CHUNK ? n - off : CHUNK);
    MPI_CHECK(L, fn, "MPI_Bcast", mpi()->bcast(x + off, c, SL_MPI_FLOAT, root));
  }
}

/* Error-checked collectives: every rank learns whether all ranks passed the
 * same number of elements (one tiny allreduce), so a mismatch raises the
 * same error on every rank instead of corrupting memory or hanging. The same
 * allreduce gives the smallest and largest n passed by the ranks. */
static void check_same_numel_n(lua_State *L, const char *fn, int64_t numel, int64_t n, int64_t *nmin, int64_t *nmax) {
  long long v[4] = {(long long)numel, -(long long)numel, (long long)n, -(long long)n};
  MPI_CHECK(L, fn, "MPI_Allreduce", mpi()->allreduce(v, 4, SL_MPI_LONG_LONG, SL_MPI_MAX));
  if (v[0] != -v[1]) {
    int r = 0, size = 1;
    mpi()->rank_size(&r, &size);
    luaL_error(L, "selut.dist.%s: ranks disagree on the tensor size: %I elements on rank %d, between %I and "
                  "%I across ranks (every rank must pass a tensor of the same size)",
               fn, (lua_Integer)numel, r + 1, (lua_Integer)-v[1], (lua_Integer)v[0]);
  }
  *nmax = (int64_t)v[2];
  *nmin = (int64_t)-v[3];
}

static void check_same_numel(lua_State *L, const char *fn, int64_t numel) {
  int64_t lo, hi;
  check_same_numel_n(L, fn, numel, 0, &lo, &hi);
}
#endif

/* Raises unless MPI is built in and initialized. */
static void need_init(lua_State *L, const char *fn) {
#ifdef SELUT_MPI
  if (!dist_active()) {
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
  int armed; /* 1 between init and finalize */
} lsentinel;

static int sentinel_gc(lua_State *L) {
  lsentinel *s = lua_touserdata(L, 1);
  if (s->armed && dist_active()) {
    int r = 0, size = 1;
    mpi()->rank_size(&r, &size);
    fprintf(stderr, "selut.dist: rank %d is ending without selut.dist.finalize() (an error or an early exit): "
                    "aborting the MPI job\n", r + 1);
    fflush(stderr);
    mpi()->abort(1); /* MPI_Abort: the documented failure path (docs/distributed.md) */
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
  need_init(L, "finalize");
#ifdef SELUT_MPI
  lsentinel *s = get_sentinel(L);
  s->armed = 0;
  MPI_CHECK(L, "finalize", "MPI_Finalize", mpi()->finalize());
#endif
  return 0;
}

static int dist_abort(lua_State *L) {
  lua_Integer code = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, code >= 0 && code <= 255, 1, lua_pushfstring(L, "exit code must be in 0..255, got %I", code));
  need_init(L, "abort");
#ifdef SELUT_MPI
  fflush(stdout);
  fflush(stderr);
  mpi()->abort((int)code); /* MPI_Abort: ends every rank; does not return */
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
  need_init(L, "barrier");
#ifdef SELUT_MPI
  MPI_CHECK(L, "barrier", "MPI_Barrier", mpi()->barrier());
#endif
  return 0;
}

/* allreduce(t[, op = "sum"]) -> t, reduced in place over all ranks. */
static int dist_allreduce(lua_State *L) {
  static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int op = luaL_checkoption(L, 2, "sum", ops);
  need_init(L, "allreduce");
#ifdef SELUT_MPI
  check_same_numel(L, "allreduce", t->numel);
  int mop = op == 2 ? SL_MPI_MAX : op == 3 ? SL_MPI_MIN : SL_MPI_SUM;
  allreduce_floats(L, "allreduce", t->data, t->numel, mop);
  if (op == 1) {
    int r, n;
    mpi()->rank_size(&r, &n);
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

static int check_root(lua_State *L, int arg) {
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
  need_init(L, "broadcast");
  int root = check_root(L, 2);
#ifdef SELUT_MPI
  check_same_numel(L, "broadcast", t->numel);
  bcast_floats(L, "broadcast", t->data, t->numel, root);
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

/* ---- DataParallel ---- */

static ldp *checkdp(lua_State *L, int arg) {
  ldp *d = luaL_checkudata(L, arg, SL_LUA_DP);
  if (!d->flat) luaL_error(L, "attempt to use a closed DataParallel");
  return d;
}

/* Parameters, optimizer state and gradients leave the shared segment for
 * private copies (the other ranks no longer step them), and the optimizer
 * may be stepped on its own again. */
static void dp_unshare(lua_State *L, ldp *d) {
  if (!d->shared) return;
  d->shared = 0;
  lua_getiuservalue(L, 1, 1);
  struct sl_optim *o = sl_lua_tooptim(L, -1); /* NULL when it was collected first */
  lua_pop(L, 1);
  int kinds = o ? sl_optim_state_kinds(o) : 0;
  for (int i = 0; i < d->n; i++)
    for (int k = -2; k < kinds; k++) {
      sl_tensor *t = k == -2 ? d->grads[i] : k == -1 ? d->params[i] : sl_optim_state_tensor(o, kinds * i + k, NULL);
      sl_tensor *home = sl_tensor_shares_storage(t, d->seg_t) ? sl_tensor_empty(1, &t->numel) : NULL;
      if (home) sl_tensor_rehome_ex(t, home, 0, SL_REHOME_DETACH); /* t keeps home's storage */
      sl_tensor_release(home);
    }
  if (o) sl_optim_set_external(o, NULL);
  d->opt = NULL;
}

static int dp_gc(lua_State *L) {
  ldp *d = luaL_checkudata(L, 1, SL_LUA_DP);
  dp_unshare(L, d);
  if (d->nbn && lua_getiuservalue(L, 1, 2) == LUA_TTABLE) { /* the BatchNorms go back to local statistics */
    for (int i = 1; i <= d->nbn; i++) {
      lua_rawgeti(L, -1, i);
      sl_module *m = sl_lua_tomodule(L, -1);
      if (m) sl_module_set_reducer(m, NULL, NULL);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  d->nbn = 0;
  sl_tensor_release(d->seg_t);
  d->seg_t = NULL;
  for (int i = 0; i < d->n; i++) {
    if (d->params) sl_tensor_release(d->params[i]);
    if (d->grads) sl_tensor_release(d->grads[i]);
  }
  for (int i = 0; i < d->nbuf; i++) sl_tensor_release(d->bufs[i]);
  free(d->bufs);
  d->bufs = NULL;
  d->nbuf = 0;
  free(d->params);
  free(d->grads);
  free(d->offset);
  free(d->homed);
  sl_tensor_release(d->flat);
  d->offset = NULL;
  d->homed = NULL;
  d->params = d->grads = NULL;
  d->flat = NULL;
  d->n = 0;
  return 0;
}

/* sync_batchnorm: the BatchNorm1d statistics summed over every rank (an
 * in-place MPI_Allreduce of doubles; batchnorm.h). */
static int bn_allreduce(void *ctx, double *buf, int n) {
  (void)ctx;
  int r, size;
  if (!sl_lua_dist_info(&r, &size) || size < 2) return SL_OK;
#ifdef SELUT_MPI
  int rc = mpi()->allreduce(buf, n, SL_MPI_DOUBLE, SL_MPI_SUM);
  if (rc != 0) {
    char msg[256];
    mpi()->error_string(rc, msg, sizeof msg);
    return sl_fail(SL_EIO, "selut.dist: MPI_Allreduce of BatchNorm1d statistics failed: %s", msg);
  }
#else
  (void)buf, (void)n;
#endif
  return SL_OK;
}

/* Appends the BatchNorm1d layers of the module at idx (itself, or inside
 * nested .modules lists) to the list at out, with the reducer set; returns
 * the new count. */
static int collect_batchnorms(lua_State *L, int idx, int out, int count, int depth) {
  sl_module *m = sl_lua_tomodule(L, idx);
  if (m) {
    if (m->vt->set_reducer) { /* layers with batch statistics (BatchNorm1d) */
      sl_lua_check(L, sl_module_set_reducer(m, bn_allreduce, NULL));
      lua_pushvalue(L, idx);
      lua_rawseti(L, out, ++count);
    }
    return count;
  }
  if (depth > 64 || !lua_istable(L, idx)) return count;
  if (lua_getfield(L, idx, "modules") == LUA_TTABLE) {
    int list = lua_gettop(L);
    for (lua_Integer i = 1; lua_geti(L, list, i) != LUA_TNIL; i++) {
      count = collect_batchnorms(L, lua_gettop(L), out, count, depth + 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return count;
}

/* DataParallel(net | {{param=, grad=}, ...}[, {sync_batchnorm = false}]); a
 * net's buffers (net:buffers()) are kept too, for broadcast_parameters. */
static int dist_dataparallel(lua_State *L) {
  luaL_checkany(L, 1);
  int sync_bn = sl_lua_onlyboolopt(L, 2, "sync_batchnorm", 0);
  lua_settop(L, 1);
  /* a module (anything with a parameters method) or a parameter list */
  int t1 = lua_type(L, 1);
  luaL_argexpected(L, t1 == LUA_TTABLE || t1 == LUA_TUSERDATA, 1, "module or parameter list");
  int is_module = lua_getfield(L, 1, "parameters") == LUA_TFUNCTION;
  if (is_module) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
  } else {
    lua_pop(L, 1);
    luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "module or parameter list");
    lua_pushvalue(L, 1);
  }
  int list = lua_gettop(L); /* 2 */
  if (lua_type(L, list) != LUA_TTABLE) return luaL_argerror(L, 1, "parameters() did not return a table");
  lua_Integer n = luaL_len(L, list);
  if (n < 1 || n > INT_MAX / 2)
    return luaL_argerror(L, 1, lua_pushfstring(L, "expected a model with parameters, got %I parameters", n));
  ldp *d = lua_newuserdatauv(L, sizeof *d, 2); /* 3; user values: 1 the optimizer of dp:step, 2 synced BatchNorms */
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, SL_LUA_DP);
  d->params = calloc((size_t)n, sizeof *d->params);
  d->grads = calloc((size_t)n, sizeof *d->grads);
  d->offset = calloc((size_t)n, sizeof *d->offset);
  d->homed = calloc((size_t)n, sizeof *d->homed);
  if (!d->params || !d->grads || !d->offset || !d->homed) return luaL_error(L, "selut.dist.DataParallel: out of memory");
  d->n = (int)n;
  int64_t total = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, list, i);
    sl_tensor *p = NULL, *g = NULL;
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_getfield(L, -1, "param");
      p = sl_lua_totensor(L, -1);
      lua_getfield(L, -2, "grad");
      g = sl_lua_totensor(L, -1);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (!p || !g || p->numel != g->numel)
      return luaL_argerror(L, 1, lua_pushfstring(L, "parameter %I must be {param = tensor, grad = tensor} of the "
                                                    "same size", i));
    d->params[i - 1] = sl_tensor_retain(p);
    d->grads[i - 1] = sl_tensor_retain(g);
    if (total > INT64_MAX - p->numel - 1) return luaL_argerror(L, 1, "too many parameter elements");
    d->offset[i - 1] = total;
    total += p->numel;
  }
  d->total = total;
  /* the module's buffers (net:buffers() -> {{tensor=}, ...}), when it has any */
  if (is_module) {
    if (lua_getfield(L, 1, "buffers") == LUA_TFUNCTION) {
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
      if (lua_type(L, -1) != LUA_TTABLE) return luaL_argerror(L, 1, "buffers() did not return a table");
      lua_Integer nb = luaL_len(L, -1);
      if (nb < 0 || nb > INT_MAX / 2) return luaL_argerror(L, 1, "too many buffers");
      if (nb > 0 && !(d->bufs = calloc((size_t)nb, sizeof *d->bufs)))
        return luaL_error(L, "selut.dist.DataParallel: out of memory");
      for (lua_Integer i = 1; i <= nb; i++) {
        lua_geti(L, -1, i);
        sl_tensor *t = NULL;
        if (lua_type(L, -1) == LUA_TTABLE) {
          lua_getfield(L, -1, "tensor");
          t = sl_lua_totensor(L, -1);
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (!t) return luaL_argerror(L, 1, lua_pushfstring(L, "buffer %I must be {tensor = tensor, ...}", i));
        d->bufs[d->nbuf++] = sl_tensor_retain(t);
      }
    }
    lua_pop(L, 1);
  }
  if (sync_bn && is_module) {
    lua_newtable(L);
    int out = lua_gettop(L);
    d->nbn = collect_batchnorms(L, 1, out, 0, 0);
    lua_setiuservalue(L, 3, 2);
  }
  int64_t shape[1] = {total + 1};
  if (!(d->flat = sl_tensor_empty(1, shape))) return sl_lua_error(L);
  for (int i = 0; i < d->n; i++) d->homed[i] = sl_tensor_rehome(d->grads[i], d->flat, d->offset[i]) == SL_OK;
  return 1;
}

/* Gradients that are not (or no longer: resized, or moved by another
 * DataParallel) in their slice move there, or are copied there. */
static void gather_grads(ldp *d) {
  float *f = d->flat->data;
  for (int i = 0; i < d->n; i++) {
    sl_tensor *g = d->grads[i];
    if (g->data == f + d->offset[i]) continue;
    if (d->homed[i]) d->homed[i] = sl_tensor_rehome(g, d->flat, d->offset[i]) == SL_OK;
    if (!d->homed[i]) memcpy(f + d->offset[i], g->data, (size_t)g->numel * sizeof *f);
  }
}

/* The copied gradients get their slice back. */
static void scatter_grads(ldp *d) {
  const float *f = d->flat->data;
  for (int i = 0; i < d->n; i++) {
    sl_tensor *g = d->grads[i];
    if (g->data != f + d->offset[i]) memcpy(g->data, f + d->offset[i], (size_t)g->numel * sizeof *f);
  }
}

static void scale_floats(float *x, int64_t n, float s) {
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

#ifdef SELUT_MPI /* (only broadcast_parameters packs: an MPI=0 build has no use for them) */
/* tensors -> f, one after the other */
static void pack(const ldp *d, sl_tensor **ts, float *f) {
  for (int i = 0; i < d->n; i++) {
    memcpy(f, ts[i]->data, (size_t)ts[i]->numel * sizeof *f);
    f += ts[i]->numel;
  }
}

static void unpack(const ldp *d, sl_tensor **ts, const float *f) {
  for (int i = 0; i < d->n; i++) {
    memcpy(ts[i]->data, f, (size_t)ts[i]->numel * sizeof *f);
    f += ts[i]->numel;
  }
}
#endif

/* dp:broadcast_parameters([root = 1]): every rank gets root's weights and
 * buffers (one broadcast for the weights, through a scratch buffer, one
 * per buffer); gradients are left as they are. A no-op in a single process. */
static int dp_broadcast_parameters(lua_State *L) {
  ldp *d = checkdp(L, 1);
  int root = check_root(L, 2);
  if (!dist_active()) return 0;
#ifdef SELUT_MPI
  int64_t nb = 0, lo, hi;
  for (int i = 0; i < d->nbuf; i++) nb += d->bufs[i]->numel;
  check_same_numel_n(L, "DataParallel:broadcast_parameters", d->total, nb, &lo, &hi);
  if (lo != hi)
    return luaL_error(L, "selut.dist.DataParallel:broadcast_parameters: ranks disagree on the buffers: %I buffer "
                         "elements here, between %I and %I across ranks", (lua_Integer)nb, (lua_Integer)lo,
                      (lua_Integer)hi);
  if (!d->shared) { /* shared: one copy of the weights for all ranks of this machine already */
    /* Not through d->flat: the gradients live there (rehomed), and a
     * broadcast between a backward and the step must not overwrite them. The
     * scratch buffer is a Lua box, so an MPI error (a longjmp) cannot leak it. */
    sl_tensor **tmp = sl_lua_newtensor(L);
    int64_t total = d->total;
    if (!(*tmp = sl_tensor_empty(1, &total)))
      return luaL_error(L, "selut.dist.DataParallel:broadcast_parameters: %s", sl_last_error());
    pack(d, d->params, (*tmp)->data);
    bcast_floats(L, "DataParallel:broadcast_parameters", (*tmp)->data, d->total, root);
    unpack(d, d->params, (*tmp)->data);
    sl_tensor_release(*tmp);
    *tmp = NULL;
  }
  for (int i = 0; i < d->nbuf; i++)
    bcast_floats(L, "DataParallel:broadcast_parameters", d->bufs[i]->data, d->bufs[i]->numel, root);
#else
  (void)d;
  (void)root;
#endif
  return 0;
}

/* dp:allreduce_gradients([n]) -> samples (or ranks): without n every rank's
 * gradient counts equally (the mean over ranks); with n (this rank's batch
 * size) the result is the sample-weighted mean sum(n_r g_r) / sum(n_r), which
 * equals one rank's gradient over the whole global batch even when the last
 * batches differ in size. Returns sum(n_r), or the number of ranks.
 * The gradients are summed in place in the flat buffer; when every rank has
 * the same n (all but an uneven last batch) the weights cancel and one pass
 * scales by 1/ranks; otherwise a pass scales by n before the sum and one by
 * 1/sum(n_r) after it. After loss_scale(n) the gradients are already
 * weighted: the sum is all (n may then be omitted). */
/* The sample count at narg (absent: loss_scale's, or 1), checked. */
static lua_Integer check_count(lua_State *L, ldp *d, int narg, int *weighted) {
  *weighted = !lua_isnoneornil(L, narg);
  lua_Integer n = *weighted ? luaL_checkinteger(L, narg) : d->scaled ? d->scaled_n : 1;
  if (n < 0 || n > (1 << 24))
    luaL_argerror(L, narg, lua_pushfstring(L, "sample count must be in 0..16777216, got %I", n));
  if (d->scaled && n != d->scaled_n)
    luaL_argerror(L, narg, lua_pushfstring(L, "sample count %I differs from the %I given to loss_scale this step", n,
                                           d->scaled_n));
  return n;
}

/* allreduce_gradients' work with the count at narg; pushes its result. */
static int reduce_gradients(lua_State *L, ldp *d, int narg) {
  int weighted;
  lua_Integer n = check_count(L, d, narg, &weighted);
  int scaled = d->scaled;
  d->scaled = 0;
  int r, size;
  int active = sl_lua_dist_info(&r, &size);
  double t0 = now();
  gather_grads(d);
  float *f = d->flat->data;
  double t1 = now();
  int same_n = 1;
#ifdef SELUT_MPI
  if (active) { /* n is sent as -1 after loss_scale, so every rank sees a disagreement on that */
    int64_t lo, hi;
    check_same_numel_n(L, "DataParallel:allreduce_gradients", d->total + 1, scaled ? -1 : (int64_t)n, &lo, &hi);
    if ((lo < 0) != (hi < 0))
      return luaL_error(L, "selut.dist.DataParallel:allreduce_gradients: some ranks called loss_scale this step and "
                           "others did not (every rank must)");
    same_n = lo == hi;
  }
#endif
  double t2 = now();
  if (weighted && !same_n) scale_floats(f, d->total, (float)n);
  f[d->total] = (float)n; /* exact: n <= 2^24 */
  double t3 = now();
#ifdef SELUT_MPI
  if (active) allreduce_floats(L, "DataParallel:allreduce_gradients", f, d->total + 1, SL_MPI_SUM);
#endif
  (void)active;
  double t4 = now();
  float count = weighted || scaled ? f[d->total] : (float)size;
  if (!(count > 0)) return luaL_error(L, "selut.dist.DataParallel:allreduce_gradients: no samples on any rank");
  float scale = scaled ? 1.0f : weighted && !same_n ? 1.0f / count : 1.0f / (float)size;
  if (scale != 1.0f) scale_floats(f, d->total, scale);
  scatter_grads(d);
  d->pack_seconds += (t1 - t0) + (t3 - t2) + (now() - t4);
  d->comm_seconds += (t2 - t1) + (t4 - t3);
  d->steps++;
  lua_pushinteger(L, weighted || scaled ? (lua_Integer)count : size);
  return 1;
}

static int dp_allreduce_gradients(lua_State *L) {
  ldp *d = checkdp(L, 1);
  if (d->shared)
    return luaL_error(L, "selut.dist.DataParallel:allreduce_gradients: this DataParallel steps its optimizer "
                         "itself since the first dp:step(opt) (parameters shared by the ranks of this machine): "
                         "keep calling dp:step(opt)");
  return reduce_gradients(L, d, 2);
}

#ifdef SELUT_MPI
static const char dp_owner[] = "selut.dist.DataParallel:step";

/* Ends with a full barrier; fences make the other ranks' plain stores to the
 * segment visible (MPI orders the messages, not our memory). */
static void shared_barrier(lua_State *L) {
  atomic_thread_fence(memory_order_seq_cst);
  MPI_CHECK(L, "DataParallel:step", "MPI_Barrier", mpi()->barrier());
  atomic_thread_fence(memory_order_seq_cst);
}

/* The optimizer must hold exactly DataParallel's parameters, in order. */
static const char *optim_matches(ldp *d, struct sl_optim *o) {
  if (sl_optim_param_count(o) != d->n) return "the optimizer holds other parameters than DataParallel";
  for (int i = 0; i < d->n; i++)
    if (sl_optim_param(o, i) != d->params[i]) return "the optimizer holds other parameters than DataParallel";
  return NULL;
}

/* Every tensor that moves into the segment must be movable (not a view
 * sharing its storage with another, not a wrapped host buffer). */
static int movable(const sl_tensor *t) { return sl_tensor_storage_refcount(t) == 1 && sl_tensor_owns_storage(t); }

/* Collective: all ranks call it in their first dp:step. Decides together
 * whether the shared segment is used; on any failure every rank keeps the
 * allreduce path (d->shared_why says why). */
static void shared_setup(lua_State *L, ldp *d, struct sl_optim *o) {
  d->shared_tried = 1;
  int r = 0, size = 1;
  mpi()->rank_size(&r, &size);
  int kinds = sl_optim_state_kinds(o);
  const char *why = NULL;
  const char *env = getenv("SELUT_DIST_SHARED");
  if (env && strcmp(env, "0") == 0) why = "SELUT_DIST_SHARED=0";
  if (size > 64) why = "more than 64 ranks";
  for (int i = 0; !why && i < d->n; i++) {
    if (!movable(d->params[i])) why = "a parameter shares its storage with another view";
    for (int k = 0; !why && k < kinds; k++)
      if (!movable(sl_optim_state_tensor(o, kinds * i + k, NULL))) why = "an optimizer state tensor is a view";
  }
  d->seg = (d->total + 15) / 16 * 16;
  size_t floats = (size_t)d->seg * (size_t)(1 + kinds + size);
  size_t bytes = floats * sizeof(float);
  /* agree on the machine and on "no reason against it" (MAX of {key, -key, bad}) */
  long long v[3] = {sl_shm_node_key(), -sl_shm_node_key(), why != NULL};
  MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", mpi()->allreduce(v, 3, SL_MPI_LONG_LONG, SL_MPI_MAX));
  if (!why && v[2]) why = "another rank cannot share its parameters";
  if (!why && v[0] != -v[1]) why = "the ranks are on more than one machine";
  if (why) {
    d->shared_why = why;
    return;
  }
  /* rank 1 creates the segment, the others open it by the name made from
   * rank 1's pid and serial (broadcast) */
  static atomic_llong serial;
  long long id[3] = {0, (long long)getpid(), atomic_fetch_add(&serial, 1)};
  char name[96];
  float *base = NULL;
  if (r == 0) {
    d->swept = sl_shm_sweep_stale(); /* debris of a job that died while setting up */
    sl_shm_name(name, sizeof name, id[1], id[2]);
    base = sl_shm_map(name, bytes, 1);
    id[0] = base != NULL;
  }
  MPI_CHECK(L, "DataParallel:step", "MPI_Bcast", mpi()->bcast(id, 3, SL_MPI_LONG_LONG, 0));
  if (r != 0) {
    sl_shm_name(name, sizeof name, id[1], id[2]);
    base = id[0] ? sl_shm_map(name, bytes, 0) : NULL;
  }
  /* the mapping counts against this state's memory limit like the private
   * parameters, state and gradients it replaces (they are freed below) */
  sl_mem_account *charged = NULL;
  long long ok = base != NULL;
  if (base && sl_mem_charge(bytes, &charged) != SL_OK) {
    sl_shm_unmap(base, bytes);
    base = NULL;
    ok = -1;
  }
  /* 1 everywhere, else the worst: -1 a rank's memory limit, 0 a mapping failed */
  MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", mpi()->allreduce(&ok, 1, SL_MPI_LONG_LONG, SL_MPI_MIN));
  if (r == 0 && id[0]) sl_shm_unlink(name); /* every rank has mapped it (or given up): the name can go */
  if (ok != 1) {
    if (base) {
      sl_shm_unmap(base, bytes);
      sl_mem_credit(charged, bytes);
    }
    d->shared_why = ok < 0 ? "the shared segment would take a rank over its memory limit (selut.set_memory_limit)"
                           : "no shared-memory segment (shm_open, posix_fallocate or mmap failed on a rank: "
                             "/dev/shm too small?)";
    return;
  }
  if (!(d->seg_t = sl_shm_wrap(base, bytes, charged))) sl_lua_error(L);
  d->P = base;
  d->S0 = kinds >= 1 ? base + d->seg : NULL;
  d->S1 = kinds >= 2 ? base + 2 * d->seg : NULL;
  d->G = base + (size_t)(1 + kinds) * (size_t)d->seg;
  /* rank 1's weights and optimizer state become everyone's: it copies them
   * in, the others then point at them without copying */
  unsigned flags = r == 0 ? 0 : SL_REHOME_NOCOPY;
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0) != (r == 0)) {
      shared_barrier(L);
      continue;
    }
    for (int i = 0; i < d->n; i++) {
      int64_t off = (int64_t)(d->P - base) + d->offset[i];
      sl_lua_check(L, sl_tensor_rehome_ex(d->params[i], d->seg_t, off, flags));
      for (int k = 0; k < kinds; k++)
        sl_lua_check(L, sl_tensor_rehome_ex(sl_optim_state_tensor(o, kinds * i + k, NULL), d->seg_t,
                                            (int64_t)(k + 1) * d->seg + d->offset[i], flags));
    }
  }
  /* this rank's gradients move into its own slot (out of d->flat) */
  int64_t gbase = (int64_t)(d->G - base) + (int64_t)r * d->seg;
  for (int i = 0; i < d->n; i++)
    sl_lua_check(L, sl_tensor_rehome_ex(d->grads[i], d->seg_t, gbase + d->offset[i], SL_REHOME_DETACH));
  /* the flat buffer is no longer read (allreduce_gradients refuses now):
   * keep a one-float stand-in (d->flat marks the object open) and free the rest */
  int64_t one = 1;
  sl_tensor *stub = sl_tensor_empty(1, &one);
  if (stub) {
    sl_tensor_release(d->flat);
    d->flat = stub;
  }
  sl_optim_set_external(o, dp_owner);
  d->opt = o;
  d->shared_rank = r;
  d->shared = 1;
}

/* The shared step: after a barrier (every rank's gradients are complete),
 * this rank sums the ranks' gradients over its slice of the parameters, in
 * rank order, into its own gradient slot, steps that slice of P and S, and
 * a second barrier ends the step (nobody reads P or writes a gradient
 * before every slice is done). Returns sum(n_r) (or the rank count). */
static lua_Integer shared_step(lua_State *L, ldp *d, struct sl_optim *o, int weighted, lua_Integer n) {
  int r = 0, size = 1;
  mpi()->rank_size(&r, &size);
  float coef_buf[64], *coef = NULL;
  lua_Integer result = size;
  double t0 = now();
  if (d->scaled) { /* loss_scale weighted the gradients already: a plain sum */
    result = (lua_Integer)d->scaled_sum;
    shared_barrier(L);
  } else { /* everyone's n (the allreduce is the first barrier too) */
    long long counts[64] = {0};
    counts[r] = weighted ? (long long)n : 1;
    atomic_thread_fence(memory_order_seq_cst);
    MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", mpi()->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
    atomic_thread_fence(memory_order_seq_cst);
    long long sum = 0;
    for (int q = 0; q < size; q++) sum += counts[q];
    if (sum <= 0) return luaL_error(L, "selut.dist.DataParallel:step: no samples on any rank");
    for (int q = 0; q < size; q++) coef_buf[q] = (float)((double)counts[q] / (double)sum);
    coef = coef_buf;
    result = weighted ? (lua_Integer)sum : size;
  }
  d->scaled = 0;
  double t1 = now();
  size_t a = (size_t)((d->total * r / size + 15) / 16 * 16), b = (size_t)((d->total * (r + 1) / size + 15) / 16 * 16);
  if (b > (size_t)d->total) b = (size_t)d->total;
  if (a > b) a = b;
  float *in[64];
  for (int q = 0; q < size; q++) in[q] = d->G + (size_t)q * (size_t)d->seg;
  float *mine = in[r]; /* this rank's slice of its own gradient takes the sum: the step reads it there */
  sl_shm_sum(mine, in, coef, size, a, b);
  sl_lua_check(L, sl_optim_step_flat(o, d->P + a, mine + a, d->S0 ? d->S0 + a : NULL, d->S1 ? d->S1 + a : NULL,
                                     b - a));
  double t2 = now();
  shared_barrier(L);
  d->comm_seconds += (t1 - t0) + (now() - t2);
  d->pack_seconds += t2 - t1; /* the summing (the step's own work is in there too) */
  d->steps++;
  return result;
}
#endif

/* dp:step(opt[, n]): the gradients' mean over the ranks (as
 * allreduce_gradients(n)) and then opt:step(). On ranks of one machine the
 * first call moves the parameters, the optimizer state and the gradients
 * into one shared segment and from then on each rank steps its slice (the
 * gradients are then left unspecified: each rank's slice holds the sum);
 * on several machines (or when that is not possible) it is
 * allreduce_gradients + opt:step(). Returns what allreduce_gradients
 * returns. */
static int dp_step(lua_State *L) {
  ldp *d = checkdp(L, 1);
  struct sl_optim *o = sl_lua_checkoptim(L, 2);
#ifdef SELUT_MPI
  if (dist_active()) {
    if (!d->shared_tried) {
      const char *why = optim_matches(d, o);
      if (why) return luaL_argerror(L, 2, why);
      shared_setup(L, d, o);
      if (d->shared) {
        lua_pushvalue(L, 2);
        lua_setiuservalue(L, 1, 1);
      }
    }
    if (d->shared) {
      if (o != d->opt) return luaL_argerror(L, 2, "not the optimizer of this DataParallel's first step");
      int weighted;
      lua_Integer n = check_count(L, d, 3, &weighted);
      lua_pushinteger(L, shared_step(L, d, o, weighted, n));
      return 1;
    }
  }
#endif
  reduce_gradients(L, d, 3);
  sl_lua_check(L, sl_optim_step(o));
  return 1;
}

/* dp:loss_scale(n) -> n / sum(n_r) over the ranks (one tiny allreduce).
 * Multiplying the loss gradient by it before backward makes each rank's
 * parameter gradients n_r g_r / sum(n_r), so the next allreduce_gradients
 * only sums them in place: no pass over the gradients at all. */
static int dp_loss_scale(lua_State *L) {
  ldp *d = checkdp(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 0 || n > (1 << 24))
    return luaL_argerror(L, 2, lua_pushfstring(L, "sample count must be in 0..16777216, got %I", n));
  long long sum = (long long)n;
#ifdef SELUT_MPI
  if (dist_active())
    MPI_CHECK(L, "DataParallel:loss_scale", "MPI_Allreduce", mpi()->allreduce(&sum, 1, SL_MPI_LONG_LONG, SL_MPI_SUM));
#endif
  if (sum <= 0) return luaL_error(L, "selut.dist.DataParallel:loss_scale: no samples on any rank");
  d->scaled = 1;
  d->scaled_n = n;
  d->scaled_sum = sum;
  lua_pushnumber(L, (lua_Number)n / (lua_Number)sum);
  return 1;
}

/* The iterator of dp:batches on several ranks: upvalues 1 = the dataset's
 * iterator, 2 = its state, 3 = a long long[size] scratch. Each batch sets
 * this state's sample offset to the rows of the global batch held by the
 * earlier ranks (their batch sizes: one tiny allreduce), so dropout masks
 * are the one-process masks of this rank's rows; 0 again at the end. */
static int dp_batches_next(lua_State *L) {
  lua_settop(L, 2);
  int top = 2;
  lua_pushvalue(L, sl_lua_upvalueindex(1));
  lua_pushvalue(L, sl_lua_upvalueindex(2));
  lua_pushvalue(L, top >= 2 ? 2 : top + 1); /* the control variable (nil when absent) */
  lua_call(L, 2, LUA_MULTRET);
  int nres = lua_gettop(L) - top;
  sl_lua_ctx *ctx = sl_lua_context(L);
  if (nres == 0 || lua_isnil(L, top + 1)) {
    ctx->sample_offset = 0;
    return nres;
  }
#ifdef SELUT_MPI
  sl_tensor *xb = sl_lua_totensor(L, top + 1);
  lua_Integer n = xb ? (xb->ndim > 0 ? xb->shape[0] : 1) : luaL_len(L, top + 1);
  int r = 0, size = 1;
  mpi()->rank_size(&r, &size);
  long long *counts = lua_touserdata(L, sl_lua_upvalueindex(3));
  memset(counts, 0, (size_t)size * sizeof *counts);
  counts[r] = (long long)n;
  MPI_CHECK(L, "DataParallel:batches", "MPI_Allreduce", mpi()->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
  int64_t k = 0;
  for (int q = 0; q < r; q++) k += counts[q];
  ctx->sample_offset = k;
#endif
  return nres;
}

/* dp:batches(ds, size[, opts]) -> ds:batches(size, opts + {shard = true}),
 * after copying the main rank's generator to every rank: all ranks draw the
 * same permutation and then the same dropout keys as one process would. On
 * several ranks the iterator also sets the sample offset of each batch
 * (dp_batches_next), so every rank applies the one-process dropout mask to
 * its rows of the global batch. */
static int dp_batches(lua_State *L) {
  checkdp(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 4);
  sl_lua_ctx *ctx = sl_lua_context(L);
  int r, size;
  int active = sl_lua_dist_info(&r, &size);
#ifdef SELUT_MPI
  if (active)
    MPI_CHECK(L, "DataParallel:batches", "MPI_Bcast", mpi()->bcast(&ctx->rng, (int)sizeof ctx->rng, SL_MPI_BYTE, 0));
#endif
  (void)r;
  lua_newtable(L); /* 5: opts + shard */
  if (!lua_isnil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_settable(L, 5);
    }
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, 5, "shard");
  int t2 = lua_type(L, 2);
  if ((t2 != LUA_TUSERDATA && t2 != LUA_TTABLE) || lua_getfield(L, 2, "batches") != LUA_TFUNCTION) /* 6 */
    return luaL_typeerror(L, 2, "selut.data.Dataset");
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 5);
  int base = lua_gettop(L) - 4;
  lua_call(L, 3, LUA_MULTRET); /* the permutation is drawn here */
  int nres = lua_gettop(L) - base;
  ctx->sample_offset = 0;
  if (!active || size < 2 || nres < 1) return nres;
  /* wrap the iterator (the state and initial value are its upvalues; the
   * closing value stays) */
  lua_settop(L, base + (nres < 4 ? 4 : nres));
  lua_pushvalue(L, base + 1);
  lua_pushvalue(L, base + 2);
  lua_newuserdatauv(L, (size_t)size * sizeof(long long), 0);
  sl_lua_pushcclosure(L, dp_batches_next, 3);
  lua_replace(L, base + 1);
  lua_pushnil(L);
  lua_replace(L, base + 2);
  return lua_gettop(L) - base;
}

/* dp:stats() -> {steps=, bytes=, numel=, copied=, pack_seconds=, comm_seconds=};
 * copied: gradients not living in the flat buffer (copied in and out). */
static int dp_stats(lua_State *L) {
  ldp *d = checkdp(L, 1);
  int copied = 0; /* gradients not where the reduction reads them */
  const float *home = d->shared ? d->G + (size_t)d->shared_rank * (size_t)d->seg : d->flat->data;
  for (int i = 0; i < d->n; i++) copied += d->grads[i]->data != home + d->offset[i];
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, copied);
  lua_setfield(L, -2, "copied");
  lua_pushinteger(L, (lua_Integer)d->steps);
  lua_setfield(L, -2, "steps");
  lua_pushinteger(L, (lua_Integer)((d->total + 1) * (int64_t)sizeof(float)));
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, (lua_Integer)d->total);
  lua_setfield(L, -2, "numel");
  lua_pushnumber(L, d->pack_seconds);
  lua_setfield(L, -2, "pack_seconds");
  lua_pushnumber(L, d->comm_seconds);
  lua_setfield(L, -2, "comm_seconds");
  lua_pushboolean(L, d->shared);
  lua_setfield(L, -2, "shared");
  lua_pushinteger(L, d->swept);
  lua_setfield(L, -2, "swept");
  lua_pushinteger(L, d->nbn);
  lua_setfield(L, -2, "sync_batchnorm");
  if (d->shared_why) {
    lua_pushstring(L, d->shared_why);
    lua_setfield(L, -2, "shared_off");
  }
  return 1;
}

static int dp_tostring(lua_State *L) {
  ldp *d = luaL_checkudata(L, 1, SL_LUA_DP);
  if (!d->flat)
    lua_pushliteral(L, "DataParallel (closed)");
  else
    lua_pushfstring(L, "DataParallel(%d tensors, %I floats)", d->n, (lua_Integer)d->total);
  return 1;
}

static const luaL_Reg dist_funcs[] = {
    {"init", dist_init},           {"finalize", dist_finalize},   {"abort", dist_abort},
    {"rank", dist_rank},           {"size", dist_size},           {"is_main", dist_is_main},
    {"barrier", dist_barrier},     {"allreduce", dist_allreduce}, {"broadcast", dist_broadcast},
    {"DataParallel", dist_dataparallel}, {"sample_offset", dist_sample_offset}, {NULL, NULL}};

static const luaL_Reg dp_methods[] = {{"broadcast_parameters", dp_broadcast_parameters},
                                      {"allreduce_gradients", dp_allreduce_gradients},
                                      {"loss_scale", dp_loss_scale},
                                      {"step", dp_step},
                                      {"batches", dp_batches},
                                      {"stats", dp_stats},
                                      {NULL, NULL}};

static const luaL_Reg dp_metamethods[] = {
    {"__gc", dp_gc}, {"__close", dp_gc}, {"__tostring", dp_tostring}, {NULL, NULL}};

void sl_lua_open_dist(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_DP)) {
    sl_lua_setfuncs(L, dp_metamethods);
    sl_lua_newlib(L, dp_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  sl_lua_newlib(L, dist_funcs);
#ifdef SELUT_MPI
  char path[PATH_MAX + 64]; /* the glue is found (not loaded: init loads it) */
  lua_pushboolean(L, atomic_load(&glue) != NULL || glue_find(path, sizeof path));
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "available");
  lua_setfield(L, -2, "dist");
}
