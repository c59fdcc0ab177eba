/*
 * selut.nn losses (CrossEntropyLoss, MSELoss) as userdata over core/nn/loss.c:
 * forward returns a number, backward the gradient in a buffer the loss owns
 * and reuses (the same Lua box while it holds the same tensor).
 */
#include <math.h>
#include <string.h>

#include "sl_lua.h"

enum { LOSS_CE, LOSS_MSE };
typedef struct lloss {
  int kind;
  sl_tensor *grad;   /* backward's result, reused (overwritten by the next backward) */
  sl_tensor *labels; /* 0-based float labels for the core, reused */
} lloss;

static const char loss_tag = 0; /* metatable[&loss_tag] = true marks losses */
enum { UV_LOSS_GRAD = 1 }; /* a loss box's user value: the box of its grad buffer */

#define LOSS_CE_NAME "selut.nn.CrossEntropyLoss"
#define LOSS_MSE_NAME "selut.nn.MSELoss"

/* ---- losses ---- */

static lloss *checkloss(lua_State *L, int idx) {
  lloss *l = sl_lua_totagged(L, idx, &loss_tag);
  if (!l) luaL_typeerror(L, idx, "selut.nn loss");
  return l;
}

static int newloss(lua_State *L, int kind) {
  lloss *l = lua_newuserdatauv(L, sizeof *l, 1);
  l->kind = kind;
  l->grad = NULL;
  l->labels = NULL;
  luaL_setmetatable(L, kind == LOSS_CE ? LOSS_CE_NAME : LOSS_MSE_NAME);
  return 1;
}

static int nn_cross_entropy(lua_State *L) { return newloss(L, LOSS_CE); }
static int nn_mse(lua_State *L) { return newloss(L, LOSS_MSE); }

static int loss_gc(lua_State *L) {
  lloss *l = lua_touserdata(L, 1);
  if (l) {
    sl_tensor_release(l->grad);
    sl_tensor_release(l->labels);
    l->grad = l->labels = NULL;
  }
  return 0;
}

/* Converts labels 1..c at arg (tensor or table, n of them) into dst as
 * 0-based floats, raising an argument error for a bad one. */
static void convert_labels(lua_State *L, int arg, int64_t n, int64_t c, float *dst) {
  sl_tensor *lt = NULL;
  int64_t count;
  if (lua_type(L, arg) == LUA_TTABLE) {
    count = (int64_t)luaL_len(L, arg);
  } else {
    lt = sl_lua_checktensor(L, arg);
    count = lt->numel;
  }
  if (count != n)
    luaL_argerror(L, arg, lua_pushfstring(L, "%I labels expected (one per row of logits), got %I", (lua_Integer)n,
                                          (lua_Integer)count));
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (lt) {
      v = (double)lt->data[i];
    } else {
      lua_geti(L, arg, (lua_Integer)(i + 1));
      int isnum;
      v = lua_tonumberx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum)
        luaL_argerror(L, arg, lua_pushfstring(L, "label at position %I is not a number", (lua_Integer)(i + 1)));
    }
    if (!(v >= 1 && v <= (double)c) || v != floor(v))
      luaL_argerror(L, arg, lua_pushfstring(L, "label %s at position %I out of range 1..%I",
                                            lua_pushfstring(L, "%f", v), (lua_Integer)(i + 1), (lua_Integer)c));
    dst[i] = (float)(v - 1);
  }
}

/* The [N x C] input at arg. */
static sl_tensor *check_logits(lua_State *L, int arg, const char *what) {
  sl_tensor *x = sl_lua_checktensor(L, arg);
  char s[160];
  if (x->ndim != 2)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s of shape [N x C] expected, got %s", what,
                                          sl_shape_str(x, s, sizeof s)));
  return x;
}

/* Checks logits (arg 2) and converts labels 1..C (arg 3: tensor or table)
 * into l->labels as 0-based floats. */
static sl_tensor *ce_inputs(lua_State *L, lloss *l, sl_tensor **labels) {
  sl_tensor *x = check_logits(L, 2, "logits");
  int64_t n = x->shape[0];
  sl_lua_check(L, sl_tensor_ensure(&l->labels, 1, &n));
  convert_labels(L, 3, n, x->shape[1], l->labels->data);
  *labels = l->labels;
  return x;
}

static int loss_forward(lua_State *L) {
  lloss *l = checkloss(L, 1);
  double loss = 0;
  if (l->kind == LOSS_CE) {
    sl_tensor *labels;
    sl_tensor *x = ce_inputs(L, l, &labels);
    sl_lua_check(L, sl_cross_entropy_forward(x, labels, &loss));
  } else {
    sl_tensor *x = sl_lua_checktensor(L, 2);
    sl_tensor *y = sl_lua_checktensor(L, 3);
    sl_lua_check(L, sl_mse_forward(x, y, &loss));
  }
  lua_pushnumber(L, loss);
  return 1;
}

