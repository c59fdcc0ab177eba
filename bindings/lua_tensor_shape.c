/*
 * selut.tensor, shape ops: view/reshape, permute, transpose, t, contiguous,
 * squeeze, unsqueeze, expand, flatten, narrow, select, split, chunk, cat,
 * stack, shares_storage; matmul and bmm. Which results are views is in
 * docs/views.md. Dims are 1-based, negative ones count from the end.
 * Methods and functions are added to the tensor tables by
 * sl_lua_tensor_extend (bindings/lua_tensor.c).
 */
#include <string.h>

#include "sl_lua.h"

int sl_lua_checkdim_n(lua_State *L, int arg, int ndim) {
  lua_Integer d = luaL_checkinteger(L, arg);
  if (d < -ndim || d > ndim || d == 0) /* a negative dim gets the negative range */
    luaL_argerror(L, arg, d < 0 ? lua_pushfstring(L, "dimension %I out of range -%d..-1", d, ndim)
                                : lua_pushfstring(L, "dimension %I out of range 1..%d", d, ndim));
  return d < 0 ? (int)(d + ndim) : (int)(d - 1);
}

int sl_lua_optdim(lua_State *L, int arg, int ndim, int def) {
  return lua_isnoneornil(L, arg) ? def : sl_lua_checkdim_n(L, arg, ndim);
}

/* Pushes a new box and stores r in it; raises the core error when r is NULL. */
static int push_result(lua_State *L, sl_tensor **box, sl_tensor *r) {
  if (!(*box = r)) return sl_lua_error(L);
  return 1;
}

/* A view (same elements, new shape): its gradient is gy reshaped back. */
static int record_view(lua_State *L, sl_tensor *y, sl_tensor *x) {
  if (sl_lua_recording(L, x, NULL)) sl_lua_check(L, sl_ag_record_unary(SL_AG_VIEW, y, x, 0));
  return 1;
}

static int shape_view(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkviewshape(L, 2, shape), first = -1;
  for (int d = 0; d < nd; d++)
    if (shape[d] == -1) {
      if (first >= 0)
        return luaL_argerror(L, lua_type(L, 2) == LUA_TTABLE ? 2 : 2 + d,
                             lua_pushfstring(L, "only one size can be -1, got -1 at sizes %d and %d", first + 1, d + 1));
      first = d;
    }
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_reshape(t, nd, shape));
  return record_view(L, *box, t);
}

/* Dims as varargs from arg or one table, each 1-based or negative. */
static int read_dims(lua_State *L, int arg, int top, int ndim, int *dims) {
  int n = 0;
  if (lua_type(L, arg) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, arg);
    luaL_argcheck(L, len == ndim, arg, lua_pushfstring(L, "%d dims expected for a %d-D tensor, got %I", ndim, ndim, len));
    for (lua_Integer i = 1; i <= len; i++) {
      lua_geti(L, arg, i);
      lua_Integer d = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      if (!lua_isinteger(L, -1) || d < -ndim || d > ndim || d == 0)
        luaL_argerror(L, arg, lua_pushfstring(L, "dim %I of the list out of range (expected 1..%d or -%d..-1)", i, ndim, ndim));
      lua_pop(L, 1);
      dims[n++] = d < 0 ? (int)(d + ndim) : (int)(d - 1);
    }
    return n;
  }
  if (top - arg + 1 != ndim)
    luaL_error(L, "bad argument #%d to 'permute' (%d dims expected for a %d-D tensor, got %d)", arg, ndim, ndim,
               top - arg + 1 < 0 ? 0 : top - arg + 1);
  for (int i = arg; i <= top; i++) dims[n++] = sl_lua_checkdim_n(L, i, ndim);
  return n;
}

static int shape_permute(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int perm[SL_MAX_DIMS];
  int top = lua_gettop(L);
  sl_tensor *out = NULL;
  if (top >= 3 && lua_istable(L, top)) /* a trailing options table: {out = tensor} */
    out = sl_lua_optout(L, top--, "permute");
  read_dims(L, 2, top, t->ndim, perm);
  if (out) { /* out=: written in place, returned */
    int64_t shape[SL_MAX_DIMS];
    for (int k = 0; k < t->ndim; k++) shape[k] = t->shape[perm[k]];
    sl_lua_checkout(L, out, "permute", t->ndim, shape, t, NULL, false);
    sl_lua_check(L, sl_tensor_permute_into(out, t, perm));
    sl_tensor_bump_version(out);
    lua_getfield(L, top + 1, "out");
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_permute(t, perm));
  if (sl_lua_recording(L, t, NULL)) sl_lua_check(L, sl_ag_record_permute(*box, t, perm, "PermuteBackward"));
  return 1;
}

