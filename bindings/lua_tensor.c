/*
 * selut.tensor: tensors as Lua userdata. A tensor value is a box holding one
 * reference to a core sl_tensor (sl_tensor **); __gc and __close release it
 * and leave NULL behind, so a closed tensor raises "attempt to use a closed
 * tensor". Indices and dims are 1-based here and 0-based in the core.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sl_lua.h"

/* ---- shared helpers (declared in sl_lua.h) ---- */

sl_lua_ctx *sl_lua_pushcontext(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, SL_LUA_CONTEXT) == LUA_TUSERDATA)
    return lua_touserdata(L, -1);
  lua_pop(L, 1);
  sl_lua_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->seed = SL_LUA_DEFAULT_SEED;
  sl_rng_seed(&c->rng, c->seed);
  sl_lua_ctx_open_account(L, c);
  c->gc_limit = SL_LUA_GC_SLACK;
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, SL_LUA_CONTEXT);
  return c;
}

sl_lua_ctx *sl_lua_context(lua_State *L) {
  sl_lua_ctx *c = sl_lua_pushcontext(L);
  lua_pop(L, 1); /* the registry keeps it alive */
  return c;
}

int sl_lua_error(lua_State *L) {
  const char *msg = sl_last_error();
  return luaL_error(L, "%s", msg && *msg ? msg : "selut: unknown error");
}

void sl_lua_check(lua_State *L, int status) {
  if (status != SL_OK) sl_lua_error(L);
}

int sl_lua_onlyboolopt(lua_State *L, int arg, const char *key, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), key) != 0) {
      lua_pushvalue(L, -2);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (expected %s)", luaL_tolstring(L, -1, NULL), key));
    }
    if (!lua_isboolean(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean, got %s", key, luaL_typename(L, -1)));
    def = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return def;
}

double sl_lua_optnumfield(lua_State *L, int arg, const char *key, double def) {
  if (lua_isnoneornil(L, arg)) return def;
  double v = def;
  if (lua_getfield(L, arg, key) != LUA_TNIL) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !isfinite(v))
      luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a finite number, got %s", key,
                                            isnum ? lua_pushfstring(L, "%f", v) : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  return v;
}

/* External memory pressure: see SL_LUA_GC_SLACK. */
static void gc_pressure(lua_State *L) {
  sl_lua_ctx *c = sl_lua_context(L);
  if (sl_mem_account_bytes(c->account) <= c->gc_limit) return; /* this state's bytes */
  lua_gc(L, LUA_GCCOLLECT);
  c->gc_limit = 2 * sl_mem_account_bytes(c->account) + SL_LUA_GC_SLACK;
  /* under selut.set_memory_limit: collect again before garbage fills half the headroom */
  size_t cap = sl_mem_account_limit(c->account), now = sl_mem_account_bytes(c->account);
  if (cap > now && c->gc_limit > now + (cap - now) / 2) c->gc_limit = now + (cap - now) / 2;
}

sl_tensor **sl_lua_newtensor(lua_State *L) {
  gc_pressure(L);
  sl_tensor **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, SL_LUA_TENSOR);
  return box;
}

void sl_lua_pushtensor(lua_State *L, sl_tensor *t) {
  sl_tensor **box = sl_lua_newtensor(L);
  *box = sl_tensor_retain(t);
}

/* registry[&tensor_mt_key] = the tensor metatable: checked without looking
 * its name up (luaL_checkudata interns the name on every call). */
static const char tensor_mt_key = 0;
/* registry[&tensor_methods_key] = the method table (sl_lua_tensor_extend). */
static const char tensor_methods_key = 0;

sl_tensor *sl_lua_checktensor(lua_State *L, int arg) {
  sl_tensor **box = lua_touserdata(L, arg);
  int ok = box && lua_getmetatable(L, arg);
  if (ok) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  if (!ok) box = luaL_checkudata(L, arg, SL_LUA_TENSOR); /* raises the usual type error */
  if (!*box) luaL_error(L, "attempt to use a closed tensor");
  return *box;
}

sl_tensor *sl_lua_totensor(lua_State *L, int idx) {
  sl_tensor **box = luaL_testudata(L, idx, SL_LUA_TENSOR);
  return box ? *box : NULL;
}

const char *sl_lua_shapestr(const sl_tensor *t, char *buf, size_t n) {
  return sl_shape_str(t, buf, n);
}

