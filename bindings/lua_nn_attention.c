/*
 * nn.MultiheadAttention's calls and nn.F.scaled_dot_product_attention
 * (core/nn/attention.h). The constructor is the generic one (the
 * descriptor's arguments); here the module gets its three-input forms:
 *   local out, weights = mha(query, key, value[, opts])
 *   local out, weights = mha:forward(query, key, value[, opts])
 *   local gq, gk, gv = mha:backward(query, key, value, gout)
 * and keeps the one-input layer forms for Sequential (self-attention):
 *   mha(x), mha:forward(x), mha:backward(x, gy) -> dL/dx (the three summed).
 * As for every C layer, mha:forward returns the module's buffers
 * (overwritten by the next call) and mha(...) tensors of their own, recorded
 * by autograd in grad mode: one node over query, key and value whose
 * backward is sl_mha_backward (parameter gradients accumulate into the
 * module's, bound as the parameters' .grad). The weights take no gradient.
 * scaled_dot_product_attention returns a new tensor and records when an
 * input requires grad.
 */
#include <math.h>
#include <string.h>

#include "tensor/alloc.h"

#include "autograd/autograd.h"
#include "autograd/layer.h"
#include "nn/attention.h"
#include "sl_lua.h"

enum { UV_OUTPUT = 2, UV_GRAD_INPUT = 3 }; /* the module box's user values (lua_nn.c) */

static sl_module *check_mha(lua_State *L) {
  sl_module *m = sl_lua_tomodule(L, 1);
  if (!sl_mha_is(m))
    luaL_typeerror(L, 1, "selut.nn.MultiheadAttention");
  return m;
}

static const char *const mha_opt_names[] = {"key_padding_mask", "attn_mask", "need_weights", "average_attn_weights",
                                            "is_causal", "mask_type", NULL};
static const char *const sdpa_opt_names[] = {"attn_mask", "dropout_p", "is_causal", "scale", "mask_type", NULL};

/* Raises for a key of the options table at arg not in names. */
static void check_keys(lua_State *L, int arg, const char *const *names) {
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    bool ok = false;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; names[i] && !ok; i++) ok = strcmp(lua_tostring(L, -2), names[i]) == 0;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; names[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
      }
      luaL_pushresult(&b);
      lua_pushvalue(L, -3);
      const char *key = luaL_tolstring(L, -1, NULL);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (expected one of %s)", key, lua_tostring(L, -3)));
    }
    lua_pop(L, 1);
  }
}

