/*
 * selut.nn (C half): layers and losses as userdata. A layer value is a box
 * holding one module reference; each layer type has its own metatable
 * ("selut.nn.Linear", ...) sharing one method table. nn.Sequential, nn.Module
 * and the nn.init wrappers that walk containers live in scripts/nn.lua.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"

typedef struct lmodule {
  sl_module *m;
  double arg; /* ELU alpha, LeakyReLU slope, dropout p: for tostring */
} lmodule;

enum { LOSS_CE, LOSS_MSE };
typedef struct lloss {
  int kind;
  sl_tensor *grad;   /* backward's result, reused (overwritten by the next backward) */
  sl_tensor *labels; /* 0-based float labels for the core, reused */
} lloss;

static const char module_tag = 0; /* metatable[&module_tag] = true marks layers */
static const char loss_tag = 0;   /* metatable[&loss_tag] = true marks losses */

/* User values of a module box: the context (modules borrowing its rng), and
 * the boxes last returned by forward and backward (one per module buffer,
 * returned again while they hold the same tensor: no new box per step). */
enum { UV_CONTEXT = 1, UV_OUTPUT, UV_GRAD_INPUT, MODULE_NUV = UV_GRAD_INPUT };
enum { UV_LOSS_GRAD = 1 }; /* a loss box's user value: the box of its grad buffer */

#define LOSS_CE_NAME "selut.nn.CrossEntropyLoss"
#define LOSS_MSE_NAME "selut.nn.MSELoss"

static const char *const module_types[] = {
    "Linear", "SELU", "ELU", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU",
    "Softmax", "LogSoftmax", "Dropout", "AlphaDropout", "BatchNorm1d", NULL};

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
  b->arg = 0;
  lua_pushfstring(L, "selut.nn.%s", type);
  luaL_getmetatable(L, lua_tostring(L, -1));
  lua_setmetatable(L, -3);
  lua_pop(L, 1);
  return b;
}

/* The module borrows the context's rng: keep the context alive with it. */
static void keep_context(lua_State *L) {
  sl_lua_pushcontext(L);
  lua_setiuservalue(L, -2, UV_CONTEXT);
}

/* Pushes the tensor box cached in user value uv of the box at index 1 when
 * it still holds t (the same buffer, not closed by the user); otherwise a new
 * box for t, cached there. Only this function stores these user values, so
 * a userdata found there is a tensor box (sizes checked anyway). */
static void push_cached(lua_State *L, int uv, sl_tensor *t) {
  if (lua_getiuservalue(L, 1, uv) == LUA_TUSERDATA && lua_rawlen(L, -1) == sizeof(sl_tensor *) &&
      *(sl_tensor **)lua_touserdata(L, -1) == t)
    return;
  lua_pop(L, 1);
  sl_lua_pushtensor(L, t);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, uv);
}

/* ---- constructors ---- */

static int nn_linear(lua_State *L) {
  lua_Integer in = luaL_checkinteger(L, 1);
  lua_Integer out = luaL_checkinteger(L, 2);
  luaL_argcheck(L, in >= 1, 1, lua_pushfstring(L, "in_features must be >= 1, got %I", in));
  luaL_argcheck(L, out >= 1, 2, lua_pushfstring(L, "out_features must be >= 1, got %I", out));
  int bias = lua_isnoneornil(L, 3) ? 1 : (luaL_checktype(L, 3, LUA_TBOOLEAN), lua_toboolean(L, 3));
  sl_rng *rng = &sl_lua_context(L)->rng;
  lmodule *b = newmodule(L, "Linear");
  if (!(b->m = sl_linear_new(in, out, bias, rng)))
    return luaL_error(L, "Linear(%I, %I): %s", in, out, sl_last_error());
  return 1;
}

static int simple(lua_State *L, const char *type, sl_module *(*ctor)(void)) {
  lmodule *b = newmodule(L, type);
  if (!(b->m = ctor())) return sl_lua_error(L);
  return 1;
}

/* The inplace flag (PyTorch's inplace=True) at arg: nil/none is false. */
static bool check_inplace(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return false;
  luaL_argexpected(L, lua_isboolean(L, arg), arg, "boolean (inplace)");
  return lua_toboolean(L, arg);
}