/* Sizes as varargs (arg, arg+1, ...) or one table; -1 allowed when infer. */
static int read_shape(lua_State *L, int arg, int64_t *shape, int infer) {
  int ndim = 0;
  if (lua_type(L, arg) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, arg);
    luaL_argcheck(L, n >= 1 && n <= SL_MAX_DIMS, arg, "shape table must hold 1 to 8 sizes");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      int isint;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      lua_pop(L, 1);
      if (!isint || v < (infer ? -1 : 0))
        return luaL_argerror(L, arg, lua_pushfstring(L, "size %d of the shape must be a non-negative integer", (int)i));
      shape[ndim++] = v;
    }
    return ndim;
  }
  int top = lua_gettop(L);
  if (top < arg) return luaL_argerror(L, arg, "size expected (integers or a table)");
  luaL_argcheck(L, top - arg + 1 <= SL_MAX_DIMS, arg + SL_MAX_DIMS, "at most 8 sizes expected");
  for (int i = arg; i <= top; i++) {
    lua_Integer v = luaL_checkinteger(L, i);
    if (v < (infer ? -1 : 0))
      return luaL_argerror(L, i, lua_pushfstring(L, "size must be non-negative, got %I", v));
    shape[ndim++] = v;
  }
  return ndim;
}

int sl_lua_checkshape(lua_State *L, int arg, int64_t *shape) { return read_shape(L, arg, shape, 0); }
int sl_lua_checkviewshape(lua_State *L, int arg, int64_t *shape) { return read_shape(L, arg, shape, 1); }

static sl_rng *rng_of(lua_State *L) { return &sl_lua_context(L)->rng; }

/* 1-based dim argument → 0-based, checked against t. */
int sl_lua_checkdim(lua_State *L, int arg, const sl_tensor *t) {
  lua_Integer d = luaL_checkinteger(L, arg);
  if (d < 0 && d >= -t->ndim) return (int)(t->ndim + d);
  if (d < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range -%d..-1", d, t->ndim));
  if (d < 1 || d > t->ndim)
    luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range 1..%d", d, t->ndim));
  return (int)d - 1;
}

#define check_dim sl_lua_checkdim

/* ---- constructors: selut.tensor.* ---- */

static int tensor_zeros(lua_State *L) {
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 1, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_zeros(nd, shape))) return sl_lua_error(L);
  return 1;
}

static int tensor_ones(lua_State *L) {
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 1, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_ones(nd, shape))) return sl_lua_error(L);
  return 1;
}

static int tensor_full(lua_State *L) {
  float v = (float)luaL_checknumber(L, 1);
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 2, shape);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_full(nd, shape, v))) return sl_lua_error(L);
  return 1;
}

static int tensor_rand(lua_State *L) {
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 1, shape);
  sl_rng *r = rng_of(L);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_rand(nd, shape, r))) return sl_lua_error(L);
  return 1;
}

static int tensor_randn(lua_State *L) {
  int64_t shape[SL_MAX_DIMS];
  int nd = sl_lua_checkshape(L, 1, shape);
  sl_rng *r = rng_of(L);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_randn(nd, shape, r))) return sl_lua_error(L);
  return 1;
}

/* arange(n) = 0..n-1, arange(a, b[, step]) = [a, b): PyTorch's torch.arange. */
static int tensor_arange(lua_State *L) {
  double start = 0, end, step = 1;
  if (lua_gettop(L) <= 1) {
    end = luaL_checknumber(L, 1);
  } else {
    start = luaL_checknumber(L, 1);
    end = luaL_checknumber(L, 2);
    step = luaL_optnumber(L, 3, 1);
    luaL_argcheck(L, step != 0, 3, "step must be non-zero");
  }
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_arange(start, end, step))) return sl_lua_error(L);
  return 1;
}

/* An empty tensor can have huge outer sizes ([2^40 x 0]); walking or building
 * its rows as Lua tables would take forever (fuzz_tensor_new found it), so
 * new and totable refuse more than this many rows of an empty tensor. A
 * tensor with elements has fewer rows than elements, bounded by memory. */
#define SL_LUA_MAX_EMPTY_ROWS ((int64_t)1 << 24)

/* Tables visited (new) or made (totable) before the first 0 size, saturated. */
static int64_t empty_rows(int nd, const int64_t *shape) {
  int64_t rows = 1;
  for (int d = 0; d + 1 < nd && shape[d] != 0; d++)
    rows = rows > INT64_MAX / shape[d] ? INT64_MAX : rows * shape[d];
  return rows;
}