static bool opt_bool(lua_State *L, int arg, const char *key, bool def) {
  int t = lua_getfield(L, arg, key);
  bool v = def;
  if (t != LUA_TNIL) {
    if (t != LUA_TBOOLEAN)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a boolean, got %s", key, luaL_typename(L, -1)));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* A mask option: a tensor or nil (the box stays referenced by the table). */
static const sl_tensor *opt_tensor(lua_State *L, int arg, const char *key) {
  int t = lua_getfield(L, arg, key);
  sl_tensor *x = t == LUA_TNIL ? NULL : sl_lua_totensor(L, -1);
  if (t != LUA_TNIL && !x)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a tensor, got %s", key, luaL_typename(L, -1)));
  lua_pop(L, 1);
  return x;
}

static sl_mask_type opt_mask_type(lua_State *L, int arg) {
  static const char *const kinds[] = {"auto", "bool", "float", NULL};
  int t = lua_getfield(L, arg, "mask_type");
  int k = 0;
  if (t != LUA_TNIL) {
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (k = 0; s && kinds[k] && strcmp(s, kinds[k]) != 0; k++) {}
    if (!s || !kinds[k])
      luaL_argerror(L, arg, lua_pushfstring(L, "mask_type must be 'auto', 'bool' or 'float', got %s",
                                            s ? lua_pushfstring(L, "'%s'", s) : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  return k == 1 ? SL_MASK_BOOL : k == 2 ? SL_MASK_FLOAT : SL_MASK_AUTO;
}

/* The autograd node of mha(...): the module (retained) and its forward
 * stamp; query, key and value saved with their versions. */
typedef struct mha_ag {
  sl_module *m;
  uint64_t stamp;
} mha_ag;

static void mha_ag_free(void *p) {
  mha_ag *c = p;
  sl_module_release(c->m);
  sl_free(c);
}

static int mha_ag_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  mha_ag *c = n->ctx;
  sl_tensor *x[3];
  int st;
  for (int i = 0; i < 3; i++)
    if ((st = sl_ag_saved(n, i, &x[i]))) return st;
  if (c->m->forwards != c->stamp)
    return sl_fail(SL_EINVAL, "backward: MultiheadAttention ran forward again before the backward of an earlier "
                              "call recorded by autograd, and this backward needs its attention weights from that "
                              "call; use one MultiheadAttention per call in a graph (or backward before calling it "
                              "again)");
  const sl_tensor *g[3];
  if ((st = sl_mha_backward(c->m, x[0], x[1], x[2], gy, &g[0], &g[1], &g[2]))) return st;
  for (int i = 0; i < 3; i++)
    if (gx[i] && (st = sl_tensor_copy(gx[i], g[i]))) return st;
  return SL_OK;
}

/* forward(m, query[, key, value][, opts]) -> out, weights (nil when
 * need_weights is false); key and value default to query (self-attention).
 * own: results are new tensors (recorded in grad mode), else the module's
 * buffers. */
static int mha_run(lua_State *L, bool own) {
  sl_module *m = check_mha(L);
  int top = lua_gettop(L), opts = 0;
  if (top >= 2 && lua_istable(L, top) && !sl_lua_totensor(L, top)) opts = top--;
  luaL_argcheck(L, top == 2 || top == 4, top + 1,
                "query, key and value expected (or query alone for self-attention), then an optional options table");
  sl_tensor *q = sl_lua_checktensor(L, 2);
  sl_tensor *k = top == 4 ? sl_lua_checktensor(L, 3) : q, *v = top == 4 ? sl_lua_checktensor(L, 4) : q;
  sl_mha_opts o = sl_mha_defaults();
  if (opts) {
    check_keys(L, opts, mha_opt_names);
    o.key_padding_mask = opt_tensor(L, opts, "key_padding_mask");
    o.attn_mask = opt_tensor(L, opts, "attn_mask");
    o.need_weights = opt_bool(L, opts, "need_weights", true);
    o.average_attn_weights = opt_bool(L, opts, "average_attn_weights", true);
    o.is_causal = opt_bool(L, opts, "is_causal", false);
    o.mask_type = opt_mask_type(L, opts);
  }
  bool record = own && sl_lua_grad_mode(L);
  if (record) sl_lua_check(L, sl_ag_layer_bind_grads(m));
  const sl_tensor *y = NULL, *w = NULL;
  if (!own) {
    sl_lua_check(L, sl_mha_forward(m, q, k, v, &o, &y, &w));
    sl_lua_pushcached(L, UV_OUTPUT, (sl_tensor *)y);
    if (w) sl_lua_pushtensor(L, (sl_tensor *)w);
    else lua_pushnil(L);
    return 2;
  }
  sl_tensor **ybox = sl_lua_newtensor(L);
  sl_tensor **wbox = sl_lua_newtensor(L);
  sl_lua_check(L, sl_mha_forward(m, q, k, v, &o, &y, &w));
  if (!(*ybox = sl_tensor_clone(y)) || (w && !(*wbox = sl_tensor_clone(w)))) return sl_lua_error(L);
  if (!w) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  if (!record) return 2;
  sl_tensor *in[3] = {q, k, v};
  mha_ag *c = sl_malloc(sizeof *c);
  sl_ag_node *n = c ? sl_ag_record("MultiheadAttentionBackward", mha_ag_backward, *ybox, in, 3) : NULL;
  if (!n) {
    sl_free(c);
    return sl_lua_error(L);
  }
  c->m = sl_module_retain(m);
  c->stamp = m->forwards;
  n->ctx = c;
  n->ctx_free = mha_ag_free;
  for (int i = 0; i < 3; i++) sl_lua_check(L, sl_ag_save(n, in[i]));
  return 2;
}

static int mha_forward(lua_State *L) { return mha_run(L, false); }
static int mha_call(lua_State *L) { return mha_run(L, true); }

/* mha:backward(query, key, value, gout) -> gq, gk, gv;
 * mha:backward(x, gy[, need_input_grad]) -> dL/dx of self-attention. */
static int mha_backward(lua_State *L) {
  sl_module *m = check_mha(L);
  if (!sl_lua_totensor(L, 5)) {
    sl_tensor *x = sl_lua_checktensor(L, 2), *gy = sl_lua_checktensor(L, 3);
    const sl_tensor *gx = NULL;
    sl_lua_check(L, sl_module_backward(m, x, gy, &gx));
    sl_lua_pushcached(L, UV_GRAD_INPUT, (sl_tensor *)gx);
    return 1;
  }
  sl_tensor *q = sl_lua_checktensor(L, 2), *k = sl_lua_checktensor(L, 3), *v = sl_lua_checktensor(L, 4);
  sl_tensor *g = sl_lua_checktensor(L, 5);
  const sl_tensor *gq, *gk, *gv;
  sl_lua_check(L, sl_mha_backward(m, q, k, v, g, &gq, &gk, &gv));
  sl_lua_pushtensor(L, (sl_tensor *)gq);
  sl_lua_pushtensor(L, (sl_tensor *)gk);
  sl_lua_pushtensor(L, (sl_tensor *)gv);
  return 3;
}

/* ---- F.scaled_dot_product_attention ---- */

static int sdpa_ag_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *q, *k, *v;
  int st;
  if ((st = sl_ag_saved(n, 0, &q)) || (st = sl_ag_saved(n, 1, &k)) || (st = sl_ag_saved(n, 2, &v))) return st;
  const sl_tensor *g[3];
  if ((st = sl_sdpa_backward(n->ctx, q, k, v, gy, &g[0], &g[1], &g[2]))) return st;
  for (int i = 0; i < 3; i++)
    if (gx[i] && (st = sl_tensor_copy(gx[i], g[i]))) return st;
  return SL_OK;
}

static void sdpa_ctx_free(void *ctx) { sl_sdpa_free(ctx); }

static int f_sdpa(lua_State *L) {
  sl_tensor *q = sl_lua_checktensor(L, 1), *k = sl_lua_checktensor(L, 2), *v = sl_lua_checktensor(L, 3);
  sl_sdpa_opts o = {.mask_type = SL_MASK_AUTO};
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    check_keys(L, 4, sdpa_opt_names);
    o.attn_mask = opt_tensor(L, 4, "attn_mask");
    o.is_causal = opt_bool(L, 4, "is_causal", false);
    o.mask_type = opt_mask_type(L, 4);
    static const char *const nums[] = {"dropout_p", "scale"};
    for (int i = 0; i < 2; i++) {
      int t = lua_getfield(L, 4, nums[i]);
      if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER)
          luaL_argerror(L, 4, lua_pushfstring(L, "%s must be a number, got %s", nums[i], luaL_typename(L, -1)));
        double x = lua_tonumber(L, -1);
        if (i == 0) o.dropout_p = x;
        else if (!(x > 0 && x < HUGE_VAL)) luaL_argerror(L, 4, lua_pushfstring(L, "scale must be a number > 0, got %f", x));
        else o.scale = x;
      }
      lua_pop(L, 1);
    }
  }
  luaL_argcheck(L, lua_gettop(L) <= 4, 5, "at most query, key, value and an options table expected");
  sl_tensor *in[3] = {q, k, v};
  bool record = sl_lua_grad_mode(L) && sl_ag_any_requires_grad(in, 3);
  sl_tensor **box = sl_lua_newtensor(L);
  sl_sdpa *a = sl_sdpa_new();
  const sl_tensor *y;
  if (!a || sl_sdpa_forward(a, q, k, v, &o, &sl_lua_context(L)->rng, &y)) {
    sl_sdpa_free(a);
    return sl_lua_error(L);
  }
  *box = sl_sdpa_take_output(a);
  if (!record) {
    sl_sdpa_free(a);
    return 1;
  }
  sl_ag_node *n = sl_ag_record("ScaledDotProductAttentionBackward", sdpa_ag_backward, *box, in, 3);
  if (!n) {
    sl_sdpa_free(a);
    return sl_lua_error(L);
  }
  n->ctx = a;
  n->ctx_free = sdpa_ctx_free;
  for (int i = 0; i < 3; i++) sl_lua_check(L, sl_ag_save(n, in[i]));
  return 1;
}

