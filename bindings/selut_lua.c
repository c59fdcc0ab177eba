/*
 * luaopen_selut: builds the selut table from the per-area openers, registers
 * the embedded scripts (scripts/NAME.lua, see sl_scripts.h) in package.preload
 * under "selut.<name>" with chunk names "@scripts/<name>.lua", and loads the
 * ones that extend the selut table (scripts/nn.lua adds nn.Sequential, ...).
 */
#include "selut_lua.h"

#include <string.h>

#include "sl_lua.h"
#include "sl_scripts.h"

/* Areas, in order. To add one: define void sl_lua_open_<area>(lua_State *)
 * in bindings/lua_<area>.c and add a line here. Each is called with the
 * selut table on top of the stack; selut.data and selut.viz already exist
 * (empty tables) when they run. */
static void (*const area_openers[])(lua_State *L) = {
    sl_lua_open_tensor,
    sl_lua_open_tensor_elementwise,
    sl_lua_open_tensor_reduce,
    sl_lua_open_tensor_shape,
    sl_lua_open_tensor_index,
    sl_lua_open_tensor_random,
    sl_lua_open_autograd,
    sl_lua_open_nn,
    sl_lua_open_loss,
    sl_lua_open_nn_layers,
    sl_lua_open_nn_rnn,
    sl_lua_open_nn_attention,
    sl_lua_open_optim,
    sl_lua_open_sys,
    sl_lua_open_limits,
    sl_lua_open_dist,
    sl_lua_open_data,
    sl_lua_open_io,
    sl_lua_open_viz,
    sl_lua_open_snn,
    sl_lua_open_rl,
    sl_lua_open_host,
    sl_lua_open_onnx,
    NULL,
};

/* Embedded scripts loaded while opening: they extend the selut table. */
static const char *const eager_scripts[] = {"selut.autograd", "selut.nn", "selut.nn_class", "selut.functional", "selut.trainer", "selut.snn",
                                             "selut.dist",     "selut.viz", "selut.rl",      "selut.onnx", "selut.io", NULL};

/* package.preload loader: upvalue 1 is the sl_script. */
static int script_loader(lua_State *L) {
  const sl_script *s = lua_touserdata(L, sl_lua_upvalueindex(1));
  if (luaL_loadbufferx(L, s->source, s->size, s->chunkname, "b") != LUA_OK)
    return lua_error(L); /* a chunk this Lua cannot load: a Lua error, never exit */
  lua_pushstring(L, s->module);
  lua_call(L, 1, 1);
  return 1;
}

static void register_scripts(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const sl_script *s = sl_scripts; s->module; s++) {
    lua_pushlightuserdata(L, (void *)s);
    sl_lua_pushcclosure(L, script_loader, 1);
    lua_setfield(L, -2, s->module);
  }
  lua_pop(L, 1);
}

static int script_embedded(const char *module) {
  for (const sl_script *s = sl_scripts; s->module; s++)
    if (strcmp(s->module, module) == 0) return 1;
  return 0;
}

int luaopen_selut(lua_State *L) {
  luaL_checkversion(L);
  sl_lua_context(L);
  lua_newtable(L); /* selut */
  /* Visible to the embedded scripts' require "selut" while we are opening. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "selut");
  lua_pop(L, 1);

  lua_pushliteral(L, SELUT_VERSION);
  lua_setfield(L, -2, "version");
  lua_newtable(L);
  lua_setfield(L, -2, "data");
  lua_newtable(L);
  lua_setfield(L, -2, "viz");
  for (int i = 0; area_openers[i]; i++) area_openers[i](L);

  register_scripts(L);
  int selut = lua_gettop(L);
  for (int i = 0; eager_scripts[i]; i++) {
    if (!script_embedded(eager_scripts[i])) continue;
    if (lua_getglobal(L, "require") != LUA_TFUNCTION)
      luaL_error(L, "selut: the package library (require) must be open before luaopen_selut");
    lua_pushstring(L, eager_scripts[i]);
    lua_call(L, 1, 0);
  }
  lua_settop(L, selut);
  return 1;
}
