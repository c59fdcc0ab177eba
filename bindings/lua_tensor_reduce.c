/*
 * selut.tensor, reductions over all elements or one dim (keepdim), softmax, log_softmax.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static const luaL_Reg reduce_methods[] = {{NULL, NULL}};

void sl_lua_open_tensor_reduce(lua_State *L) { sl_lua_tensor_extend(L, reduce_methods, NULL, NULL); }