static const luaL_Reg f_funcs[] = {{"scaled_dot_product_attention", f_sdpa}, {NULL, NULL}};

/* With the selut table on top. The MultiheadAttention metatable (lua_nn.c)
 * gets __call and its own method table: the shared one with forward and
 * backward replaced. nn.F (nn.functional) is created when absent. */
void sl_lua_open_nn_attention(lua_State *L) {
  luaL_getmetatable(L, "selut.nn.MultiheadAttention");
  if (lua_istable(L, -1)) {
    sl_lua_pushcclosure(L, mha_call, 0);
    lua_setfield(L, -2, "__call");
    lua_getfield(L, -1, "__index"); /* module_index closure; its first table upvalue = the method table */
    int up = 1;
    const char *name;
    while ((name = lua_getupvalue(L, -1, up)) && !lua_istable(L, -1)) {
      lua_pop(L, 1);
      up++;
    }
    if (name) {
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
      lua_remove(L, -2);
      sl_lua_pushcclosure(L, mha_forward, 0);
      lua_setfield(L, -2, "forward");
      sl_lua_pushcclosure(L, mha_backward, 0);
      lua_setfield(L, -2, "backward");
      lua_setupvalue(L, -2, up);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "nn");
  if (lua_getfield(L, -1, "F") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "F");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "functional");
  }
  sl_lua_setfuncs(L, f_funcs);
  lua_pop(L, 2);
}