/* Shape of a nested table: follows the first element down. */
static int nested_shape(lua_State *L, int idx, int64_t *shape) {
  int nd = 0;
  lua_pushvalue(L, idx);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (nd == SL_MAX_DIMS) luaL_argerror(L, 1, "table nested deeper than 8 levels");
    shape[nd++] = (int64_t)luaL_len(L, -1);
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return nd;
}

/* Copies the nested table at the top of the stack into *pos, checking that
 * it is rectangular. path names the position for messages. */
static void nested_fill(lua_State *L, const int64_t *shape, int nd, int d, float **pos) {
  if (lua_type(L, -1) != LUA_TTABLE || (int64_t)luaL_len(L, -1) != shape[d])
    luaL_argerror(L, 1, lua_pushfstring(L, "ragged table: expected %I elements at depth %d",
                                        (lua_Integer)shape[d], d + 1));
  for (int64_t i = 1; i <= shape[d]; i++) {
    lua_geti(L, -1, (lua_Integer)i);
    if (d + 1 < nd) {
      nested_fill(L, shape, nd, d + 1, pos);
    } else {
      int isnum;
      lua_Number v = lua_tonumberx(L, -1, &isnum);
      if (!isnum)
        luaL_argerror(L, 1, lua_pushfstring(L, "number expected at depth %d, got %s", d + 1,
                                            luaL_typename(L, -1)));
      *(*pos)++ = (float)v;
    }
    lua_pop(L, 1);
  }
}

static int tensor_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t shape[SL_MAX_DIMS];
  int nd = nested_shape(L, 1, shape);
  int empty = 0;
  for (int d = 0; d < nd; d++) empty |= shape[d] == 0;
  if (empty && empty_rows(nd, shape) > SL_LUA_MAX_EMPTY_ROWS)
    return luaL_argerror(L, 1, lua_pushfstring(L, "table of %I empty rows (at most %I for a tensor with no elements)",
                                               (lua_Integer)empty_rows(nd, shape), (lua_Integer)SL_LUA_MAX_EMPTY_ROWS));
  sl_tensor **box = sl_lua_newtensor(L); /* owns the tensor while we fill it */
  if (!(*box = sl_tensor_empty(nd, shape))) return sl_lua_error(L);
  float *pos = (*box)->data;
  lua_pushvalue(L, 1);
  nested_fill(L, shape, nd, 0, &pos);
  lua_pop(L, 1);
  return 1;
}

static int tensor_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, SL_LUA_TENSOR) != NULL);
  return 1;
}

/* ---- lifetime ---- */

static int tensor_gc(lua_State *L) {
  sl_tensor **box = luaL_checkudata(L, 1, SL_LUA_TENSOR);
  sl_tensor_release(*box);
  *box = NULL;
  return 0;
}

/* ---- shape queries ---- */

static void push_shape(lua_State *L, const sl_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, (lua_Integer)t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int tensor_shape(lua_State *L) {
  push_shape(L, sl_lua_checktensor(L, 1));
  return 1;
}

static int tensor_size(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_shape(L, t);
    return 1;
  }
  int d = check_dim(L, 2, t);
  lua_pushinteger(L, (lua_Integer)t->shape[d]);
  return 1;
}

static int tensor_dim(lua_State *L) {
  lua_pushinteger(L, sl_lua_checktensor(L, 1)->ndim);
  return 1;
}

static int tensor_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_lua_checktensor(L, 1)->numel);
  return 1;
}

static int tensor_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_lua_checktensor(L, 1)->shape[0]);
  return 1;
}

/* ---- element access ---- */

/* Reads ndim 1-based indices from args first..first+ndim-1 into idx (0-based). */
static void read_index(lua_State *L, const sl_tensor *t, int first, int64_t *idx) {
  for (int d = 0; d < t->ndim; d++) {
    lua_Integer i = luaL_checkinteger(L, first + d);
    if (i < 1 || i > t->shape[d])
      luaL_argerror(L, first + d, lua_pushfstring(L, "index %I out of range 1..%I for dimension %d", i,
                                                   (lua_Integer)t->shape[d], d + 1));
    idx[d] = i - 1;
  }
}