static int shape_transpose(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int d1 = sl_lua_checkdim_n(L, 2, t->ndim), d2 = sl_lua_checkdim_n(L, 3, t->ndim);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_transpose(t, d1, d2));
  if (sl_lua_recording(L, t, NULL)) {
    int perm[SL_MAX_DIMS];
    for (int k = 0; k < t->ndim; k++) perm[k] = k == d1 ? d2 : k == d2 ? d1 : k;
    sl_lua_check(L, sl_ag_record_permute(*box, t, perm, "TransposeBackward"));
  }
  return 1;
}

/* 2-D transpose (a copy); 1-D tensors are returned as a copy unchanged. */
static int shape_t(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (t->ndim > 2)
    return luaL_error(L, "bad argument #1 to 't' (1-D or 2-D tensor expected, got %d-D)", t->ndim);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, t->ndim == 1 ? sl_tensor_clone(t) : sl_tensor_transpose(t, 0, 1));
  if (sl_lua_recording(L, t, NULL))
    sl_lua_check(L, t->ndim == 1 ? sl_ag_record_unary(SL_AG_CLONE, *box, t, 0) : sl_ag_record_transpose(*box, t));
  return 1;
}

/* Always contiguous: the tensor itself, like PyTorch's x.contiguous(). */
static int shape_contiguous(lua_State *L) {
  sl_lua_checktensor(L, 1);
  lua_settop(L, 1);
  return 1;
}

static int shape_squeeze(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int d = sl_lua_optdim(L, 2, t->ndim, -1);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_squeeze(t, d));
  return record_view(L, *box, t);
}

static int shape_unsqueeze(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim_n(L, 2, t->ndim + 1);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_unsqueeze(t, d));
  return record_view(L, *box, t);
}

static int shape_expand(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkviewshape(L, 2, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_expand(t, nd, shape));
  if (sl_lua_recording(L, t, NULL)) sl_lua_check(L, sl_ag_record_expand(*box, t));
  return 1;
}

static int shape_flatten(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int s = sl_lua_optdim(L, 2, t->ndim, 0), e = sl_lua_optdim(L, 3, t->ndim, t->ndim - 1);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_flatten(t, s, e));
  return record_view(L, *box, t);
}

static int shape_narrow(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int d = sl_lua_checkdim_n(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3);
  lua_Integer len = luaL_checkinteger(L, 4);
  lua_Integer size = (lua_Integer)t->shape[d];
  /* A negative start counts from the end, as in PyTorch (-1 is the last). */
  if (start < 0 && start >= -size) start += size + 1;
  else if (start < 0 && size > 0)
    return luaL_argerror(L, 3, lua_pushfstring(L, "start %I out of range -%I..-1", start, size));
  if (start < 1 || start > size + (size == 0))
    return luaL_argerror(L, 3, lua_pushfstring(L, "start %I out of range 1..%I", start, size));
  if (len < 0 || len > size - start + 1)
    return luaL_argerror(L, 4, lua_pushfstring(L, "length %I out of range 0..%I for start %I", len,
                                               size - start + 1, start));
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_narrow(t, d, start - 1, len));
  if (sl_lua_recording(L, t, NULL)) sl_lua_check(L, sl_ag_record_narrow(*box, t, d, start - 1, len));
  return 1;
}

/* x:select(d, i): index i (1-based, negative from the end) of dim d, that dim
 * removed; a number for a 1-D tensor (selut has no 0-D tensors, like x[i]),
 * or a 1-element tensor when the tensor records (a number has no history). */
static int shape_select(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  bool rec = sl_lua_recording(L, t, NULL);
  int d = sl_lua_checkdim_n(L, 2, t->ndim);
  lua_Integer i = luaL_checkinteger(L, 3), size = (lua_Integer)t->shape[d];
  if (size == 0)
    return luaL_argerror(L, 3, lua_pushfstring(L, "index %I out of range: dimension %d of %s has size 0", i, d + 1,
                                               sl_lua_shapestr(t, (char[160]){0}, 160)));
  if (i < -size || i > size || i == 0)
    return luaL_argerror(L, 3, lua_pushfstring(L, "index %I out of range for size %I (expected 1..%I or -%I..-1)", i,
                                               size, size, size));
  int64_t i0 = i < 0 ? i + size : i - 1;
  if (t->ndim == 1 && !rec) {
    lua_pushnumber(L, (lua_Number)t->data[i0]);
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, t->ndim == 1 ? sl_tensor_narrow(t, 0, i0, 1) : sl_tensor_select_dim(t, d, i0));
  if (rec) sl_lua_check(L, sl_ag_record_select(*box, t, d, i0));
  return 1;
}