/* The new module at the top: set in place when asked. */
static int with_inplace(lua_State *L, bool inplace) {
  if (inplace) sl_lua_check(L, sl_activation_set_inplace(((lmodule *)lua_touserdata(L, -1))->m, true));
  return 1;
}

static int nn_selu_custom(lua_State *L); /* SELU{alpha=, scale=, inplace=}, below */
static int nn_selu(lua_State *L) {
  if (lua_istable(L, 1)) return nn_selu_custom(L);
  if (!lua_isnoneornil(L, 1) && !lua_isboolean(L, 1))
    return luaL_typeerror(L, 1, "table {alpha=, scale=, inplace=} or boolean (inplace)");
  bool inplace = check_inplace(L, 1);
  simple(L, "SELU", sl_selu_new);
  return with_inplace(L, inplace);
}
static int nn_relu(lua_State *L) {
  bool inplace = check_inplace(L, 1);
  simple(L, "ReLU", sl_relu_new);
  return with_inplace(L, inplace);
}
static int nn_tanh(lua_State *L) { return simple(L, "Tanh", sl_tanh_new); }
static int nn_sigmoid(lua_State *L) { return simple(L, "Sigmoid", sl_sigmoid_new); }
static int nn_gelu(lua_State *L) { return simple(L, "GELU", sl_gelu_new); }
static int nn_softmax(lua_State *L) { return simple(L, "Softmax", sl_softmax_new); }
static int nn_log_softmax(lua_State *L) { return simple(L, "LogSoftmax", sl_log_softmax_new); }

static int nn_elu(lua_State *L) {
  double alpha = luaL_optnumber(L, 1, 1.0);
  luaL_argcheck(L, isfinite(alpha), 1, "alpha must be finite");
  bool inplace = check_inplace(L, 2);
  lmodule *b = newmodule(L, "ELU");
  b->arg = alpha;
  if (!(b->m = sl_elu_new(alpha))) return sl_lua_error(L);
  return with_inplace(L, inplace);
}

static int nn_leaky_relu(lua_State *L) {
  double slope = luaL_optnumber(L, 1, 0.01);
  luaL_argcheck(L, isfinite(slope), 1, "negative_slope must be finite");
  lmodule *b = newmodule(L, "LeakyReLU");
  b->arg = slope;
  if (!(b->m = sl_leaky_relu_new(slope))) return sl_lua_error(L);
  return 1;
}

static int dropout(lua_State *L, const char *type, sl_module *(*ctor)(double, sl_rng *)) {
  double p = luaL_optnumber(L, 1, 0.5);
  luaL_argcheck(L, p >= 0 && p < 1, 1, lua_pushfstring(L, "probability in [0, 1) expected, got %f", p));
  sl_rng *rng = &sl_lua_context(L)->rng;
  lmodule *b = newmodule(L, type);
  b->arg = p;
  keep_context(L);
  if (!(b->m = ctor(p, rng))) return sl_lua_error(L);
  sl_lua_check(L, sl_dropout_bind_sample_offset(b->m, &sl_lua_context(L)->sample_offset));
  return 1;
}

static int nn_dropout(lua_State *L) { return dropout(L, "Dropout", sl_dropout_new); }
static int nn_alpha_dropout_fixed_point(lua_State *L); /* AlphaDropout(p, {mean=, var=}), below */
static int nn_alpha_dropout(lua_State *L) {
  if (!lua_isnoneornil(L, 2)) return nn_alpha_dropout_fixed_point(L);
  return dropout(L, "AlphaDropout", sl_alpha_dropout_new);
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
    push_cached(L, UV_OUTPUT, (sl_tensor *)y); /* the module's buffer: overwritten by the next forward */
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
  push_cached(L, UV_GRAD_INPUT, (sl_tensor *)gx);
  return 1;
}

