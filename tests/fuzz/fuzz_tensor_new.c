/*
 * libFuzzer target: selut.tensor.new on nested Lua tables built from the
 * input bytes, then a few shape methods on the result. One lua_State is
 * kept across inputs (a full collection after each one); tensor memory is
 * capped at 64 MB so a hostile __len cannot exhaust the machine.
 *
 * Byte program (one op per byte, low 4 bits; operands follow):
 *   0 open a table            1 close the current table
 *   2 small integer (next byte, signed)   3 float (next 4 bytes, any bits:
 *     NaN, inf, subnormals)   4 string "1.5"  5 boolean   6 a nested empty table
 *   7 huge integer (next 8 bytes)          8 a tensor value
 *   9 metatable on the current table with __len returning the next byte
 *     (low 7 bits times 2^(next byte % 48) when bit 7 is set)
 *   10 metatable with __index returning 1 for any key
 *   11 repeat the previous value next byte times (widens shapes cheaply)
 * Unclosed tables are closed at the end. The result is passed to
 * selut.tensor.new under pcall; a success is checked with totable/shape.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_util.h"
#include "selut_lua.h"

static lua_State *L;

static const char *const setup =
    "local T = selut.tensor\n"
    "function fuzz_run(t)\n"
    "  local ok, x = pcall(T.new, t)\n"
    "  if not ok then\n"
    "    assert(type(x) == 'string' and #x > 0, 'error without a message')\n"
    "    return\n"
    "  end\n"
    "  local n, rows, shape = 1, 1, x:shape()\n"
    "  for i, s in ipairs(shape) do n = n * s; if i < #shape then rows = rows * s end end\n"
    "  assert(n == x:numel(), 'numel does not match shape')\n"
    "  if n <= 4096 and rows <= 4096 then -- totable makes one Lua table per row\n"
    "    local y = T.new(x:totable())\n"
    "    assert(y:numel() == n, 'totable round trip changed the size')\n"
    "    x:reshape(n):sum()\n"
    "  end\n"
    "end\n";

static int len_mm(lua_State *l) {
  lua_pushvalue(l, lua_upvalueindex(1));
  return 1;
}
static int index_mm(lua_State *l) {
  lua_pushinteger(l, 1);
  return 1;
}

static void init(void) {
  L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, setup) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  sl_mem_account *a = sl_lua_account(L); /* the state's own cap (core/tensor/alloc.h) */
  sl_mem_account_set_limit(a, sl_mem_account_bytes(a) + ((size_t)64 << 20));
}

#define MAX_DEPTH 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) init();
  if (size > 4096) return 0;
  lua_settop(L, 0);
  lua_getglobal(L, "fuzz_run");
  lua_newtable(L); /* root */
  int depth = 0;
  size_t i = 0;
  int have_prev = 0;
  while (i < size) {
    uint8_t op = data[i++] & 15;
    int pushed = 1;
    switch (op) {
      case 0:
        if (depth < MAX_DEPTH) { lua_newtable(L); depth++; }
        pushed = 0;
        break;
      case 1:
        if (depth > 0) { depth--; break; } /* the closed table becomes the value */
        pushed = 0;
        break;
      case 2: lua_pushinteger(L, i < size ? (int8_t)data[i++] : 0); break;
      case 3: {
        uint32_t b = 0;
        for (int k = 0; k < 4 && i < size; k++) b = b << 8 | data[i++];
        float f;
        memcpy(&f, &b, sizeof f);
        lua_pushnumber(L, (lua_Number)f);
        break;
      }
      case 4: lua_pushliteral(L, "1.5"); break;
      case 5: lua_pushboolean(L, 1); break;
      case 6: lua_newtable(L); break;
      case 7: {
        uint64_t b = 0;
        for (int k = 0; k < 8 && i < size; k++) b = b << 8 | data[i++];
        lua_pushinteger(L, (lua_Integer)b);
        break;
      }
      case 8:
        if (luaL_dostring(L, "return selut.tensor.ones(2)") != LUA_OK) abort();
        break;
      case 9: {
        lua_Integer n = i < size ? data[i++] : 0;
        if ((n & 128) && i < size) n = (n & 127) << (data[i++] % 48);
        lua_createtable(L, 0, 1);
        lua_pushinteger(L, n);
        lua_pushcclosure(L, len_mm, 1);
        lua_setfield(L, -2, "__len");
        lua_setmetatable(L, -2);
        pushed = 0;
        break;
      }
      case 10:
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, index_mm);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
        pushed = 0;
        break;
      case 11: {
        int reps = i < size ? data[i++] : 0;
        pushed = 0;
        if (!have_prev) break;
        /* the previous value was appended to the current table: append it again */
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        if (len == 0) break;
        for (int k = 0; k < reps; k++) {
          lua_rawgeti(L, -1, len);
          lua_rawseti(L, -2, len + 1 + k);
        }
        break;
      }
      default: pushed = 0; break;
    }
    if (pushed) { /* append the value to the current (enclosing) table */
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      have_prev = 1;
    }
  }
  while (depth-- > 0) lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_tensor_new: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
