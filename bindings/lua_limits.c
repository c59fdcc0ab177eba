/*
 * Limits for embedders: selut.set_memory_limit / selut.get_memory_limit cap
 * the tensor memory (every byte the C core allocates: tensor storage,
 * module buffers, optimizer state) of this Lua state: its memory account
 * (lua_account.c), whatever thread runs it and whatever other states share
 * that thread. Exceeding the cap is a Lua error naming the request, the usage
 * and the cap, never an OOM kill. The launcher's --max-memory calls it.
 * Lua's own objects are the host's to cap, through its lua_Alloc.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "sl_lua.h"

/* Parses "1048576", "512K", "64M", "2G", "1T" (binary units, optional "B"
 * or "iB" after the letter). Returns 0 on success. */
static int parse_bytes(const char *s, size_t *out) {
  while (isspace((unsigned char)*s)) s++;
  if (!isdigit((unsigned char)*s)) return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -1;
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
  }
  if (shift && (*end == 'i' || *end == 'I')) end++;
  if (*end == 'B' || *end == 'b') end++;
  while (isspace((unsigned char)*end)) end++;
  if (*end != '\0') return -1;
  if (shift && v > (SIZE_MAX >> shift)) return -1;
  *out = (size_t)(v << shift);
  return 0;
}

/* selut.set_memory_limit(bytes): bytes an integer >= 0 or a string such
 * as "512M"; 0 or nil removes the cap. Returns the previous cap (0 = none).
 * Collects garbage first, so dead tensors do not count against the cap. */
static int limits_set_memory_limit(lua_State *L) {
  size_t bytes = 0;
  switch (lua_type(L, 1)) {
    case LUA_TNONE:
    case LUA_TNIL: break;
    case LUA_TNUMBER: {
      int isint;
      lua_Integer n = lua_tointegerx(L, 1, &isint);
      if (!isint || n < 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "byte count must be an integer >= 0, got %s",
                                                   luaL_tolstring(L, 1, NULL)));
      bytes = (size_t)n;
      break;
    }
    case LUA_TSTRING:
      if (parse_bytes(lua_tostring(L, 1), &bytes) != 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "byte count expected (e.g. 1048576, \"512K\", \"64M\", "
                                                      "\"2G\"), got '%s'", lua_tostring(L, 1)));
      break;
    default:
      return luaL_argerror(L, 1, lua_pushfstring(L, "byte count (integer or string like \"64M\") expected, got %s",
                                                 luaL_typename(L, 1)));
  }
  sl_lua_ctx *c = sl_lua_context(L);
  size_t old = sl_mem_account_limit(c->account);
  sl_lua_full_gc(L, c);
  sl_ag_pool_drain(c->ag_pool); /* cached autograd blocks do not count against the cap */
  sl_mem_account_set_limit(c->account, bytes);
  /* collect again before garbage could fill half of the remaining headroom */
  size_t now = sl_mem_account_bytes(c->account);
  c->gc_limit = 2 * now + SL_LUA_GC_SLACK;
  if (bytes > now && c->gc_limit > now + (bytes - now) / 2) c->gc_limit = now + (bytes - now) / 2;
  lua_pushinteger(L, (lua_Integer)old);
  return 1;
}

static int limits_get_memory_limit(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_mem_account_limit(sl_lua_context(L)->account));
  return 1;
}

static const luaL_Reg limits_funcs[] = {
    {"set_memory_limit", limits_set_memory_limit},
    {"get_memory_limit", limits_get_memory_limit},
    {NULL, NULL},
};

void sl_lua_open_limits(lua_State *L) { sl_lua_setfuncs(L, limits_funcs); }
