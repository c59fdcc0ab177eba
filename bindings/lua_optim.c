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

#include "sl_lua.h"

enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD, OPT_KINDS };
static const char *const optim_types[] = {"selut.optim.SGD", "selut.optim.Adam", "selut.optim.AdamW",
                                          "selut.optim.RMSprop", "selut.optim.Adagrad"};
static const char *const optim_short[] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"};

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

/* ---- parameter groups ---- */

static const char proxy_opt_key = 0, proxy_grp_key = 0; /* hidden fields of a param_groups proxy */

/* Pushes group g's value for key: a number, betas as {beta1, beta2} (Adam,
 * AdamW), or nil when the optimizer has no such hyperparameter. */
static void push_group_value(lua_State *L, loptim *b, int g, const char *key) {
  double v, v2;
  if ((b->kind == OPT_ADAM || b->kind == OPT_ADAMW) && strcmp(key, "betas") == 0) {
    sl_optim_group_get(b->o, g, "beta1", &v);
    sl_optim_group_get(b->o, g, "beta2", &v2);
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, v);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, v2);
    lua_rawseti(L, -2, 2);
  } else if (strcmp(key, "beta1") != 0 && strcmp(key, "beta2") != 0 && sl_optim_group_get(b->o, g, key, &v) == SL_OK) {
    if (strcmp(key, "nesterov") == 0 || strcmp(key, "centered") == 0) lua_pushboolean(L, v != 0.0);
    else lua_pushnumber(L, v);
  } else {
    lua_pushnil(L);
  }
}

/* Whether key names a hyperparameter of this optimizer (betas for Adam). */
static int is_hparam(loptim *b, const char *key) {
  double v;
  if (b->kind == OPT_ADAM || b->kind == OPT_ADAMW) {
    if (strcmp(key, "betas") == 0) return 1;
    if (strcmp(key, "beta1") == 0 || strcmp(key, "beta2") == 0) return 0;
  }
  return sl_optim_group_get(b->o, 0, key, &v) == SL_OK;
}

/* Sets group g's hyperparameter key from the value at idx; returns the core
 * status (the message in sl_last_error) or SL_EINVAL with a message pushed
 * for a value of the wrong type (*pushed = 1). */
static int set_group_value(lua_State *L, loptim *b, int g, const char *key, int idx, int *pushed) {
  idx = lua_absindex(L, idx);
  *pushed = 0;
  if ((b->kind == OPT_ADAM || b->kind == OPT_ADAMW) && strcmp(key, "betas") == 0) {
    int ok1 = 0, ok2 = 0;
    double b1 = 0, b2 = 0;
    if (lua_type(L, idx) == LUA_TTABLE) {
      lua_geti(L, idx, 1);
      lua_geti(L, idx, 2);
      b1 = lua_tonumberx(L, -2, &ok1);
      b2 = lua_tonumberx(L, -1, &ok2);
      lua_pop(L, 2);
    }
    if (!ok1 || !ok2) {
      lua_pushfstring(L, "param_groups[%d].betas must be a table of two numbers", g + 1);
      *pushed = 1;
      return SL_EINVAL;
    }
    int st = sl_optim_group_set(b->o, g, "beta1", b1);
    return st ? st : sl_optim_group_set(b->o, g, "beta2", b2);
  }
  int isnum;
  double v = lua_tonumberx(L, idx, &isnum);
  if (!isnum && lua_isboolean(L, idx)) v = lua_toboolean(L, idx), isnum = 1;
  if (!isnum) {
    lua_pushfstring(L, "param_groups[%d].%s must be a number, got %s", g + 1, key, luaL_typename(L, idx));
    *pushed = 1;
    return SL_EINVAL;
  }
  double cur;
  if (sl_optim_group_get(b->o, g, key, &cur) == SL_OK && cur == v) return SL_OK; /* fixed keys may be re-set */
  return sl_optim_group_set(b->o, g, key, v);
}

