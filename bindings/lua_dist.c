/*
 * selut.dist: data-parallel training over MPI (Open MPI), docs/distributed.md.
 * This file: collectives on tensors (allreduce, broadcast, barrier),
 * rank/size queries; selut.dist.DataParallel is lua_dist_dp.c, its setup
 * scripts/dist.lua. Compiled with MPI only when SELUT_MPI is defined
 * (make MPI=1, or pkg-config finds ompi-c); otherwise the collectives raise
 * "selut was built without MPI" and rank/size/is_main describe one process.
 * Ranks are 1-based in Lua (MPI's rank + 1), like every index in selut.
 *
 * Open MPI is loaded on first use, not at start-up: every MPI call goes
 * through the sl_mpi_api table of selut_mpi.so (bindings/mpi/, the only
 * object linked with libmpi), which selut.dist.init() loads with dlopen
 * (core/dist/comm.c, which also checks the collectives).
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
#include <stdio.h>

#include "dist.h"
#include "selut_lua.h"

#define SL_LUA_DIST_SENTINEL "selut.dist.Sentinel"
#define DIST_SENTINEL_KEY "selut.dist.sentinel" /* registry: this state's sentinel */

int sl_lua_dist_info(int *rank0, int *size) { return sl_comm_info(rank0, size); }

#ifdef SELUT_MPI
/* The glue, where MPI is known to be active (after sl_comm_active()). */
#define GLUE sl_comm_glue()
#endif

/* Raises unless MPI is built in and initialized. */
void sl_dist_need_init(lua_State *L, const char *fn) {
#ifdef SELUT_MPI
  if (!sl_comm_active()) {
    /* without the glue init could not help: say why it cannot load */
    if (!sl_comm_findable() && !sl_comm_load(fn)) sl_lua_error(L);
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
  if (s->armed && s->ended_ok && sl_comm_active()) {
    s->armed = 0;
    fflush(stdout);
    GLUE->finalize(); /* collective: every rank that ended normally gets here */
    return 0;
  }
  if (s->armed && sl_comm_active()) {
    int r = 0, size = 1;
    GLUE->rank_size(&r, &size);
    fprintf(stderr, "selut.dist: rank %d is ending without selut.dist.finalize() (an error or an early exit): "
                    "aborting the MPI job\n", r + 1);
    fflush(stderr);
    GLUE->abort(1); /* MPI_Abort: the documented failure path (docs/distributed.md) */
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
  const sl_mpi_api *m = sl_comm_load("init"); /* loads Open MPI */
  if (!m) return sl_lua_error(L);
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
  MPI_CHECK(L, "finalize", "MPI_Finalize", GLUE->finalize());
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
  GLUE->abort((int)code); /* MPI_Abort: ends every rank; does not return */
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
  MPI_CHECK(L, "barrier", "MPI_Barrier", GLUE->barrier());
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
  int64_t lo, hi;
  sl_lua_check(L, sl_comm_check_same_numel_n("allreduce", t->numel, 0, &lo, &hi));
  int mop = op == 2 ? SL_MPI_MAX : op == 3 ? SL_MPI_MIN : SL_MPI_SUM;
  sl_lua_check(L, sl_comm_allreduce_floats("allreduce", t->data, t->numel, mop));
  if (op == 1) {
    int r, n;
    GLUE->rank_size(&r, &n);
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
  int64_t lo, hi;
  sl_lua_check(L, sl_comm_check_same_numel_n("broadcast", t->numel, 0, &lo, &hi));
  sl_lua_check(L, sl_comm_bcast_floats("broadcast", t->data, t->numel, root));
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
  lua_pushboolean(L, sl_comm_findable()); /* the glue is found (not loaded: init loads it) */
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "available");
  lua_setfield(L, -2, "dist");
}
