/*
 * selut.nn (C half): layers and losses as userdata. A layer value is a box
 * holding one module reference; each registered layer type (core/nn/registry.c)
 * gets a metatable ("selut.nn.Linear", ...) sharing one method table, and a
 * constructor nn.<Type> built from its descriptor unless lua_nn_ctors.c
 * has one (those keep their argument messages). Printing, m.<hparam>,
 * m:buffers() and nn.describe read the descriptor: no code here knows a
 * layer by name. nn.Sequential, nn.Module, nn.modules and the nn.init walk
 * live in scripts/nn.lua.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"

typedef struct lmodule {
  sl_module *m;
} lmodule;

static const char module_tag = 0; /* metatable[&module_tag] = true marks layers */

/* User values of a module box: the context (modules borrowing its rng), and
 * the boxes last returned by forward and backward (one per module buffer,
 * returned again while they hold the same tensor: no new box per step). */
enum { UV_CONTEXT = 1, UV_OUTPUT, UV_GRAD_INPUT, MODULE_NUV = UV_GRAD_INPUT };

/* ---- boxes ---- */

static lmodule *testmodule(lua_State *L, int idx) {
  lmodule *b = lua_touserdata(L, idx);
  if (!b || !lua_getmetatable(L, idx)) return NULL;
  int ok = lua_rawgetp(L, -1, &module_tag) == LUA_TBOOLEAN;
  lua_pop(L, 2);
  return ok ? b : NULL;
}

sl_module *sl_lua_tomodule(lua_State *L, int idx) {
  lmodule *b = testmodule(L, idx);
  return b ? b->m : NULL;
}

static sl_module *checkmodule(lua_State *L, int idx) {
  lmodule *b = testmodule(L, idx);
  if (!b) luaL_typeerror(L, idx, "selut.nn module");
  if (!b->m) luaL_error(L, "attempt to use a released module");
  return b->m;
}

/* Pushes an empty module box with the metatable of type tname. */
static lmodule *newmodule(lua_State *L, const char *type) {
  lmodule *b = lua_newuserdatauv(L, sizeof *b, MODULE_NUV);
  b->m = NULL;
  lua_pushfstring(L, "selut.nn.%s", type);
  luaL_getmetatable(L, lua_tostring(L, -1));
  lua_setmetatable(L, -3);
  lua_pop(L, 1);
  return b;
}

sl_module **sl_lua_newmodule(lua_State *L, const char *type) { return &newmodule(L, type)->m; }

void sl_lua_keepcontext(lua_State *L) {
  sl_lua_pushcontext(L);
  lua_setiuservalue(L, -2, UV_CONTEXT);
}

void sl_lua_pushcached(lua_State *L, int uv, sl_tensor *t) {
  if (lua_getiuservalue(L, 1, uv) == LUA_TUSERDATA && lua_rawlen(L, -1) == sizeof(sl_tensor *) &&
      *(sl_tensor **)lua_touserdata(L, -1) == t)
    return;
  lua_pop(L, 1);
  sl_lua_pushtensor(L, t);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, uv);
}

/* ---- layer methods ---- */

static int module_gc(lua_State *L) {
  lmodule *b = lua_touserdata(L, 1);
  if (b && b->m) {
    sl_module_release(b->m);
    b->m = NULL;
  }
  return 0;
}

static int module_forward(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  const sl_tensor *y = NULL;
  sl_lua_check(L, sl_module_forward(m, x, &y));
  if (y == x) /* in place: the result is the input, overwritten */
    lua_settop(L, 2);
  else
    sl_lua_pushcached(L, UV_OUTPUT, (sl_tensor *)y); /* the module's buffer: overwritten by the next forward */
  return 1;
}

