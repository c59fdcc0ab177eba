/*
 * selut.snn (C half): the SNN paper's analysis in double precision —
 * snn.params (SELU constants for a chosen fixed point), snn.moments (the
 * moment map and its Jacobian), snn.alpha_dropout_coeffs. snn.check and
 * snn.fixed_point are Lua (scripts/snn.lua).
 */
#include <math.h>

#include "sl_lua.h"

static double check_finite(lua_State *L, int arg, const char *what) {
  double v = luaL_checknumber(L, arg);
  if (!isfinite(v)) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be finite, got %f", what, v));
  return v;
}

/* snn.params(mean, var) -> alpha, scale */
static int snn_params(lua_State *L) {
  double mean = check_finite(L, 1, "mean");
  double var = check_finite(L, 2, "var");
  luaL_argcheck(L, var > 0, 2, lua_pushfstring(L, "var must be > 0, got %f", var));
  double alpha, scale;
  sl_lua_check(L, sl_snn_params(mean, var, &alpha, &scale));
  lua_pushnumber(L, alpha);
  lua_pushnumber(L, scale);
  return 2;
}

/* snn.moments(mean, var[, {alpha=, scale=, omega=0, tau=1}]) ->
 * {mean=, var=, jacobian={{dm/dmu, dm/dnu}, {dv/dmu, dv/dnu}}, spectral_norm=} */
static int snn_moments(lua_State *L) {
  double mu = check_finite(L, 1, "mean");
  double nu = check_finite(L, 2, "var");
  luaL_argcheck(L, nu > 0, 2, lua_pushfstring(L, "var must be > 0, got %f", nu));
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  double alpha = sl_lua_optnumfield(L, 3, "alpha", SL_SELU_ALPHA), scale = sl_lua_optnumfield(L, 3, "scale", SL_SELU_SCALE);
  double omega = sl_lua_optnumfield(L, 3, "omega", 0.0), tau = sl_lua_optnumfield(L, 3, "tau", 1.0);
  luaL_argcheck(L, tau > 0, 3, lua_pushfstring(L, "tau must be > 0, got %f", tau));
  luaL_argcheck(L, alpha >= 0, 3, lua_pushfstring(L, "alpha must be >= 0, got %f", alpha));
  luaL_argcheck(L, scale > 0, 3, lua_pushfstring(L, "scale must be > 0, got %f", scale));
  sl_snn_moments m;
  sl_lua_check(L, sl_snn_moments_eval(mu, nu, omega, tau, alpha, scale, &m));
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, m.mean);
  lua_setfield(L, -2, "mean");
  lua_pushnumber(L, m.var);
  lua_setfield(L, -2, "var");
  lua_createtable(L, 2, 0);
  for (int i = 0; i < 2; i++) {
    lua_createtable(L, 2, 0);
    for (int j = 0; j < 2; j++) {
      lua_pushnumber(L, m.jac[i][j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "jacobian");
  lua_pushnumber(L, m.spectral_norm);
  lua_setfield(L, -2, "spectral_norm");
  return 1;
}

/* snn.alpha_dropout_coeffs(p[, {mean=0, var=1, alpha=, scale=}]) -> a, b, dropped */
static int snn_alpha_dropout_coeffs(lua_State *L) {
  double p = luaL_checknumber(L, 1);
  luaL_argcheck(L, p >= 0 && p < 1, 1, lua_pushfstring(L, "probability in [0, 1) expected, got %f", p));
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  double mean = sl_lua_optnumfield(L, 2, "mean", 0.0), var = sl_lua_optnumfield(L, 2, "var", 1.0);
  luaL_argcheck(L, var > 0, 2, lua_pushfstring(L, "var must be > 0, got %f", var));
  double alpha = SL_SELU_ALPHA, scale = SL_SELU_SCALE;
  if (!(mean == 0 && var == 1)) sl_lua_check(L, sl_snn_params(mean, var, &alpha, &scale));
  alpha = sl_lua_optnumfield(L, 2, "alpha", alpha);
  scale = sl_lua_optnumfield(L, 2, "scale", scale);
  double a, b, dropped;
  sl_lua_check(L, sl_snn_alpha_dropout_coeffs(p, mean, var, -scale * alpha, &a, &b, &dropped));
  lua_pushnumber(L, a);
  lua_pushnumber(L, b);
  lua_pushnumber(L, dropped);
  return 3;
}

static const luaL_Reg snn_funcs[] = {
    {"params", snn_params}, {"moments", snn_moments}, {"alpha_dropout_coeffs", snn_alpha_dropout_coeffs},
    {NULL, NULL}};

void sl_lua_open_snn(lua_State *L) {
  sl_lua_newlib(L, snn_funcs);
  lua_setfield(L, -2, "snn");
}