static int tensor_get(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int n = lua_gettop(L) - 1;
  if (n != t->ndim)
    return luaL_error(L, "bad argument #%d to 'get' (%d indices expected for a %d-D tensor, got %d)",
                      n < t->ndim ? n + 1 : t->ndim + 1, t->ndim, t->ndim, n);
  int64_t idx[SL_MAX_DIMS];
  read_index(L, t, 2, idx);
  float v = 0;
  sl_lua_check(L, sl_tensor_get(t, idx, &v));
  lua_pushnumber(L, (lua_Number)v);
  return 1;
}

static int tensor_set(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int n = lua_gettop(L) - 2;
  if (n != t->ndim)
    return luaL_error(L, "bad argument #%d to 'set' (%d indices and a value expected for a %d-D tensor)",
                      n < t->ndim ? n + 2 : t->ndim + 2, t->ndim, t->ndim);
  int64_t idx[SL_MAX_DIMS];
  read_index(L, t, 2, idx);
  float v = (float)luaL_checknumber(L, t->ndim + 2);
  sl_lua_inplace(L, t, "set");
  sl_lua_check(L, sl_tensor_set(t, idx, v));
  lua_settop(L, 1);
  return 1;
}

/* Checks a row index key at stack index 2 for x[i]. */
static int64_t row_key(lua_State *L, const sl_tensor *t) {
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (!isint) luaL_error(L, "tensor index must be an integer, got %s", lua_tostring(L, 2));
  if (i < 1 || i > t->shape[0])
    luaL_error(L, "index %I out of range 1..%I", i, (lua_Integer)t->shape[0]);
  return i - 1;
}

/* x[i]: a number for 1-D tensors, a row view for n-D; x.name: a method. */
static int tensor_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    sl_tensor *t = sl_lua_checktensor(L, 1);
    int64_t i = row_key(L, t);
    if (t->ndim == 1) {
      lua_pushnumber(L, (lua_Number)t->data[i]);
      return 1;
    }
    sl_tensor **box = sl_lua_newtensor(L);
    sl_mem_account *prev = sl_lua_enter(L); /* __index is not wrapped (sl_lua.h) */
    *box = sl_tensor_select(t, i);
    sl_mem_account_use(prev);
    if (!*box) return sl_lua_error(L);
    return 1;
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL && lua_type(L, 2) == LUA_TSTRING) /* grad, grad_fn, ... */
    return sl_lua_tensor_getfield(L, sl_lua_checktensor(L, 1), lua_tostring(L, 2));
  return 1;
}

/* x[i] = v: sets an element (1-D) or fills / copies a row (n-D). */
static int tensor_newindex(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) return sl_lua_tensor_setfield(L, t, lua_tostring(L, 2), 3);
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "cannot set field '%s' of a tensor (only integer indices)", luaL_tolstring(L, 2, NULL));
  int64_t i = row_key(L, t);
  sl_lua_inplace(L, t, "__newindex");
  int64_t inner = t->shape[0] ? t->numel / t->shape[0] : 0;
  sl_tensor *src = sl_lua_totensor(L, 3);
  if (src) {
    if (src->numel != inner) {
      char a[160];
      return luaL_error(L, "cannot assign a tensor of %s (%I elements) to row %I of %s (%I elements)",
                        sl_shape_str(src, a, sizeof a), (lua_Integer)src->numel, (lua_Integer)(i + 1),
                        sl_shape_str(t, (char[160]){0}, 160), (lua_Integer)inner);
    }
    memmove(t->data + i * inner, src->data, (size_t)inner * sizeof(float));
    return 0;
  }
  int isnum;
  lua_Number v = lua_tonumberx(L, 3, &isnum);
  if (!isnum) return luaL_error(L, "cannot assign a %s to a tensor element (number or tensor expected)", luaL_typename(L, 3));
  for (int64_t k = 0; k < inner; k++) t->data[i * inner + k] = (float)v;
  return 0;
}

/* ---- views and copies ---- */

static int tensor_clone(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_tensor_clone(t))) return sl_lua_error(L);
  if (sl_lua_recording(L, t, NULL)) sl_lua_check(L, sl_ag_record_unary(SL_AG_CLONE, *box, t, 0));
  return 1;
}

static int tensor_copy(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_tensor *src = sl_lua_checktensor(L, 2);
  sl_lua_inplace(L, t, "copy");
  sl_lua_check(L, sl_tensor_copy(t, src));
  lua_settop(L, 1);
  return 1;
}