static int module_backward(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  sl_tensor *gy = sl_lua_checktensor(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TBOOLEAN);
  if (lua_isboolean(L, 4) && !lua_toboolean(L, 4)) { /* need_input_grad = false: parameters only */
    sl_lua_check(L, sl_module_backward_params(m, x, gy));
    lua_pushnil(L);
    return 1;
  }
  const sl_tensor *gx = NULL;
  sl_lua_check(L, sl_module_backward(m, x, gy, &gx));
  sl_lua_pushcached(L, UV_GRAD_INPUT, (sl_tensor *)gx);
  return 1;
}

/* m(x): the autograd path (core/autograd/layer.h). The result is a tensor
 * of its own (m:forward returns the module's reused buffer); in grad mode it
 * records a node running the layer's backward when x requires grad or the
 * module has parameters. An in-place activation overwrites x (checked like
 * any in-place op) and cannot record. */
static int call_into(lua_State *L, sl_module *m, sl_tensor *x, sl_tensor **box) {
  bool record = sl_lua_grad_mode(L) && sl_ag_layer_wants_record(m, x);
  if (sl_activation_inplace(m)) {
    if (!record) sl_lua_inplace(L, x, sl_module_type(m));
    else return luaL_error(L, "%s(inplace=true) cannot be recorded by autograd (it overwrites its input); "
                              "construct it with inplace=false", sl_module_type(m));
  }
  if (record) sl_lua_check(L, sl_ag_layer_bind_grads(m));
  if (!box) box = sl_lua_newtensor(L);
  sl_lua_check(L, sl_ag_layer_call(m, x, record, box));
  return 1;
}

static int module_call(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  luaL_argcheck(L, lua_gettop(L) == 2, 3, lua_pushfstring(L, "%s(x) takes one tensor", sl_module_type(m)));
  return call_into(L, m, x, NULL);
}

/* nn._layer_into(m, x, box): m(x) with the result put in box, a closed
 * tensor box (Sequential's loop reuses the boxes of intermediate results it
 * closed, which nobody else saw: a box costs an allocation and a finalizer
 * call, a fifth of a small step's time when made per layer). Returns box. */
static const char call_tag = 0; /* metatable[&call_tag] = the layer's own __call */

/* The layer at idx when it is a selut layer whose __call is its own (not
 * hooked by viz or nn.stats), else NULL: the caller then calls it as m(x). */
static lmodule *own_call_layer(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lmodule *b = testmodule(L, idx);
  if (!b) return NULL;
  lua_getmetatable(L, idx);
  lua_pushliteral(L, "__call");
  lua_rawget(L, -2);
  lua_rawgetp(L, -2, &call_tag);
  int own = lua_rawequal(L, -1, -2);
  lua_pop(L, 3);
  return own ? b : NULL;
}

static int nn_layer_into(lua_State *L) {
  if (!own_call_layer(L, 1)) return 0;
  sl_module *m = checkmodule(L, 1);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  sl_tensor **box = luaL_checkudata(L, 3, SL_LUA_TENSOR);
  luaL_argcheck(L, *box == NULL, 3, "a closed tensor expected");
  lua_settop(L, 3);
  return call_into(L, m, x, box);
}

/* nn._seq_call(self, x): a Sequential's net(x) in one C call when every
 * child is a selut layer called as m(x) (its own __call, not hooked by viz or
 * nn.stats; not an in-place activation) and x is an open tensor: the same
 * sl_ag_layer_call per child as m(x), so the same results, nodes and bits.
 * The intermediate results never get a Lua box: this call holds them and
 * drops its reference once the next layer consumed them (the graph keeps
 * what backward needs), so they go back to the autograd pool when backward
 * frees the graph, as the Lua loop's closed boxes did. A per-layer Lua loop
 * costs more than a small net's kernels (a call, a metatable check and a box
 * per layer). Returns the result; or nil, i, message when child i (1-based)
 * failed (nothing raised: scripts/nn.lua names the layer); or nothing when
 * the fast path does not apply (the Lua loop runs). */
#define SEQ_FAST_MAX 64

