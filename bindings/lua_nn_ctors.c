/*
 * selut.nn constructors with argument forms of their own (every other
 * registered layer gets lua_nn.c's generic one from its descriptor):
 * Linear(in, out[, bias]), the activations' inplace flag, SELU{alpha=,
 * scale=, inplace=}, Dropout/AlphaDropout(p) and AlphaDropout(p, {mean=,
 * var=[, alpha=, scale=]}), BatchNorm1d(c[, {eps=, momentum=, affine=,
 * track_running_stats=}]). Their messages are part of the API.
 */
#include <math.h>
#include <stdbool.h>

#include "sl_lua.h"

static int nn_linear(lua_State *L) {
  lua_Integer in = luaL_checkinteger(L, 1);
  lua_Integer out = luaL_checkinteger(L, 2);
  luaL_argcheck(L, in >= 1, 1, lua_pushfstring(L, "in_features must be >= 1, got %I", in));
  luaL_argcheck(L, out >= 1, 2, lua_pushfstring(L, "out_features must be >= 1, got %I", out));
  int bias = lua_isnoneornil(L, 3) ? 1 : (luaL_checktype(L, 3, LUA_TBOOLEAN), lua_toboolean(L, 3));
  sl_rng *rng = &sl_lua_context(L)->rng;
  sl_module **b = sl_lua_newmodule(L, "Linear");
  if (!(*b = sl_linear_new(in, out, bias, rng)))
    return luaL_error(L, "Linear(%I, %I): %s", in, out, sl_last_error());
  return 1;
}

static int simple(lua_State *L, const char *type, sl_module *(*ctor)(void)) {
  sl_module **b = sl_lua_newmodule(L, type);
  if (!(*b = ctor())) return sl_lua_error(L);
  return 1;
}

/* The inplace flag (PyTorch's inplace=True) at arg: nil/none is false. */
static bool check_inplace(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return false;
  luaL_argexpected(L, lua_isboolean(L, arg), arg, "boolean (inplace)");
  return lua_toboolean(L, arg);
}

/* The new module at the top: set in place when asked. */
static int with_inplace(lua_State *L, bool inplace) {
  if (inplace) sl_lua_check(L, sl_activation_set_inplace(*(sl_module **)lua_touserdata(L, -1), true));
  return 1;
}

static int nn_selu_custom(lua_State *L); /* SELU{alpha=, scale=, inplace=}, below */
static int nn_selu(lua_State *L) {
  if (lua_istable(L, 1)) return nn_selu_custom(L);
  if (!lua_isnoneornil(L, 1) && !lua_isboolean(L, 1))
    return luaL_typeerror(L, 1, "table {alpha=, scale=, inplace=} or boolean (inplace)");
  bool inplace = check_inplace(L, 1);
  simple(L, "SELU", sl_selu_new);
  return with_inplace(L, inplace);
}
static int nn_relu(lua_State *L) {
  bool inplace = check_inplace(L, 1);
  simple(L, "ReLU", sl_relu_new);
  return with_inplace(L, inplace);
}

static int nn_elu(lua_State *L) {
  double alpha = luaL_optnumber(L, 1, 1.0);
  luaL_argcheck(L, isfinite(alpha), 1, "alpha must be finite");
  bool inplace = check_inplace(L, 2);
  sl_module **b = sl_lua_newmodule(L, "ELU");
  if (!(*b = sl_elu_new(alpha))) return sl_lua_error(L);
  return with_inplace(L, inplace);
}

static int nn_leaky_relu(lua_State *L) {
  double slope = luaL_optnumber(L, 1, 0.01);
  luaL_argcheck(L, isfinite(slope), 1, "negative_slope must be finite");
  sl_module **b = sl_lua_newmodule(L, "LeakyReLU");
  if (!(*b = sl_leaky_relu_new(slope))) return sl_lua_error(L);
  return 1;
}

static int dropout(lua_State *L, const char *type, sl_module *(*ctor)(double, sl_rng *)) {
  double p = luaL_optnumber(L, 1, 0.5);
  luaL_argcheck(L, p >= 0 && p < 1, 1, lua_pushfstring(L, "probability in [0, 1) expected, got %f", p));
  sl_rng *rng = &sl_lua_context(L)->rng;
  sl_module **b = sl_lua_newmodule(L, type);
  sl_lua_keepcontext(L);
  if (!(*b = ctor(p, rng))) return sl_lua_error(L);
  sl_lua_check(L, sl_dropout_bind_sample_offset(*b, &sl_lua_context(L)->sample_offset));
  return 1;
}

static int nn_dropout(lua_State *L) { return dropout(L, "Dropout", sl_dropout_new); }
static int nn_alpha_dropout_fixed_point(lua_State *L); /* AlphaDropout(p, {mean=, var=}), below */
static int nn_alpha_dropout(lua_State *L) {
  if (!lua_isnoneornil(L, 2)) return nn_alpha_dropout_fixed_point(L);
  return dropout(L, "AlphaDropout", sl_alpha_dropout_new);
}

