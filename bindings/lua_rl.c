/*
 * selut.rl.envs (C half of selut.rl): CartPole and Pendulum with
 * Gymnasium's API (core/rl/env.h), single and vector forms. A single env is
 * a userdata holding the core struct; env:step returns a new observation
 * tensor each call (it may be stored). A vector env owns its output tensors
 * and returns the same boxes every call (nothing is allocated per step).
 * The algorithms are Lua (scripts/rl.lua); their kernels' bindings are in
 * lua_rl_ops.c.
 */
#include <math.h>
#include <string.h>

#include "sl_lua.h"

#define RL_ENV "selut.rl.Env"
#define RL_VECENV "selut.rl.VecEnv"

enum { CARTPOLE, PENDULUM };

typedef struct kind_desc {
  const char *name;       /* for messages and tostring */
  int obs;                /* observation size */
  int state;              /* state size */
  const char *state_names; /* for the state setter's message */
} kind_desc;

static const kind_desc kinds[] = {
    {"CartPole", SL_CARTPOLE_OBS, 4, "{x, x_dot, theta, theta_dot}"},
    {"Pendulum", SL_PENDULUM_OBS, 2, "{theta, theta_dot}"},
};

typedef struct rl_env {
  int kind;
  union {
    sl_cartpole cp;
    sl_pendulum pd;
  } u;
  sl_rng rng;  /* the env's own generator once reset(seed) was called */
  int own_rng;
} rl_env;

static double *env_state(rl_env *e) { return e->kind == CARTPOLE ? e->u.cp.state : e->u.pd.state; }
static int64_t *env_steps(rl_env *e) { return e->kind == CARTPOLE ? &e->u.cp.steps : &e->u.pd.steps; }
static int *env_done(rl_env *e) { return e->kind == CARTPOLE ? &e->u.cp.done : &e->u.pd.done; }

/* reset(seed): the env's own generator, as Gymnasium reseeds np_random; without a seed the
 * env's generator once seeded, else the state's (selut.manual_seed). */
static sl_rng *reset_rng(lua_State *L, int arg, sl_rng *own, int *own_rng) {
  if (!lua_isnoneornil(L, arg)) {
    lua_Integer seed = luaL_checkinteger(L, arg);
    sl_rng_seed(own, (uint64_t)seed);
    *own_rng = 1;
  }
  return *own_rng ? own : &sl_lua_context(L)->rng;
}

static rl_env *checkenv(lua_State *L, int arg) { return luaL_checkudata(L, arg, RL_ENV); }

static int env_new(lua_State *L, int kind) {
  rl_env *e = lua_newuserdatauv(L, sizeof *e, 0);
  memset(e, 0, sizeof *e);
  e->kind = kind;
  luaL_setmetatable(L, RL_ENV);
  *env_done(e) = 1; /* step before reset is an error */
  return 1;
}
static int envs_cartpole(lua_State *L) { return env_new(L, CARTPOLE); }
static int envs_pendulum(lua_State *L) { return env_new(L, PENDULUM); }

static float *push_obs(lua_State *L, int kind) {
  int64_t shape[1] = {kinds[kind].obs};
  sl_tensor **box = sl_lua_newtensor(L);
  *box = sl_tensor_empty(1, shape);
  if (!*box) sl_lua_error(L);
  return (*box)->data;
}

/* env:reset([seed]) -> obs, info */
static int env_reset(lua_State *L) {
  rl_env *e = checkenv(L, 1);
  sl_rng *r = reset_rng(L, 2, &e->rng, &e->own_rng);
  float *obs = push_obs(L, e->kind);
  if (e->kind == CARTPOLE)
    sl_cartpole_reset(&e->u.cp, r, obs);
  else
    sl_pendulum_reset(&e->u.pd, r, obs);
  lua_newtable(L);
  return 2;
}

