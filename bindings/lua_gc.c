/*
 * When tensors are freed: Lua's collector sees only the 8-byte boxes, not
 * the tensor memory behind them, so creating a tensor (sl_lua_newtensor)
 * first asks sl_lua_gc_pressure whether a collection is due:
 *  - a young collection after SL_LUA_YOUNG_STEP new live bytes, in a state
 *    that runs the generational collector (the selut launcher's,
 *    sl_lua_newstate's, lua5.4's own): the results a loop just dropped come
 *    back while their blocks are still in cache, as PyTorch's reference
 *    counting gives them back;
 *  - a full collection once the live bytes exceed twice what survived the
 *    last one plus SL_LUA_GC_SLACK (every state).
 * Lua has no call that reads the collector's mode without changing it; the
 * probes below read it where asking is free or a collection is due anyway
 * (docs/embedding.md, "The garbage collector").
 */
#include "sl_lua.h"

int sl_lua_gc_probe(lua_State *L) {
  int mode = lua_gc(L, LUA_GCGEN, 0, 0); /* free when already generational */
  if (mode == LUA_GCINC) lua_gc(L, LUA_GCINC, 0, 0, 0); /* it was not: one full collection, switched back */
  return mode == LUA_GCGEN;
}

/* Core bytes this state's tensors hold, without the autograd pool's cache
 * (reused, not garbage). */
static size_t live_bytes(const sl_lua_ctx *c) {
  return sl_mem_account_bytes(c->account) - sl_ag_pool_bytes(c->ag_pool);
}

/* Lua has no call that reports the collector's mode without changing it, but
 * in generational mode a full collection is exactly a switch to incremental
 * (cheap: it only whitens) and back (a full mark and sweep, pending
 * finalizers called): lgc.c's fullgen is enterinc + entergen. So the switch
 * costs what LUA_GCCOLLECT costs and tells the mode; an incremental state
 * gets a plain full collection. */
void sl_lua_full_gc(lua_State *L, sl_lua_ctx *c) {
  int mode = lua_gc(L, LUA_GCINC, 0, 0, 0);
  if (mode == LUA_GCGEN)
    lua_gc(L, LUA_GCGEN, 0, 0);
  else
    lua_gc(L, LUA_GCCOLLECT);
  if (mode != -1) c->young_gc = mode == LUA_GCGEN; /* -1: called inside a finalizer, nothing done */
  c->young_mark = live_bytes(c);
}

void sl_lua_gc_pressure(lua_State *L) {
  sl_lua_ctx *c = sl_lua_context(L);
  size_t live = live_bytes(c);
  if (live < c->young_mark) {
    c->young_mark = live;
  } else if (c->young_gc && live - c->young_mark >= SL_LUA_YOUNG_STEP && lua_gc(L, LUA_GCISRUNNING) == 1) {
    /* Still generational? Asking is free when it is; when the program
     * switched to incremental (collectgarbage "incremental"), asking made a
     * full collection, and the state goes back to incremental without young
     * collections: there a basic step is an incremental one (~50 us for a
     * 0.5 MB heap, more than a full collection), which would cost more than
     * it saves. The next full collection (sl_lua_full_gc) looks again. */
    if (lua_gc(L, LUA_GCGEN, 0, 0) == LUA_GCGEN) {
      lua_gc(L, LUA_GCSTEP, 0); /* a young collection (a major one once Lua's own heap doubled) */
    } else {
      lua_gc(L, LUA_GCINC, 0, 0, 0);
      c->young_gc = 0;
    }
    c->young_mark = live = live_bytes(c);
  }
  if (live <= c->gc_limit) return;
  sl_lua_full_gc(L, c);
  c->gc_limit = 2 * live_bytes(c) + SL_LUA_GC_SLACK;
  /* under selut.set_memory_limit: collect again before garbage fills half the headroom */
  size_t cap = sl_mem_account_limit(c->account), now = sl_mem_account_bytes(c->account);
  if (cap > now && c->gc_limit > now + (cap - now) / 2) c->gc_limit = now + (cap - now) / 2;
}
