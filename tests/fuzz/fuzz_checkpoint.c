/* libFuzzer target: arbitrary bytes as a checkpoint loaded into nets with
 * conv, normalization, embedding, recurrent and attention weights, through
 * the Lua API users call (selut.load(path, net)). Invariants: a refused load
 * raises a message and leaves every parameter and buffer of every net
 * unchanged (all or nothing); an accepted one leaves a net that runs
 * forward. Each net is restored from its snapshot after an accepted load, so
 * inputs replay independently of their order. */
#include <lauxlib.h>
#include <lua.h>

#include "fuzz_util.h"
#include "selut_lua.h"

static const char *setup =
    "local nn, T = selut.nn, selut.tensor\n"
    "selut.manual_seed(1)\n"
    "local tokens = T.zeros(2, 3)\n"
    "for i = 1, 2 do for j = 1, 3 do tokens:set(i, j, (i + j) % 5 + 1) end end\n"
    "local cases = {\n"
    "  {nn.Sequential{nn.Conv2d(2, 4, 3, {padding = 1, groups = 2}), nn.BatchNorm2d(4), nn.SELU(),\n"
    "                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 6)}, {T.randn(2, 2, 4, 4)}},\n"
    "  {nn.Sequential{nn.Conv1d(3, 4, 2, {stride = 2, dilation = 1}), nn.GroupNorm(2, 4), nn.AvgPool2d(1)},\n"
    "   {T.randn(2, 3, 6)}},\n"
    "  {nn.GRU(3, 4, {num_layers = 2, batch_first = true}), {T.randn(2, 5, 3)}},\n"
    "  {nn.LSTM(3, 4), {T.randn(5, 2, 3)}},\n"
    "  {nn.GRUCell(3, 4), {T.randn(2, 3)}},\n"
    "  {nn.MultiheadAttention(4, 2, {batch_first = true}), {T.randn(2, 3, 4), T.randn(2, 3, 4), T.randn(2, 3, 4)}},\n"
    "  {nn.Sequential{nn.Embedding(5, 4, {padding_idx = 1}), nn.LayerNorm(4)}, {tokens}},\n"
    "}\n"
    "-- every parameter and buffer tensor of a net, in nn.modules' order\n"
    "local function state(net)\n"
    "  local out = {}\n"
    "  for _, e in ipairs(nn._named_entries(net, 'parameters')) do out[#out + 1] = e.param end\n"
    "  for _, e in ipairs(nn._named_entries(net, 'buffers')) do out[#out + 1] = e.tensor end\n"
    "  return out\n"
    "end\n"
    "for _, c in ipairs(cases) do\n"
    "  c.live, c.snap = state(c[1]), {}\n"
    "  for k, t in ipairs(c.live) do c.snap[k] = t:clone() end\n"
    "end\n"
    "local function unchanged(c)\n"
    "  for k, t in ipairs(c.live) do\n"
    "    if t:eq(c.snap[k]):sum() ~= t:numel() then return false end\n"
    "  end\n"
    "  return true\n"
    "end\n"
"accepted, refused = 0, 0\n"
    "function fuzz_one(path)\n"
    "  for i, c in ipairs(cases) do\n"
    "    local net = c[1]\n"
    "    local ok, err = pcall(selut.load, path, net)\n"
    "    if ok then accepted = accepted + 1 else refused = refused + 1 end\n"
    "    if ok then\n"
    "      net:evaluate()\n"
    "      net(table.unpack(c[2]))\n"
    "      for k, t in ipairs(c.live) do t:copy(c.snap[k]) end\n"
    "    else\n"
    "      assert(type(err) == 'string' and #err > 0, 'a refused load without a message')\n"
    "    end\n"
    "    assert(unchanged(c), 'net ' .. i .. ' changed by ' .. (ok and 'a restore' or 'a refused load: ' .. tostring(err)))\n"
    "  end\n"
    "end\n"
    "function fuzz_cleanup()\n"
    "  io.stderr:write(string.format('fuzz_checkpoint: %d loads accepted, %d refused\\n', accepted, refused))\n"
    
    "end\n";

static lua_State *L;

static void close_state(void) {
  lua_getglobal(L, "fuzz_cleanup");
  lua_pcall(L, 0, 0, 0);
  lua_close(L);
}

static void fail(const char *what) {
  fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, lua_tostring(L, -1));
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("ckpt");
  if (!L) {
    L = sl_lua_newstate();
    if (!L) abort();
    if (sl_lua_dostring(L, setup, "=fuzz_checkpoint", NULL) != LUA_OK) fail("setup");
    atexit(close_state);
  }
  fuzz_write(path, data, size);
  lua_getglobal(L, "fuzz_one");
  lua_pushstring(L, path);
  if (sl_lua_pcall(L, 1, 0, NULL) != LUA_OK) fail("invariant");
  return 0;
}
