/*
 * selut.nn constructors whose arguments are more than numbers and booleans
 * (sizes as lists, 'same' padding, 1-based indices): Conv1d, Conv2d,
 * MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten (core/nn/conv.h),
 * LayerNorm and Embedding (core/nn/norm.h). PyTorch's positional
 * arguments come first, then optionally a table of its keyword arguments;
 * the optional arguments may also be given positionally in PyTorch's order:
 *   nn.Conv2d(4, 6, 3, {stride = 2, padding = 1, groups = 2})
 *   nn.MaxPool2d(2)  nn.MaxPool2d(3, 2, 1)  nn.MaxPool2d(3, {stride = 2})
 * A size is a number or a list ({2, 3}); dims (Flatten) are 1-based.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"

/* An options table: a table whose first element is nil (a list {2, 3} is a
 * size, not options). */
static int is_opts(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return 0;
  int t = lua_rawgeti(L, idx, 1);
  lua_pop(L, 1);
  return t == LUA_TNIL;
}

/* Gathers the optional arguments from index first on: positional ones in
 * the order of names, then an options table. Pushes a table name -> value
 * and leaves in where[] the argument index each came from. Raises for
 * unknown options, a value given twice, or arguments after the table. */
static int gather(lua_State *L, const char *fname, int first, const char *const *names, int *where) {
  int top = lua_gettop(L), nnames = 0;
  while (names[nnames]) nnames++;
  lua_newtable(L);
  int out = lua_gettop(L), pos = 0, arg = first;
  for (; arg <= top && !is_opts(L, arg); arg++, pos++) {
    if (pos >= nnames)
      luaL_argerror(L, arg, lua_pushfstring(L, "at most %d optional arguments expected before the options table", nnames));
    if (lua_isnil(L, arg)) continue;
    lua_pushvalue(L, arg);
    lua_setfield(L, out, names[pos]);
    where[pos] = arg;
  }
  if (arg <= top) {
    if (arg < top) luaL_argerror(L, arg + 1, "nothing expected after the options table");
    lua_pushnil(L);
    while (lua_next(L, arg)) {
      int i = -1;
      if (lua_type(L, -2) == LUA_TSTRING)
        for (int k = 0; k < nnames; k++)
          if (strcmp(lua_tostring(L, -2), names[k]) == 0) i = k;
      if (i < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int k = 0; k < nnames; k++) {
          if (k) luaL_addstring(&b, ", ");
          luaL_addstring(&b, names[k]);
        }
        luaL_pushresult(&b);
        lua_pushvalue(L, -3);
        const char *key = luaL_tolstring(L, -1, NULL);
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (expected one of %s)", key, lua_tostring(L, -3)));
      }
      lua_getfield(L, out, names[i]);
      if (!lua_isnil(L, -1))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: '%s' given both positionally and in the options table",
                                              fname, names[i]));
      lua_pop(L, 1);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_setfield(L, out, names[i]);
      where[i] = arg;
    }
  }
  return out;
}

static int name_index(const char *const *names, const char *name) {
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], name) == 0) return i;
  return 0;
}

/* A size (a positive or non-negative integer, or a list of nd of them) at
 * stack index idx into v[0..nd); arg names the argument in errors. */
static void check_size(lua_State *L, int idx, int arg, const char *what, int nd, int64_t lo, int64_t *v) {
  const char *need = lo > 0 ? "positive" : "non-negative";
  if (lua_isinteger(L, idx) || (lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) == floor(lua_tonumber(L, idx)))) {
    lua_Integer n = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : (lua_Integer)lua_tonumber(L, idx);
    if (n < lo || n > ((lua_Integer)1 << 40))
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a %s integer, got %I", what, need, n));
    for (int d = 0; d < nd; d++) v[d] = n;
    return;
  }
  if (lua_istable(L, idx) && luaL_len(L, idx) == nd) {
    for (int d = 0; d < nd; d++) {
      lua_geti(L, idx, d + 1);
      int ok;
      lua_Integer n = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || n < lo || n > ((lua_Integer)1 << 40))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s[%d] must be a %s integer", what, d + 1, need));
      v[d] = n;
    }
    return;
  }
  if (nd == 1)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or a list of 1, got %s", what, luaL_typename(L, idx)));
  luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or a list of %d integers, got %s", what, nd,
                                        lua_istable(L, idx) ? lua_pushfstring(L, "a list of %I", (lua_Integer)luaL_len(L, idx))
                                                            : luaL_typename(L, idx)));
}