static int module_parameters(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
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

/* ---- SNN additions (issue 10): SELU{alpha=, scale=}, AlphaDropout(p, {mean=,
 * var=}), BatchNorm1d, and the fields m.alpha, m.scale, m.p, m.running_mean,
 * m.running_var, m.num_batches_tracked ---- */

static int opt_bool(lua_State *L, int arg, const char *key, int def) {
  int t = lua_getfield(L, arg, key), v = def;
  if (t != LUA_TNIL) {
    if (t != LUA_TBOOLEAN)
      luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a boolean, got %s", key, luaL_typename(L, -1)));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int nn_selu_custom(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double alpha = sl_lua_optnumfield(L, 1, "alpha", SL_SELU_ALPHA);
  double scale = sl_lua_optnumfield(L, 1, "scale", SL_SELU_SCALE);
  luaL_argcheck(L, alpha >= 0, 1, lua_pushfstring(L, "alpha must be >= 0, got %f", alpha));
  luaL_argcheck(L, scale > 0, 1, lua_pushfstring(L, "scale must be > 0, got %f", scale));
  int t = lua_getfield(L, 1, "inplace");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TBOOLEAN, 1,
                lua_pushfstring(L, "inplace must be a boolean, got %s", lua_typename(L, t)));
  bool inplace = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lmodule *b = newmodule(L, "SELU");
  if (!(b->m = sl_selu_new_custom(alpha, scale))) return sl_lua_error(L);
  return with_inplace(L, inplace);
}

static int nn_alpha_dropout_fixed_point(lua_State *L) {
  double p = luaL_optnumber(L, 1, 0.5);
  luaL_argcheck(L, p >= 0 && p < 1, 1, lua_pushfstring(L, "probability in [0, 1) expected, got %f", p));
  luaL_checktype(L, 2, LUA_TTABLE);
  double mean = sl_lua_optnumfield(L, 2, "mean", 0.0);
  double var = sl_lua_optnumfield(L, 2, "var", 1.0);
  luaL_argcheck(L, var > 0, 2, lua_pushfstring(L, "var must be > 0, got %f", var));
  /* the dropped value alpha' = -scale * alpha of the SELU in use: given, or
   * the SELU whose fixed point is (mean, var) */
  double alpha_prime = NAN;
  lua_getfield(L, 2, "alpha");
  lua_getfield(L, 2, "scale");
  int given = !lua_isnil(L, -1) || !lua_isnil(L, -2);
  lua_pop(L, 2);
  if (given) {
    double a0 = SL_SELU_ALPHA, s0 = SL_SELU_SCALE;
    if (!(mean == 0 && var == 1)) sl_lua_check(L, sl_snn_params(mean, var, &a0, &s0));
    alpha_prime = -sl_lua_optnumfield(L, 2, "scale", s0) * sl_lua_optnumfield(L, 2, "alpha", a0);
  }
  sl_rng *rng = &sl_lua_context(L)->rng;
  lmodule *b = newmodule(L, "AlphaDropout");
  b->arg = p;
  keep_context(L);
  if (!(b->m = sl_alpha_dropout_new_ex(p, mean, var, alpha_prime, rng))) return sl_lua_error(L);
  sl_lua_check(L, sl_dropout_bind_sample_offset(b->m, &sl_lua_context(L)->sample_offset));
  return 1;
}

static int nn_batchnorm1d(lua_State *L) {
  lua_Integer c = luaL_checkinteger(L, 1);
  luaL_argcheck(L, c >= 1, 1, lua_pushfstring(L, "num_features must be >= 1, got %I", c));
  sl_batchnorm_opts o = sl_batchnorm_defaults();
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    o.eps = sl_lua_optnumfield(L, 2, "eps", o.eps);
    o.momentum = sl_lua_optnumfield(L, 2, "momentum", o.momentum);
    o.affine = opt_bool(L, 2, "affine", o.affine);
    o.track_running_stats = opt_bool(L, 2, "track_running_stats", o.track_running_stats);
    luaL_argcheck(L, o.eps > 0, 2, lua_pushfstring(L, "eps must be > 0, got %f", o.eps));
    luaL_argcheck(L, o.momentum >= 0 && o.momentum <= 1, 2,
                  lua_pushfstring(L, "momentum must be in [0, 1], got %f", o.momentum));
  }
  lmodule *b = newmodule(L, "BatchNorm1d");
  if (!(b->m = sl_batchnorm1d_new(c, o))) return sl_lua_error(L);
  return 1;
}

