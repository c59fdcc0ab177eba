/*
 * selut.tensor, elementwise: arithmetic and comparisons with broadcasting
 * (methods, selut.* functions, metamethods, in-place twins), where, unary
 * math and clamp. Kernels: core/tensor/elementwise.c.
 */
#include <math.h>
#include <string.h>

#include "sl_lua.h"

/* The tensor at arg, or NULL (with *num set) when it is a number; raises
 * for anything else (and for closed tensors). */
static sl_tensor *tensor_or_number(lua_State *L, int arg, const char *op, float *num) {
  if (lua_type(L, arg) == LUA_TNUMBER) {
    *num = (float)lua_tonumber(L, arg);
    return NULL;
  }
  sl_tensor *t = sl_lua_totensor(L, arg);
  if (t) return t;
  if (luaL_testudata(L, arg, SL_LUA_TENSOR)) return sl_lua_checktensor(L, arg); /* closed: raises */
  (void)op;
  luaL_typeerror(L, arg, "number or selut.Tensor");
  return NULL;
}

/* a (op) b with a and b at stack positions 1 and 2, either a number. */
static int binary(lua_State *L, sl_binary_op op) {
  const char *name = sl_binary_name(op);
  float na = 0, nb = 0;
  sl_tensor *a = tensor_or_number(L, 1, name, &na), *b = tensor_or_number(L, 2, name, &nb);
  if (!a && !b) return luaL_error(L, "%s: at least one argument must be a selut.Tensor (got two numbers)", name);
  sl_tensor *out = sl_lua_optout(L, 3, name);
  if (out) { /* out=: written in place, returned; no result allocated */
    int nd;
    int64_t shape[SL_MAX_DIMS];
    if (a && b) sl_lua_check(L, sl_broadcast_shapes(name, a, b, &nd, shape));
    else nd = (a ? a : b)->ndim, memcpy(shape, (a ? a : b)->shape, sizeof shape);
    sl_lua_checkout(L, out, name, nd, shape, a, b, true);
    if (a && b) sl_lua_check(L, sl_binary(op, out, a, b));
    else sl_lua_check(L, a ? sl_binary_scalar(op, out, a, nb, false) : sl_binary_scalar(op, out, b, na, true));
    sl_tensor_bump_version(out);
    lua_getfield(L, 3, "out");
    return 1;
  }
  if (op < SL_EQ && sl_lua_recording(L, a, b)) { /* comparisons have no gradient (PyTorch) */
    enum sl_ag_binop ag = (enum sl_ag_binop)(op - SL_ADD);
    int nd;
    int64_t shape[SL_MAX_DIMS];
    if (a && b) sl_lua_check(L, sl_broadcast_shapes(name, a, b, &nd, shape));
    else nd = (a ? a : b)->ndim, memcpy(shape, (a ? a : b)->shape, sizeof shape);
    sl_tensor *y = sl_lua_newresult(L, nd, shape); /* the kernels of sl_binary_new, into a pooled result */
    if (a && b) sl_lua_check(L, sl_binary(op, y, a, b));
    else sl_lua_check(L, a ? sl_binary_scalar(op, y, a, nb, false) : sl_binary_scalar(op, y, b, na, true));
    if (a && b) sl_lua_check(L, sl_ag_record_binop(ag, y, a, b));
    else sl_lua_check(L, a ? sl_ag_record_scalar(ag, y, a, nb, false) : sl_ag_record_scalar(ag, y, b, na, true));
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  if (a && b) *box = sl_binary_new(op, a, b);
  else *box = a ? sl_binary_scalar_new(op, a, nb, false) : sl_binary_scalar_new(op, b, na, true);
  if (!*box) return sl_lua_error(L);
  return 1;
}

/* Metamethods: Lua's messages for a non-tensor, non-number operand. */
static int arith(lua_State *L, sl_binary_op op) {
  for (int i = 1; i <= 2; i++)
    if (lua_type(L, i) != LUA_TNUMBER && !luaL_testudata(L, i, SL_LUA_TENSOR))
      return luaL_error(L,
                        "attempt to perform arithmetic (%s) on a selut.Tensor and a %s value (number or tensor expected)",
                        sl_binary_name(op), luaL_typename(L, i));
  return binary(L, op);
}

/* x:op_(y): y broadcast to x's shape (the result must keep x's shape). */
static int binary_(lua_State *L, sl_binary_op op) {
  const char *name = sl_binary_name(op);
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_lua_inplace(L, x, lua_pushfstring(L, "%s_", name));
  lua_pop(L, 1);
  float s = 0;
  sl_tensor *y = tensor_or_number(L, 2, name, &s);
  if (!y) {
    sl_lua_check(L, sl_binary_scalar(op, x, x, s, false));
  } else {
    int nd;
    int64_t shape[SL_MAX_DIMS];
    sl_lua_check(L, sl_broadcast_shapes(name, x, y, &nd, shape));
    bool same = nd == x->ndim;
    for (int i = 0; same && i < nd; i++) same = shape[i] == x->shape[i];
    if (!same) {
      char a[160], b[160], c[160];
      return luaL_error(L, "%s_: the result %s of %s and %s is not the in-place tensor's shape", name,
                        sl_shape_str_raw(nd, shape, c, sizeof c), sl_shape_str(x, a, sizeof a),
                        sl_shape_str(y, b, sizeof b));
    }
    sl_lua_check(L, sl_binary(op, x, x, y));
  }
  sl_tensor_bump_version(x);
  lua_settop(L, 1);
  return 1;
}

/* add_/sub_ also take alpha: x += alpha * y (PyTorch's add_(y, alpha=)). */
static int addsub_(lua_State *L, sl_binary_op op) {
  if (lua_isnoneornil(L, 3)) return binary_(L, op);
  sl_tensor *x = sl_lua_checktensor(L, 1), *y = sl_lua_checktensor(L, 2);
  float alpha = (float)luaL_checknumber(L, 3);
  sl_lua_inplace(L, x, op == SL_SUB ? "sub_" : "add_");
  if (y->numel != x->numel) return luaL_argerror(L, 2, "same number of elements expected when alpha is given");
  sl_lua_check(L, sl_axpy(x, op == SL_SUB ? -alpha : alpha, y));
  sl_tensor_bump_version(x);
  lua_settop(L, 1);
  return 1;
}

static int ew_add(lua_State *L) { return binary(L, SL_ADD); }
static int ew_sub(lua_State *L) { return binary(L, SL_SUB); }
static int ew_mul(lua_State *L) { return binary(L, SL_MUL); }
static int ew_div(lua_State *L) { return binary(L, SL_DIV); }
static int ew_pow(lua_State *L) { return binary(L, SL_POW); }
static int ew_maximum(lua_State *L) { return binary(L, SL_MAXIMUM); }
static int ew_minimum(lua_State *L) { return binary(L, SL_MINIMUM); }
static int ew_eq(lua_State *L) { return binary(L, SL_EQ); }
static int ew_ne(lua_State *L) { return binary(L, SL_NE); }
static int ew_lt(lua_State *L) { return binary(L, SL_LT); }
static int ew_le(lua_State *L) { return binary(L, SL_LE); }
static int ew_gt(lua_State *L) { return binary(L, SL_GT); }
static int ew_ge(lua_State *L) { return binary(L, SL_GE); }
static int ew_add_(lua_State *L) { return addsub_(L, SL_ADD); }
static int ew_sub_(lua_State *L) { return addsub_(L, SL_SUB); }
static int ew_mul_(lua_State *L) { return binary_(L, SL_MUL); }
static int ew_div_(lua_State *L) { return binary_(L, SL_DIV); }
static int ew_pow_(lua_State *L) { return binary_(L, SL_POW); }
static int ew_maximum_(lua_State *L) { return binary_(L, SL_MAXIMUM); }
static int ew_minimum_(lua_State *L) { return binary_(L, SL_MINIMUM); }
static int ew_eq_(lua_State *L) { return binary_(L, SL_EQ); }
static int ew_ne_(lua_State *L) { return binary_(L, SL_NE); }
static int ew_lt_(lua_State *L) { return binary_(L, SL_LT); }
static int ew_le_(lua_State *L) { return binary_(L, SL_LE); }
static int ew_gt_(lua_State *L) { return binary_(L, SL_GT); }
static int ew_ge_(lua_State *L) { return binary_(L, SL_GE); }
static int ew__add(lua_State *L) { return arith(L, SL_ADD); }
static int ew__sub(lua_State *L) { return arith(L, SL_SUB); }
static int ew__mul(lua_State *L) { return arith(L, SL_MUL); }
static int ew__div(lua_State *L) { return arith(L, SL_DIV); }
static int ew__pow(lua_State *L) { return arith(L, SL_POW); }

/* where(cond, a, b): a and b may be numbers; x:where(cond, y) = where(cond, x, y). */
static int where_args(lua_State *L, int ci, int ai, int bi) {
  sl_tensor *c = sl_lua_checktensor(L, ci);
  float na = 0, nb = 0;
  sl_tensor *a = tensor_or_number(L, ai, "where", &na), *b = tensor_or_number(L, bi, "where", &nb);
  sl_tensor sa = {0}, sb = {0}; /* number operands: 1-element headers over the locals */
  if (!a) {
    sa.data = &na, sa.ndim = 1, sa.shape[0] = 1, sa.numel = 1, sa.refcount = 1;
    a = &sa;
  }
  if (!b) {
    sb.data = &nb, sb.ndim = 1, sb.shape[0] = 1, sb.numel = 1, sb.refcount = 1;
    b = &sb;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_where_new(c, a, b))) return sl_lua_error(L);
  sl_tensor *ta = a == &sa ? NULL : a, *tb = b == &sb ? NULL : b; /* numbers are constants */
  if (sl_lua_recording(L, ta, tb)) sl_lua_check(L, sl_ag_record_where(*box, c, ta, tb));
  return 1;
}
static int ew_where(lua_State *L) { return where_args(L, 1, 2, 3); }
static int ew_where_method(lua_State *L) { return where_args(L, 2, 1, 3); }

