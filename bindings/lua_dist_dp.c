/*
 * selut.dist.DataParallel (docs/distributed.md): one flat gradient buffer per
 * model, so a step averages every gradient in one allreduce, and the
 * initial weights come from the main rank in one broadcast. What to
 * synchronize is found in Lua (scripts/dist.lua, over the walker); the
 * bookkeeping and the collectives (the allreduce, the broadcast, the
 * shared-memory step of ranks on one machine) are core/dist/dp.c and
 * dp_shared.c. This file: the object, its arguments and its errors.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

/* ---- DataParallel ---- */

static sl_dp *checkdp(lua_State *L, int arg) {
  sl_dp *d = luaL_checkudata(L, arg, SL_LUA_DP);
  if (!d->flat) luaL_error(L, "attempt to use a closed DataParallel");
  return d;
}

/* Parameters, optimizer state and gradients leave the shared segment (the
 * optimizer, user value 1, may have been collected first). */
static void unshare(lua_State *L, sl_dp *d) {
  if (!d->shared) return;
  lua_getiuservalue(L, 1, 1);
  sl_optim *o = sl_lua_tooptim(L, -1);
  lua_pop(L, 1);
  sl_dp_unshare(d, o);
}

static int dp_gc(lua_State *L) {
  sl_dp *d = luaL_checkudata(L, 1, SL_LUA_DP);
  unshare(L, d);
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
  sl_dp_free(d);
  return 0;
}

/* The net's buffers at arg (m:buffers() -> {{tensor=}, ...}; false: it has
 * no buffers method), kept for broadcast_parameters. */
static void dp_keep_buffers(lua_State *L, sl_dp *d, int arg) {
  if (lua_type(L, arg) == LUA_TBOOLEAN && !lua_toboolean(L, arg)) return;
  if (lua_type(L, arg) != LUA_TTABLE) luaL_argerror(L, 1, "buffers() did not return a table");
  lua_Integer nb = luaL_len(L, arg);
  if (nb < 0 || nb > INT_MAX / 2) luaL_argerror(L, 1, "too many buffers");
  if (nb > 0 && !(d->bufs = calloc((size_t)nb, sizeof *d->bufs)))
    luaL_error(L, "selut.dist.DataParallel: out of memory");
  for (lua_Integer i = 1; i <= nb; i++) {
    lua_geti(L, arg, i);
    sl_tensor *t = NULL;
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_getfield(L, -1, "tensor");
      t = sl_lua_totensor(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!t) luaL_argerror(L, 1, lua_pushfstring(L, "buffer %I must be {tensor = tensor, ...}", i));
    d->bufs[d->nbuf++] = sl_tensor_retain(t);
  }
}

/* DataParallel(net | {{param=, grad=}, ...}[, {sync_batchnorm = false}]),
 * called by scripts/dist.lua with what it found on the net: 3 whether net
 * is a module, 4 its parameters() (a module) or nil, 5 its buffers() (or
 * false), 6 the modules whose batch statistics are synchronized (or nil). */
static int dist_dataparallel(lua_State *L) {
  luaL_checkany(L, 1);
  sl_lua_onlyboolopt(L, 2, "sync_batchnorm", 0);
  lua_settop(L, 6);
  int t1 = lua_type(L, 1);
  luaL_argexpected(L, t1 == LUA_TTABLE || t1 == LUA_TUSERDATA, 1, "module or parameter list");
  int is_module = lua_toboolean(L, 3);
  if (!is_module) {
    luaL_argexpected(L, t1 == LUA_TTABLE, 1, "module or parameter list");
    lua_pushvalue(L, 1);
    lua_replace(L, 4);
  }
  const int list = 4;
  if (lua_type(L, list) != LUA_TTABLE) return luaL_argerror(L, 1, "parameters() did not return a table");
  lua_Integer n = luaL_len(L, list);
  if (n < 1 || n > INT_MAX / 2)
    return luaL_argerror(L, 1, lua_pushfstring(L, "expected a model with parameters, got %I parameters", n));
  sl_dp *d = lua_newuserdatauv(L, sizeof *d, 2); /* 7; user values: 1 the optimizer of dp:step, 2 synced modules */
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, SL_LUA_DP);
  if (sl_dp_init(d, (int)n) != SL_OK) return luaL_error(L, "selut.dist.DataParallel: out of memory");
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
    if (d->total > INT64_MAX - p->numel - 1) return luaL_argerror(L, 1, "too many parameter elements");
    sl_dp_set_param(d, (int)i - 1, p, g);
  }
  if (is_module) dp_keep_buffers(L, d, 5);
  if (lua_istable(L, 6)) { /* sync_batchnorm: the layers the walker found */
    for (lua_Integer i = 1; lua_geti(L, 6, i) != LUA_TNIL; i++) {
      sl_module *m = sl_lua_tomodule(L, -1);
      if (m) sl_lua_check(L, sl_module_set_reducer(m, sl_comm_bn_allreduce, NULL));
      d->nbn += m != NULL;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, 6);
    lua_setiuservalue(L, 7, 2);
  }
  sl_lua_check(L, sl_dp_alloc_flat(d));
  return 1;
}

/* dp:broadcast_parameters([root = 1]): every rank gets root's weights and
 * buffers (one broadcast for the weights, through a scratch buffer, one
 * per buffer); gradients are left as they are. A no-op in a single process. */