static int nn_seq_call(lua_State *L) {
  if (lua_gettop(L) != 2 || !lua_istable(L, 1)) return 0;
  sl_tensor *x = sl_lua_totensor(L, 2);
  if (!x) return 0;
  lua_pushvalue(L, sl_lua_upvalueindex(1)); /* "modules" */
  if (lua_rawget(L, 1) != LUA_TTABLE) return 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  if (n < 1 || n > SEQ_FAST_MAX) return 0;
  sl_module *ms[SEQ_FAST_MAX];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 3, i);
    lmodule *b = own_call_layer(L, -1);
    if (!b || !b->m || sl_activation_inplace(b->m)) return 0;
    ms[i - 1] = b->m;
    lua_settop(L, 3);
  }
  bool grad = sl_lua_grad_mode(L);
  sl_tensor **box = sl_lua_newtensor(L); /* the result's box, made before this call owns anything */
  sl_tensor *cur = x, *held = NULL;      /* held: the intermediate result this call owns (cur) */
  int st = SL_OK;
  lua_Integer i = 0;
  for (; i < n; i++) {
    sl_module *m = ms[i];
    bool record = grad && sl_ag_layer_wants_record(m, cur);
    if (record && (st = sl_ag_layer_bind_grads(m))) break;
    sl_tensor *y = NULL;
    st = sl_ag_layer_call(m, cur, record, i == n - 1 ? box : &y);
    sl_ag_release(held); /* consumed: the graph holds what it saved */
    held = NULL;
    if (st) break;
    cur = held = y;
  }
  sl_ag_release(held);
  if (!st) return 1;
  lua_pushnil(L);
  lua_pushinteger(L, i + 1);
  const char *msg = sl_last_error();
  lua_pushstring(L, msg && *msg ? msg : "selut: unknown error");
  return 3;
}

/* nn._layer_call(m, x, p1, ...): m(x) for nn.functional, the tensors p_i
 * standing for the module's parameters i (sl_ag_layer_call_ext): their
 * values are copied in, and they get the gradients. Records when x or a p_i
 * requires grad. */
static int nn_layer_call(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_tensor *x = sl_lua_checktensor(L, 2);
  int next = lua_gettop(L) - 2;
  luaL_argcheck(L, next <= m->nparams, 3 + m->nparams,
                lua_pushfstring(L, "%s has %d parameters", sl_module_type(m), m->nparams));
  sl_tensor *ext[SL_MAX_PARAMS];
  bool rec = sl_ag_requires_grad(x);
  for (int i = 0; i < next; i++) {
    ext[i] = sl_lua_checktensor(L, 3 + i);
    rec = rec || sl_ag_requires_grad(ext[i]);
  }
  rec = rec && sl_lua_grad_mode(L);
  sl_tensor **box = sl_lua_newtensor(L);
  sl_lua_check(L, sl_ag_layer_call_ext(m, x, ext, next, rec, box));
  return 1;
}

