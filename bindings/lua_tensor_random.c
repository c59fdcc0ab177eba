/*
 * selut.tensor, random sampling and creation: randint, randperm, bernoulli,
 * multinomial, normal_, uniform_, eye, linspace, *_like (core/tensor/sample.c).
 * Samplers draw from the state's generator (selut.manual_seed). Methods and
 * functions are added to the tensor tables by sl_lua_tensor_extend
 * (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static sl_rng *rng_of(lua_State *L) { return &sl_lua_context(L)->rng; }

static int push_result(lua_State *L, sl_tensor **box, sl_tensor *r) {
  if (!(*box = r)) return sl_lua_error(L);
  return 1;
}

/* T.randint(lo, hi, ...sizes): integers in [lo, hi), as torch.randint. */
static int random_randint(lua_State *L) {
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 3, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_randint(lo, hi, nd, shape, rng_of(L)));
}

/* T.randperm(n): a permutation of 1..n (indices are 1-based in selut). */
static int random_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_randperm(n, rng_of(L)));
}

/* T.bernoulli(p) for a tensor of probabilities, T.bernoulli(p, ...sizes)
 * for one probability. */
static int random_bernoulli(lua_State *L) {
  sl_tensor *p = sl_lua_totensor(L, 1);
  if (p) {
    sl_lua_checktensor(L, 1); /* raises for a closed tensor */
    luaL_argcheck(L, lua_isnone(L, 2), 2, "no sizes expected when p is a tensor");
    sl_tensor **box = sl_lua_newtensor(L);
    return push_result(L, box, sl_bernoulli(p, rng_of(L)));
  }
  if (lua_type(L, 1) != LUA_TNUMBER && !lua_isuserdata(L, 1))
    return luaL_typeerror(L, 1, "number or selut.Tensor");
  if (lua_isuserdata(L, 1)) sl_lua_checktensor(L, 1); /* "attempt to use a closed tensor" */
  double pv = lua_tonumber(L, 1);
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 2, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_bernoulli_p(pv, nd, shape, rng_of(L)));
}

/* T.multinomial(probs, n[, replacement]): 1-based category indices. */
static int random_multinomial(lua_State *L) {
  sl_tensor *p = sl_lua_checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  int repl = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    repl = lua_toboolean(L, 3);
  }
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_multinomial(p, n, repl, rng_of(L)));
}

static int random_normal_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  double mean = luaL_optnumber(L, 2, 0.0), std = luaL_optnumber(L, 3, 1.0);
  sl_lua_inplace(L, t, "normal_");
  sl_lua_check(L, sl_normal_(t, mean, std, rng_of(L)));
  lua_settop(L, 1);
  return 1;
}

static int random_uniform_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  double a = luaL_optnumber(L, 2, 0.0), b = luaL_optnumber(L, 3, 1.0);
  sl_lua_inplace(L, t, "uniform_");
  sl_lua_check(L, sl_uniform_(t, a, b, rng_of(L)));
  lua_settop(L, 1);
  return 1;
}

static int random_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), m = luaL_optinteger(L, 2, n);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_eye(n, m));
}

static int random_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_linspace(a, b, n));
}

static int like(lua_State *L, float v) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_full_like(x, v));
}

static int random_zeros_like(lua_State *L) { return like(L, 0.0f); }
static int random_ones_like(lua_State *L) { return like(L, 1.0f); }
static int random_full_like(lua_State *L) {
  sl_lua_checktensor(L, 1);
  return like(L, (float)luaL_checknumber(L, 2));
}

static const luaL_Reg random_methods[] = {
    {"normal_", random_normal_}, {"uniform_", random_uniform_}, {"bernoulli", random_bernoulli},
    {"multinomial", random_multinomial}, {NULL, NULL}};

static const luaL_Reg random_tensor_fns[] = {
    {"randint", random_randint}, {"randperm", random_randperm}, {"bernoulli", random_bernoulli},
    {"multinomial", random_multinomial}, {"eye", random_eye}, {"linspace", random_linspace},
    {"zeros_like", random_zeros_like}, {"ones_like", random_ones_like}, {"full_like", random_full_like},
    {NULL, NULL}};

static const luaL_Reg random_selut_fns[] = {
    {"bernoulli", random_bernoulli}, {"multinomial", random_multinomial}, {NULL, NULL}};

void sl_lua_open_tensor_random(lua_State *L) {
  sl_lua_tensor_extend(L, random_methods, random_tensor_fns, random_selut_fns);
}
