/*
 * selut.nn losses (CrossEntropyLoss, MSELoss) as userdata over core/nn/loss.c:
 * forward returns a number, backward the gradient in a buffer the loss owns
 * and reuses (the same Lua box while it holds the same tensor).
 */
#include <math.h>

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

/* Checks logits (arg 2) and converts labels 1..C (arg 3: tensor or table)
 * into l->labels as 0-based floats. */
static sl_tensor *ce_inputs(lua_State *L, lloss *l, sl_tensor **labels) {
  sl_tensor *x = sl_lua_checktensor(L, 2);
  char s[160];
  if (x->ndim != 2)
    luaL_argerror(L, 2, lua_pushfstring(L, "logits of shape [N x C] expected, got %s", sl_shape_str(x, s, sizeof s)));
  int64_t n = x->shape[0], c = x->shape[1];
  sl_tensor *lt = NULL;
  int64_t count;
  if (lua_type(L, 3) == LUA_TTABLE) {
    count = (int64_t)luaL_len(L, 3);
  } else {
    lt = sl_lua_checktensor(L, 3);
    count = lt->numel;
  }
  if (count != n)
    luaL_argerror(L, 3, lua_pushfstring(L, "%I labels expected (one per row of logits), got %I", (lua_Integer)n,
                                        (lua_Integer)count));
  sl_lua_check(L, sl_tensor_ensure(&l->labels, 1, &n));
  float *dst = l->labels->data;
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (lt) {
      v = (double)lt->data[i];
    } else {
      lua_geti(L, 3, (lua_Integer)(i + 1));
      int isnum;
      v = lua_tonumberx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum)
        luaL_argerror(L, 3, lua_pushfstring(L, "label at position %I is not a number", (lua_Integer)(i + 1)));
    }
    if (!(v >= 1 && v <= (double)c) || v != floor(v))
      luaL_argerror(L, 3, lua_pushfstring(L, "label %s at position %I out of range 1..%I",
                                          lua_pushfstring(L, "%f", v), (lua_Integer)(i + 1), (lua_Integer)c));
    dst[i] = (float)(v - 1);
  }
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
  lua_pop(L, 1);
}
