/*
 * selut.optim: SGD, Adam and AdamW over a list of {param=, grad=, name=}
 * entries (what net:parameters() returns; Lua-defined modules' tensors work
 * the same). The optimizer holds its own reference to every tensor, so the
 * entries may be dropped. opt.lr reads and writes the learning rate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_lua.h"

enum { OPT_SGD, OPT_ADAM, OPT_ADAMW };
static const char *const optim_types[] = {"selut.optim.SGD", "selut.optim.Adam", "selut.optim.AdamW"};
static const char *const optim_short[] = {"SGD", "Adam", "AdamW"};

typedef struct loptim {
  sl_optim *o;
  int kind;
  int n;              /* tensors referenced so far (params[i], grads[i] for i < n) */
  sl_tensor **params; /* point into the trailing storage of this userdata */
  sl_tensor **grads;
} loptim;

static const char optim_tag = 0; /* metatable[&optim_tag] = true marks optimizers (no name lookups per call) */

/* The optimizer box at idx, or NULL when idx holds something else. */
static loptim *tooptim(lua_State *L, int idx) { return sl_lua_totagged(L, idx, &optim_tag); }

static loptim *checkoptim(lua_State *L, int idx) {
  loptim *b = tooptim(L, idx);
  if (!b) luaL_typeerror(L, idx, "selut.optim optimizer");
  if (!b->o) luaL_error(L, "attempt to use a released optimizer");
  return b;
}

sl_optim *sl_lua_checkoptim(lua_State *L, int idx) { return checkoptim(L, idx)->o; }

sl_optim *sl_lua_tooptim(lua_State *L, int idx) {
  loptim *b = tooptim(L, idx);
  return b ? b->o : NULL;
}

static int optim_gc(lua_State *L) {
  loptim *b = lua_touserdata(L, 1);
  if (!b) return 0;
  if (b->o) sl_optim_free(b->o);
  b->o = NULL;
  for (int i = 0; i < b->n; i++) {
    sl_tensor_release(b->params[i]);
    sl_tensor_release(b->grads[i]);
  }
  b->n = 0;
  return 0;
}

/* Validates the entry list at arg 1; returns its length. */
static int check_entries(lua_State *L, const char *fname) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) luaL_argerror(L, 1, "empty parameter list");
  if (n > 1000000) luaL_argerror(L, 1, "too many parameters");
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) != LUA_TTABLE)
      luaL_argerror(L, 1, lua_pushfstring(L, "entry %I is a %s, expected {param=, grad=}", i, luaL_typename(L, -1)));
    lua_getfield(L, -1, "param");
    lua_getfield(L, -2, "grad");
    sl_tensor *p = sl_lua_totensor(L, -2), *g = sl_lua_totensor(L, -1);
    if (!p || !g)
      luaL_argerror(L, 1, lua_pushfstring(L, "entry %I needs open tensors 'param' and 'grad'", i));
    if (!sl_tensor_same_shape(p, g)) {
      char a[160], c[160];
      luaL_argerror(L, 1, lua_pushfstring(L, "entry %I: param %s and grad %s differ in shape", i,
                                          sl_shape_str(p, a, sizeof a), sl_shape_str(g, c, sizeof c)));
    }
    lua_pop(L, 3);
  }
  (void)fname;
  return (int)n;
}

/* Reads opts[key] (arg 2) as a number, def when absent. */
static double opt_number(lua_State *L, const char *key, double def, int *found) {
  if (found) *found = 0;
  if (lua_isnoneornil(L, 2)) return def;
  int t = lua_getfield(L, 2, key);
  double v = def;
  if (t != LUA_TNIL) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !isfinite(v))
      luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' must be a finite number, got %s", key,
                                          isnum ? luaL_tolstring(L, -1, NULL) : luaL_typename(L, -1)));
    if (found) *found = 1;
  }
  lua_pop(L, 1);
  return v;
}

static void check_option_names(lua_State *L, const char *const *allowed) {
  if (lua_isnoneornil(L, 2)) return;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; allowed[i]; i++)
        if (strcmp(lua_tostring(L, -2), allowed[i]) == 0) ok = 1;
    if (!ok) {
      lua_pushvalue(L, -2);
      luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
  }
}

static void check_range(lua_State *L, const char *key, double v, double lo, double hi, int hi_open) {
  if (v < lo || (hi_open ? v >= hi : v > hi))
    luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' = %f out of range [%f, %f%s", key, v, lo, hi, hi_open ? ")" : "]"));
}