/* The torque at arg: a number or a 1-element tensor. */
static double check_torque(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNUMBER) return lua_tonumber(L, arg);
  sl_tensor *t = sl_lua_totensor(L, arg);
  if (!t) return luaL_typeerror(L, arg, "number or 1-element selut.Tensor");
  if ((t)->numel != 1) {
    char buf[64];
    return luaL_argerror(L, arg, lua_pushfstring(L, "torque tensor has shape %s, expected 1 element",
                                                 sl_lua_shapestr(t, buf, sizeof buf)));
  }
  return (t)->data[0];
}

/* env:step(action) -> obs, reward, terminated, truncated, info */
static int env_step(lua_State *L) {
  rl_env *e = checkenv(L, 1);
  double reward;
  int term, trunc, status;
  if (e->kind == CARTPOLE) {
    lua_Integer a;
    sl_tensor *t = sl_lua_totensor(L, 2);
    if (t) { /* a 1-element tensor holding 1 or 2 */
      if ((t)->numel != 1) {
        char buf[64];
        return luaL_argerror(L, 2, lua_pushfstring(L, "action tensor has shape %s, expected 1 element",
                                                   sl_lua_shapestr(t, buf, sizeof buf)));
      }
      float v = (t)->data[0];
      luaL_argcheck(L, v == 1.0f || v == 2.0f, 2,
                    isnan(v) ? "action nan is out of range (expected 1 or 2)"
                             : lua_pushfstring(L, "action %f is out of range (expected 1 or 2)", (double)v));
      a = (lua_Integer)v;
    } else {
      if (!lua_isinteger(L, 2) && lua_type(L, 2) == LUA_TNUMBER) {
        double v = lua_tonumber(L, 2);
        luaL_argcheck(L, v == 1.0 || v == 2.0, 2,
                      isnan(v) ? "action nan is out of range (expected 1 or 2)"
                               : lua_pushfstring(L, "action %f is out of range (expected 1 or 2)", v));
        a = (lua_Integer)v;
      } else {
        a = luaL_checkinteger(L, 2);
      }
      luaL_argcheck(L, a == 1 || a == 2, 2, lua_pushfstring(L, "action %d is out of range (expected 1 or 2)", (int)a));
    }
    float *obs = push_obs(L, e->kind);
    status = sl_cartpole_step(&e->u.cp, (int)a - 1, obs, &reward, &term, &trunc);
  } else {
    double u = check_torque(L, 2);
    luaL_argcheck(L, !isnan(u), 2, "torque is NaN (expected a number, clipped to [-2, 2])");
    float *obs = push_obs(L, e->kind);
    status = sl_pendulum_step(&e->u.pd, u, obs, &reward, &term, &trunc);
  }
  sl_lua_check(L, status);
  lua_pushnumber(L, reward);
  lua_pushboolean(L, term);
  lua_pushboolean(L, trunc);
  lua_newtable(L);
  return 5;
}

