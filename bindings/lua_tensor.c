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

sl_tensor **sl_lua_newtensor(lua_State *L) {
  sl_lua_gc_pressure(L);
  sl_tensor **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, SL_LUA_TENSOR);
  return box;
}

sl_tensor *sl_lua_newresult(lua_State *L, int nd, const int64_t *shape) {
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_ag_tensor_empty(nd, shape))) sl_lua_error(L);
  return *box;
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

/* The box at idx if it is a tensor box (luaL_testudata without the name). */
static sl_tensor **testbox(lua_State *L, int idx) {
  sl_tensor **box = lua_touserdata(L, idx);
  int ok = box && lua_getmetatable(L, idx);
  if (ok) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return ok ? box : NULL;
}

sl_tensor *sl_lua_checktensor(lua_State *L, int arg) {
  sl_tensor **box = testbox(L, arg);
  if (!box) box = luaL_checkudata(L, arg, SL_LUA_TENSOR); /* raises the usual type error */
  if (!*box) luaL_error(L, "attempt to use a closed tensor");
  return *box;
}

sl_tensor *sl_lua_totensor(lua_State *L, int idx) {
  sl_tensor **box = testbox(L, idx);
  return box ? *box : NULL;
}

const char *sl_lua_shapestr(const sl_tensor *t, char *buf, size_t n) {
  return sl_shape_str(t, buf, n);
}

static sl_rng *rng_of(lua_State *L) { return &sl_lua_context(L)->rng; }

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
  sl_tensor **box = testbox(L, 1);
  if (!box) box = luaL_checkudata(L, 1, SL_LUA_TENSOR); /* raises */
  sl_tensor *t = *box;
  *box = NULL;
  if (t && t->ag) { /* an autograd result goes back to this state's pool (finalizers run unwrapped) */
    sl_ag_pool *prev = sl_ag_pool_use(sl_lua_context(L)->ag_pool);
    sl_ag_release(t);
    sl_ag_pool_use(prev);
  } else {
    sl_tensor_release(t);
  }
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
  int d = sl_lua_checkdim(L, 2, t);
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

/* tostring(t): core/tensor/print.c's text (Torch7's layout). */
static int tensor_tostring(lua_State *L) {
  sl_tensor **box = luaL_checkudata(L, 1, SL_LUA_TENSOR);
  if (!*box) {
    lua_pushliteral(L, "[selut.Tensor (closed)]");
    return 1;
  }
  size_t n = sl_tensor_format(NULL, 0, *box); /* the length first, then the text into a buffer of that size */
  luaL_Buffer b;
  sl_tensor_format(luaL_buffinitsize(L, &b, n), n, *box);
  luaL_pushresultsize(&b, n);
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
/* selut.memory() -> bytes in use (the autograd pool's cache left out: it is
 * reused, and freed under a cap), allocations made */
static int selut_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(sl_alloc_bytes() - sl_ag_pool_bytes(sl_lua_context(L)->ag_pool)));
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
