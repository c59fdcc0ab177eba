/*
 * The recurrent layers' methods (core/nn/rnn.h). nn.GRU, nn.LSTM, nn.GRUCell
 * and nn.LSTMCell are built by the generic constructor from their
 * descriptors; here their metatables get a forward and a backward that take
 * and return several tensors (PyTorch's tuples), looked up before the
 * shared module methods, and __call = forward:
 *   out, h_n = gru(x[, h0])            out, h_n, c_n = lstm(x[, h0, c0])
 *   h = cell(x[, h])                   h, c = lstmcell(x[, h, c])
 *   gx, gh0 = gru:backward(x, gout[, gh_n])
 *   gx, gh0, gc0 = lstm:backward(x, gout[, gh_n[, gc_n]])
 *   gx, gh = cell:backward(x, gh')     gx, gh, gc = lstmcell:backward(x, gh'[, gc'])
 * (a nil gradient counts as zeros). The returned tensors are the module's
 * buffers, overwritten by the next call; their boxes are reused.
 */
#include <string.h>

#include "autograd/layer_rnn.h"
#include "sl_lua.h"

static const char cache_key = 0; /* registry[&cache_key] = {[box] = {boxes...}} (weak keys) */

enum { C_OUT = 1, C_HN, C_CN, C_GX, C_GH0, C_GC0 };

static sl_module *checkrnn(lua_State *L, sl_rnn_mode *mode, bool *cell) {
  sl_module *m = sl_lua_tomodule(L, 1);
  if (!m || !sl_rnn_info(m, mode, cell)) luaL_typeerror(L, 1, "recurrent layer");
  return m;
}

/* An optional tensor argument (none/nil: NULL). */
static const sl_tensor *opttensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : sl_lua_checktensor(L, arg);
}

/* Pushes a box for t, the one returned last time from slot k when it still
 * holds t (no new box per step). */
static void push_cached(lua_State *L, int k, const sl_tensor *t) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) { /* first call: cache[box] = {} */
    lua_pop(L, 1);
    lua_createtable(L, 6, 0);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
  if (lua_rawgeti(L, -1, k) == LUA_TUSERDATA && *(sl_tensor **)lua_touserdata(L, -1) == t) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  sl_lua_pushtensor(L, (sl_tensor *)t);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, k);
  lua_remove(L, -2);
}

static int rnn_forward(lua_State *L) {
  sl_rnn_mode mode;
  bool cell;
  sl_module *m = checkrnn(L, &mode, &cell);
  const sl_tensor *x = sl_lua_checktensor(L, 2), *h0 = opttensor(L, 3), *c0 = NULL;
  if (mode == SL_RNN_LSTM) c0 = opttensor(L, 4);
  else luaL_argcheck(L, lua_isnoneornil(L, 4), 4, cell ? "GRUCell takes (x[, h])" : "GRU takes (x[, h0])");
  const sl_tensor *out, *hn, *cn;
  sl_lua_check(L, sl_rnn_forward(m, x, h0, c0, &out, &hn, &cn));
  lua_settop(L, 1);
  push_cached(L, C_OUT, out);
  if (!cell) push_cached(L, C_HN, hn);
  if (mode == SL_RNN_LSTM) push_cached(L, C_CN, cn);
  return lua_gettop(L) - 1;
}

static int rnn_backward(lua_State *L) {
  sl_rnn_mode mode;
  bool cell;
  sl_module *m = checkrnn(L, &mode, &cell);
  const sl_tensor *x = sl_lua_checktensor(L, 2), *gout = opttensor(L, 3), *ghn = NULL, *gcn = NULL;
  int max = 3;
  if (!cell) ghn = opttensor(L, ++max);
  if (mode == SL_RNN_LSTM) gcn = opttensor(L, ++max);
  luaL_argcheck(L, lua_isnoneornil(L, max + 1), max + 1, "too many arguments");
  const sl_tensor *gx, *gh0, *gc0;
  sl_lua_check(L, sl_rnn_backward(m, x, gout, ghn, gcn, &gx, &gh0, &gc0));
  lua_settop(L, 1);
  push_cached(L, C_GX, gx);
  push_cached(L, C_GH0, gh0);
  if (mode == SL_RNN_LSTM) push_cached(L, C_GC0, gc0);
  return lua_gettop(L) - 1;
}

/* __index: the recurrent methods (upvalue 1), else the shared lookup
 * (upvalue 2). Plain closure: a lookup costs no account switch. */
static int rnn_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* m(x[, h0[, c0]]): the autograd path (core/autograd/layer_rnn.h). New
 * tensors (m:forward returns the module's reused buffers); in grad mode the
 * call records, since the layer has parameters. */
static int rnn_call(lua_State *L) {
  sl_rnn_mode mode;
  bool cell;
  sl_module *m = checkrnn(L, &mode, &cell);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  sl_tensor *h0 = lua_isnoneornil(L, 3) ? NULL : sl_lua_checktensor(L, 3), *c0 = NULL;
  if (mode == SL_RNN_LSTM) c0 = lua_isnoneornil(L, 4) ? NULL : sl_lua_checktensor(L, 4);
  else luaL_argcheck(L, lua_isnoneornil(L, 4), 4, cell ? "GRUCell takes (x[, h])" : "GRU takes (x[, h0])");
  bool record = sl_lua_grad_mode(L);
  lua_settop(L, 4);
  sl_tensor **bo = sl_lua_newtensor(L), **bh = cell ? NULL : sl_lua_newtensor(L);
  sl_tensor **bc = mode == SL_RNN_LSTM ? sl_lua_newtensor(L) : NULL;
  sl_tensor *o, *h, *c;
  int st = sl_ag_rnn_call(m, x, h0, c0, record, &o, &h, &c);
  *bo = o;
  if (bh) *bh = h;
  else sl_tensor_release(h);
  if (bc) *bc = c;
  sl_lua_check(L, st);
  return lua_gettop(L) - 4;
}

static const luaL_Reg rnn_methods[] = {{"forward", rnn_forward}, {"backward", rnn_backward}, {NULL, NULL}};

void sl_lua_open_nn_rnn(lua_State *L) {
  static const char *const types[] = {"selut.nn.GRU", "selut.nn.LSTM", "selut.nn.GRUCell", "selut.nn.LSTMCell",
                                      NULL};
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  sl_lua_newlib(L, rnn_methods);
  int methods = lua_gettop(L);
  for (int i = 0; types[i]; i++) {
    luaL_getmetatable(L, types[i]);
    lua_pushvalue(L, methods);
    lua_getfield(L, -2, "__index");
    lua_pushcclosure(L, rnn_index, 2);
    lua_setfield(L, -2, "__index");
    sl_lua_pushcclosure(L, rnn_call, 0);
    lua_setfield(L, -2, "__call");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