static void push_state(lua_State *L, const double *s, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, s[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Reads a list of n finite numbers at arg into s (nothing written on error). */
static void check_state(lua_State *L, int arg, int kind, double *s) {
  const kind_desc *k = &kinds[kind];
  if (lua_type(L, arg) != LUA_TTABLE)
    luaL_error(L, "%s state must be a list of %d numbers %s, got %s", k->name, k->state, k->state_names,
               luaL_typename(L, arg));
  double tmp[4];
  lua_Integer len = luaL_len(L, arg);
  if (len != k->state)
    luaL_error(L, "%s state must be a list of %d numbers %s, got %d", k->name, k->state, k->state_names, (int)len);
  for (int i = 0; i < k->state; i++) {
    lua_geti(L, arg, i + 1);
    int isnum;
    tmp[i] = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !isfinite(tmp[i]))
      luaL_error(L, "%s state[%d] must be a finite number, got %s", k->name, i + 1,
                 !isnum ? luaL_typename(L, -1) : isnan(tmp[i]) ? "nan" : tmp[i] > 0 ? "inf" : "-inf");
    lua_pop(L, 1);
  }
  memcpy(s, tmp, (size_t)k->state * sizeof *s);
}

/* Fields: state (read/write), steps, obs_size; and the kind's constants. */
static int env_index(lua_State *L) {
  rl_env *e = checkenv(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "state") == 0) {
    push_state(L, env_state(e), kinds[e->kind].state);
    return 1;
  }
  if (strcmp(k, "steps") == 0) {
    lua_pushinteger(L, *env_steps(e));
    return 1;
  }
  if (strcmp(k, "obs_size") == 0) {
    lua_pushinteger(L, kinds[e->kind].obs);
    return 1;
  }
  if (strcmp(k, "n_actions") == 0 && e->kind == CARTPOLE) {
    lua_pushinteger(L, SL_CARTPOLE_ACTIONS);
    return 1;
  }
  if (strcmp(k, "action_size") == 0 && e->kind == PENDULUM) {
    lua_pushinteger(L, 1);
    return 1;
  }
  if (strcmp(k, "action_low") == 0 && e->kind == PENDULUM) {
    lua_pushnumber(L, -SL_PENDULUM_MAX_TORQUE);
    return 1;
  }
  if (strcmp(k, "action_high") == 0 && e->kind == PENDULUM) {
    lua_pushnumber(L, SL_PENDULUM_MAX_TORQUE);
    return 1;
  }
  if (strcmp(k, "max_steps") == 0) {
    lua_pushinteger(L, e->kind == CARTPOLE ? SL_CARTPOLE_MAX_STEPS : SL_PENDULUM_MAX_STEPS);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

/* env.state = {...}: replaces the state (the episode continues from it; the step counter stays). */
static int env_newindex(lua_State *L) {
  rl_env *e = checkenv(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "state") != 0) return luaL_error(L, "%s: cannot set field '%s' (only state)", kinds[e->kind].name, k);
  check_state(L, 3, e->kind, env_state(e));
  *env_done(e) = 0;
  return 0;
}

static int env_tostring(lua_State *L) {
  rl_env *e = checkenv(L, 1);
  lua_pushfstring(L, "selut.rl.envs.%s (step %d)", kinds[e->kind].name, (int)*env_steps(e));
  return 1;
}

/* ---- vector envs ---- */

enum { UV_OBS = 1, UV_REWARD, UV_TERM, UV_TRUNC, UV_INFO, UV_ENVS, UV_COUNT = UV_ENVS };

typedef struct rl_vecenv {
  int kind;
  int64_t n;
  void *envs; /* n sl_cartpole or sl_pendulum, in the userdata at UV_ENVS */
  sl_tensor *obs, *reward, *term, *trunc, *final_obs; /* borrowed from the boxes in the user values */
  sl_rng rng;
  int own_rng;
} rl_vecenv;

static rl_vecenv *checkvec(lua_State *L, int arg) { return luaL_checkudata(L, arg, RL_VECENV); }

/* Pushes a new tensor box of the given shape into user value uv of the userdata at ud. */
static sl_tensor *vec_buffer(lua_State *L, int ud, int uv, int ndim, int64_t n, int64_t m) {
  int64_t shape[2] = {n, m};
  sl_tensor **box = sl_lua_newtensor(L);
  *box = sl_tensor_zeros(ndim, shape);
  if (!*box) sl_lua_error(L);
  sl_tensor *t = sl_tensor_retain(*box); /* the env's own reference: closing the box leaves it valid */
  lua_setiuservalue(L, ud, uv);
  return t;
}

static void vec_reset_all(lua_State *L, rl_vecenv *v, sl_rng *r) {
  float *obs = (v->obs)->data;
  int d = kinds[v->kind].obs;
  (void)L;
  for (int64_t i = 0; i < v->n; i++) {
    if (v->kind == CARTPOLE)
      sl_cartpole_reset((sl_cartpole *)v->envs + i, r, obs + d * i);
    else
      sl_pendulum_reset((sl_pendulum *)v->envs + i, r, obs + d * i);
  }
}

static int vec_new(lua_State *L, int kind) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 1 << 20, 1, lua_pushfstring(L, "number of envs must be in [1, 1048576], got %I", n));
  rl_vecenv *v = lua_newuserdatauv(L, sizeof *v, UV_ENVS);
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->n = n;
  luaL_setmetatable(L, RL_VECENV);
  int ud = lua_gettop(L);
  size_t esize = kind == CARTPOLE ? sizeof(sl_cartpole) : sizeof(sl_pendulum);
  v->envs = lua_newuserdatauv(L, (size_t)n * esize, 0);
  memset(v->envs, 0, (size_t)n * esize);
  lua_setiuservalue(L, ud, UV_ENVS);
  int d = kinds[kind].obs;
  v->obs = vec_buffer(L, ud, UV_OBS, 2, n, d);
  v->reward = vec_buffer(L, ud, UV_REWARD, 1, n, 0);
  v->term = vec_buffer(L, ud, UV_TERM, 1, n, 0);
  v->trunc = vec_buffer(L, ud, UV_TRUNC, 1, n, 0);
  lua_createtable(L, 0, 1); /* info = {final_obs = [n x d]} */
  {
    int64_t shape[2] = {n, d};
    sl_tensor **box = sl_lua_newtensor(L);
    *box = sl_tensor_zeros(2, shape);
    if (!*box) sl_lua_error(L);
    v->final_obs = sl_tensor_retain(*box);
    lua_setfield(L, -2, "final_obs");
  }
  lua_setiuservalue(L, ud, UV_INFO);
  vec_reset_all(L, v, &sl_lua_context(L)->rng);
  lua_settop(L, ud);
  return 1;
}
static int envs_cartpole_vec(lua_State *L) { return vec_new(L, CARTPOLE); }
static int envs_pendulum_vec(lua_State *L) { return vec_new(L, PENDULUM); }