static void push_table(lua_State *L, const sl_tensor *t, int d, const float *p) {
  int64_t n = t->shape[d], inner = 1;
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  luaL_checkstack(L, 4, "tensor too deep");
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    if (d + 1 == t->ndim)
      lua_pushnumber(L, (lua_Number)p[i]);
    else
      push_table(L, t, d + 1, p + i * inner);
    lua_rawseti(L, -2, (lua_Integer)(i + 1));
  }
}

static int tensor_totable(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  if (t->numel == 0 && empty_rows(t->ndim, t->shape) > SL_LUA_MAX_EMPTY_ROWS) {
    char buf[160];
    return luaL_error(L, "totable: %s has %I empty rows, more than the %I Lua tables allowed for a tensor with no "
                         "elements", sl_lua_shapestr(t, buf, sizeof buf), (lua_Integer)empty_rows(t->ndim, t->shape),
                      (lua_Integer)SL_LUA_MAX_EMPTY_ROWS);
  }
  push_table(L, t, 0, t->data);
  return 1;
}

static int tensor_fill_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  float v = (float)luaL_checknumber(L, 2);
  sl_lua_inplace(L, t, "fill_");
  sl_lua_check(L, sl_fill(t, v));
  lua_settop(L, 1);
  return 1;
}

static int tensor_zero_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_lua_inplace(L, t, "zero_");
  sl_lua_check(L, sl_fill(t, 0.0f));
  lua_settop(L, 1);
  return 1;
}

/* ---- printing ----
 * Torch7 layout: rows on lines with aligned columns, "(i,j,.,.) = " headers
 * for slices of 3-D and higher tensors, then "[selut.Tensor of size 2x3]".
 * Above 1000 elements only the first and last 3 entries of each dim are
 * shown, with "..." in between (PyTorch's threshold and edgeitems). */

#define PRINT_THRESHOLD 1000
#define PRINT_EDGE 3
#define PRINT_LINEWIDTH 80

typedef struct printer {
  luaL_Buffer *b;
  const sl_tensor *t;
  int summarize;
  int kind; /* 0 integer, 1 fixed, 2 scientific */
  int width;
  int per_line; /* values per output line before wrapping */
} printer;

static int fmt_value(char *buf, size_t n, int kind, float v) {
  if (v != v) return snprintf(buf, n, "nan"); /* either sign (x86's default NaN is negative), as PyTorch prints it */
  switch (kind) {
  case 0: return snprintf(buf, n, "%.0f", (double)v);
  case 1: return snprintf(buf, n, "%.4f", (double)v);
  default: return snprintf(buf, n, "%.4e", (double)v);
  }
}

static int shown(const printer *p, int64_t n, int64_t i) {
  return !p->summarize || n <= 2 * PRINT_EDGE || i < PRINT_EDGE || i >= n - PRINT_EDGE;
}

/* Next index to show after i (jumps the gap); sets *gap when it jumps. */
static int64_t next_index(const printer *p, int64_t n, int64_t i, int *gap) {
  *gap = 0;
  if (p->summarize && n > 2 * PRINT_EDGE && i == PRINT_EDGE - 1) {
    *gap = 1;
    return n - PRINT_EDGE;
  }
  return i + 1;
}

/* Calls f(p, v) for every element that will be printed. */
static void each_shown(printer *p, void (*f)(printer *, float, void *), void *ud) {
  const sl_tensor *t = p->t;
  int64_t last = t->shape[t->ndim - 1];
  int64_t rows = last ? t->numel / last : 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r;
    int ok = 1; /* a row is shown when every leading index is shown */
    for (int d = t->ndim - 2; d >= 0 && ok; d--) {
      ok = shown(p, t->shape[d], rem % t->shape[d]);
      rem /= t->shape[d];
    }
    if (!ok) continue;
    for (int64_t c = 0; c < last; c++)
      if (shown(p, last, c)) f(p, t->data[r * last + c], ud);
  }
}

typedef struct fmt_stats {
  double maxabs, minabs;
  int all_int;
} fmt_stats;

static void collect_stats(printer *p, float v, void *ud) {
  fmt_stats *s = ud;
  (void)p;
  if (!isfinite(v)) return;
  double a = fabs((double)v);
  if (a > s->maxabs) s->maxabs = a;
  if (a > 0 && a < s->minabs) s->minabs = a;
  if (v != floorf(v)) s->all_int = 0;
}