/* Option key of the gathered table at opts into v (left alone when absent). */
static void opt_size(lua_State *L, int opts, const char *const *names, const int *where, const char *key, int nd,
                     int64_t lo, int64_t *v) {
  if (lua_getfield(L, opts, key) != LUA_TNIL) check_size(L, -1, where[name_index(names, key)], key, nd, lo, v);
  lua_pop(L, 1);
}

static int opt_flag(lua_State *L, int opts, const char *const *names, const int *where, const char *key, int def) {
  int t = lua_getfield(L, opts, key), v = def;
  if (t != LUA_TNIL) {
    luaL_argcheck(L, t == LUA_TBOOLEAN, where[name_index(names, key)],
                  lua_pushfstring(L, "%s must be a boolean, got %s", key, luaL_typename(L, -1)));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static lua_Integer check_count(lua_State *L, int arg, const char *what) {
  lua_Integer n = luaL_checkinteger(L, arg);
  luaL_argcheck(L, n >= 1 && n <= ((lua_Integer)1 << 40), arg, lua_pushfstring(L, "%s must be >= 1, got %I", what, n));
  return n;
}

static const char *const conv_names[] = {"stride", "padding", "dilation", "groups", "bias", "padding_mode", NULL};

static int conv_ctor(lua_State *L, int nd) {
  const char *fname = nd == 2 ? "Conv2d" : "Conv1d";
  lua_Integer in = check_count(L, 1, "in_channels"), out = check_count(L, 2, "out_channels");
  int64_t k[2] = {1, 1};
  luaL_checkany(L, 3);
  check_size(L, 3, 3, "kernel_size", nd, 1, k);
  int where[6] = {0};
  int opts = gather(L, fname, 4, conv_names, where);
  sl_conv_opts o = sl_conv_defaults();
  opt_size(L, opts, conv_names, where, "stride", nd, 1, o.stride);
  opt_size(L, opts, conv_names, where, "dilation", nd, 1, o.dilation);
  if (lua_getfield(L, opts, "groups") != LUA_TNIL) {
    int64_t g[1];
    check_size(L, -1, where[3], "groups", 1, 1, g);
    o.groups = g[0];
  }
  lua_pop(L, 1);
  o.bias = opt_flag(L, opts, conv_names, where, "bias", 1);
  if (lua_getfield(L, opts, "padding_mode") != LUA_TNIL) {
    const char *pm = lua_tostring(L, -1);
    luaL_argcheck(L, pm && lua_type(L, -1) == LUA_TSTRING && strcmp(pm, "zeros") == 0, where[5],
                  "padding_mode: only 'zeros' is supported");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, opts, "padding") == LUA_TSTRING) {
    const char *p = lua_tostring(L, -1);
    int arg = where[1];
    if (strcmp(p, "same") == 0) {
      for (int d = 0; d < nd; d++)
        luaL_argcheck(L, o.stride[d] == 1, arg, "padding='same' is not supported for strided convolutions");
      for (int d = 0; d < nd; d++) { /* PyTorch: the odd one out goes at the end */
        int64_t total = o.dilation[d] * ((nd == 2 ? k[d] : k[0]) - 1);
        o.padding[d] = total / 2;
        o.padding_end[d] = total - total / 2;
      }
    } else {
      luaL_argcheck(L, strcmp(p, "valid") == 0, arg,
                    lua_pushfstring(L, "padding must be an integer, a list, 'same' or 'valid', got '%s'", p));
    }
  } else if (!lua_isnil(L, -1)) {
    check_size(L, -1, where[1], "padding", nd, 0, o.padding);
  }
  lua_pop(L, 2); /* padding, gathered options */
  sl_module **box = sl_lua_newmodule(L, fname);
  *box = nd == 2 ? sl_conv2d_new(in, out, k, o, &sl_lua_context(L)->rng)
                 : sl_conv1d_new(in, out, k[0], o, &sl_lua_context(L)->rng);
  if (!*box) return sl_lua_error(L);
  return 1;
}

static int nn_conv2d(lua_State *L) { return conv_ctor(L, 2); }
static int nn_conv1d(lua_State *L) { return conv_ctor(L, 1); }

static const char *const maxpool_names[] = {"stride", "padding", "dilation", "return_indices", "ceil_mode", NULL};
static const char *const avgpool_names[] = {"stride", "padding", "ceil_mode", "count_include_pad", "divisor_override",
                                            NULL};

static int nn_maxpool2d(lua_State *L) {
  int64_t k[2];
  luaL_checkany(L, 1);
  check_size(L, 1, 1, "kernel_size", 2, 1, k);
  int where[5] = {0};
  int opts = gather(L, "MaxPool2d", 2, maxpool_names, where);
  sl_pool_opts o = sl_pool_defaults();
  opt_size(L, opts, maxpool_names, where, "stride", 2, 1, o.stride);
  opt_size(L, opts, maxpool_names, where, "padding", 2, 0, o.padding);
  opt_size(L, opts, maxpool_names, where, "dilation", 2, 1, o.dilation);
  o.ceil_mode = opt_flag(L, opts, maxpool_names, where, "ceil_mode", 0);
  luaL_argcheck(L, !opt_flag(L, opts, maxpool_names, where, "return_indices", 0), where[3],
                "return_indices is not supported");
  lua_pop(L, 1);
  sl_module **box = sl_lua_newmodule(L, "MaxPool2d");
  if (!(*box = sl_maxpool2d_new(k, o))) return sl_lua_error(L);
  return 1;
}

static int nn_avgpool2d(lua_State *L) {
  int64_t k[2];
  luaL_checkany(L, 1);
  check_size(L, 1, 1, "kernel_size", 2, 1, k);
  int where[5] = {0};
  int opts = gather(L, "AvgPool2d", 2, avgpool_names, where);
  sl_pool_opts o = sl_pool_defaults();
  opt_size(L, opts, avgpool_names, where, "stride", 2, 1, o.stride);
  opt_size(L, opts, avgpool_names, where, "padding", 2, 0, o.padding);
  o.ceil_mode = opt_flag(L, opts, avgpool_names, where, "ceil_mode", 0);
  o.count_include_pad = opt_flag(L, opts, avgpool_names, where, "count_include_pad", 1);
  luaL_argcheck(L, lua_getfield(L, opts, "divisor_override") == LUA_TNIL, where[4],
                "divisor_override is not supported");
  lua_pop(L, 2);
  sl_module **box = sl_lua_newmodule(L, "AvgPool2d");
  if (!(*box = sl_avgpool2d_new(k, o))) return sl_lua_error(L);
  return 1;
}

static int nn_adaptive_avgpool2d(lua_State *L) {
  int64_t k[2];
  luaL_checkany(L, 1);
  check_size(L, 1, 1, "output_size", 2, 1, k);
  luaL_argcheck(L, lua_gettop(L) == 1, 2, "one argument (output_size) expected");
  sl_module **box = sl_lua_newmodule(L, "AdaptiveAvgPool2d");
  if (!(*box = sl_adaptive_avgpool2d_new(k))) return sl_lua_error(L);
  return 1;
}

static const char *const layernorm_names[] = {"eps", "elementwise_affine", NULL};

/* LayerNorm(normalized_shape[, eps[, elementwise_affine]][, {eps=, elementwise_affine=}]) */
static int nn_layernorm(lua_State *L) {
  int64_t shape[SL_MAX_DIMS];
  int nd = 1;
  luaL_checkany(L, 1);
  if (lua_istable(L, 1)) {
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n < SL_MAX_DIMS, 1,
                  lua_pushfstring(L, "normalized_shape must have 1..%d sizes, got %I", SL_MAX_DIMS - 1, n));
    nd = (int)n;
  }
  check_size(L, 1, 1, "normalized_shape", nd, 1, shape);
  int where[2] = {0};
  int opts = gather(L, "LayerNorm", 2, layernorm_names, where);
  double eps = 1e-5;
  if (lua_getfield(L, opts, "eps") != LUA_TNIL) {
    int ok;
    eps = lua_tonumberx(L, -1, &ok);
    luaL_argcheck(L, ok && eps > 0 && isfinite(eps), where[0], "eps must be a number > 0");
  }
  lua_pop(L, 1);
  int affine = opt_flag(L, opts, layernorm_names, where, "elementwise_affine", 1);
  lua_pop(L, 1);
  sl_module **box = sl_lua_newmodule(L, "LayerNorm");
  if (!(*box = sl_layernorm_new(nd, shape, eps, affine))) return sl_lua_error(L);
  return 1;
}