static int module_parameters(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_lua_check(L, sl_ag_layer_bind_grads(m)); /* p.grad is the gradient the optimizers read */
  lua_createtable(L, m->nparams, 0);
  for (int i = 0; i < m->nparams; i++) {
    lua_createtable(L, 0, 3);
    sl_lua_pushtensor(L, m->params[i]);
    lua_setfield(L, -2, "param");
    sl_lua_pushtensor(L, m->grads[i]);
    lua_setfield(L, -2, "grad");
    lua_pushstring(L, m->param_names[i]);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int module_zero_grad(lua_State *L) {
  sl_module_zero_grad(checkmodule(L, 1));
  lua_settop(L, 1);
  return 1;
}

static int module_train(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  int mode = lua_isnoneornil(L, 2) ? 1 : (luaL_checktype(L, 2, LUA_TBOOLEAN), lua_toboolean(L, 2));
  sl_module_train(m, mode);
  lua_settop(L, 1);
  return 1;
}

static int module_evaluate(lua_State *L) {
  sl_module_train(checkmodule(L, 1), false);
  lua_settop(L, 1);
  return 1;
}

/* A value of kind k as Lua sees it. */
static void push_value(lua_State *L, sl_value_kind k, double v) {
  if (k == SL_VALUE_BOOL) lua_pushboolean(L, v != 0);
  else if (k == SL_VALUE_INT) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
}

/* m:buffers(): the state a checkpoint keeps beside the parameters (PyTorch's
 * state_dict buffers), as {name=, tensor=[, dtype="I64", scalar=true]}. */
static int module_buffers(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_buffer bufs[SL_MAX_BUFFERS];
  int n = sl_module_buffers(m, bufs);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, bufs[i].name);
    lua_setfield(L, -2, "name");
    sl_lua_pushtensor(L, bufs[i].tensor);
    lua_setfield(L, -2, "tensor");
    if (bufs[i].integer) {
      lua_pushliteral(L, "I64");
      lua_setfield(L, -2, "dtype");
    }
    if (bufs[i].scalar) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "scalar");
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int module_tostring(lua_State *L) {
  lmodule *b = testmodule(L, 1);
  if (!b || !b->m) {
    lua_pushliteral(L, "selut.nn module (released)");
    return 1;
  }
  char buf[512];
  lua_pushstring(L, sl_module_repr(b->m, buf, sizeof buf));
  return 1;
}

/* m.weight, m.bias (tensors sharing the parameter), m.training, the
 * hyper-parameters (m.alpha, m.p, ...) and buffers (m.running_mean; integer
 * scalars such as num_batches_tracked as numbers); else methods. */
static int module_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  const char *k = lua_tostring(L, 2);
  if (!k) return 1;
  sl_module *m = checkmodule(L, 1);
  if (strcmp(k, "training") == 0) {
    lua_pushboolean(L, m->training);
    return 1;
  }
  for (int i = 0; i < m->nparams; i++)
    if (strcmp(k, m->param_names[i]) == 0) {
      sl_mem_account *prev = sl_lua_enter(L); /* __index is not wrapped */
      int st = sl_ag_layer_bind_grads(m);     /* m.weight.grad is the module's gradient */
      sl_mem_account_use(prev);
      sl_lua_check(L, st);
      sl_lua_pushtensor(L, m->params[i]);
      return 1;
    }
  sl_hparam hp[SL_MAX_HPARAMS];
  for (int i = 0, n = sl_module_hparams(m, hp); i < n; i++)
    if (strcmp(k, hp[i].name) == 0) {
      push_value(L, hp[i].kind, hp[i].value);
      return 1;
    }
  sl_buffer bufs[SL_MAX_BUFFERS];
  for (int i = 0, n = sl_module_buffers(m, bufs); i < n; i++)
    if (strcmp(k, bufs[i].name) == 0) {
      if (bufs[i].integer && bufs[i].scalar) lua_pushinteger(L, (lua_Integer)bufs[i].tensor->data[0]);
      else sl_lua_pushtensor(L, bufs[i].tensor);
      return 1;
    }
  lua_pushnil(L);
  return 1;
}

/* nn.<Type>(args...) for a layer with a generic constructor (upvalue 1: its
 * descriptor): the arguments of l->args by position, then optionally one
 * table of the remaining ones by name (PyTorch's keyword arguments:
 * nn.BatchNorm2d(8, {eps = 1e-3}); a table alone names them all); absent
 * ones take their defaults. An unknown name, or a name given both ways, is
 * an error. */
