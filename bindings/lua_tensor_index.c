/*
 * selut.tensor, indexing: index_select, gather, scatter_add(_), masked_fill(_),
 * one_hot (core/tensor/index.h). Dims are 1-based (negative from the end);
 * indices are 1-based, held in float tensors. Methods and functions are added
 * to the tensor tables by sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

#define LUA_BASE 1 /* Lua's indices start at 1 */

/* Stores r in the box on top; raises the core error when r is NULL. */
static int push_result(lua_State *L, sl_tensor **box, sl_tensor *r) {
  if (!(*box = r)) return sl_lua_error(L);
  return 1;
}

static int index_index_select(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim(L, 2, x);
  sl_tensor *idx = sl_lua_checktensor(L, 3);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_index_select(x, d, idx, LUA_BASE));
  if (sl_lua_recording(L, x, NULL)) sl_lua_check(L, sl_ag_record_index_select(*box, x, d, idx, LUA_BASE));
  return 1;
}

static int index_gather(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim(L, 2, x);
  sl_tensor *idx = sl_lua_checktensor(L, 3);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_gather(x, d, idx, LUA_BASE));
  if (sl_lua_recording(L, x, NULL)) sl_lua_check(L, sl_ag_record_gather(*box, x, d, idx, LUA_BASE));
  return 1;
}

static int index_scatter_add(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim(L, 2, x);
  sl_tensor *idx = sl_lua_checktensor(L, 3), *src = sl_lua_checktensor(L, 4);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_scatter_add(x, d, idx, src, LUA_BASE));
  if (sl_lua_recording(L, x, src)) sl_lua_check(L, sl_ag_record_scatter_add(*box, x, d, idx, src, LUA_BASE));
  return 1;
}

/* In place on x; a src that requires grad would lose its gradient. */
static int index_scatter_add_(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim(L, 2, x);
  sl_tensor *idx = sl_lua_checktensor(L, 3), *src = sl_lua_checktensor(L, 4);
  if (sl_lua_recording(L, src, NULL))
    return luaL_error(L, "scatter_add_: src requires grad and in-place ops are not recorded by autograd "
                         "(use the out-of-place scatter_add)");
  sl_lua_inplace(L, x, "scatter_add_");
  sl_lua_check(L, sl_scatter_add_(x, d, idx, src, LUA_BASE));
  sl_tensor_bump_version(x);
  lua_settop(L, 1);
  return 1;
}

static int index_masked_fill(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1), *mask = sl_lua_checktensor(L, 2);
  float v = (float)luaL_checknumber(L, 3);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_masked_fill(x, mask, v));
  if (sl_lua_recording(L, x, NULL)) sl_lua_check(L, sl_ag_record_masked_fill(*box, x, mask));
  return 1;
}

static int index_masked_fill_(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1), *mask = sl_lua_checktensor(L, 2);
  float v = (float)luaL_checknumber(L, 3);
  sl_lua_inplace(L, x, "masked_fill_");
  sl_lua_check(L, sl_masked_fill_(x, mask, v));
  sl_tensor_bump_version(x);
  lua_settop(L, 1);
  return 1;
}

/* selut.one_hot(idx[, C]): C inferred as the largest index when absent. */
static int index_one_hot(lua_State *L) {
  sl_tensor *idx = sl_lua_checktensor(L, 1);
  lua_Integer c = luaL_optinteger(L, 2, -1);
  luaL_argcheck(L, c >= 1 || lua_isnoneornil(L, 2), 2,
                lua_pushfstring(L, "number of classes must be positive, got %I", c));
  sl_tensor **box = sl_lua_newtensor(L);
  return push_result(L, box, sl_one_hot(idx, (int64_t)c, LUA_BASE));
}

static const luaL_Reg index_methods[] = {
    {"index_select", index_index_select}, {"gather", index_gather}, {"scatter_add", index_scatter_add},
    {"scatter_add_", index_scatter_add_}, {"masked_fill", index_masked_fill}, {"masked_fill_", index_masked_fill_},
    {"one_hot", index_one_hot}, {NULL, NULL}};

/* selut.op(x, ...) where PyTorch has torch.op (one_hot: torch.nn.functional) */
static const luaL_Reg index_selut_fns[] = {
    {"index_select", index_index_select}, {"gather", index_gather}, {"scatter_add", index_scatter_add},
    {"masked_fill", index_masked_fill}, {"one_hot", index_one_hot}, {NULL, NULL}};

void sl_lua_open_tensor_index(lua_State *L) { sl_lua_tensor_extend(L, index_methods, NULL, index_selut_fns); }