static void raise_group_error(lua_State *L, int pushed) {
  if (pushed) lua_error(L);
  sl_lua_error(L);
}

static loptim *proxy_optim(lua_State *L, int idx, int *g) {
  lua_rawgetp(L, idx, &proxy_opt_key);
  loptim *b = checkoptim(L, -1);
  lua_pop(L, 1);
  lua_rawgetp(L, idx, &proxy_grp_key);
  *g = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return b;
}

static int group_index(lua_State *L) {
  int g;
  loptim *b = proxy_optim(L, 1, &g);
  const char *key = lua_tostring(L, 2);
  if (lua_type(L, 2) != LUA_TSTRING) lua_pushnil(L);
  else push_group_value(L, b, g, key);
  return 1;
}

/* Hyperparameters go to the optimizer; other keys (initial_lr, ...) are kept
 * in the group table, as in PyTorch's dicts. */
static int group_newindex(lua_State *L) {
  int g, pushed;
  loptim *b = proxy_optim(L, 1, &g);
  if (lua_type(L, 2) == LUA_TSTRING && is_hparam(b, lua_tostring(L, 2))) {
    if (set_group_value(L, b, g, lua_tostring(L, 2), 3, &pushed) != SL_OK) raise_group_error(L, pushed);
    return 0;
  }
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 0;
}

/* Pushes the list of group proxies (created once, kept as user value 2). */
static void push_param_groups(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  loptim *b = checkoptim(L, idx);
  if (lua_getiuservalue(L, idx, 2) == LUA_TTABLE) return;
  lua_pop(L, 1);
  int n = sl_optim_group_count(b->o);
  lua_createtable(L, n, 0);
  for (int g = 0; g < n; g++) {
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, idx);
    lua_rawsetp(L, -2, &proxy_opt_key);
    lua_pushinteger(L, g);
    lua_rawsetp(L, -2, &proxy_grp_key);
    luaL_setmetatable(L, "selut.optim.param_group");
    lua_rawseti(L, -2, g + 1);
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, idx, 2);
}

/* Group form {{params = entries, key = value...}, ...} at arg 1: replaces it
 * with the flat entry list and returns the stack index of the original list,
 * or 0 when arg 1 is a plain entry list. */
static int flatten_groups(lua_State *L) {
  lua_settop(L, 2);
  if (lua_type(L, 1) != LUA_TTABLE || lua_geti(L, 1, 1) != LUA_TTABLE) {
    lua_settop(L, 2);
    return 0;
  }
  int grouped = lua_getfield(L, -1, "params") != LUA_TNIL;
  lua_settop(L, 2);
  if (!grouped) return 0;
  lua_pushvalue(L, 1); /* 3: the groups */
  lua_newtable(L);     /* 4: flat entries */
  lua_Integer ng = luaL_len(L, 3), k = 0;
  for (lua_Integer g = 1; g <= ng; g++) {
    if (lua_geti(L, 3, g) != LUA_TTABLE || lua_getfield(L, -1, "params") != LUA_TTABLE)
      luaL_argerror(L, 1, lua_pushfstring(L, "parameter group %I needs a list 'params'", g));
    lua_Integer n = luaL_len(L, -1);
    if (n < 1) luaL_argerror(L, 1, lua_pushfstring(L, "parameter group %I has an empty 'params' list", g));
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      lua_rawseti(L, 4, ++k);
    }
    lua_pop(L, 2);
  }
  lua_replace(L, 1);
  return 3;
}

/* After construction from the group form at `groups`: assigns parameters to
 * groups and applies each group's own options. */
