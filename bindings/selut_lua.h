/*
 * Embedding selut in a C host. luaopen_selut is the Lua C module entry
 * point (require "selut"); the host helpers let a program share buffers with
 * scripts, redirect output, and bound the time a script call may take.
 */
#ifndef SELUT_LUA_H
#define SELUT_LUA_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Pushes the selut table (also stored in package.loaded["selut"]). */
int luaopen_selut(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