/* Pushes the list of t's n pieces along dim d: size elements each, the last one last. */
static int push_pieces(lua_State *L, sl_tensor *t, int d, int64_t n, int64_t size, int64_t last) {
  bool rec = sl_lua_recording(L, t, NULL); /* one node per piece */
  lua_createtable(L, n > 1 << 20 ? 0 : (int)n, 0);
  int64_t start = 0;
  for (int64_t k = 0; k < n; k++) {
    int64_t len = k + 1 == n ? last : size;
    sl_tensor **box = sl_lua_newtensor(L);
    if (!(*box = sl_tensor_narrow(t, d, start, len))) return sl_lua_error(L);
    if (rec) sl_lua_check(L, sl_ag_record_piece(*box, t, d, start, len));
    lua_rawseti(L, -2, (lua_Integer)(k + 1));
    start += len;
  }
  return 1;
}

/* x:split(size[, d]) pieces of `size` (the last smaller), or x:split({s1,
 * s2, ...}[, d]) pieces of those sizes: a Lua list (PyTorch's tuple). */
static int shape_split(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  bool rec = sl_lua_recording(L, t, NULL);
  int d = sl_lua_optdim(L, 3, t->ndim, 0);
  int64_t s = t->shape[d];
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, 2), sum = 0;
    for (lua_Integer k = 1; k <= n; k++) {
      lua_geti(L, 2, k);
      lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
      lua_pop(L, 1);
      if (v < 0 || v > s) luaL_argerror(L, 2, lua_pushfstring(L, "section %I must be an integer in 0..%I", k, (lua_Integer)s));
      sum += v;
    }
    if (sum != s)
      return luaL_argerror(L, 2, lua_pushfstring(L, "sections sum to %I, expected the size %I of dimension %d", sum,
                                                 (lua_Integer)s, d + 1));
    lua_createtable(L, (int)n, 0);
    int64_t start = 0;
    for (lua_Integer k = 1; k <= n; k++) {
      lua_geti(L, 2, k);
      int64_t len = lua_tointeger(L, -1);
      lua_pop(L, 1);
      sl_tensor **box = sl_lua_newtensor(L);
      if (!(*box = sl_tensor_narrow(t, d, start, len))) return sl_lua_error(L);
      if (rec) sl_lua_check(L, sl_ag_record_piece(*box, t, d, start, len));
      lua_rawseti(L, -2, k);
      start += len;
    }
    return 1;
  }
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 1 || (size == 0 && s == 0), 2,
                lua_pushfstring(L, "split size must be positive, got %I", size));
  if (s == 0) return push_pieces(L, t, d, 1, 0, 0);
  int64_t n = (s + size - 1) / size;
  return push_pieces(L, t, d, n, size, s - (n - 1) * size);
}

/* x:chunk(n[, d]): torch.chunk, pieces of ceil(size / n) (maybe fewer than n). */
static int shape_chunk(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  lua_Integer chunks = luaL_checkinteger(L, 2);
  luaL_argcheck(L, chunks >= 1 && chunks <= 1 << 24, 2,
                lua_pushfstring(L, "number of chunks must be in 1..%d, got %I", 1 << 24, chunks));
  int d = sl_lua_optdim(L, 3, t->ndim, 0);
  int64_t s = t->shape[d];
  if (s == 0) return push_pieces(L, t, d, chunks, 0, 0);
  int64_t size = (s + chunks - 1) / chunks, n = (s + size - 1) / size;
  return push_pieces(L, t, d, n, size, s - (n - 1) * size);
}

/* The list of tensors at arg, as an array in a scratch userdata (pushed;
 * collected by Lua, so a later error leaks nothing). */