static int opt_bool(lua_State *L, int arg, const char *key, int def) {
  int t = lua_getfield(L, arg, key), v = def;
  if (t != LUA_TNIL) {
    if (t != LUA_TBOOLEAN)
      luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a boolean, got %s", key, luaL_typename(L, -1)));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int nn_selu_custom(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double alpha = sl_lua_optnumfield(L, 1, "alpha", SL_SELU_ALPHA);
  double scale = sl_lua_optnumfield(L, 1, "scale", SL_SELU_SCALE);
  luaL_argcheck(L, alpha >= 0, 1, lua_pushfstring(L, "alpha must be >= 0, got %f", alpha));
  luaL_argcheck(L, scale > 0, 1, lua_pushfstring(L, "scale must be > 0, got %f", scale));
  int t = lua_getfield(L, 1, "inplace");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TBOOLEAN, 1,
                lua_pushfstring(L, "inplace must be a boolean, got %s", lua_typename(L, t)));
  bool inplace = lua_toboolean(L, -1);
  lua_pop(L, 1);
  sl_module **b = sl_lua_newmodule(L, "SELU");
  if (!(*b = sl_selu_new_custom(alpha, scale))) return sl_lua_error(L);
  return with_inplace(L, inplace);
}

static int nn_alpha_dropout_fixed_point(lua_State *L) {
  double p = luaL_optnumber(L, 1, 0.5);
  luaL_argcheck(L, p >= 0 && p < 1, 1, lua_pushfstring(L, "probability in [0, 1) expected, got %f", p));
  luaL_checktype(L, 2, LUA_TTABLE);
  double mean = sl_lua_optnumfield(L, 2, "mean", 0.0);
  double var = sl_lua_optnumfield(L, 2, "var", 1.0);
  luaL_argcheck(L, var > 0, 2, lua_pushfstring(L, "var must be > 0, got %f", var));
  /* the dropped value alpha' = -scale * alpha of the SELU in use: given, or
   * the SELU whose fixed point is (mean, var) */
  double alpha_prime = NAN;
  lua_getfield(L, 2, "alpha");
  lua_getfield(L, 2, "scale");
  int given = !lua_isnil(L, -1) || !lua_isnil(L, -2);
  lua_pop(L, 2);
  if (given) {
    double a0 = SL_SELU_ALPHA, s0 = SL_SELU_SCALE;
    if (!(mean == 0 && var == 1)) sl_lua_check(L, sl_snn_params(mean, var, &a0, &s0));
    alpha_prime = -sl_lua_optnumfield(L, 2, "scale", s0) * sl_lua_optnumfield(L, 2, "alpha", a0);
  }
  sl_rng *rng = &sl_lua_context(L)->rng;
  sl_module **b = sl_lua_newmodule(L, "AlphaDropout");
  sl_lua_keepcontext(L);
  if (!(*b = sl_alpha_dropout_new_ex(p, mean, var, alpha_prime, rng))) return sl_lua_error(L);
  sl_lua_check(L, sl_dropout_bind_sample_offset(*b, &sl_lua_context(L)->sample_offset));
  return 1;
}

static int nn_batchnorm1d(lua_State *L) {
  lua_Integer c = luaL_checkinteger(L, 1);
  luaL_argcheck(L, c >= 1, 1, lua_pushfstring(L, "num_features must be >= 1, got %I", c));
  sl_batchnorm_opts o = sl_batchnorm_defaults();
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    o.eps = sl_lua_optnumfield(L, 2, "eps", o.eps);
    o.momentum = sl_lua_optnumfield(L, 2, "momentum", o.momentum);
    o.affine = opt_bool(L, 2, "affine", o.affine);
    o.track_running_stats = opt_bool(L, 2, "track_running_stats", o.track_running_stats);
    luaL_argcheck(L, o.eps > 0, 2, lua_pushfstring(L, "eps must be > 0, got %f", o.eps));
    luaL_argcheck(L, o.momentum >= 0 && o.momentum <= 1, 2,
                  lua_pushfstring(L, "momentum must be in [0, 1], got %f", o.momentum));
  }
  sl_module **b = sl_lua_newmodule(L, "BatchNorm1d");
  if (!(*b = sl_batchnorm1d_new(c, o))) return sl_lua_error(L);
  return 1;
}

const luaL_Reg sl_lua_nn_ctors[] = {
    {"Linear", nn_linear}, {"SELU", nn_selu}, {"ELU", nn_elu}, {"ReLU", nn_relu},
    {"LeakyReLU", nn_leaky_relu}, {"Dropout", nn_dropout}, {"AlphaDropout", nn_alpha_dropout},
    {"BatchNorm1d", nn_batchnorm1d}, {NULL, NULL}};