/* Pushes the optimizer box, referencing every tensor, names as user value. */
static loptim *newoptim(lua_State *L, int kind, int n) {
  size_t size = sizeof(loptim) + 2 * (size_t)n * sizeof(sl_tensor *);
  loptim *b = lua_newuserdatauv(L, size, 1);
  b->o = NULL;
  b->kind = kind;
  b->n = 0;
  b->params = (sl_tensor **)(b + 1);
  b->grads = b->params + n;
  luaL_setmetatable(L, optim_types[kind]);
  lua_createtable(L, n, 0); /* names, for state() */
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    lua_getfield(L, -1, "param");
    lua_getfield(L, -2, "grad");
    b->params[i] = sl_tensor_retain(sl_lua_totensor(L, -2));
    b->grads[i] = sl_tensor_retain(sl_lua_totensor(L, -1));
    b->n = i + 1;
    lua_getfield(L, -3, "name");
    lua_rawseti(L, -5, i + 1);
    lua_pop(L, 3);
  }
  lua_setiuservalue(L, -2, 1);
  return b;
}

static int optim_sgd(lua_State *L) {
  static const char *const allowed[] = {"lr", "momentum", "dampening", "nesterov", "weight_decay", NULL};
  int n = check_entries(L, "SGD");
  check_option_names(L, allowed);
  int has_lr;
  sl_sgd_opts o;
  o.lr = opt_number(L, "lr", 0, &has_lr);
  if (!has_lr) luaL_argerror(L, 2, "option 'lr' is required");
  o.momentum = opt_number(L, "momentum", 0, NULL);
  o.dampening = opt_number(L, "dampening", 0, NULL);
  o.weight_decay = opt_number(L, "weight_decay", 0, NULL);
  o.nesterov = false;
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "nesterov");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, 2, "option 'nesterov' must be a boolean");
    o.nesterov = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  check_range(L, "lr", o.lr, 0, HUGE_VAL, 0);
  check_range(L, "momentum", o.momentum, 0, HUGE_VAL, 0);
  check_range(L, "weight_decay", o.weight_decay, 0, HUGE_VAL, 0);
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    luaL_argerror(L, 2, "nesterov momentum requires momentum > 0 and dampening = 0");
  loptim *b = newoptim(L, OPT_SGD, n);
  if (!(b->o = sl_sgd_new(b->params, b->grads, n, o))) return sl_lua_error(L);
  return 1;
}

static int adam(lua_State *L, int kind) {
  static const char *const allowed[] = {"lr", "betas", "eps", "weight_decay", NULL};
  int n = check_entries(L, optim_short[kind]);
  check_option_names(L, allowed);
  sl_adam_opts o;
  memset(&o, 0, sizeof o);
  o.lr = opt_number(L, "lr", 1e-3, NULL);
  o.eps = opt_number(L, "eps", 1e-8, NULL);
  o.weight_decay = opt_number(L, "weight_decay", kind == OPT_ADAMW ? 1e-2 : 0, NULL);
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.decoupled = kind == OPT_ADAMW;
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "betas");
    if (t != LUA_TNIL) {
      int ok1, ok2;
      if (t != LUA_TTABLE) luaL_argerror(L, 2, "option 'betas' must be a table {beta1, beta2}");
      lua_geti(L, -1, 1);
      lua_geti(L, -2, 2);
      o.beta1 = lua_tonumberx(L, -2, &ok1);
      o.beta2 = lua_tonumberx(L, -1, &ok2);
      if (!ok1 || !ok2) luaL_argerror(L, 2, "option 'betas' must hold two numbers");
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  check_range(L, "lr", o.lr, 0, HUGE_VAL, 0);
  check_range(L, "betas[1]", o.beta1, 0, 1, 1);
  check_range(L, "betas[2]", o.beta2, 0, 1, 1);
  check_range(L, "eps", o.eps, 0, HUGE_VAL, 0);
  check_range(L, "weight_decay", o.weight_decay, 0, HUGE_VAL, 0);
  loptim *b = newoptim(L, kind, n);
  if (!(b->o = sl_adam_new(b->params, b->grads, n, o))) return sl_lua_error(L);
  return 1;
}

static int optim_adam(lua_State *L) { return adam(L, OPT_ADAM); }
static int optim_adamw(lua_State *L) { return adam(L, OPT_ADAMW); }

static int optim_step(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  sl_lua_check(L, sl_optim_step(b->o));
  lua_settop(L, 1);
  return 1;
}