static int loss_backward(lua_State *L) {
  lloss *l = checkloss(L, 1);
  if (l->kind == LOSS_CE) {
    sl_tensor *labels;
    sl_tensor *x = ce_inputs(L, l, &labels);
    sl_lua_check(L, sl_tensor_ensure(&l->grad, x->ndim, x->shape));
    sl_lua_check(L, sl_cross_entropy_backward(l->grad, x, labels));
  } else {
    sl_tensor *x = sl_lua_checktensor(L, 2);
    sl_tensor *y = sl_lua_checktensor(L, 3);
    sl_lua_check(L, sl_tensor_ensure(&l->grad, x->ndim, x->shape));
    sl_lua_check(L, sl_mse_backward(l->grad, x, y));
  }
  sl_lua_pushcached(L, UV_LOSS_GRAD, l->grad); /* overwritten by the next backward */
  return 1;
}

static int loss_tostring(lua_State *L) {
  lloss *l = checkloss(L, 1);
  lua_pushstring(L, l->kind == LOSS_CE ? "CrossEntropyLoss()" : "MSELoss()");
  return 1;
}

static const luaL_Reg loss_methods[] = {
    {"forward", loss_forward}, {"backward", loss_backward}, {NULL, NULL}};

static const luaL_Reg loss_metamethods[] = {
    {"__gc", loss_gc}, {"__close", loss_gc}, {"__tostring", loss_tostring}, {NULL, NULL}};

/* ---- nn.functional's losses: a recorded [1] tensor (core/autograd/loss.h) ---- */

/* The options table at arg: only reduction = "mean" (default) or "sum". */
static bool opt_sum(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return false;
  luaL_checktype(L, arg, LUA_TTABLE);
  bool sum = false;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || strcmp(k, "reduction") != 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (only reduction)", k ? k : luaL_typename(L, -2)));
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    if (strcmp(v, "sum") == 0) sum = true;
    else if (strcmp(v, "mean") != 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "reduction must be 'mean' or 'sum', got %s",
                                            lua_type(L, -1) == LUA_TSTRING ? lua_pushfstring(L, "'%s'", v)
                                                                             : luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  return sum;
}

/* F.cross_entropy(logits, labels[, {reduction=}]) and F.nll_loss(logp, labels[, ...]) */
static int f_class_loss(lua_State *L, bool nll) {
  sl_tensor *x = check_logits(L, 1, nll ? "input" : "logits");
  int64_t n = x->shape[0];
  luaL_argexpected(L, lua_type(L, 2) == LUA_TTABLE || sl_lua_totensor(L, 2), 2, "tensor or table of labels");
  bool sum = opt_sum(L, 3);
  sl_tensor **lb = sl_lua_newtensor(L); /* owns the labels until the node saves them */
  if (!(*lb = sl_ag_tensor_empty(1, &n))) return sl_lua_error(L);
  convert_labels(L, 2, n, x->shape[1], (*lb)->data);
  bool rec = sl_lua_recording(L, x, NULL);
  sl_tensor **box = sl_lua_newtensor(L);
  sl_lua_check(L, nll ? sl_ag_nll_loss(x, *lb, 0, sum, rec, box) : sl_ag_cross_entropy(x, *lb, 0, sum, rec, box));
  sl_ag_release(*lb); /* now, not when Lua collects the box: back to the pool with the graph */
  *lb = NULL;
  return 1;
}
static int f_cross_entropy(lua_State *L) { return f_class_loss(L, false); }
static int f_nll_loss(lua_State *L) { return f_class_loss(L, true); }

/* F.mse_loss(input, target[, {reduction=}]) */
static int f_mse_loss(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_tensor *t = sl_lua_checktensor(L, 2);
  bool sum = opt_sum(L, 3);
  bool rec = sl_lua_recording(L, x, t);
  sl_tensor **box = sl_lua_newtensor(L);
  sl_lua_check(L, sl_ag_mse_loss(x, t, sum, rec, box));
  return 1;
}

static const luaL_Reg functional_funcs[] = {
    {"cross_entropy", f_cross_entropy}, {"nll_loss", f_nll_loss}, {"mse_loss", f_mse_loss}, {NULL, NULL}};

static const luaL_Reg loss_funcs[] = {{"CrossEntropyLoss", nn_cross_entropy}, {"MSELoss", nn_mse}, {NULL, NULL}};

void sl_lua_open_loss(lua_State *L) {
  const char *losses[] = {LOSS_CE_NAME, LOSS_MSE_NAME};
  for (int i = 0; i < 2; i++) {
    if (luaL_newmetatable(L, losses[i])) {
      sl_lua_setfuncs(L, loss_metamethods);
      sl_lua_newlib(L, loss_methods);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -2, &loss_tag);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "nn");
  sl_lua_setfuncs(L, loss_funcs);
  sl_lua_newlib(L, functional_funcs); /* nn.functional (alias nn.F): completed by scripts/functional.lua */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "F");
  lua_setfield(L, -2, "functional");
  lua_pop(L, 1);
}
