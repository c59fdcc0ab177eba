/*
 * Per-state memory accounts. Each state's context (sl_lua_ctx) owns a core
 * sl_mem_account; every selut C function makes it the thread's current
 * account while it runs, so the tensors it creates are charged to the state
 * that asked for them and selut.set_memory_limit caps that state alone, even
 * when several states share a thread and the host calls them with plain
 * lua_pcall.
 *
 * How: functions are registered through sl_lua_setfuncs / sl_lua_newlib /
 * sl_lua_pushcclosure, which push each one as a closure of `enter` whose
 * first upvalue records the real C function and the context. `enter` makes
 * the context's account current, calls the function and restores the
 * previous account when it returns. A Lua error skips the restore: the
 * state's account stays current on that thread until the host resets it or
 * an sl_lua_pcall returns (see docs/embedding.md). Not wrapped: finalizers
 * (__gc, __close), which only free (sl_free credits the account recorded in
 * each block), and the __index closures of tensors, modules, optimizers and
 * datasets, whose hot path is a method lookup: the slow paths that allocate
 * (x[i], ds.x) bracket their core call with sl_lua_enter.
 */
#include <stdlib.h>
#include <string.h>

#include "selut_lua.h"
#include "sl_lua.h"

static int ctx_gc(lua_State *L) {
  sl_lua_ctx *c = lua_touserdata(L, 1);
  sl_ag_pool_free(c->ag_pool); /* before the account its blocks are charged to */
  c->ag_pool = NULL;
  sl_mem_account_free(c->account); /* freed with its last block if tensors outlive the state */
  c->account = NULL;               /* from now on the thread's default account is used */
  free(c->ag_unref);               /* lua_autograd.c's pending registry refs (the registry goes too) */
  c->ag_unref = NULL;
  c->ag_nunref = c->ag_capunref = 0;
  return 0;
}

/* The autograd pool ran dry with much handed out since the last time: the
 * results' boxes Lua has not collected yet are the likely garbage. ud is the
 * running thread (set by enter). */
static void reclaim(void *ud) { sl_lua_full_gc(ud, sl_lua_context(ud)); }

void sl_lua_ctx_open_account(lua_State *L, sl_lua_ctx *c) {
  c->account = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(c->account = sl_mem_account_new())) sl_lua_error(L);
  if (!(c->ag_pool = sl_ag_pool_new(c->account))) sl_lua_error(L);
  sl_ag_pool_set_reclaim(c->ag_pool, reclaim);
}

/* The wrapper's first upvalue: the real function and the state's context
 * (whose account is NULL once the state is closing). One userdata, so a
 * call costs a single lua_touserdata. */
typedef struct wrapped {
  lua_CFunction f;
  const sl_lua_ctx *c;
} wrapped;

static int enter(lua_State *L) {
  const wrapped *w = lua_touserdata(L, lua_upvalueindex(1));
  sl_mem_account *prev = sl_mem_account_use(w->c->account);
  sl_ag_pool *prevp = sl_ag_pool_use(w->c->ag_pool);
  void *prevu = sl_ag_pool_set_user(L);
  int n = w->f(L);
  sl_ag_pool_set_user(prevu);
  sl_ag_pool_use(prevp);
  sl_mem_account_use(prev);
  return n;
}

static int is_finalizer(const char *name) { return strcmp(name, "__gc") == 0 || strcmp(name, "__close") == 0; }

static void push_wrapped(lua_State *L, lua_CFunction f, const sl_lua_ctx *c) {
  wrapped *w = lua_newuserdatauv(L, sizeof *w, 0);
  w->f = f;
  w->c = c;
}

void sl_lua_setfuncs(lua_State *L, const luaL_Reg *l) {
  sl_lua_ctx *c = sl_lua_context(L);
  for (; l->name; l++) {
    if (!l->func) {
      lua_pushboolean(L, 0); /* a placeholder, as luaL_setfuncs */
    } else if (is_finalizer(l->name)) {
      lua_pushcfunction(L, l->func);
    } else {
      push_wrapped(L, l->func, c);
      lua_pushcclosure(L, enter, 1);
    }
    lua_setfield(L, -2, l->name);
  }
}

void sl_lua_pushcclosure(lua_State *L, lua_CFunction f, int n) {
  push_wrapped(L, f, sl_lua_context(L));
  lua_insert(L, -(n + 1));
  lua_pushcclosure(L, enter, n + 1);
}

sl_mem_account *sl_lua_enter(lua_State *L) { return sl_mem_account_use(sl_lua_context(L)->account); }

sl_mem_account *sl_lua_account(lua_State *L) { return sl_lua_context(L)->account; }