static void collect_width(printer *p, float v, void *ud) {
  char buf[64];
  (void)ud;
  int w = fmt_value(buf, sizeof buf, p->kind, v);
  if (w > p->width) p->width = w;
}

/* PyTorch's rule on the printed elements: integers when all are integral,
 * scientific when the magnitudes span more than 1e3 or leave [1e-4, 1e8). */
static void choose_format(printer *p) {
  fmt_stats s = {0, INFINITY, 1};
  each_shown(p, collect_stats, &s);
  if (s.all_int && s.maxabs < 1e9)
    p->kind = 0;
  else if (s.maxabs > 0 && (s.maxabs >= 1e8 || s.minabs < 1e-4 || s.maxabs / s.minabs > 1e3))
    p->kind = 2;
  else
    p->kind = 1;
  p->width = 1;
  each_shown(p, collect_width, NULL);
  p->per_line = (PRINT_LINEWIDTH - 1) / (p->width + 1);
  if (p->per_line < 1) p->per_line = 1;
  if (p->summarize && p->per_line >= 2 * PRINT_EDGE) p->per_line += 1; /* the "..." column is narrow */
}

static void print_row(printer *p, const float *x, int64_t n) {
  char buf[64];
  int col = 0;
  for (int64_t i = 0; i < n;) {
    if (col == p->per_line) {
      luaL_addchar(p->b, '\n');
      col = 0;
    }
    int w = fmt_value(buf, sizeof buf, p->kind, x[i]);
    for (int k = w; k <= p->width; k++) luaL_addchar(p->b, ' '); /* right-align plus one space */
    luaL_addstring(p->b, buf);
    col++;
    int gap;
    i = next_index(p, n, i, &gap);
    if (gap) {
      luaL_addstring(p->b, " ...");
      col++;
    }
  }
  luaL_addchar(p->b, '\n');
}

static void print_matrix(printer *p, const float *x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows;) {
    print_row(p, x + r * cols, cols);
    int gap;
    r = next_index(p, rows, r, &gap);
    if (gap) luaL_addstring(p->b, " ...\n");
  }
}

/* Slices of a >= 3-D tensor: recurse over the leading dims. */
static void print_slices(printer *p, int d, const float *x, int64_t *idx, int *first) {
  const sl_tensor *t = p->t;
  if (d == t->ndim - 2) {
    if (!*first) luaL_addchar(p->b, '\n');
    *first = 0;
    luaL_addchar(p->b, '(');
    for (int k = 0; k < d; k++) {
      lua_pushfstring(p->b->L, "%I,", (lua_Integer)(idx[k] + 1));
      /* pushfstring result must go below the buffer's top: use luaL_addvalue */
      luaL_addvalue(p->b);
    }
    luaL_addstring(p->b, ".,.) = \n");
    print_matrix(p, x, t->shape[d], t->shape[d + 1]);
    return;
  }
  int64_t inner = 1;
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  for (int64_t i = 0; i < t->shape[d];) {
    idx[d] = i;
    print_slices(p, d + 1, x + i * inner, idx, first);
    int gap;
    i = next_index(p, t->shape[d], i, &gap);
    if (gap) luaL_addstring(p->b, "\n...\n");
  }
}

static int tensor_tostring(lua_State *L) {
  sl_tensor **box = luaL_checkudata(L, 1, SL_LUA_TENSOR);
  const sl_tensor *t = *box;
  if (!t) {
    lua_pushliteral(L, "[selut.Tensor (closed)]");
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  printer p = {&b, t, t->numel > PRINT_THRESHOLD, 0, 1, 1};
  if (t->numel > 0) {
    choose_format(&p);
    if (t->ndim == 1) {
      print_row(&p, t->data, t->numel);
    } else if (t->ndim == 2) {
      print_matrix(&p, t->data, t->shape[0], t->shape[1]);
    } else {
      int64_t idx[SL_MAX_DIMS] = {0};
      int first = 1;
      print_slices(&p, 0, t->data, idx, &first);
    }
  }
  luaL_addstring(&b, t->numel > 0 ? "[selut.Tensor of size " : "[selut.Tensor with no elements of size ");
  char dims[200];
  size_t len = 0;
  for (int d = 0; d < t->ndim; d++)
    len += (size_t)snprintf(dims + len, sizeof dims - len, d ? "x%" PRId64 : "%" PRId64, t->shape[d]);
  luaL_addstring(&b, dims);
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
  return 1;
}

/* ---- selut.* globals that live here: manual_seed, clock, threads, memory ---- */

static int selut_manual_seed(lua_State *L) {
  lua_Integer s = luaL_checkinteger(L, 1);
  sl_lua_ctx *c = sl_lua_context(L);
  c->seed = (uint64_t)s;
  sl_rng_seed(&c->rng, c->seed);
  return 0;
}

static int selut_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_lua_context(L)->seed);
  return 1;
}

