/*
 * selut.autograd and the tensor side of autograd: requires_grad_, .grad,
 * .grad_fn, backward, detach, selut.no_grad, selut.autograd.grad and the
 * primitive under selut.autograd.Function (scripts/autograd.lua). The tape
 * is core/autograd; this file only decides when to record (grad mode lives
 * in the state's context) and calls back into Lua for Functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_lua.h"

int sl_lua_grad_mode(lua_State *L) { return sl_lua_context(L)->no_grad == 0; }

void sl_lua_inplace(lua_State *L, sl_tensor *t, const char *op) {
  int mode = t->ag ? sl_lua_grad_mode(L) : 0;
  if (mode && !sl_ag_is_leaf(t))
    luaL_error(L, "%s: in-place operations on a tensor recorded by autograd (made by %s) are not supported; use the "
                  "out-of-place form", op, sl_ag_grad_fn(t)->name);
  sl_lua_check(L, sl_ag_check_inplace(t, op, mode));
}

/* Releases the registry refs of Lua Function nodes freed since the last call
 * (a node may be freed inside a finalizer or the engine, where no Lua call
 * may happen). */
static void flush_unrefs(lua_State *L, sl_lua_ctx *c) {
  while (c->ag_nunref > 0) luaL_unref(L, LUA_REGISTRYINDEX, c->ag_unref[--c->ag_nunref]);
}

/* ---- tensor fields ---- */

int sl_lua_tensor_getfield(lua_State *L, sl_tensor *t, const char *key) {
  if (strcmp(key, "grad") == 0) {
    sl_tensor *g = sl_ag_grad(t);
    if (g)
      sl_lua_pushtensor(L, g);
    else
      lua_pushnil(L);
  } else if (strcmp(key, "grad_fn") == 0) {
    sl_ag_node *n = sl_ag_grad_fn(t);
    if (n)
      lua_pushstring(L, n->name);
    else
      lua_pushnil(L);
  } else if (strcmp(key, "requires_grad") == 0) {
    lua_pushboolean(L, sl_ag_requires_grad(t));
  } else if (strcmp(key, "is_leaf") == 0) {
    lua_pushboolean(L, sl_ag_is_leaf(t));
  } else {
    lua_pushnil(L);
  }
  return 1;
}

int sl_lua_tensor_setfield(lua_State *L, sl_tensor *t, const char *key, int val) {
  sl_mem_account *prev;
  int st;
  if (strcmp(key, "grad") == 0) {
    sl_tensor *g = lua_isnil(L, val) ? NULL : sl_lua_checktensor(L, val);
    prev = sl_lua_enter(L); /* __newindex is not wrapped */
    st = sl_ag_set_grad(t, g);
  } else if (strcmp(key, "requires_grad") == 0) {
    if (!lua_isboolean(L, val)) return luaL_error(L, "requires_grad must be a boolean, got %s", luaL_typename(L, val));
    prev = sl_lua_enter(L);
    st = sl_ag_set_requires_grad(t, lua_toboolean(L, val));
  } else {
    return luaL_error(L, "cannot set field '%s' of a tensor (only integer indices, grad and requires_grad)", key);
  }
  sl_mem_account_use(prev);
  sl_lua_check(L, st);
  return 0;
}

/* ---- methods ---- */

static int ag_requires_grad_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int on = lua_isnoneornil(L, 2) ? 1 : (luaL_checktype(L, 2, LUA_TBOOLEAN), lua_toboolean(L, 2));
  sl_lua_check(L, sl_ag_set_requires_grad(t, on));
  lua_settop(L, 1);
  return 1;
}

static int ag_retain_grad(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (sl_ag_is_leaf(t)) { /* a leaf keeps its .grad anyway (PyTorch: a no-op) */
    lua_settop(L, 1);
    return 1;
  }
  sl_lua_check(L, sl_ag_set_retain_grad(t));
  lua_settop(L, 1);
  return 1;
}

static int ag_detach(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_reshape(t, t->ndim, t->shape))) return sl_lua_error(L); /* same storage, no history */
  return 1;
}

/* retain_graph given as a boolean or as {retain_graph = b} at arg. */
static int opt_retain(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (lua_isboolean(L, arg)) return lua_toboolean(L, arg);
  return sl_lua_onlyboolopt(L, arg, "retain_graph", 0);
}