static void apply_groups(lua_State *L, loptim *b, int groups, const char *const *allowed) {
  int ng = (int)luaL_len(L, groups);
  int *group_of = lua_newuserdatauv(L, (size_t)b->n * sizeof *group_of + 1, 0);
  int k = 0;
  for (int g = 0; g < ng; g++) {
    lua_geti(L, groups, g + 1);
    lua_getfield(L, -1, "params");
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 0; i < n && k < b->n; i++) group_of[k++] = g;
    lua_pop(L, 2);
  }
  sl_lua_check(L, sl_optim_set_groups(b->o, ng, group_of));
  lua_pop(L, 1);
  for (int g = 0; g < ng; g++) {
    lua_geti(L, groups, g + 1);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      int ok = 0, pushed;
      for (int i = 0; key && allowed[i]; i++) ok |= strcmp(key, allowed[i]) == 0;
      if (key && strcmp(key, "params") == 0) {
        lua_pop(L, 1);
        continue;
      }
      if (!ok)
        luaL_argerror(L, 1, lua_pushfstring(L, "parameter group %d: unknown option '%s'", g + 1,
                                            key ? key : luaL_typename(L, -2)));
      if (set_group_value(L, b, g, key, -1, &pushed) != SL_OK) raise_group_error(L, pushed);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

static int optim_sgd(lua_State *L) {
  static const char *const allowed[] = {"lr", "momentum", "dampening", "nesterov", "weight_decay", NULL};
  int groups = flatten_groups(L);
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
  if (groups) apply_groups(L, b, groups, allowed);
  return 1;
}

static int adam(lua_State *L, int kind) {
  static const char *const allowed[] = {"lr", "betas", "eps", "weight_decay", NULL};
  int groups = flatten_groups(L);
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
  if (groups) apply_groups(L, b, groups, allowed);
  return 1;
}

static int optim_adam(lua_State *L) { return adam(L, OPT_ADAM); }
static int optim_adamw(lua_State *L) { return adam(L, OPT_ADAMW); }

static int optim_rmsprop(lua_State *L) {
  static const char *const allowed[] = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", NULL};
  int groups = flatten_groups(L);
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
  if (groups) apply_groups(L, b, groups, allowed);
  return 1;
}

static int optim_adagrad(lua_State *L) {
  static const char *const allowed[] = {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", NULL};
  int groups = flatten_groups(L);
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
  if (groups) apply_groups(L, b, groups, allowed);
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

/* {name = tensor}: boxes sharing the optimizer's state buffers, so copying
 * into them restores a checkpoint. Core names "3.exp_avg" become
 * "<entry 4's name>.exp_avg" when the entry had a name. */
static int optim_state(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  int count = sl_optim_state_count(b->o);
  lua_getiuservalue(L, 1, 1);
  int names = lua_gettop(L);
  lua_createtable(L, 0, count);
  int state = lua_gettop(L);
  lua_createtable(L, count, 0); /* the names in the optimizer's order (second result) */
  int order = lua_gettop(L);
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
    lua_pushvalue(L, -1);
    lua_rawseti(L, order, i + 1);
    sl_lua_pushtensor(L, t);
    lua_settable(L, state);
  }
  lua_pushvalue(L, state);
  lua_pushvalue(L, order);
  return 2;
}

/* state_dict() -> {type =, step =, state = {name = copy}, param_groups =
 * {{lr =, ...}, ...}}: copies, so later steps do not change it. */
static int optim_state_dict(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  lua_settop(L, 1);
  lua_createtable(L, 0, 4); /* 2 */
  lua_pushstring(L, optim_short[b->kind]);
  lua_setfield(L, 2, "type");
  lua_pushinteger(L, (lua_Integer)sl_optim_get_step(b->o));
  lua_setfield(L, 2, "step");
  lua_pushcfunction(L, optim_state);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1); /* 3: shared state boxes */
  lua_newtable(L);   /* 4: copies */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    sl_tensor *t = sl_lua_totensor(L, -1);
    lua_pushvalue(L, -2);
    sl_tensor **box = sl_lua_newtensor(L);
    if (!(*box = sl_tensor_clone(t))) return sl_lua_error(L);
    lua_settable(L, 4);
    lua_pop(L, 1);
  }
  lua_setfield(L, 2, "state");
  lua_pop(L, 1);
  push_param_groups(L, 1); /* 3 */
  int ng = sl_optim_group_count(b->o);
  lua_createtable(L, ng, 0);
  for (int g = 0; g < ng; g++) {
    lua_newtable(L);
    lua_rawgeti(L, 3, g + 1); /* the proxy: its extra keys (initial_lr, ...) */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
      } else {
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    for (int i = 0;; i++) {
      const char *key = sl_optim_group_key(b->o, i);
      if (!key) break;
      if (strcmp(key, "beta1") == 0 || strcmp(key, "beta2") == 0) key = "betas";
      push_group_value(L, b, g, key);
      lua_setfield(L, -2, key);
    }
    lua_rawseti(L, -2, g + 1);
  }
  lua_setfield(L, 2, "param_groups");
  lua_settop(L, 2);
  return 1;
}