static int selut_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static int selut_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 1024, 1, lua_pushfstring(L, "thread count %I out of range 1..1024", n));
  sl_lua_context(L)->num_threads = (int)n;
  sl_set_num_threads((int)n);
  return 0;
}

/* selut.blas_info() -> {core = "SkylakeX", threads = n, threads_bitwise = bool} */
static int selut_blas_info(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, sl_blas_corename());
  lua_setfield(L, -2, "core");
  lua_pushinteger(L, sl_get_num_threads());
  lua_setfield(L, -2, "threads");
  lua_pushboolean(L, sl_blas_threads_bitwise());
  lua_setfield(L, -2, "threads_bitwise");
  return 1;
}

static int selut_get_num_threads(lua_State *L) {
  lua_pushinteger(L, sl_get_num_threads());
  return 1;
}

/* Bytes held by this state's tensors (and other core objects: its memory
 * account), and the number of core allocations on this thread so far. */
static int selut_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_alloc_bytes());
  lua_pushinteger(L, (lua_Integer)sl_alloc_count());
  return 2;
}

static const luaL_Reg tensor_funcs[] = {
    {"zeros", tensor_zeros}, {"ones", tensor_ones}, {"full", tensor_full},
    {"rand", tensor_rand}, {"randn", tensor_randn}, {"arange", tensor_arange},
    {"new", tensor_new}, {"is_tensor", tensor_is_tensor}, {NULL, NULL}};

static const luaL_Reg tensor_methods[] = {
    {"shape", tensor_shape}, {"size", tensor_size}, {"dim", tensor_dim},
    {"numel", tensor_numel}, {"get", tensor_get}, {"set", tensor_set},
    {"clone", tensor_clone}, {"copy", tensor_copy}, {"totable", tensor_totable},
    {"fill_", tensor_fill_}, {"zero_", tensor_zero_},
    {NULL, NULL}};

static const luaL_Reg tensor_metamethods[] = {
    {"__gc", tensor_gc}, {"__close", tensor_gc}, {"__tostring", tensor_tostring},
    {"__len", tensor_len}, {"__newindex", tensor_newindex},
    {NULL, NULL}};

static const luaL_Reg selut_funcs[] = {
    {"manual_seed", selut_manual_seed}, {"initial_seed", selut_initial_seed},
    {"clock", selut_clock}, {"set_num_threads", selut_set_num_threads},
    {"get_num_threads", selut_get_num_threads}, {"blas_info", selut_blas_info}, {"memory", selut_memory},
    {NULL, NULL}};

void sl_lua_open_tensor(lua_State *L) {
  sl_lua_context(L);
  if (luaL_newmetatable(L, SL_LUA_TENSOR)) {
    sl_lua_setfuncs(L, tensor_metamethods);
    sl_lua_newlib(L, tensor_methods);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tensor_methods_key);
    lua_pushcclosure(L, tensor_index, 1); /* methods table as upvalue; not wrapped (sl_lua.h) */
    lua_setfield(L, -2, "__index");
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  lua_pop(L, 1);
  sl_lua_setfuncs(L, selut_funcs); /* into the selut table */
  sl_lua_newlib(L, tensor_funcs);
  lua_setfield(L, -2, "tensor");
}

void sl_lua_tensor_extend(lua_State *L, const luaL_Reg *methods, const luaL_Reg *tensor_fns,
                          const luaL_Reg *selut_fns) {
  if (methods) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_methods_key);
    sl_lua_setfuncs(L, methods);
    lua_pop(L, 1);
  }
  if (tensor_fns) {
    lua_getfield(L, -1, "tensor");
    sl_lua_setfuncs(L, tensor_fns);
    lua_pop(L, 1);
  }
  if (selut_fns) sl_lua_setfuncs(L, selut_fns);
}