static int run_backward(lua_State *L, sl_tensor *root, const sl_tensor *g, int retain, sl_tensor *const *inputs, int n,
                        sl_tensor **out) {
  sl_lua_ctx *c = sl_lua_context(L);
  lua_State *saved = c->ag_L;
  c->ag_L = L;
  int st = inputs ? sl_ag_grad_of(root, g, inputs, n, out, retain) : sl_ag_backward(root, g, retain);
  c->ag_L = saved;
  flush_unrefs(L, c);
  return st;
}

/* y:backward([g][, retain_graph | {retain_graph = b}]) */
static int ag_backward(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  const sl_tensor *g = NULL;
  int optarg = 2;
  if (sl_lua_totensor(L, 2) || luaL_testudata(L, 2, SL_LUA_TENSOR)) {
    g = sl_lua_checktensor(L, 2);
    optarg = 3;
  } else if (lua_isnil(L, 2) && lua_gettop(L) >= 3) {
    optarg = 3;
  }
  sl_lua_check(L, run_backward(L, t, g, opt_retain(L, optarg), NULL, 0, NULL));
  return 0;
}

/* ---- selut.no_grad(fn, ...) -> fn's results ---- */

static int ag_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  sl_lua_ctx *c = sl_lua_context(L);
  c->no_grad++;
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  c->no_grad--;
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int ag_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, sl_lua_grad_mode(L));
  return 1;
}

/* selut.set_grad_enabled(b): for hosts that bracket evaluation themselves. */
static int ag_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  sl_lua_context(L)->no_grad = lua_toboolean(L, 1) ? 0 : 1;
  return 0;
}

/* ---- selut.autograd.grad(y, inputs[, g][, {retain_graph = b}]) -> {grads} ---- */

static int ag_grad(lua_State *L) {
  lua_settop(L, 4);
  sl_tensor *root = sl_lua_checktensor(L, 1);
  int single = sl_lua_totensor(L, 2) != NULL;
  if (!single) luaL_checktype(L, 2, LUA_TTABLE);
  int n = single ? 1 : (int)luaL_len(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 1024, 2, "1 to 1024 input tensors expected");
  sl_tensor **in = lua_newuserdatauv(L, 2 * (size_t)n * sizeof *in, 0); /* collected with the call */
  sl_tensor **out = in + n;
  for (int k = 0; k < n; k++) {
    if (single) {
      in[k] = sl_lua_checktensor(L, 2);
    } else {
      lua_geti(L, 2, k + 1);
      in[k] = sl_lua_totensor(L, -1);
      if (!in[k]) return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is not a tensor", k + 1));
      lua_pop(L, 1);
    }
    if (!sl_ag_requires_grad(in[k]))
      return luaL_argerror(L, 2, lua_pushfstring(L, "input %d does not require grad", k + 1));
  }
  const sl_tensor *g = sl_lua_totensor(L, 3);
  if (!g && !lua_isnoneornil(L, 3) && !lua_istable(L, 3)) sl_lua_checktensor(L, 3);
  int retain = opt_retain(L, lua_istable(L, 3) ? 3 : 4);
  lua_createtable(L, n, 0);
  int tbl = lua_gettop(L);
  sl_lua_check(L, run_backward(L, root, g, retain, in, n, out));
  for (int k = 0; k < n; k++) { /* hand each result to a box (no raise in between leaks: boxes own them) */
    if (!out[k]) continue;
    sl_tensor **box = sl_lua_newtensor(L);
    *box = out[k];
    out[k] = NULL;
    lua_rawseti(L, tbl, k + 1);
  }
  return 1;
}

/* ---- the Function primitive ----
 * selut.autograd._record(name, y, inputs, backward): y (the forward's
 * result, computed under no_grad) gets a node over the tensor inputs whose
 * backward calls backward(gy) in Lua and expects one gradient (or nil) per
 * input. */

typedef struct fn_ctx {
  sl_lua_ctx *c;
  int ref; /* registry: the Lua backward closure */
} fn_ctx;

static void fn_free(void *p) {
  fn_ctx *f = p;
  sl_lua_ctx *c = f->c;
  if (c->ag_nunref == c->ag_capunref) {
    int cap = c->ag_capunref ? 2 * c->ag_capunref : 16;
    int *a = realloc(c->ag_unref, (size_t)cap * sizeof *a);
    if (a) {
      c->ag_unref = a;
      c->ag_capunref = cap;
    }
  }
  if (c->ag_nunref < c->ag_capunref) c->ag_unref[c->ag_nunref++] = f->ref; /* else the closure stays referenced */
  sl_free(f);
}