/* load_state_dict(sd): checks everything (type, step, every state tensor's
 * name and shape, the groups) before changing anything. */
static int optim_load_state_dict(lua_State *L) {
  loptim *b = checkoptim(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  const char *me = optim_short[b->kind];
  if (lua_getfield(L, 2, "type") != LUA_TSTRING || strcmp(lua_tostring(L, -1), me) != 0)
    return luaL_error(L, "load_state_dict: the state dict is for %s, this optimizer is %s (nothing was loaded)",
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1), me);
  lua_pop(L, 1);
  lua_getfield(L, 2, "step");
  int isint;
  lua_Integer step = lua_tointegerx(L, -1, &isint);
  if (!isint || step < 0) return luaL_error(L, "load_state_dict: 'step' must be an integer >= 0 (nothing was loaded)");
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "state") != LUA_TTABLE) /* 3 */
    return luaL_error(L, "load_state_dict: 'state' must be a table of tensors (nothing was loaded)");
  lua_pushcfunction(L, optim_state);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 2); /* 4: the optimizer's own state boxes, 5: their names in order */
  char a[160], c[160];
  int count = (int)lua_rawlen(L, 5);
  for (int i = 1; i <= count; i++) {
    lua_rawgeti(L, 5, i);
    const char *name = lua_tostring(L, -1);
    lua_pushvalue(L, -1);
    lua_gettable(L, 4);
    lua_pushvalue(L, -2);
    lua_gettable(L, 3);
    sl_tensor *src = sl_lua_totensor(L, -1), *dst = sl_lua_totensor(L, -2);
    if (!src)
      return luaL_error(L, "load_state_dict: the state dict has no tensor '%s' (%s expects %s; nothing was loaded)",
                        name, me, sl_shape_str(dst, a, sizeof a));
    if (!sl_tensor_same_shape(src, dst))
      return luaL_error(L, "load_state_dict: state '%s' is %s in the state dict, %s expects %s (nothing was loaded)",
                        name, sl_shape_str(src, a, sizeof a), me, sl_shape_str(dst, c, sizeof c));
    lua_pop(L, 3);
  }
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    lua_pushvalue(L, -2);
    if (lua_gettable(L, 4) == LUA_TNIL)
      return luaL_error(L, "load_state_dict: the state dict has state '%s' that this %s does not have (nothing was "
                        "loaded)", luaL_tolstring(L, -3, NULL), me);
    lua_pop(L, 2);
  }
  lua_remove(L, 5);
  int ng = sl_optim_group_count(b->o);
  if (lua_getfield(L, 2, "param_groups") != LUA_TTABLE || luaL_len(L, -1) != ng) /* 5 */
    return luaL_error(L, "load_state_dict: the state dict has %d parameter groups, this %s has %d (nothing was loaded)",
                      lua_istable(L, -1) ? (int)luaL_len(L, -1) : 0, me, ng);
  /* Groups: remember every value, apply, and put them all back on a failure. */
  int nkeys = 0;
  while (sl_optim_group_key(b->o, nkeys)) nkeys++;
  double *saved = lua_newuserdatauv(L, (size_t)(ng * nkeys + 1) * sizeof *saved, 0); /* 6 */
  for (int g = 0; g < ng; g++)
    for (int i = 0; i < nkeys; i++) sl_optim_group_get(b->o, g, sl_optim_group_key(b->o, i), &saved[g * nkeys + i]);
  int failed = 0, pushed = 0;
  for (int g = 0; g < ng && !failed; g++) {
    if (lua_rawgeti(L, 5, g + 1) != LUA_TTABLE) {
      lua_pushfstring(L, "param_groups[%d] is a %s, expected a table", g + 1, luaL_typename(L, -1));
      failed = pushed = 1;
      break;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && is_hparam(b, lua_tostring(L, -2)) &&
          set_group_value(L, b, g, lua_tostring(L, -2), -1, &pushed) != SL_OK) {
        failed = 1;
        break;
      }
      lua_pop(L, 1);
    }
    if (!failed) lua_pop(L, 1);
  }
  if (failed) {
    if (!pushed) lua_pushstring(L, sl_last_error());
    for (int g = 0; g < ng; g++)
      for (int i = 0; i < nkeys; i++) {
        const char *key = sl_optim_group_key(b->o, i);
        double cur;
        sl_optim_group_get(b->o, g, key, &cur);
        if (cur != saved[g * nkeys + i]) sl_optim_group_set(b->o, g, key, saved[g * nkeys + i]);
      }
    return luaL_error(L, "load_state_dict: %s (nothing was loaded)", lua_tostring(L, -1));
  }
  /* Nothing can fail from here on. */
  lua_settop(L, 5);
  lua_pushnil(L);
  while (lua_next(L, 4)) {
    lua_pushvalue(L, -2);
    lua_gettable(L, 3);
    sl_lua_check(L, sl_tensor_copy(sl_lua_totensor(L, -2), sl_lua_totensor(L, -1)));
    lua_pop(L, 2);
  }
  sl_optim_set_step(b->o, (int64_t)step);
  push_param_groups(L, 1); /* 6 */
  for (int g = 0; g < ng; g++) {
    lua_rawgeti(L, 6, g + 1); /* proxy */
    lua_rawgeti(L, 5, g + 1); /* source */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && !is_hparam(b, lua_tostring(L, -2)) &&
          strcmp(lua_tostring(L, -2), "params") != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
      } else {
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 2);
  }
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
    push_param_groups(L, 1);
  else if (k && strcmp(k, "type") == 0)
    lua_pushstring(L, optim_short[b->kind]);
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
    lua_pushfstring(L, "%s(%d parameters, %d groups, lr=%f)", optim_short[b->kind], b->n, ng, sl_optim_get_lr(b->o));
  else
    lua_pushfstring(L, "%s(%d parameters, lr=%f)", optim_short[b->kind], b->n, sl_optim_get_lr(b->o));
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
    {"step", optim_step}, {"zero_grad", optim_zero_grad}, {"state", optim_state},
    {"get_lr", optim_get_lr}, {"set_lr", optim_set_lr}, {"get_step", optim_get_step},
    {"set_step", optim_set_step}, {"state_dict", optim_state_dict}, {"load_state_dict", optim_load_state_dict},
    {NULL, NULL}};

static const luaL_Reg optim_metamethods[] = {
    {"__gc", optim_gc}, {"__close", optim_gc}, {"__tostring", optim_tostring},
    {"__newindex", optim_newindex}, {NULL, NULL}};

void sl_lua_open_optim(lua_State *L) {
  sl_lua_newlib(L, optim_methods);
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
  if (luaL_newmetatable(L, "selut.optim.param_group")) {
    lua_pushcfunction(L, group_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, group_newindex);
    lua_setfield(L, -2, "__newindex");
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
