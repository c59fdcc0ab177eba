/*
 * selut.optim: SGD, Adam, AdamW, RMSprop and Adagrad over a list of
 * {param=, grad=, name=} entries (what net:parameters() returns; Lua-defined
 * modules' tensors work the same), or over a list of parameter groups
 * {{params = entries, lr = ...}, ...}. The optimizer holds its own reference
 * to every tensor, so the entries may be dropped. opt.lr reads and writes
 * every group's learning rate; opt.param_groups[i].lr one group's.
 * Also selut.nn.utils.clip_grad_norm_ / clip_grad_value_.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_optim.h"

static const char *const optim_types[] = {"selut.optim.SGD", "selut.optim.Adam", "selut.optim.AdamW",
                                          "selut.optim.RMSprop", "selut.optim.Adagrad"};
const char *const sl_lua_optim_short[OPT_KINDS] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"};

static const char optim_tag = 0; /* metatable[&optim_tag] = true marks optimizers (no name lookups per call) */

/* The optimizer box at idx, or NULL when idx holds something else. */
static loptim *tooptim(lua_State *L, int idx) { return sl_lua_totagged(L, idx, &optim_tag); }

static loptim *checkoptim(lua_State *L, int idx) {
  loptim *b = tooptim(L, idx);
  if (!b) luaL_typeerror(L, idx, "selut.optim optimizer");
  if (!b->o) luaL_error(L, "attempt to use a released optimizer");
  return b;
}

loptim *sl_lua_optim_check(lua_State *L, int idx) { return checkoptim(L, idx); }

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
  loptim *b = lua_newuserdatauv(L, size, 2); /* 1: names, 2: param_groups proxies */
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
  int groups = sl_lua_optim_flatten_groups(L);
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
  if (groups) sl_lua_optim_apply_groups(L, b, groups, allowed);
  return 1;
}

static int adam(lua_State *L, int kind) {
  static const char *const allowed[] = {"lr", "betas", "eps", "weight_decay", NULL};
  int groups = sl_lua_optim_flatten_groups(L);
  int n = check_entries(L, sl_lua_optim_short[kind]);
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
  if (groups) sl_lua_optim_apply_groups(L, b, groups, allowed);
  return 1;
}

static int optim_adam(lua_State *L) { return adam(L, OPT_ADAM); }
static int optim_adamw(lua_State *L) { return adam(L, OPT_ADAMW); }

static int optim_rmsprop(lua_State *L) {
  static const char *const allowed[] = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", NULL};
  int groups = sl_lua_optim_flatten_groups(L);
  int n = check_entries(L, "RMSprop");
  check_option_names(L, allowed);
  sl_rmsprop_opts o = sl_rmsprop_defaults();
  o.lr = opt_number(L, "lr", o.lr, NULL);
  o.alpha = opt_number(L, "alpha", o.alpha, NULL);
  o.eps = opt_number(L, "eps", o.eps, NULL);
  o.weight_decay = opt_number(L, "weight_decay", o.weight_decay, NULL);
  o.momentum = opt_number(L, "momentum", o.momentum, NULL);
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "centered");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, 2, "option 'centered' must be a boolean");
    o.centered = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  check_range(L, "lr", o.lr, 0, HUGE_VAL, 0);
  check_range(L, "alpha", o.alpha, 0, HUGE_VAL, 0);
  check_range(L, "eps", o.eps, 0, HUGE_VAL, 0);
  check_range(L, "weight_decay", o.weight_decay, 0, HUGE_VAL, 0);
  check_range(L, "momentum", o.momentum, 0, HUGE_VAL, 0);
  loptim *b = newoptim(L, OPT_RMSPROP, n);
  if (!(b->o = sl_rmsprop_new(b->params, b->grads, n, o))) return sl_lua_error(L);
  if (groups) sl_lua_optim_apply_groups(L, b, groups, allowed);
  return 1;
}

static int optim_adagrad(lua_State *L) {
  static const char *const allowed[] = {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", NULL};
  int groups = sl_lua_optim_flatten_groups(L);
  int n = check_entries(L, "Adagrad");
  check_option_names(L, allowed);
  sl_adagrad_opts o = sl_adagrad_defaults();
  o.lr = opt_number(L, "lr", o.lr, NULL);
  o.lr_decay = opt_number(L, "lr_decay", o.lr_decay, NULL);
  o.weight_decay = opt_number(L, "weight_decay", o.weight_decay, NULL);
  o.initial_accumulator_value = opt_number(L, "initial_accumulator_value", o.initial_accumulator_value, NULL);
  o.eps = opt_number(L, "eps", o.eps, NULL);
  check_range(L, "lr", o.lr, 0, HUGE_VAL, 0);
  check_range(L, "lr_decay", o.lr_decay, 0, HUGE_VAL, 0);
  check_range(L, "weight_decay", o.weight_decay, 0, HUGE_VAL, 0);
  check_range(L, "initial_accumulator_value", o.initial_accumulator_value, 0, HUGE_VAL, 0);
  check_range(L, "eps", o.eps, 0, HUGE_VAL, 0);
  loptim *b = newoptim(L, OPT_ADAGRAD, n);
  if (!(b->o = sl_adagrad_new(b->params, b->grads, n, o))) return sl_lua_error(L);
  if (groups) sl_lua_optim_apply_groups(L, b, groups, allowed);
  return 1;
}

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
  else if (k && strcmp(k, "param_groups") == 0)
    sl_lua_optim_push_groups(L, 1);
  else if (k && strcmp(k, "type") == 0)
    lua_pushstring(L, sl_lua_optim_short[b->kind]);
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
  return luaL_error(L, "cannot set field '%s' of an optimizer (only lr); a group's: opt.param_groups[i].%s",
                    k ? k : "?", k ? k : "?");
}