static int fn_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  fn_ctx *f = n->ctx;
  if (!f) return sl_fail(SL_EINVAL, "backward: %s was freed", n->name);
  lua_State *L = f->c->ag_L;
  if (!L) return sl_fail(SL_EINVAL, "backward: %s needs a Lua state to run its backward", n->name);
  int top = lua_gettop(L);
  if (!lua_checkstack(L, n->ninputs + 8)) return sl_fail(SL_ENOMEM, "backward: %s: Lua stack overflow", n->name);
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
  sl_tensor **box = lua_newuserdatauv(L, sizeof *box, 0); /* a private copy: Lua may keep it */
  *box = NULL;
  luaL_setmetatable(L, SL_LUA_TENSOR);
  if (!(*box = sl_tensor_clone(gy))) {
    lua_settop(L, top);
    return SL_ENOMEM;
  }
  f->c->no_grad++; /* the backward itself records nothing */
  int pst = lua_pcall(L, 1, LUA_MULTRET, 0);
  f->c->no_grad--;
  if (pst != LUA_OK) {
    int st = sl_fail(SL_EINVAL, "%s: error in backward: %s", n->name,
                     lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_settop(L, top);
    return st;
  }
  int nres = lua_gettop(L) - top;
  int st = SL_OK;
  if (nres != n->ninputs)
    st = sl_fail(SL_EINVAL, "%s: backward returned %d gradients, expected %d (one per tensor input of forward)",
                 n->name, nres, n->ninputs);
  for (int i = 0; !st && i < n->ninputs; i++) {
    int idx = top + 1 + i;
    if (!gx[i]) continue;
    if (lua_isnil(L, idx)) {
      st = sl_fill(gx[i], 0.0f);
      continue;
    }
    sl_tensor *g = sl_lua_totensor(L, idx);
    char a[160], b[160];
    if (!g)
      st = sl_fail(SL_EINVAL, "%s: backward returned a %s for input %d, expected a tensor or nil", n->name,
                   luaL_typename(L, idx), i + 1);
    else if (!sl_tensor_same_shape(g, gx[i]))
      st = sl_fail(SL_ESHAPE, "%s: backward returned a gradient of shape %s for input %d of shape %s", n->name,
                   sl_shape_str(g, a, sizeof a), i + 1, sl_shape_str(gx[i], b, sizeof b));
    else
      st = sl_tensor_copy(gx[i], g);
  }
  lua_settop(L, top);
  return st;
}

static int ag_record(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  sl_tensor *y = sl_lua_checktensor(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int n = (int)luaL_len(L, 3);
  luaL_argcheck(L, n >= 1 && n <= SL_AG_MAX_INPUTS, 3, "1 to 8 tensor inputs expected");
  sl_tensor *in[SL_AG_MAX_INPUTS];
  for (int k = 0; k < n; k++) {
    lua_geti(L, 3, k + 1);
    in[k] = sl_lua_checktensor(L, -1);
    lua_pop(L, 1);
  }
  sl_lua_ctx *c = sl_lua_context(L);
  flush_unrefs(L, c);
  if (!sl_ag_is_leaf(y)) return luaL_error(L, "%s: forward returned a tensor already recorded by autograd", name);
  fn_ctx *f = sl_malloc(sizeof *f);
  if (!f) return sl_lua_error(L);
  lua_pushvalue(L, 4);
  f->c = c;
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise on OOM: f leaks then (rare; a few bytes) */
  sl_ag_node *node = sl_ag_record(name, fn_backward, y, in, n);
  if (!node) {
    luaL_unref(L, LUA_REGISTRYINDEX, f->ref);
    sl_free(f);
    return sl_lua_error(L);
  }
  snprintf(node->label, sizeof node->label, "%s", name);
  node->name = node->label;
  node->ctx = f;
  node->ctx_free = fn_free;
  lua_settop(L, 2);
  return 1;
}

static const luaL_Reg methods[] = {{"requires_grad_", ag_requires_grad_}, {"retain_grad", ag_retain_grad},
                                   {"detach", ag_detach}, {"backward", ag_backward}, {NULL, NULL}};
static const luaL_Reg selut_fns[] = {{"no_grad", ag_no_grad}, {"is_grad_enabled", ag_is_grad_enabled},
                                     {"set_grad_enabled", ag_set_grad_enabled}, {NULL, NULL}};
static const luaL_Reg autograd_fns[] = {{"grad", ag_grad}, {"_record", ag_record}, {NULL, NULL}};

void sl_lua_open_autograd(lua_State *L) {
  sl_lua_tensor_extend(L, methods, NULL, selut_fns);
  sl_lua_newlib(L, autograd_fns);
  lua_setfield(L, -2, "autograd");
}
