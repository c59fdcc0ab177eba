/*
 * selut.onnx's C half: a graph writer object and a reader that returns the
 * graph as a Lua table. scripts/onnx.lua maps layers to nodes and back.
 */
#include "sl_lua.h"

#define SL_LUA_ONNX_WRITER "selut.onnx.Writer"

static sl_onnx_writer *check_writer(lua_State *L) {
  sl_onnx_writer **w = luaL_checkudata(L, 1, SL_LUA_ONNX_WRITER);
  if (!*w) luaL_error(L, "attempt to use a closed ONNX writer");
  return *w;
}

static int writer_gc(lua_State *L) {
  sl_onnx_writer **w = luaL_checkudata(L, 1, SL_LUA_ONNX_WRITER);
  sl_onnx_writer_free(*w);
  *w = NULL;
  return 0;
}

/* onnx._writer(opset) */
static int onnx_writer(lua_State *L) {
  lua_Integer opset = luaL_checkinteger(L, 1);
  luaL_argcheck(L, opset >= 7 && opset <= 21, 1, "opset out of range 7..21");
  sl_onnx_writer **w = lua_newuserdatauv(L, sizeof *w, 0);
  *w = NULL;
  luaL_setmetatable(L, SL_LUA_ONNX_WRITER);
  if (!(*w = sl_onnx_writer_new((int)opset, "selut " SELUT_VERSION))) return sl_lua_error(L);
  return 1;
}

static int writer_initializer(lua_State *L) {
  sl_onnx_writer *w = check_writer(L);
  sl_lua_check(L, sl_onnx_add_initializer(w, luaL_checkstring(L, 2), sl_lua_checktensor(L, 3)));
  return 0;
}

/* shape: a list of sizes, -1 for the dynamic batch dim */
static int read_dims(lua_State *L, int arg, int64_t *shape) {
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_Integer n = luaL_len(L, arg);
  luaL_argcheck(L, n >= 0 && n <= SL_MAX_DIMS, arg, "0 to 8 dims expected");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, arg, i);
    shape[i - 1] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  return (int)n;
}

/* w:input(name, dims[, "int64"]) / w:output(name, dims) */
static int writer_io(lua_State *L, int output) {
  sl_onnx_writer *w = check_writer(L);
  const char *name = luaL_checkstring(L, 2);
  int64_t shape[SL_MAX_DIMS];
  int nd = read_dims(L, 3, shape);
  static const char *const types[] = {"float", "int64", NULL};
  int i64 = luaL_checkoption(L, 4, "float", types);
  sl_lua_check(L, output ? sl_onnx_add_output(w, name, nd, shape) : sl_onnx_add_input(w, name, nd, shape, i64 == 1));
  return 0;
}

/* w:initializer_i64(name, dims, {values}) */
static int writer_initializer_i64(lua_State *L) {
  sl_onnx_writer *w = check_writer(L);
  const char *name = luaL_checkstring(L, 2);
  int64_t shape[SL_MAX_DIMS];
  int nd = read_dims(L, 3, shape);
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 4), want = 1;
  for (int i = 0; i < nd; i++) want *= shape[i];
  luaL_argcheck(L, n == want && n <= 64, 4, "as many values as the dims say (at most 64) expected");
  int64_t v[64];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 4, i);
    v[i - 1] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  sl_lua_check(L, sl_onnx_add_initializer_i64(w, name, nd, shape, v));
  return 0;
}

static void set_pair(lua_State *L, const char *key, int n, const int64_t *v) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) lua_pushinteger(L, (lua_Integer)v[i]), lua_seti(L, -2, i + 1);
  lua_setfield(L, -2, key);
}

/* onnx._conv_info(m) -> {nd=, kernel=, stride=, padding=, padding_end=, dilation=, groups=} (1-D: one entry) */
static int onnx_conv_info(lua_State *L) {
  sl_module *m = sl_lua_tomodule(L, 1);
  sl_conv_info ci;
  luaL_argcheck(L, m != NULL, 1, "a Conv1d/Conv2d expected");
  sl_lua_check(L, sl_conv_info_of(m, &ci));
  int n = ci.nd;
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, n), lua_setfield(L, -2, "nd");
  set_pair(L, "kernel", n, ci.kernel);
  set_pair(L, "stride", n, ci.o.stride);
  set_pair(L, "padding", n, ci.o.padding);
  int64_t pe[2];
  for (int i = 0; i < 2; i++) pe[i] = ci.o.padding_end[i] < 0 ? ci.o.padding[i] : ci.o.padding_end[i];
  set_pair(L, "padding_end", n, pe);
  set_pair(L, "dilation", n, ci.o.dilation);
  lua_pushinteger(L, (lua_Integer)ci.o.groups), lua_setfield(L, -2, "groups");
  return 1;
}