static int nn_generic(lua_State *L) {
  const sl_layer *l = lua_touserdata(L, sl_lua_upvalueindex(1));
  double v[SL_MAX_HPARAMS];
  int top = lua_gettop(L);
  int opts = top >= 1 && lua_istable(L, top) && !sl_lua_totensor(L, top) ? top : 0;
  int nargs = 0;
  while (l->args && l->args[nargs].name && nargs < SL_MAX_HPARAMS) nargs++;
  if (opts) {
    lua_pushnil(L);
    while (lua_next(L, opts)) {
      int found = -1;
      if (lua_type(L, -2) == LUA_TSTRING)
        for (int i = 0; i < nargs; i++)
          if (strcmp(lua_tostring(L, -2), l->args[i].name) == 0) found = i;
      if (found < 0) {
        lua_pushvalue(L, -2);
        return luaL_argerror(L, opts, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
      }
      if (found + 1 < opts)
        return luaL_argerror(L, opts, lua_pushfstring(L, "'%s' given both positionally and in the options table",
                                                      l->args[found].name));
      lua_pop(L, 1);
    }
  } else if (top > nargs) {
    return luaL_argerror(L, nargs + 1, lua_pushfstring(L, "at most %d arguments expected", nargs));
  }
  for (int i = 0; i < nargs; i++) {
    const sl_hparam *a = &l->args[i];
    int named = opts && i + 1 >= opts;
    int arg = named ? opts : i + 1, t = named ? lua_getfield(L, opts, a->name) : lua_type(L, arg);
    int idx = named ? -1 : arg;
    if (t == LUA_TNIL || t == LUA_TNONE) {
      if (a->flags & SL_HP_REQUIRED)
        return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected", a->name));
      v[i] = a->value;
    } else if (a->kind == SL_VALUE_BOOL) {
      if (t != LUA_TBOOLEAN)
        return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a boolean, got %s", a->name, lua_typename(L, t)));
      v[i] = lua_toboolean(L, idx);
    } else {
      int ok;
      v[i] = a->kind == SL_VALUE_INT ? (double)lua_tointegerx(L, idx, &ok) : (double)lua_tonumberx(L, idx, &ok);
      if (!ok)
        return luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %s, got %s", a->name,
                                                     a->kind == SL_VALUE_INT ? "an integer" : "a number",
                                                     luaL_typename(L, idx)));
    }
    if (named) lua_pop(L, 1);
  }
  sl_rng *rng = &sl_lua_context(L)->rng;
  lmodule *b = newmodule(L, l->type);
  if (l->flags & SL_LAYER_STOCHASTIC) sl_lua_keepcontext(L);
  if (!(b->m = sl_layer_create(l, v, rng))) return sl_lua_error(L);
  return 1;
}

/* nn.describe(m) -> what the C layer's descriptor says, nil for other
 * values: {type=, activation=, self_normalizing=, stochastic=,
 * normalization=, output=, sync_statistics=, hparams = {name = value}, params = {name =
 * "fan" | "zero" | "keep"}, saturation = {rule = "below" | "atmost", at=}}. */
static int nn_describe(lua_State *L) {
  sl_module *m = sl_lua_tomodule(L, 1);
  if (!m) return lua_pushnil(L), 1;
  static const char *const flags[] = {"activation", "self_normalizing", "stochastic", "normalization", "output",
                                      "container"};
  lua_createtable(L, 0, 12);
  lua_pushstring(L, sl_module_type(m));
  lua_setfield(L, -2, "type");
  for (int i = 0; i < 6; i++) {
    lua_pushboolean(L, (m->vt->flags >> i) & 1);
    lua_setfield(L, -2, flags[i]);
  }
  lua_pushboolean(L, m->vt->set_reducer != NULL);
  lua_setfield(L, -2, "sync_statistics");
  sl_hparam hp[SL_MAX_HPARAMS];
  int n = sl_module_hparams(m, hp);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    push_value(L, hp[i].kind, hp[i].value);
    lua_setfield(L, -2, hp[i].name);
  }
  lua_setfield(L, -2, "hparams");
  static const char *const roles[] = {"keep", "fan", "zero"};
  lua_createtable(L, 0, m->nparams);
  for (int i = 0; i < m->nparams; i++) {
    lua_pushstring(L, roles[sl_module_param_init(m, i)]);
    lua_setfield(L, -2, m->param_names[i]);
  }
  lua_setfield(L, -2, "params");
  double at;
  sl_saturation sat = sl_module_saturation(m, &at);
  if (sat != SL_SAT_NONE) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, sat == SL_SAT_BELOW ? "below" : "atmost");
    lua_setfield(L, -2, "rule");
    lua_pushnumber(L, at);
    lua_setfield(L, -2, "at");
    lua_setfield(L, -2, "saturation");
  }
  return 1;
}