static int unary(lua_State *L, sl_unary_op op) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_tensor *out = sl_lua_optout(L, 2, sl_unary_name(op));
  if (out) { /* out=: written in place, returned */
    sl_lua_checkout(L, out, sl_unary_name(op), x->ndim, x->shape, x, NULL, true);
    sl_lua_check(L, sl_unary(op, out, x));
    sl_tensor_bump_version(out);
    lua_getfield(L, 2, "out");
    return 1;
  }
  if (!sl_lua_recording(L, x, NULL)) {
    sl_tensor **box = sl_lua_newtensor(L);
    if (!(*box = sl_unary_new(op, x))) return sl_lua_error(L);
  } else {
    sl_tensor *y = sl_lua_newresult(L, x->ndim, x->shape); /* sl_unary_new's kernel, into a pooled result */
    sl_lua_check(L, sl_unary(op, y, x));
    static const enum sl_ag_unop ag[SL_UNARY_COUNT] = {
        [SL_NEG] = SL_AG_NEG, [SL_ABS] = SL_AG_ABS, [SL_SIGN] = SL_AG_STEP, [SL_EXP] = SL_AG_EXP,
        [SL_LOG] = SL_AG_LOG, [SL_LOG1P] = SL_AG_LOG1P, [SL_EXPM1] = SL_AG_EXPM1, [SL_SQRT] = SL_AG_SQRT,
        [SL_RSQRT] = SL_AG_RSQRT, [SL_TANH] = SL_AG_TANH, [SL_SIGMOID] = SL_AG_SIGMOID, [SL_SIN] = SL_AG_SIN,
        [SL_COS] = SL_AG_COS, [SL_FLOOR] = SL_AG_STEP, [SL_CEIL] = SL_AG_STEP, [SL_ROUND] = SL_AG_STEP};
    sl_lua_check(L, sl_ag_record_unary(ag[op], y, x, 0));
  }
  return 1;
}