/* vec:reset([seed]) -> obs [n x d], info */
static int vec_reset(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  vec_reset_all(L, v, reset_rng(L, 2, &v->rng, &v->own_rng));
  lua_getiuservalue(L, 1, UV_OBS);
  lua_getiuservalue(L, 1, UV_INFO);
  return 2;
}

/* vec:step(actions) -> obs, reward, terminated, truncated, info (the same tensors every call) */
static int vec_step(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  sl_tensor *a = sl_lua_checktensor(L, 2);
  int ndim = a->ndim;
  const int64_t *shape = a->shape;
  int ok = (ndim == 1 && shape[0] == v->n) || (v->kind == PENDULUM && ndim == 2 && shape[0] == v->n && shape[1] == 1);
  if (!ok) {
    char buf[64];
    return luaL_argerror(L, 2, lua_pushfstring(L, "actions have shape %s, expected [%d]%s", sl_lua_shapestr(a, buf, sizeof buf),
                                               (int)v->n, v->kind == PENDULUM ? lua_pushfstring(L, " or [%d x 1]", (int)v->n) : ""));
  }
  sl_rng *r = v->own_rng ? &v->rng : &sl_lua_context(L)->rng;
  int status;
  if (v->kind == CARTPOLE)
    status = sl_cartpole_vec_step(v->envs, (size_t)v->n, (a)->data, r, (v->obs)->data, (v->reward)->data,
                                  (v->term)->data, (v->trunc)->data, (v->final_obs)->data);
  else
    status = sl_pendulum_vec_step(v->envs, (size_t)v->n, (a)->data, r, (v->obs)->data, (v->reward)->data,
                                  (v->term)->data, (v->trunc)->data, (v->final_obs)->data);
  sl_lua_check(L, status);
  for (int uv = UV_OBS; uv <= UV_INFO; uv++) lua_getiuservalue(L, 1, uv);
  return 5;
}

