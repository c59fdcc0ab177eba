/*
 * selut.tensor, elementwise arithmetic with broadcasting, comparisons, where, unary math, clamp.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static const luaL_Reg elementwise_methods[] = {{NULL, NULL}};

void sl_lua_open_tensor_elementwise(lua_State *L) { sl_lua_tensor_extend(L, elementwise_methods, NULL, NULL); }