static sl_tensor **check_list(lua_State *L, int arg, int *n) {
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_Integer len = luaL_len(L, arg);
  luaL_argcheck(L, len >= 1, arg, "non-empty list of tensors expected");
  luaL_argcheck(L, len <= 1 << 24, arg, "list of more than 16777216 tensors");
  sl_tensor **ts = lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, arg, i);
    if (!(ts[i - 1] = sl_lua_totensor(L, -1))) {
      if (luaL_testudata(L, -1, SL_LUA_TENSOR)) luaL_error(L, "attempt to use a closed tensor");
      luaL_argerror(L, arg, lua_pushfstring(L, "element %I is a %s, expected selut.Tensor", i, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

/* cat/stack record when any listed tensor requires grad. */
static int record_list(lua_State *L, sl_tensor *y, sl_tensor **ts, int n, int d, bool stack) {
  if (!sl_lua_grad_mode(L) || !sl_ag_any_requires_grad(ts, n)) return 1;
  sl_lua_check(L, sl_ag_record_cat(y, ts, n, d, stack));
  return 1;
}

static int shape_cat(lua_State *L) {
  int n;
  lua_settop(L, 3); /* the scratch list goes above the dim and options arguments */
  sl_tensor *out = sl_lua_optout(L, 3, "cat");
  sl_tensor **ts = check_list(L, 1, &n);
  int nd = ts[0]->ndim;
  for (int k = 0; k < n; k++)
    if (!(ts[k]->ndim == 1 && ts[k]->shape[0] == 0)) { /* PyTorch's legacy empty 1-D tensors join anything */
      nd = ts[k]->ndim;
      break;
    }
  int d = sl_lua_optdim(L, 2, nd, 0);
  if (out) { /* out=: written in place, returned (no autograd: checked for each input) */
    for (int k = 0; k < n; k++) sl_lua_checkout(L, out, "cat", out->ndim, out->shape, ts[k], NULL, false);
    sl_lua_check(L, sl_tensor_cat_into(out, ts, n, d));
    sl_tensor_bump_version(out);
    lua_getfield(L, 3, "out");
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_cat(ts, n, d));
  return record_list(L, *box, ts, n, d, false);
}

static int shape_stack(lua_State *L) {
  int n;
  lua_settop(L, 2);
  sl_tensor **ts = check_list(L, 1, &n);
  int d = sl_lua_optdim(L, 2, ts[0]->ndim + 1, 0);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_tensor_stack(ts, n, d));
  return record_list(L, *box, ts, n, d, true);
}

static int shape_shares_storage(lua_State *L) {
  sl_tensor *a = sl_lua_checktensor(L, 1), *b = sl_lua_checktensor(L, 2);
  lua_pushboolean(L, sl_tensor_shares_storage(a, b));
  return 1;
}

static int shape_matmul(lua_State *L) {
  sl_tensor *a = sl_lua_checktensor(L, 1), *b = sl_lua_checktensor(L, 2);
  if (a->ndim == 2 && b->ndim == 2 && sl_lua_recording(L, a, b)) { /* sl_matmul's product, into a pooled result */
    int64_t shape[2] = {a->shape[0], b->shape[1]};
    if (a->shape[1] != b->shape[0]) { /* sl_matmul's message */
      sl_tensor *c = sl_matmul(a, b);
      sl_tensor_release(c);
      return sl_lua_error(L);
    }
    sl_tensor *y = sl_lua_newresult(L, 2, shape);
    sl_lua_check(L, sl_gemm(y, a, false, b, false, 1.0f, 0.0f));
    sl_lua_check(L, sl_ag_record_matmul(y, a, b));
    return 1;
  }
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_matmul_nd(a, b));
  if (sl_lua_recording(L, a, b))
    sl_lua_check(L, a->ndim > 2 || b->ndim > 2 ? sl_ag_record_matmul_nd(*box, a, b) : sl_ag_record_matmul(*box, a, b));
  return 1;
}

static int shape_bmm(lua_State *L) {
  sl_tensor *a = sl_lua_checktensor(L, 1), *b = sl_lua_checktensor(L, 2);
  sl_tensor **box = sl_lua_newtensor(L);
  push_result(L, box, sl_bmm(a, b));
  if (sl_lua_recording(L, a, b)) sl_lua_check(L, sl_ag_record_matmul_nd(*box, a, b));
  return 1;
}

static const luaL_Reg shape_methods[] = {
    {"view", shape_view}, {"reshape", shape_view}, {"permute", shape_permute}, {"transpose", shape_transpose},
    {"t", shape_t}, {"contiguous", shape_contiguous}, {"squeeze", shape_squeeze}, {"unsqueeze", shape_unsqueeze},
    {"expand", shape_expand}, {"flatten", shape_flatten}, {"narrow", shape_narrow}, {"select", shape_select},
    {"split", shape_split}, {"chunk", shape_chunk}, {"shares_storage", shape_shares_storage},
    {"matmul", shape_matmul}, {"bmm", shape_bmm}, {NULL, NULL}};

/* selut.op(x, ...) where PyTorch has torch.op */
static const luaL_Reg shape_selut_fns[] = {
    {"reshape", shape_view}, {"permute", shape_permute}, {"transpose", shape_transpose}, {"t", shape_t},
    {"squeeze", shape_squeeze}, {"unsqueeze", shape_unsqueeze}, {"flatten", shape_flatten},
    {"narrow", shape_narrow}, {"select", shape_select}, {"split", shape_split}, {"chunk", shape_chunk},
    {"cat", shape_cat}, {"stack", shape_stack}, {"matmul", shape_matmul}, {"bmm", shape_bmm}, {NULL, NULL}};

void sl_lua_open_tensor_shape(lua_State *L) { sl_lua_tensor_extend(L, shape_methods, NULL, shape_selut_fns); }