static double *vec_env_state(rl_vecenv *v, lua_State *L, int arg) {
  lua_Integer i = luaL_checkinteger(L, arg);
  luaL_argcheck(L, i >= 1 && i <= v->n, arg, lua_pushfstring(L, "env index %I out of range [1, %d]", i, (int)v->n));
  return v->kind == CARTPOLE ? ((sl_cartpole *)v->envs)[i - 1].state : ((sl_pendulum *)v->envs)[i - 1].state;
}

/* vec:state(i) -> list; vec:set_state(i, list) (the env's observation row is updated) */
static int vec_state(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  push_state(L, vec_env_state(v, L, 2), kinds[v->kind].state);
  return 1;
}
static int vec_set_state(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  double *s = vec_env_state(v, L, 2);
  check_state(L, 3, v->kind, s);
  int64_t i = lua_tointeger(L, 2) - 1;
  int d = kinds[v->kind].obs;
  if (v->kind == CARTPOLE)
    sl_cartpole_observe((sl_cartpole *)v->envs + i, (v->obs)->data + d * i);
  else
    sl_pendulum_observe((sl_pendulum *)v->envs + i, (v->obs)->data + d * i);
  return 0;
}

static int vec_index(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "num_envs") == 0) {
    lua_pushinteger(L, v->n);
    return 1;
  }
  if (strcmp(k, "obs_size") == 0) {
    lua_pushinteger(L, kinds[v->kind].obs);
    return 1;
  }
  if (strcmp(k, "n_actions") == 0 && v->kind == CARTPOLE) {
    lua_pushinteger(L, SL_CARTPOLE_ACTIONS);
    return 1;
  }
  if (strcmp(k, "action_size") == 0 && v->kind == PENDULUM) {
    lua_pushinteger(L, 1);
    return 1;
  }
  if (strcmp(k, "obs") == 0) {
    lua_getiuservalue(L, 1, UV_OBS);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

static int vec_gc(lua_State *L) {
  rl_vecenv *v = luaL_checkudata(L, 1, RL_VECENV);
  sl_tensor **ts[] = {&v->obs, &v->reward, &v->term, &v->trunc, &v->final_obs};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
    sl_tensor_release(*ts[i]);
    *ts[i] = NULL;
  }
  return 0;
}

static int vec_tostring(lua_State *L) {
  rl_vecenv *v = checkvec(L, 1);
  lua_pushfstring(L, "selut.rl.envs.%sVec (%d envs)", kinds[v->kind].name, (int)v->n);
  return 1;
}

static const luaL_Reg env_methods[] = {{"reset", env_reset}, {"step", env_step}, {NULL, NULL}};
static const luaL_Reg env_meta[] = {{"__index", env_index}, {"__newindex", env_newindex}, {"__tostring", env_tostring}, {NULL, NULL}};
static const luaL_Reg vec_methods[] = {
    {"reset", vec_reset}, {"step", vec_step}, {"state", vec_state}, {"set_state", vec_set_state}, {NULL, NULL}};
static const luaL_Reg vec_meta[] = {{"__index", vec_index}, {"__gc", vec_gc}, {"__tostring", vec_tostring}, {NULL, NULL}};
static const luaL_Reg envs_funcs[] = {{"CartPole", envs_cartpole},
                                      {"Pendulum", envs_pendulum},
                                      {"CartPoleVec", envs_cartpole_vec},
                                      {"PendulumVec", envs_pendulum_vec},
                                      {NULL, NULL}};


static void new_meta(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  sl_lua_setfuncs(L, meta);
  lua_newtable(L);
  sl_lua_setfuncs(L, methods);
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
}

void sl_lua_open_rl(lua_State *L) {
  new_meta(L, RL_ENV, env_meta, env_methods);
  new_meta(L, RL_VECENV, vec_meta, vec_methods);
  sl_lua_open_rl_ops(L); /* selut.rl (scripts/rl.lua adds the algorithms) */
  sl_lua_newlib(L, envs_funcs);
  lua_setfield(L, -2, "envs");
  lua_setfield(L, -2, "rl");
}
