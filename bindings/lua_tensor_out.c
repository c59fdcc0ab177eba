/*
 * The `out=` option of the tensor ops (PyTorch's out= keyword): an op
 * writes its result into a tensor the caller allocated, so a loop reuses
 * one buffer instead of faulting in a fresh result each time. Shared by
 * lua_tensor_elementwise.c, lua_tensor_reduce.c and lua_tensor_shape.c.
 */
#include <string.h>

#include "sl_lua.h"

sl_tensor *sl_lua_optout(lua_State *L, int arg, const char *op) {
  if (lua_isnoneornil(L, arg)) return NULL;
  if (!lua_istable(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "options table {out = tensor} expected, got %s", luaL_typename(L, arg)));
  lua_pushnil(L);
  while (lua_next(L, arg)) { /* only `out` is known here */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "out") != 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: unknown option '%s' (expected out)", op, k));
    lua_pop(L, 1);
  }
  return sl_lua_outfield(L, arg, op);
}

sl_tensor *sl_lua_outfield(lua_State *L, int arg, const char *op) {
  if (lua_getfield(L, arg, "out") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!luaL_testudata(L, -1, SL_LUA_TENSOR))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: option 'out' must be a selut.Tensor, got %s", op, luaL_typename(L, -1)));
  sl_tensor *out = sl_lua_checktensor(L, lua_gettop(L)); /* raises for a closed tensor */
  lua_pop(L, 1);
  return out;
}

/* True when the element ranges of a and b share a byte. */
static bool overlaps(const sl_tensor *a, const sl_tensor *b) {
  if (!a || !b || !a->numel || !b->numel) return false;
  const float *a0 = a->data, *a1 = a->data + a->numel, *b0 = b->data, *b1 = b->data + b->numel;
  return a0 < b1 && b0 < a1;
}

void sl_lua_checkout(lua_State *L, sl_tensor *out, const char *op, int nd, const int64_t *shape, const sl_tensor *in1,
                     const sl_tensor *in2, bool may_alias) {
  char a[160], b[160];
  bool same = out->ndim == nd;
  for (int i = 0; same && i < nd; i++) same = out->shape[i] == shape[i];
  if (!same)
    luaL_error(L, "%s: out has shape %s, expected %s (the result's shape)", op, sl_shape_str(out, a, sizeof a),
               sl_shape_str_raw(nd, shape, b, sizeof b));
  if (sl_lua_recording(L, in1, in2))
    luaL_error(L, "%s: out= does not support automatic differentiation, but an input requires grad "
                  "(call it under selut.no_grad, or drop out=)", op);
  const sl_tensor *in[2] = {in1, in2};
  for (int k = 0; k < 2; k++) {
    const sl_tensor *t = in[k];
    if (!overlaps(out, t)) continue;
    bool itself = t->data == out->data && t->numel == out->numel;
    if (!itself || !may_alias)
      luaL_error(L, "%s: out %s shares memory with input %s; %s", op, sl_shape_str(out, a, sizeof a),
                 sl_shape_str(t, b, sizeof b),
                 may_alias ? "it may only be that input itself" : "this op cannot write over its input");
  }
  sl_lua_inplace(L, out, op);
}
