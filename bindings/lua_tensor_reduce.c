/*
 * selut.tensor, reductions: over all elements (a Lua number) or along one
 * dim (a tensor; keepdim), max/min with indices, norms, logsumexp, softmax
 * and log_softmax. Kernels: core/tensor/reduce.c.
 */
#include <math.h>
#include <string.h>

#include "sl_lua.h"

/* Reads the options after the dim: a boolean (keepdim) or a table
 * {keepdim = , unbiased = } (either may come first). */
static int read_opts(lua_State *L, int arg, bool *keepdim, sl_reduce_opts *o) {
  int table = 0; /* the options table's position, 0 when there is none */
  for (int i = arg; i <= arg + 1; i++) {
    int t = lua_type(L, i);
    if (t == LUA_TNONE || t == LUA_TNIL) continue;
    if (t == LUA_TBOOLEAN) {
      *keepdim = lua_toboolean(L, i);
    } else if (t == LUA_TTABLE) {
      table = i;
      lua_pushnil(L);
      while (lua_next(L, i)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (strcmp(k, "out") == 0) { /* read by the caller (sl_lua_outfield) */
          lua_pop(L, 1);
          continue;
        }
        bool *dst = strcmp(k, "keepdim") == 0 ? keepdim : strcmp(k, "unbiased") == 0 ? &o->unbiased : NULL;
        if (!dst) luaL_argerror(L, i, lua_pushfstring(L, "unknown option '%s' (expected keepdim, unbiased, out)", k));
        if (!lua_isboolean(L, -1))
          luaL_argerror(L, i, lua_pushfstring(L, "option '%s' must be a boolean, got %s", k, luaL_typename(L, -1)));
        *dst = lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
    } else {
      luaL_argerror(L, i, lua_pushfstring(L, "keepdim (boolean) or options table expected, got %s", luaL_typename(L, i)));
    }
  }
  return table;
}

/* out= of a reduction along dim d (the options table at position tbl):
 * writes into out and pushes it. */
static int reduce_out(lua_State *L, sl_reduce_op op, sl_tensor *t, int d, bool keepdim, const sl_reduce_opts *o,
                      sl_tensor *out, int tbl) {
  const char *name = sl_reduce_name(op);
  if (op == SL_RMAX || op == SL_RMIN)
    return luaL_error(L, "%s: out= is not supported along a dim (the result is values and indices)", name);
  int nd;
  int64_t shape[SL_MAX_DIMS];
  sl_lua_check(L, sl_reduce_dim_shape(name, t, d, keepdim, &nd, shape));
  sl_lua_checkout(L, out, name, nd, shape, t, NULL, false);
  sl_lua_check(L, sl_reduce(op, out, NULL, t, d, o));
  if (op == SL_RARGMAX || op == SL_RARGMIN) sl_lua_check(L, sl_add_scalar(out, out, 1.0f)); /* 1-based */
  sl_tensor_bump_version(out);
  lua_getfield(L, tbl, "out");
  return 1;
}

/* Pushes the result box(es) of reducing t along dim d. */
static int reduce_dim(lua_State *L, sl_reduce_op op, sl_tensor *t, int d, bool keepdim, const sl_reduce_opts *o,
                      bool rec) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  sl_lua_check(L, sl_reduce_dim_shape(sl_reduce_name(op), t, d, keepdim, &nd, shape));
  bool with_idx = op == SL_RMAX || op == SL_RMIN;
  sl_tensor **box = sl_lua_newtensor(L), **ibox = with_idx ? sl_lua_newtensor(L) : NULL;
  if (!(*box = rec ? sl_ag_tensor_empty(nd, shape) : sl_tensor_empty(nd, shape))) /* recorded: pooled */
    return sl_lua_error(L);
  if (ibox && !(*ibox = sl_tensor_empty(nd, shape))) return sl_lua_error(L);
  sl_lua_check(L, sl_reduce(op, *box, ibox ? *ibox : NULL, t, d, o));
  if (rec) /* before the indices turn 1-based: max/min's gradient goes to them */
    sl_lua_check(L, op == SL_RSUM || op == SL_RMEAN ? sl_ag_record_sum(*box, t, d, op == SL_RMEAN)
                                                    : sl_ag_record_reduce(op, *box, t, d, o, ibox ? *ibox : NULL));
  /* indices are 1-based in Lua */
  if (op == SL_RARGMAX || op == SL_RARGMIN) sl_lua_check(L, sl_add_scalar(*box, *box, 1.0f));
  if (ibox) sl_lua_check(L, sl_add_scalar(*ibox, *ibox, 1.0f));
  return ibox ? 2 : 1;
}

/* A reduction of a tensor that records: always tensors (a 1-element one
 * over all elements: a Lua number has no history to backward through). */
static int reduce_recorded(lua_State *L, sl_reduce_op op, sl_tensor *t, int d, bool keepdim, const sl_reduce_opts *o) {
  if (d >= 0) return reduce_dim(L, op, t, d, keepdim, o, true);
  int64_t one = 1;
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_ag_tensor_empty(1, &one))) return sl_lua_error(L); /* pooled (sl_lua_newresult) */
  double v;
  sl_lua_check(L, sl_reduce_all(op, t, o, &v, NULL));
  (*box)->data[0] = (float)v;
  sl_lua_check(L, op == SL_RSUM || op == SL_RMEAN ? sl_ag_record_sum(*box, t, -1, op == SL_RMEAN)
                                                  : sl_ag_record_reduce(op, *box, t, -1, o, NULL));
  return 1;
}