static int unary_(lua_State *L, sl_unary_op op) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_lua_inplace(L, x, lua_pushfstring(L, "%s_", sl_unary_name(op)));
  lua_pop(L, 1);
  sl_lua_check(L, sl_unary(op, x, x));
  sl_tensor_bump_version(x);
  lua_settop(L, 1);
  return 1;
}

#define UNARY_PAIR(lname, OP)                                   \
  static int ew_##lname(lua_State *L) { return unary(L, OP); } \
  static int ew_##lname##_(lua_State *L) { return unary_(L, OP); }
UNARY_PAIR(neg, SL_NEG)
UNARY_PAIR(abs, SL_ABS)
UNARY_PAIR(sign, SL_SIGN)
UNARY_PAIR(exp, SL_EXP)
UNARY_PAIR(log, SL_LOG)
UNARY_PAIR(log1p, SL_LOG1P)
UNARY_PAIR(expm1, SL_EXPM1)
UNARY_PAIR(sqrt, SL_SQRT)
UNARY_PAIR(rsqrt, SL_RSQRT)
UNARY_PAIR(tanh, SL_TANH)
UNARY_PAIR(sigmoid, SL_SIGMOID)
UNARY_PAIR(sin, SL_SIN)
UNARY_PAIR(cos, SL_COS)
UNARY_PAIR(floor, SL_FLOOR)
UNARY_PAIR(ceil, SL_CEIL)
UNARY_PAIR(round, SL_ROUND)
#undef UNARY_PAIR

