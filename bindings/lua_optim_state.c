/*
 * selut.optim, the optimizer's state: parameter groups (opt.param_groups[i],
 * proxies reading and writing the core's per-group hyperparameters; other
 * keys stay in the proxy, as in PyTorch's dicts), opt:state() (boxes sharing
 * the state buffers) and state_dict / load_state_dict (copies; loading checks
 * everything before changing anything). The box is lua_optim.h's.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_optim.h"

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
  loptim *b = sl_lua_optim_check(L, -1);
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

/* The list of group proxies is created once, kept as user value 2. */
void sl_lua_optim_push_groups(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  loptim *b = sl_lua_optim_check(L, idx);
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

int sl_lua_optim_flatten_groups(lua_State *L) {
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

void sl_lua_optim_apply_groups(lua_State *L, loptim *b, int groups, const char *const *allowed) {
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

/* {name = tensor}: boxes sharing the optimizer's state buffers, so copying
 * into them restores a checkpoint. Core names "3.exp_avg" become
 * "<entry 4's name>.exp_avg" when the entry had a name. */
static int optim_state(lua_State *L) {
  loptim *b = sl_lua_optim_check(L, 1);
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
  loptim *b = sl_lua_optim_check(L, 1);
  lua_settop(L, 1);
  lua_createtable(L, 0, 4); /* 2 */
  lua_pushstring(L, sl_lua_optim_short[b->kind]);
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
  sl_lua_optim_push_groups(L, 1); /* 3 */
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
  loptim *b = sl_lua_optim_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  const char *me = sl_lua_optim_short[b->kind];
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
  sl_lua_optim_push_groups(L, 1); /* 6 */
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

static const luaL_Reg state_methods[] = {
    {"state", optim_state}, {"state_dict", optim_state_dict}, {"load_state_dict", optim_load_state_dict}, {NULL, NULL}};

void sl_lua_open_optim_state(lua_State *L) {
  sl_lua_setfuncs(L, state_methods);
  if (luaL_newmetatable(L, "selut.optim.param_group")) {
    lua_pushcfunction(L, group_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, group_newindex);
    lua_setfield(L, -2, "__newindex");
  }
  lua_pop(L, 1);
}
