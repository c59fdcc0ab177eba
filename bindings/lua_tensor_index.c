/*
 * selut.tensor, indexing: index_select, gather, scatter_add, masked_fill, one_hot.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static const luaL_Reg index_methods[] = {{NULL, NULL}};

void sl_lua_open_tensor_index(lua_State *L) { sl_lua_tensor_extend(L, index_methods, NULL, NULL); }