static int optim_zero_grad(lua_State *L) {
  sl_optim_zero_grad(checkoptim(L, 1)->o);
  lua_settop(L, 1);
  return 1;
}

/* {name = tensor}: boxes sharing the optimizer's state buffers, so copying
 * into them restores a checkpoint. Core names "3.exp_avg" become
 * "<entry 4's name>.exp_avg" when the entry had a name. */
static int optim_state(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  int count = sl_optim_state_count(b->o);
  lua_getiuservalue(L, 1, 1);
  int names = lua_gettop(L);
  lua_createtable(L, 0, count);
  for (int i = 0; i < count; i++) {
    const char *name = NULL;
    sl_tensor *t = sl_optim_state_tensor(b->o, i, &name);
    if (!t) break;
    char *end;
    long k = strtol(name ? name : "", &end, 10);
    int mapped = 0;
    if (name && end != name && *end == '.' && k >= 0 && k < b->n) {
      if (lua_geti(L, names, k + 1) == LUA_TSTRING) {
        lua_pushfstring(L, "%s%s", lua_tostring(L, -1), end);
        lua_remove(L, -2);
        mapped = 1;
      } else {
        lua_pop(L, 1);
      }
    }
    if (!mapped) lua_pushstring(L, name ? name : "?");
    sl_lua_pushtensor(L, t);
    lua_settable(L, -3);
  }
  return 1;
}

static int optim_get_lr(lua_State *L) {
  lua_pushnumber(L, sl_optim_get_lr(checkoptim(L, 1)->o));
  return 1;
}

static void set_lr(lua_State *L, loptim *b, int arg) {
  double lr = luaL_checknumber(L, arg);
  if (!(lr >= 0) || !isfinite(lr))
    luaL_argerror(L, arg, lua_pushfstring(L, "learning rate must be a finite number >= 0, got %f", lr));
  sl_optim_set_lr(b->o, lr);
}

static int optim_set_lr(lua_State *L) {
  set_lr(L, checkoptim(L, 1), 2);
  lua_settop(L, 1);
  return 1;
}

static int optim_get_step(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_optim_get_step(checkoptim(L, 1)->o));
  return 1;
}

static int optim_set_step(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  lua_Integer s = luaL_checkinteger(L, 2);
  luaL_argcheck(L, s >= 0, 2, lua_pushfstring(L, "step count must be >= 0, got %I", s));
  sl_optim_set_step(b->o, s);
  lua_settop(L, 1);
  return 1;
}

/* opt.lr reads the learning rate; other names are methods. */
static int optim_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  const char *k = lua_tostring(L, 2);
  loptim *b = checkoptim(L, 1);
  if (k && strcmp(k, "lr") == 0)
    lua_pushnumber(L, sl_optim_get_lr(b->o));
  else
    lua_pushnil(L);
  return 1;
}

static int optim_newindex(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "lr") == 0) {
    set_lr(L, b, 3);
    return 0;
  }
  return luaL_error(L, "cannot set field '%s' of an optimizer (only lr)", k ? k : "?");
}

static int optim_tostring(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  lua_pushfstring(L, "%s(%d parameters, lr=%f)", optim_short[b->kind], b->n, sl_optim_get_lr(b->o));
  return 1;
}

static const luaL_Reg optim_funcs[] = {
    {"SGD", optim_sgd}, {"Adam", optim_adam}, {"AdamW", optim_adamw}, {NULL, NULL}};

static const luaL_Reg optim_methods[] = {
    {"step", optim_step}, {"zero_grad", optim_zero_grad}, {"state", optim_state},
    {"get_lr", optim_get_lr}, {"set_lr", optim_set_lr}, {"get_step", optim_get_step},
    {"set_step", optim_set_step}, {NULL, NULL}};

static const luaL_Reg optim_metamethods[] = {
    {"__gc", optim_gc}, {"__close", optim_gc}, {"__tostring", optim_tostring},
    {"__newindex", optim_newindex}, {NULL, NULL}};

void sl_lua_open_optim(lua_State *L) {
  sl_lua_newlib(L, optim_methods);
  for (int k = 0; k < 3; k++) {
    if (luaL_newmetatable(L, optim_types[k])) {
      sl_lua_setfuncs(L, optim_metamethods);
      lua_pushvalue(L, -2);
      lua_pushcclosure(L, optim_index, 1);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -2, &optim_tag);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  sl_lua_newlib(L, optim_funcs);
  lua_setfield(L, -2, "optim");
}