/* x:op([dim][, keepdim | opts]) */
static int reduce(lua_State *L, sl_reduce_op op) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_reduce_opts o = {true, 2.0};
  bool keepdim = false;
  const char *name = sl_reduce_name(op);
  if (op != SL_RARGMAX && op != SL_RARGMIN && sl_lua_recording(L, t, NULL)) { /* arg*: no gradient */
    int all = lua_isnoneornil(L, 2) || lua_istable(L, 2);
    int d = all ? -1 : sl_lua_checkdim(L, 2, t);
    int tbl = read_opts(L, all ? 2 : 3, &keepdim, &o);
    sl_tensor *out = tbl ? sl_lua_outfield(L, tbl, name) : NULL;
    if (out) sl_lua_checkout(L, out, name, out->ndim, out->shape, t, NULL, false); /* raises: autograd */
    return reduce_recorded(L, op, t, d, keepdim, &o);
  }
  if (lua_isnoneornil(L, 2) || lua_istable(L, 2)) {
    int tbl = read_opts(L, 2, &keepdim, &o);
    if (tbl && sl_lua_outfield(L, tbl, name))
      return luaL_error(L, "%s: out= needs a dim (over all elements the result is a number)", name);
    double v;
    int64_t at;
    sl_lua_check(L, sl_reduce_all(op, t, &o, &v, &at));
    if (op == SL_RARGMAX || op == SL_RARGMIN) lua_pushinteger(L, (lua_Integer)(at + 1));
    else lua_pushnumber(L, (lua_Number)v);
    return 1;
  }
  int d = sl_lua_checkdim(L, 2, t);
  int tbl = read_opts(L, 3, &keepdim, &o);
  sl_tensor *out = tbl ? sl_lua_outfield(L, tbl, name) : NULL;
  if (out) return reduce_out(L, op, t, d, keepdim, &o, out, tbl);
  return reduce_dim(L, op, t, d, keepdim, &o, false);
}

static int red_sum(lua_State *L) { return reduce(L, SL_RSUM); }
static int red_mean(lua_State *L) { return reduce(L, SL_RMEAN); }
static int red_prod(lua_State *L) { return reduce(L, SL_RPROD); }
static int red_var(lua_State *L) { return reduce(L, SL_RVAR); }
static int red_std(lua_State *L) { return reduce(L, SL_RSTD); }
static int red_max(lua_State *L) { return reduce(L, SL_RMAX); }
static int red_min(lua_State *L) { return reduce(L, SL_RMIN); }
static int red_argmax(lua_State *L) { return reduce(L, SL_RARGMAX); }
static int red_argmin(lua_State *L) { return reduce(L, SL_RARGMIN); }
static int red_logsumexp(lua_State *L) { return reduce(L, SL_RLOGSUMEXP); }

/* x:norm([p[, dim[, keepdim]]]): p = 2 by default, math.huge for inf. */
static int red_norm(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_reduce_opts o = {true, luaL_optnumber(L, 2, 2.0)};
  if (isnan(o.p)) return luaL_argerror(L, 2, "norm order p must not be NaN");
  bool keepdim = false;
  bool rec = sl_lua_recording(L, t, NULL);
  if (rec && lua_isnoneornil(L, 3)) return reduce_recorded(L, SL_RNORM, t, -1, false, &o);
  if (lua_isnoneornil(L, 3)) {
    double v;
    sl_lua_check(L, sl_reduce_all(SL_RNORM, t, &o, &v, NULL));
    lua_pushnumber(L, (lua_Number)(float)v);
    return 1;
  }
  int d = sl_lua_checkdim(L, 3, t);
  int tbl = read_opts(L, 4, &keepdim, &o);
  sl_tensor *out = tbl ? sl_lua_outfield(L, tbl, "norm") : NULL;
  if (out) return reduce_out(L, SL_RNORM, t, d, keepdim, &o, out, tbl);
  return reduce_dim(L, SL_RNORM, t, d, keepdim, &o, rec);
}

static int softmax_common(lua_State *L, bool log) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2))
    return luaL_argerror(L, 2, lua_pushfstring(L, "dimension expected (%s over which dim?)", log ? "log_softmax" : "softmax"));
  int d = sl_lua_checkdim(L, 2, t);
  const char *name = log ? "log_softmax" : "softmax";
  sl_tensor *out = sl_lua_optout(L, 3, name);
  if (out) { /* out=: written in place (it may be t itself), returned */
    sl_lua_checkout(L, out, name, t->ndim, t->shape, t, NULL, true);
    sl_lua_check(L, sl_softmax(out, t, d, log));
    sl_tensor_bump_version(out);
    lua_getfield(L, 3, "out");
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_empty(t->ndim, t->shape))) return sl_lua_error(L);
  sl_lua_check(L, sl_softmax(*box, t, d, log));
  if (sl_lua_recording(L, t, NULL)) sl_lua_check(L, sl_ag_record_softmax(*box, t, d, log));
  return 1;
}
static int red_softmax(lua_State *L) { return softmax_common(L, false); }
static int red_log_softmax(lua_State *L) { return softmax_common(L, true); }

#define FN(n) {#n, red_##n}
static const luaL_Reg reduce_methods[] = {
    FN(sum), FN(mean), FN(prod), FN(var), FN(std), FN(max), FN(min), FN(argmax), FN(argmin),
    FN(logsumexp), FN(norm), FN(softmax), FN(log_softmax), {NULL, NULL}};
#undef FN

void sl_lua_open_tensor_reduce(lua_State *L) { sl_lua_tensor_extend(L, reduce_methods, NULL, reduce_methods); }