/* onnx._pool_info(m) -> {kernel=, stride=, padding=, dilation=, ceil_mode=, count_include_pad=} */
static int onnx_pool_info(lua_State *L) {
  sl_module *m = sl_lua_tomodule(L, 1);
  sl_pool_info pi;
  luaL_argcheck(L, m != NULL, 1, "a pooling layer expected");
  sl_lua_check(L, sl_pool_info_of(m, &pi));
  lua_createtable(L, 0, 6);
  set_pair(L, "kernel", 2, pi.kernel);
  int64_t st[2] = {pi.o.stride[0] ? pi.o.stride[0] : pi.kernel[0], pi.o.stride[1] ? pi.o.stride[1] : pi.kernel[1]};
  set_pair(L, "stride", 2, st);
  set_pair(L, "padding", 2, pi.o.padding);
  set_pair(L, "dilation", 2, pi.o.dilation);
  lua_pushboolean(L, pi.o.ceil_mode), lua_setfield(L, -2, "ceil_mode");
  lua_pushboolean(L, pi.o.count_include_pad), lua_setfield(L, -2, "count_include_pad");
  return 1;
}
static int writer_input(lua_State *L) { return writer_io(L, 0); }
static int writer_output(lua_State *L) { return writer_io(L, 1); }

/* w:node(op, {inputs}, {outputs}[, {attr = number | {ints}}]): an integer
 * is an INT attribute, a float a FLOAT one, a list of integers INTS. */
static int writer_node(lua_State *L) {
  sl_onnx_writer *w = check_writer(L);
  const char *op = luaL_checkstring(L, 2);
  const char *names[2][16];
  int counts[2];
  for (int k = 0; k < 2; k++) {
    luaL_checktype(L, 3 + k, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 3 + k);
    luaL_argcheck(L, n >= 0 && n <= 16, 3 + k, "0 to 16 names expected");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, 3 + k, i);
      names[k][i - 1] = luaL_checkstring(L, -1); /* kept alive by the table */
      lua_pop(L, 1);
    }
    counts[k] = (int)n;
  }
  sl_lua_check(L, sl_onnx_add_node(w, op, counts[0], names[0], counts[1], names[1]));
  if (lua_isnoneornil(L, 5)) return 0;
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 5)) {
    const char *key = luaL_checkstring(L, -2);
    int st;
    if (lua_isinteger(L, -1)) {
      st = sl_onnx_attr_int(w, key, (int64_t)lua_tointeger(L, -1));
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      st = sl_onnx_attr_float(w, key, (float)lua_tonumber(L, -1));
    } else if (lua_istable(L, -1)) {
      int64_t v[16];
      lua_Integer n = luaL_len(L, -1);
      if (n > 16) return luaL_error(L, "onnx: attribute '%s' has %d ints (at most 16)", key, (int)n);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        v[i - 1] = (int64_t)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
      }
      st = sl_onnx_attr_ints(w, key, (int)n, v);
    } else {
      return luaL_error(L, "onnx: attribute '%s' must be a number or a list of integers, got %s", key,
                        luaL_typename(L, -1));
    }
    sl_lua_check(L, st);
    lua_pop(L, 1);
  }
  return 0;
}

static int writer_save(lua_State *L) {
  sl_onnx_writer *w = check_writer(L);
  sl_lua_check(L, sl_onnx_save(w, luaL_checkstring(L, 2)));
  return 0;
}

static void push_names(lua_State *L, int n, const char *(*get)(const sl_onnx_model *, int, int),
                       const sl_onnx_model *m, int i) {
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) {
    lua_pushstring(L, get(m, i, k));
    lua_seti(L, -2, k + 1);
  }
}

/* onnx._read(path) -> {opset=, inputs={names}, outputs={names},
 * nodes={{op=, inputs=, outputs=, attrs={name = value}}}, initializers={name = tensor},
 * initializer_info={name = {rank =, int64 =}}}; a tensor attribute is {tensor =, rank =, int64 =} */