static int optim_tostring(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  int ng = sl_optim_group_count(b->o);
  if (ng > 1)
    lua_pushfstring(L, "%s(%d parameters, %d groups, lr=%f)", sl_lua_optim_short[b->kind], b->n, ng, sl_optim_get_lr(b->o));
  else
    lua_pushfstring(L, "%s(%d parameters, lr=%f)", sl_lua_optim_short[b->kind], b->n, sl_optim_get_lr(b->o));
  return 1;
}

/* ---- selut.nn.utils ---- */

/* The gradients of arg 1 (a module, or a list of {param=, grad=} entries or
 * of tensors) into a scratch array owned by a userdata pushed on the stack. */
static sl_tensor **collect_grads(lua_State *L, int *n) {
  int is_list = 0;
  if (lua_type(L, 1) == LUA_TTABLE) { /* a list when its first item has a grad */
    if (lua_geti(L, 1, 1) == LUA_TTABLE) is_list = lua_getfield(L, -1, "grad") != LUA_TNIL, lua_pop(L, 1);
    lua_pop(L, 1);
    if (!is_list && lua_rawlen(L, 1) == 0 && lua_getfield(L, 1, "parameters") != LUA_TFUNCTION) {
      lua_pop(L, 1);
      is_list = 1; /* an empty list */
    } else if (!is_list) {
      lua_pop(L, 1);
    }
  }
  if (is_list) {
    lua_pushvalue(L, 1);
  } else {
    if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TUSERDATA)
      luaL_typeerror(L, 1, "module or list of parameters");
    if (lua_getfield(L, 1, "parameters") != LUA_TFUNCTION) luaL_typeerror(L, 1, "module or list of parameters");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
  }
  int list = lua_gettop(L);
  if (!lua_istable(L, list)) luaL_typeerror(L, 1, "module or list of parameters");
  lua_Integer len = luaL_len(L, list);
  if (len > 1000000) luaL_argerror(L, 1, "too many parameters");
  sl_tensor **g = lua_newuserdatauv(L, ((size_t)len + 1) * sizeof *g, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, list, i);
    sl_tensor *t = NULL;
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "grad");
      t = sl_lua_totensor(L, -1);
      lua_pop(L, 1);
    }
    if (!t) luaL_argerror(L, 1, lua_pushfstring(L, "entry %I has no open tensor 'grad'", i));
    g[i - 1] = t; /* the list keeps the boxes alive during the call */
    lua_pop(L, 1);
  }
  *n = (int)len;
  return g;
}

static int utils_clip_grad_norm(lua_State *L) {
  double max_norm = luaL_checknumber(L, 2);
  double p = luaL_optnumber(L, 3, 2.0);
  luaL_argcheck(L, max_norm > 0, 2, lua_pushfstring(L, "max_norm must be > 0, got %f", max_norm));
  luaL_argcheck(L, p > 0, 3, lua_pushfstring(L, "norm type p must be > 0 (math.huge for the max norm), got %f", p));
  lua_settop(L, 3);
  int n;
  sl_tensor **g = collect_grads(L, &n);
  double total;
  sl_lua_check(L, sl_clip_grad_norm(g, n, max_norm, p, &total));
  lua_pushnumber(L, total);
  return 1;
}

static int utils_clip_grad_value(lua_State *L) {
  double v = luaL_checknumber(L, 2);
  luaL_argcheck(L, v >= 0, 2, lua_pushfstring(L, "clip_value must be >= 0, got %f", v));
  lua_settop(L, 2);
  int n;
  sl_tensor **g = collect_grads(L, &n);
  sl_lua_check(L, sl_clip_grad_value(g, n, v));
  return 0;
}

static const luaL_Reg utils_funcs[] = {
    {"clip_grad_norm_", utils_clip_grad_norm}, {"clip_grad_value_", utils_clip_grad_value}, {NULL, NULL}};

static const luaL_Reg optim_funcs[] = {
    {"SGD", optim_sgd}, {"Adam", optim_adam}, {"AdamW", optim_adamw}, {"RMSprop", optim_rmsprop},
    {"Adagrad", optim_adagrad}, {NULL, NULL}};

static const luaL_Reg optim_methods[] = {
    {"step", optim_step}, {"zero_grad", optim_zero_grad}, {"get_lr", optim_get_lr}, {"set_lr", optim_set_lr},
    {"get_step", optim_get_step}, {"set_step", optim_set_step}, {NULL, NULL}};

static const luaL_Reg optim_metamethods[] = {
    {"__gc", optim_gc}, {"__close", optim_gc}, {"__tostring", optim_tostring},
    {"__newindex", optim_newindex}, {NULL, NULL}};

void sl_lua_open_optim(lua_State *L) {
  sl_lua_newlib(L, optim_methods);
  sl_lua_open_optim_state(L);
  for (int k = 0; k < OPT_KINDS; k++) {
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
  /* selut.nn.utils (selut.nn is opened before optim) */
  if (lua_getfield(L, -1, "nn") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "utils") != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, "utils");
    }
    sl_lua_setfuncs(L, utils_funcs);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