/* Pushes the printed form of SELU / BatchNorm1d modules; 0 for other types. */
static int snn_tostring(lua_State *L, sl_module *m) {
  const char *type = m->vt->type;
  double a, s;
  sl_batchnorm_opts o;
  int64_t c;
  if (strcmp(type, "SELU") == 0 && sl_activation_constants(m, &a, &s) == SL_OK) {
    if ((float)a == (float)SL_SELU_ALPHA && (float)s == (float)SL_SELU_SCALE) return 0;
    lua_pushfstring(L, "SELU(alpha=%s, scale=%s)", lua_pushfstring(L, "%f", a), lua_pushfstring(L, "%f", s));
    return 1;
  }
  if (strcmp(type, "BatchNorm1d") == 0 && sl_batchnorm_state(m, &c, NULL, NULL, NULL, &o) == SL_OK) {
    char buf[160];
    snprintf(buf, sizeof buf, "BatchNorm1d(%lld, eps=%g, momentum=%g, affine=%s, track_running_stats=%s)",
             (long long)c, o.eps, o.momentum, o.affine ? "true" : "false",
             o.track_running_stats ? "true" : "false");
    lua_pushstring(L, buf);
    return 1;
  }
  return 0;
}

/* m.alpha / m.scale (SELU, ELU), m.p (dropouts), m.running_mean /
 * m.running_var / m.num_batches_tracked (BatchNorm1d). Pushes and returns 1
 * when k is one of them for this module. */
static int snn_index(lua_State *L, sl_module *m, const char *k) {
  double a, s, p;
  sl_tensor *rm, *rv;
  int64_t nbt;
  if ((strcmp(k, "alpha") == 0 || strcmp(k, "scale") == 0) && strcmp(m->vt->type, "LeakyReLU") != 0 &&
      sl_activation_constants(m, &a, &s) == SL_OK) {
    lua_pushnumber(L, k[0] == 'a' ? a : s);
    return 1;
  }
  if (strcmp(k, "inplace") == 0 && (strcmp(m->vt->type, "SELU") == 0 || strcmp(m->vt->type, "ELU") == 0 ||
                                    strcmp(m->vt->type, "ReLU") == 0)) {
    lua_pushboolean(L, sl_activation_inplace(m));
    return 1;
  }
  if (strcmp(k, "p") == 0 && sl_dropout_coeffs_of(m, &p, NULL, NULL, NULL) == SL_OK) {
    lua_pushnumber(L, p);
    return 1;
  }
  if (strcmp(m->vt->type, "BatchNorm1d") == 0 && sl_batchnorm_state(m, NULL, &rm, &rv, &nbt, NULL) == SL_OK) {
    if (strcmp(k, "num_batches_tracked") == 0) {
      lua_pushinteger(L, (lua_Integer)nbt);
      return 1;
    }
    sl_tensor *t = strcmp(k, "running_mean") == 0 ? rm : strcmp(k, "running_var") == 0 ? rv : NULL;
    if (t) {
      sl_lua_pushtensor(L, t);
      return 1;
    }
  }
  return 0;
}

/* m:buffers(): the state a checkpoint keeps beside the parameters (PyTorch's
 * state_dict buffers), as {name=, tensor=[, dtype="I64", scalar=true]}:
 * BatchNorm1d's running_mean, running_var, num_batches_tracked (an integer
 * count, saved as a 0-dim I64 like PyTorch's); {} for other layers. */