static int onnx_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sl_onnx_model **box = lua_newuserdatauv(L, sizeof *box, 0); /* freed by its __gc if we raise */
  *box = NULL;
  luaL_setmetatable(L, "selut.onnx.Model");
  if (!(*box = sl_onnx_load(path))) return sl_lua_error(L);
  sl_onnx_model *m = *box;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)sl_onnx_opset(m));
  lua_setfield(L, -2, "opset");
  int ni = sl_onnx_graph_ninputs(m), no = sl_onnx_graph_noutputs(m);
  lua_createtable(L, ni, 0);
  for (int k = 0; k < ni; k++) lua_pushstring(L, sl_onnx_graph_input(m, k)), lua_seti(L, -2, k + 1);
  lua_setfield(L, -2, "inputs");
  lua_createtable(L, no, 0);
  for (int k = 0; k < no; k++) lua_pushstring(L, sl_onnx_graph_output(m, k)), lua_seti(L, -2, k + 1);
  lua_setfield(L, -2, "outputs");
  int nn = sl_onnx_node_count(m);
  lua_createtable(L, 0, 8); /* info: {rank =, int64 =} of each initializer read below */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "initializer_info");
  lua_createtable(L, nn, 0);
  lua_createtable(L, 0, 8); /* initializers */
  for (int i = 0; i < nn; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, sl_onnx_node_op(m, i));
    lua_setfield(L, -2, "op");
    push_names(L, sl_onnx_node_ninputs(m, i), sl_onnx_node_input, m, i);
    lua_setfield(L, -2, "inputs");
    push_names(L, sl_onnx_node_noutputs(m, i), sl_onnx_node_output, m, i);
    lua_setfield(L, -2, "outputs");
    int na = sl_onnx_node_nattrs(m, i);
    lua_createtable(L, 0, na);
    for (int k = 0; k < na; k++) {
      const int64_t *v;
      switch (sl_onnx_node_attr_kind(m, i, k)) {
      case 'f': lua_pushnumber(L, sl_onnx_node_attr_number(m, i, k)); break;
      case 'i': lua_pushinteger(L, (lua_Integer)sl_onnx_node_attr_number(m, i, k)); break;
      case 's': {
        size_t len;
        const char *str = sl_onnx_node_attr_string(m, i, k, &len);
        lua_pushlstring(L, str, len);
        break;
      }
      case 'I': {
        int n = sl_onnx_node_attr_ints(m, i, k, &v);
        lua_createtable(L, n, 0);
        for (int j = 0; j < n; j++) lua_pushinteger(L, (lua_Integer)v[j]), lua_seti(L, -2, j + 1);
        break;
      }
      case 't': { /* {tensor =, rank =, int64 =}: a Constant's value */
        int nd;
        bool i64;
        lua_createtable(L, 0, 3);
        sl_tensor **t = sl_lua_newtensor(L);
        if (!(*t = sl_onnx_node_attr_tensor(m, i, k, &nd, &i64))) return sl_lua_error(L);
        lua_setfield(L, -2, "tensor");
        lua_pushinteger(L, nd), lua_setfield(L, -2, "rank");
        lua_pushboolean(L, i64), lua_setfield(L, -2, "int64");
        break;
      }
      default: lua_pushliteral(L, "<unsupported attribute type>");
      }
      lua_setfield(L, -2, sl_onnx_node_attr_name(m, i, k));
    }
    lua_setfield(L, -2, "attrs");
    lua_seti(L, -3, i + 1);
    /* the node's initializer inputs, copied once */
    for (int k = 0; k < sl_onnx_node_ninputs(m, i); k++) {
      const char *in = sl_onnx_node_input(m, i, k);
      if (!*in || !sl_onnx_has_initializer(m, in)) continue;
      int seen = lua_getfield(L, -1, in) != LUA_TNIL;
      lua_pop(L, 1);
      if (seen) continue;
      sl_tensor **t = sl_lua_newtensor(L);
      if (!(*t = sl_onnx_initializer(m, in))) return sl_lua_error(L);
      lua_setfield(L, -2, in);
      int nd;
      bool i64;
      sl_onnx_initializer_info(m, in, &nd, &i64);
      lua_createtable(L, 0, 2);
      lua_pushinteger(L, nd), lua_setfield(L, -2, "rank");
      lua_pushboolean(L, i64), lua_setfield(L, -2, "int64");
      lua_setfield(L, -4, in); /* info[in] */
    }
  }
  lua_setfield(L, -4, "initializers");
  lua_setfield(L, -3, "nodes");
  lua_pop(L, 1); /* info */
  sl_onnx_model_free(m);
  *box = NULL;
  return 1;
}

static int model_gc(lua_State *L) {
  sl_onnx_model **box = luaL_checkudata(L, 1, "selut.onnx.Model");
  sl_onnx_model_free(*box);
  *box = NULL;
  return 0;
}

static const luaL_Reg writer_methods[] = {{"initializer", writer_initializer}, {"initializer_i64", writer_initializer_i64},
                                          {"input", writer_input},
                                          {"output", writer_output}, {"node", writer_node},
                                          {"save", writer_save}, {NULL, NULL}};
static const luaL_Reg onnx_funcs[] = {{"_writer", onnx_writer}, {"_read", onnx_read}, {"_conv_info", onnx_conv_info},
                                        {"_pool_info", onnx_pool_info}, {NULL, NULL}};

void sl_lua_open_onnx(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_ONNX_WRITER)) {
    lua_pushcfunction(L, writer_gc);
    lua_setfield(L, -2, "__gc");
    sl_lua_newlib(L, writer_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, "selut.onnx.Model")) {
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  sl_lua_newlib(L, onnx_funcs);
  lua_setfield(L, -2, "onnx");
}