static int ew__unm(lua_State *L) {
  lua_settop(L, 1); /* Lua passes the operand twice */
  return unary(L, SL_NEG);
}

/* clamp(lo, hi), either nil (PyTorch's min=/max=). */
static int clamp_common(lua_State *L, int inplace) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  bool has_lo = !lua_isnoneornil(L, 2), has_hi = !lua_isnoneornil(L, 3);
  float lo = has_lo ? (float)luaL_checknumber(L, 2) : 0.0f, hi = has_hi ? (float)luaL_checknumber(L, 3) : 0.0f;
  if (!has_lo && !has_hi) return luaL_argerror(L, 2, "clamp: min or max expected (both are nil)");
  if (inplace) {
    sl_lua_inplace(L, x, "clamp_");
    sl_lua_check(L, sl_clamp(x, x, has_lo, lo, has_hi, hi));
    sl_tensor_bump_version(x);
    lua_settop(L, 1);
    return 1;
  }
  if (sl_lua_recording(L, x, NULL)) {
    sl_tensor *y = sl_lua_newresult(L, x->ndim, x->shape);
    sl_lua_check(L, sl_clamp(y, x, has_lo, lo, has_hi, hi));
    sl_lua_check(L, sl_ag_record_clamp(y, x, has_lo, lo, has_hi, hi));
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_empty(x->ndim, x->shape))) return sl_lua_error(L);
  sl_lua_check(L, sl_clamp(*box, x, has_lo, lo, has_hi, hi));
  return 1;
}
static int ew_clamp(lua_State *L) { return clamp_common(L, 0); }
static int ew_clamp_(lua_State *L) { return clamp_common(L, 1); }

#define PAIR(n) {#n, ew_##n}, {#n "_", ew_##n##_}
static const luaL_Reg elementwise_methods[] = {
    PAIR(add), PAIR(sub), PAIR(mul), PAIR(div), PAIR(pow), PAIR(maximum), PAIR(minimum),
    PAIR(eq), PAIR(ne), PAIR(lt), PAIR(le), PAIR(gt), PAIR(ge),
    PAIR(neg), PAIR(abs), PAIR(sign), PAIR(exp), PAIR(log), PAIR(log1p), PAIR(expm1), PAIR(sqrt),
    PAIR(rsqrt), PAIR(tanh), PAIR(sigmoid), PAIR(sin), PAIR(cos), PAIR(floor), PAIR(ceil), PAIR(round),
    PAIR(clamp), {"where", ew_where_method}, {NULL, NULL}};
#undef PAIR

#define FN(n) {#n, ew_##n}
static const luaL_Reg elementwise_funcs[] = {
    FN(add), FN(sub), FN(mul), FN(div), FN(pow), FN(maximum), FN(minimum),
    FN(eq), FN(ne), FN(lt), FN(le), FN(gt), FN(ge),
    FN(neg), FN(abs), FN(sign), FN(exp), FN(log), FN(log1p), FN(expm1), FN(sqrt),
    FN(rsqrt), FN(tanh), FN(sigmoid), FN(sin), FN(cos), FN(floor), FN(ceil), FN(round),
    FN(clamp), FN(where), {NULL, NULL}};
#undef FN

static const luaL_Reg elementwise_metamethods[] = {
    {"__add", ew__add}, {"__sub", ew__sub}, {"__mul", ew__mul}, {"__div", ew__div},
    {"__pow", ew__pow}, {"__unm", ew__unm}, {NULL, NULL}};

void sl_lua_open_tensor_elementwise(lua_State *L) {
  sl_lua_tensor_extend(L, elementwise_methods, NULL, elementwise_funcs);
  luaL_getmetatable(L, SL_LUA_TENSOR);
  sl_lua_setfuncs(L, elementwise_metamethods);
  lua_pop(L, 1);
}