static int module_buffers(lua_State *L) {
  sl_module *m = checkmodule(L, 1);
  sl_tensor *t[3] = {NULL, NULL, NULL};
  static const char *const names[3] = {"running_mean", "running_var", "num_batches_tracked"};
  if (strcmp(m->vt->type, "BatchNorm1d") == 0) sl_lua_check(L, sl_batchnorm_buffers(m, &t[0], &t[1], &t[2]));
  lua_createtable(L, t[0] ? 3 : 0, 0);
  for (int i = 0; i < 3 && t[0]; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, names[i]);
    lua_setfield(L, -2, "name");
    sl_lua_pushtensor(L, t[i]);
    lua_setfield(L, -2, "tensor");
    if (i == 2) {
      lua_pushliteral(L, "I64");
      lua_setfield(L, -2, "dtype");
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
  sl_module *m = b->m;
  const char *type = m->vt->type;
  if (strcmp(type, "Linear") == 0) {
    lua_pushfstring(L, "Linear(in_features=%I, out_features=%I, bias=%s)",
                    (lua_Integer)m->params[0]->shape[1], (lua_Integer)m->params[0]->shape[0],
                    m->nparams > 1 ? "true" : "false");
  } else if (strcmp(type, "ELU") == 0) {
    lua_pushfstring(L, "ELU(alpha=%s)", lua_pushfstring(L, "%f", b->arg));
  } else if (strcmp(type, "LeakyReLU") == 0) {
    lua_pushfstring(L, "LeakyReLU(negative_slope=%s)", lua_pushfstring(L, "%f", b->arg));
  } else if (strcmp(type, "Dropout") == 0 || strcmp(type, "AlphaDropout") == 0) {
    lua_pushfstring(L, "%s(p=%s)", type, lua_pushfstring(L, "%f", b->arg));
  } else if (snn_tostring(L, m)) {
    /* SELU with custom constants, BatchNorm1d */
  } else {
    lua_pushfstring(L, "%s()", type);
  }
  if (sl_activation_inplace(m)) { /* "SELU()" -> "SELU(inplace=true)", "ELU(alpha=1)" -> "ELU(alpha=1, inplace=true)" */
    size_t len;
    const char *str = lua_tolstring(L, -1, &len);
    lua_pushfstring(L, "%s%sinplace=true)", lua_pushlstring(L, str, len - 1), len >= 2 && str[len - 2] == '(' ? "" : ", ");
  }
  return 1;
}

/* m.weight, m.bias (tensors sharing the parameter), m.training; else methods. */
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
      sl_lua_pushtensor(L, m->params[i]);
      return 1;
    }
  if (snn_index(L, m, k)) return 1;
  lua_pushnil(L);
  return 1;
}

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
  push_cached(L, UV_LOSS_GRAD, l->grad); /* overwritten by the next backward */
  return 1;
}

static int loss_tostring(lua_State *L) {
  lloss *l = checkloss(L, 1);
  lua_pushstring(L, l->kind == LOSS_CE ? "CrossEntropyLoss()" : "MSELoss()");
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

static const luaL_Reg nn_funcs[] = {
    {"Linear", nn_linear}, {"SELU", nn_selu}, {"ELU", nn_elu}, {"ReLU", nn_relu},
    {"LeakyReLU", nn_leaky_relu}, {"Tanh", nn_tanh}, {"Sigmoid", nn_sigmoid}, {"GELU", nn_gelu},
    {"Softmax", nn_softmax}, {"LogSoftmax", nn_log_softmax}, {"Dropout", nn_dropout},
    {"AlphaDropout", nn_alpha_dropout}, {"CrossEntropyLoss", nn_cross_entropy}, {"MSELoss", nn_mse},
    {"BatchNorm1d", nn_batchnorm1d}, {NULL, NULL}};

static const luaL_Reg module_methods[] = {
    {"forward", module_forward}, {"backward", module_backward}, {"parameters", module_parameters},
    {"zero_grad", module_zero_grad}, {"train", module_train}, {"evaluate", module_evaluate},
    {"buffers", module_buffers},
    {NULL, NULL}};

static const luaL_Reg module_metamethods[] = {
    {"__gc", module_gc}, {"__close", module_gc}, {"__tostring", module_tostring}, {NULL, NULL}};

static const luaL_Reg loss_methods[] = {
    {"forward", loss_forward}, {"backward", loss_backward}, {NULL, NULL}};

static const luaL_Reg loss_metamethods[] = {
    {"__gc", loss_gc}, {"__close", loss_gc}, {"__tostring", loss_tostring}, {NULL, NULL}};

static const luaL_Reg init_funcs[] = {
    {"lecun_normal", nn_init_lecun_normal}, {"he_normal", nn_init_he_normal},
    {"xavier_uniform", nn_init_xavier_uniform}, {NULL, NULL}};

void sl_lua_open_nn(lua_State *L) {
  sl_lua_newlib(L, module_methods); /* shared by every layer type */
  int methods = lua_gettop(L);
  for (int i = 0; module_types[i]; i++) {
    lua_pushfstring(L, "selut.nn.%s", module_types[i]);
    if (luaL_newmetatable(L, lua_tostring(L, -1))) {
      sl_lua_setfuncs(L, module_metamethods);
      lua_pushvalue(L, methods);
      lua_pushcclosure(L, module_index, 1);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -2, &module_tag);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
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
  sl_lua_newlib(L, nn_funcs);
  sl_lua_newlib(L, init_funcs);
  lua_setfield(L, -2, "init");
  lua_setfield(L, -2, "nn");
}
