/*
 * Per-state memory accounts. Each state's context (sl_lua_ctx) owns a core
 * sl_mem_account; every selut C function makes it the thread's current
 * account while it runs, so the tensors it creates are charged to the state
 * that asked for them and selut.set_memory_limit caps that state alone, even
 * when several states share a thread and the host calls them with plain
 * lua_pcall.
 *
 * How: functions are registered through sl_lua_setfuncs / sl_lua_newlib /
 * sl_lua_pushcclosure, which push each one as a closure of `enter` with two
 * leading upvalues, the real C function (a light C function) and the context
 * (a light userdata). `enter` makes the context's account current, calls the
 * function and restores the previous account when it returns. A Lua error
 * skips the restore: the state's account stays current on that thread until
 * the next selut call or sl_lua_pcall returns (see docs/embedding.md).
 * Finalizers (__gc, __close) are registered unwrapped: they only free, and
 * sl_free credits the account recorded in each block.
 */
#include <string.h>

#include "selut_lua.h"
#include "sl_lua.h"

static int ctx_gc(lua_State *L) {
  sl_lua_ctx *c = lua_touserdata(L, 1);
  sl_mem_account_free(c->account); /* freed with its last block if tensors outlive the state */
  c->account = NULL;               /* from now on the thread's default account is used */
  return 0;
}

void sl_lua_ctx_open_account(lua_State *L, sl_lua_ctx *c) {
  c->account = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(c->account = sl_mem_account_new())) sl_lua_error(L);
}

static int enter(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
  const sl_lua_ctx *c = lua_touserdata(L, lua_upvalueindex(2));
  sl_mem_account *prev = sl_mem_account_use(c->account);
  int n = f(L);
  sl_mem_account_use(prev);
  return n;
}

static int is_finalizer(const char *name) { return strcmp(name, "__gc") == 0 || strcmp(name, "__close") == 0; }

void sl_lua_setfuncs(lua_State *L, const luaL_Reg *l) {
  sl_lua_ctx *c = sl_lua_context(L);
  for (; l->name; l++) {
    if (!l->func) {
      lua_pushboolean(L, 0); /* a placeholder, as luaL_setfuncs */
    } else if (is_finalizer(l->name)) {
      lua_pushcfunction(L, l->func);
    } else {
      lua_pushcfunction(L, l->func);
      lua_pushlightuserdata(L, c);
      lua_pushcclosure(L, enter, 2);
    }
    lua_setfield(L, -2, l->name);
  }
}

void sl_lua_pushcclosure(lua_State *L, lua_CFunction f, int n) {
  sl_lua_ctx *c = sl_lua_context(L);
  lua_pushcfunction(L, f);
  lua_insert(L, -(n + 1));
  lua_pushlightuserdata(L, c);
  lua_insert(L, -(n + 1));
  lua_pushcclosure(L, enter, n + 2);
}

sl_mem_account *sl_lua_enter(lua_State *L) { return sl_mem_account_use(sl_lua_context(L)->account); }

sl_mem_account *sl_lua_account(lua_State *L) { return sl_lua_context(L)->account; }
