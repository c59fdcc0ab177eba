/*
 * selut.tensor, random sampling and creation: randint, randperm, bernoulli, multinomial, normal_, uniform_, eye, linspace, *_like.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include "sl_lua.h"

static const luaL_Reg random_methods[] = {{NULL, NULL}};

void sl_lua_open_tensor_random(lua_State *L) { sl_lua_tensor_extend(L, random_methods, NULL, NULL); }