static const char *const embedding_names[] = {"padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse",
                                               NULL};

/* Embedding(num_embeddings, embedding_dim[, {padding_idx=}]): indices and
 * padding_idx are 1-based (negative padding_idx from the end). */
static int nn_embedding(lua_State *L) {
  lua_Integer num = check_count(L, 1, "num_embeddings"), dim = check_count(L, 2, "embedding_dim");
  int where[5] = {0};
  int opts = gather(L, "Embedding", 3, embedding_names, where);
  int64_t pad = SL_EMBEDDING_NO_PADDING;
  if (lua_getfield(L, opts, "padding_idx") != LUA_TNIL) {
    int ok;
    lua_Integer p = lua_tointegerx(L, -1, &ok);
    luaL_argcheck(L, ok && p != 0, where[0],
                  ok ? "padding_idx must be in 1..num_embeddings or -num_embeddings..-1 (1-based), got 0"
                     : lua_pushfstring(L, "padding_idx must be an integer, got %s", luaL_typename(L, -1)));
    pad = p;
  }
  lua_pop(L, 1);
  for (int i = 1; embedding_names[i]; i++) {
    int t = lua_getfield(L, opts, embedding_names[i]);
    luaL_argcheck(L, t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)), where[i],
                  lua_pushfstring(L, "%s is not supported", embedding_names[i]));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  sl_module **box = sl_lua_newmodule(L, "Embedding");
  if (!(*box = sl_embedding_new(num, dim, pad, 1, &sl_lua_context(L)->rng))) return sl_lua_error(L);
  return 1;
}