static int dp_broadcast_parameters(lua_State *L) {
  sl_dp *d = checkdp(L, 1);
  sl_lua_check(L, sl_dp_broadcast(d, sl_dist_check_root(L, 2)));
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
static lua_Integer check_count(lua_State *L, sl_dp *d, int narg, int *weighted) {
  *weighted = !lua_isnoneornil(L, narg);
  lua_Integer n = *weighted ? luaL_checkinteger(L, narg) : d->scaled ? d->scaled_n : 1;
  if (n < 0 || n > (1 << 24))
    luaL_argerror(L, narg, lua_pushfstring(L, "sample count must be in 0..16777216, got %I", n));
  if (d->scaled && n != d->scaled_n)
    luaL_argerror(L, narg, lua_pushfstring(L, "sample count %I differs from the %I given to loss_scale this step", n,
                                           (lua_Integer)d->scaled_n));
  return n;
}

/* allreduce_gradients' work with the count at narg; pushes its result. */
static int reduce_gradients(lua_State *L, sl_dp *d, int narg) {
  int weighted;
  lua_Integer n = check_count(L, d, narg, &weighted);
  int64_t result;
  sl_lua_check(L, sl_dp_allreduce(d, weighted, n, &result));
  lua_pushinteger(L, (lua_Integer)result);
  return 1;
}

static int dp_allreduce_gradients(lua_State *L) {
  sl_dp *d = checkdp(L, 1);
  if (d->shared)
    return luaL_error(L, "selut.dist.DataParallel:allreduce_gradients: this DataParallel steps its optimizer "
                         "itself since the first dp:step(opt) (parameters shared by the ranks of this machine): "
                         "keep calling dp:step(opt)");
  return reduce_gradients(L, d, 2);
}


/* dp:step(opt[, n]): the gradients' mean over the ranks (as
 * allreduce_gradients(n)) and then opt:step(). On ranks of one machine the
 * first call moves the parameters, the optimizer state and the gradients
 * into one shared segment and from then on each rank steps its slice (the
 * gradients are then left unspecified: each rank's slice holds the sum);
 * on several machines (or when that is not possible) it is
 * allreduce_gradients + opt:step(). Returns what allreduce_gradients
 * returns. */
static int dp_step(lua_State *L) {
  sl_dp *d = checkdp(L, 1);
  sl_optim *o = sl_lua_checkoptim(L, 2);
  if (sl_comm_active()) {
    if (!d->shared_tried) {
      const char *why = sl_dp_optim_matches(d, o);
      if (why) return luaL_argerror(L, 2, why);
      sl_lua_check(L, sl_dp_share(d, o));
      if (d->shared) {
        lua_pushvalue(L, 2);
        lua_setiuservalue(L, 1, 1);
      }
    }
    if (d->shared) {
      if (o != d->opt) return luaL_argerror(L, 2, "not the optimizer of this DataParallel's first step");
      int weighted;
      lua_Integer n = check_count(L, d, 3, &weighted);
      int64_t result;
      sl_lua_check(L, sl_dp_shared_step(d, o, weighted, n, &result));
      lua_pushinteger(L, (lua_Integer)result);
      return 1;
    }
  }
  reduce_gradients(L, d, 3);
  sl_lua_check(L, sl_optim_step(o));
  return 1;
}

/* dp:loss_scale(n) -> n / sum(n_r) over the ranks (one tiny allreduce).
 * Multiplying the loss gradient by it before backward makes each rank's
 * parameter gradients n_r g_r / sum(n_r), so the next allreduce_gradients
 * only sums them in place: no pass over the gradients at all. */
static int dp_loss_scale(lua_State *L) {
  sl_dp *d = checkdp(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 0 || n > (1 << 24))
    return luaL_argerror(L, 2, lua_pushfstring(L, "sample count must be in 0..16777216, got %I", n));
  double scale;
  sl_lua_check(L, sl_dp_loss_scale(d, n, &scale));
  lua_pushnumber(L, scale);
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
  sl_comm_glue()->rank_size(&r, &size);
  long long *counts = lua_touserdata(L, sl_lua_upvalueindex(3));
  memset(counts, 0, (size_t)size * sizeof *counts);
  counts[r] = (long long)n;
  MPI_CHECK(L, "DataParallel:batches", "MPI_Allreduce", sl_comm_glue()->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
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
  int active = sl_comm_info(&r, &size);
#ifdef SELUT_MPI
  if (active)
    MPI_CHECK(L, "DataParallel:batches", "MPI_Bcast", sl_comm_glue()->bcast(&ctx->rng, (int)sizeof ctx->rng, SL_MPI_BYTE, 0));
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
  sl_dp *d = checkdp(L, 1);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, sl_dp_copied(d));
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
  sl_dp *d = luaL_checkudata(L, 1, SL_LUA_DP);
  if (!d->flat)
    lua_pushliteral(L, "DataParallel (closed)");
  else
    lua_pushfstring(L, "DataParallel(%d tensors, %I floats)", d->n, (lua_Integer)d->total);
  return 1;
}

static const luaL_Reg dp_methods[] = {{"broadcast_parameters", dp_broadcast_parameters},
                                      {"allreduce_gradients", dp_allreduce_gradients},
                                      {"loss_scale", dp_loss_scale},
                                      {"step", dp_step},
                                      {"batches", dp_batches},
                                      {"stats", dp_stats},
                                      {NULL, NULL}};

static const luaL_Reg dp_metamethods[] = {
    {"__gc", dp_gc}, {"__close", dp_gc}, {"__tostring", dp_tostring}, {NULL, NULL}};

void sl_lua_open_dataparallel(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_DP)) {
    sl_lua_setfuncs(L, dp_metamethods);
    sl_lua_newlib(L, dp_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  sl_lua_pushcclosure(L, dist_dataparallel, 0);
  lua_setfield(L, -2, "DataParallel");
}