/* ---- init (C modules only; scripts/nn.lua walks containers) ---- */

static int init_apply(lua_State *L, int (*f)(sl_module *, sl_rng *)) {
  sl_module *m = checkmodule(L, 1);
  sl_lua_check(L, f(m, &sl_lua_context(L)->rng));
  lua_settop(L, 1);
  return 1;
}

static int nn_init_lecun_normal(lua_State *L) { return init_apply(L, sl_init_lecun_normal); }
static int nn_init_he_normal(lua_State *L) { return init_apply(L, sl_init_he_normal); }
static int nn_init_xavier_uniform(lua_State *L) { return init_apply(L, sl_init_xavier_uniform); }

static const luaL_Reg nn_funcs[] = {{"describe", nn_describe}, {"_layer_call", nn_layer_call},
                                     {"_layer_into", nn_layer_into}, {NULL, NULL}};

static const luaL_Reg module_methods[] = {
    {"forward", module_forward}, {"backward", module_backward}, {"parameters", module_parameters},
    {"zero_grad", module_zero_grad}, {"train", module_train}, {"evaluate", module_evaluate},
    {"buffers", module_buffers},
    {NULL, NULL}};

static const luaL_Reg module_metamethods[] = {
    {"__gc", module_gc}, {"__close", module_gc}, {"__tostring", module_tostring},
    {"__call", module_call}, {NULL, NULL}};

static const luaL_Reg init_funcs[] = {
    {"lecun_normal", nn_init_lecun_normal}, {"he_normal", nn_init_he_normal},
    {"xavier_uniform", nn_init_xavier_uniform}, {NULL, NULL}};

void sl_lua_open_nn(lua_State *L) {
  sl_lua_newlib(L, module_methods); /* shared by every layer type */
  int methods = lua_gettop(L);
  const sl_layer *const *layers = sl_layers();
  for (int i = 0; layers[i]; i++) {
    lua_pushfstring(L, "selut.nn.%s", layers[i]->type);
    if (luaL_newmetatable(L, lua_tostring(L, -1))) {
      sl_lua_setfuncs(L, module_metamethods);
      lua_getfield(L, -1, "__call");
      lua_rawsetp(L, -2, &call_tag);
      lua_pushvalue(L, methods);
      lua_pushcclosure(L, module_index, 1);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -2, &module_tag);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  sl_lua_newlib(L, nn_funcs);
  lua_pushliteral(L, "modules");
  sl_lua_pushcclosure(L, nn_seq_call, 1);
  lua_setfield(L, -2, "_seq_call");
  sl_lua_setfuncs(L, sl_lua_nn_ctors); /* constructors with their own argument handling (lua_nn_ctors.c); */
  for (int i = 0; layers[i]; i++) {           /* every other layer with a create gets nn_generic */
    if (!layers[i]->create || lua_getfield(L, -1, layers[i]->type) != LUA_TNIL) {
      if (layers[i]->create) lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)layers[i]);
    sl_lua_pushcclosure(L, nn_generic, 1);
    lua_setfield(L, -2, layers[i]->type);
  }
  sl_lua_newlib(L, init_funcs);
  lua_setfield(L, -2, "init");
  lua_setfield(L, -2, "nn");
}