/* 1-based dims (negative from the end) to the core's 0-based ones. */
static int check_dim(lua_State *L, int arg, lua_Integer def, const char *what) {
  lua_Integer d = luaL_optinteger(L, arg, def);
  luaL_argcheck(L, d != 0 && d >= -SL_MAX_DIMS && d <= SL_MAX_DIMS, arg,
                lua_pushfstring(L, "%s must be in 1..%d or -%d..-1 (dims are 1-based), got %I", what, SL_MAX_DIMS,
                                SL_MAX_DIMS, d));
  return (int)(d > 0 ? d - 1 : d);
}

static int nn_flatten(lua_State *L) {
  if (is_opts(L, 1)) { /* Flatten{start_dim =, end_dim =} */
    lua_getfield(L, 1, "start_dim");
    lua_getfield(L, 1, "end_dim");
    lua_remove(L, 1);
  }
  int a = check_dim(L, 1, 2, "start_dim"), b = check_dim(L, 2, -1, "end_dim");
  sl_module **box = sl_lua_newmodule(L, "Flatten");
  if (!(*box = sl_flatten_new(a, b))) return sl_lua_error(L);
  return 1;
}

static const luaL_Reg spatial_funcs[] = {
    {"Conv1d", nn_conv1d}, {"Conv2d", nn_conv2d}, {"MaxPool2d", nn_maxpool2d}, {"AvgPool2d", nn_avgpool2d},
    {"AdaptiveAvgPool2d", nn_adaptive_avgpool2d}, {"Flatten", nn_flatten}, {"LayerNorm", nn_layernorm},
    {"Embedding", nn_embedding}, {NULL, NULL}};

void sl_lua_open_nn_layers(lua_State *L) {
  lua_getfield(L, -1, "nn");
  sl_lua_setfuncs(L, spatial_funcs);
  lua_pop(L, 1);
}
