/*
 * The helpers sl_lua.h declares that belong to no one area: the per-state
 * context (generator, seed, memory account), raising a core failure, the
 * options tables every area reads, shape and dim arguments. The tensor box
 * helpers (sl_lua_newtensor, sl_lua_checktensor, ...) are in lua_tensor.c.
 */
#include <math.h>
#include <string.h>

#include "sl_lua.h"

/* registry[&context_key] = the context: a light-userdata key is one pointer
 * hash away, where a string key is interned on every lookup (this runs in
 * every tensor-making call, every layer call and every tensor finalizer). */
static const char context_key = 0;

sl_lua_ctx *sl_lua_pushcontext(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &context_key) == LUA_TUSERDATA)
    return lua_touserdata(L, -1);
  lua_pop(L, 1);
  int generational = sl_lua_gc_probe(L); /* before the context exists: it may collect */
  sl_lua_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->young_gc = generational;
  c->seed = SL_LUA_DEFAULT_SEED;
  sl_rng_seed(&c->rng, c->seed);
  sl_lua_ctx_open_account(L, c);
  c->gc_limit = SL_LUA_GC_SLACK;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &context_key);
  return c;
}

sl_lua_ctx *sl_lua_context(lua_State *L) {
  sl_lua_ctx *c = sl_lua_pushcontext(L);
  lua_pop(L, 1); /* the registry keeps it alive */
  return c;
}

int sl_lua_error(lua_State *L) {
  const char *msg = sl_last_error();
  return luaL_error(L, "%s", msg && *msg ? msg : "selut: unknown error");
}

void sl_lua_check(lua_State *L, int status) {
  if (status != SL_OK) sl_lua_error(L);
}

int sl_lua_onlyboolopt(lua_State *L, int arg, const char *key, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), key) != 0) {
      lua_pushvalue(L, -2);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (expected %s)", luaL_tolstring(L, -1, NULL), key));
    }
    if (!lua_isboolean(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean, got %s", key, luaL_typename(L, -1)));
    def = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return def;
}

double sl_lua_optnumfield(lua_State *L, int arg, const char *key, double def) {
  if (lua_isnoneornil(L, arg)) return def;
  double v = def;
  if (lua_getfield(L, arg, key) != LUA_TNIL) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !isfinite(v))
      luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a finite number, got %s", key,
                                            isnum ? lua_pushfstring(L, "%f", v) : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  return v;
}

/* ---- arguments ---- */

/* Sizes as varargs (arg, arg+1, ...) or one table; -1 allowed when infer. */
static int read_shape(lua_State *L, int arg, int64_t *shape, int infer) {
  int ndim = 0;
  if (lua_type(L, arg) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, arg);
    luaL_argcheck(L, n >= 1 && n <= SL_MAX_DIMS, arg, "shape table must hold 1 to 8 sizes");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      int isint;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      lua_pop(L, 1);
      if (!isint || v < (infer ? -1 : 0))
        return luaL_argerror(L, arg, lua_pushfstring(L, "size %d of the shape must be a non-negative integer", (int)i));
      shape[ndim++] = v;
    }
    return ndim;
  }
  int top = lua_gettop(L);
  if (top < arg) return luaL_argerror(L, arg, "size expected (integers or a table)");
  luaL_argcheck(L, top - arg + 1 <= SL_MAX_DIMS, arg + SL_MAX_DIMS, "at most 8 sizes expected");
  for (int i = arg; i <= top; i++) {
    lua_Integer v = luaL_checkinteger(L, i);
    if (v < (infer ? -1 : 0))
      return luaL_argerror(L, i, lua_pushfstring(L, "size must be non-negative, got %I", v));
    shape[ndim++] = v;
  }
  return ndim;
}

int sl_lua_checkshape(lua_State *L, int arg, int64_t *shape) { return read_shape(L, arg, shape, 0); }
int sl_lua_checkviewshape(lua_State *L, int arg, int64_t *shape) { return read_shape(L, arg, shape, 1); }

/* 1-based dim argument → 0-based, checked against t. */
int sl_lua_checkdim(lua_State *L, int arg, const sl_tensor *t) {
  lua_Integer d = luaL_checkinteger(L, arg);
  if (d < 0 && d >= -t->ndim) return (int)(t->ndim + d);
  if (d < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range -%d..-1", d, t->ndim));
  if (d < 1 || d > t->ndim)
    luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range 1..%d", d, t->ndim));
  return (int)d - 1;
}

/* ---- options tables (messages say "option 'k'") ---- */

int sl_lua_checkoptnames(lua_State *L, int arg, const char *const *known) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option names must be strings, got a %s key", luaL_typename(L, -1)));
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (int i = 0; known[i] && !ok; i++) ok = strcmp(k, known[i]) == 0;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; known[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, known[i]);
      }
      luaL_pushresult(&b);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (known: %s)", k, lua_tostring(L, -1)));
    }
  }
  return 1;
}

/* opts[k] as an integer in lo..hi, or def when absent. */
int sl_lua_optintfield(lua_State *L, int arg, const char *k, int lo, int hi, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNUMBER || !isint || v < lo || v > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be an integer in %d..%d, got %s", k, lo, hi,
                                          luaL_tolstring(L, -1, NULL)));
  lua_pop(L, 1);
  return (int)v;
}

int sl_lua_optboolfield(lua_State *L, int arg, const char *k, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean, got %s", k, luaL_typename(L, -1)));
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Pushes opts[k] (a string or nil) and returns it; the caller keeps it on
 * the stack while the pointer is in use. */
const char *sl_lua_optstrfield(lua_State *L, int arg, const char *k) {
  if (lua_isnoneornil(L, arg)) {
    lua_pushnil(L);
    return NULL;
  }
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a string, got %s", k, luaL_typename(L, -1)));
  return lua_tostring(L, -1);
}

void sl_lua_checkpath(lua_State *L, int arg) {
  size_t len;
  luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0, arg, "path must not be empty");
}
