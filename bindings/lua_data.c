/*
 * selut.data: datasets as userdata ("selut.data.Dataset", one sl_dataset
 * reference per box), the Fashion-MNIST / IDX / CSV loaders, and the batch
 * iterator. Class labels are 1-based in Lua: fashion_mnist adds 1 to the
 * core's 0..9 once, at load time, so a batch's yb goes straight into
 * nn.CrossEntropyLoss. The iterator yields the same two tensor boxes at every
 * step (they own the reused batch buffers), so a loop allocates nothing per
 * batch.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"

#define SL_LUA_DATASET "selut.data.Dataset"
#define SL_LUA_BATCHES "selut.data.BatchIterator"

#define SL_LUA_NAMES "selut.data.ColumnNames" /* internal: owns sl_csv_read's names */

typedef struct lnames {
  char **names;
  int64_t n;
} lnames;

typedef struct lbatches {
  sl_batch_iter *it; /* NULL once the epoch is over or the loop closed it */
  int has_y;
} lbatches;

/* ---- boxes ---- */

static sl_dataset **newdataset(lua_State *L) {
  sl_dataset **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, SL_LUA_DATASET);
  return box;
}

static sl_dataset *checkdataset(lua_State *L, int arg) {
  sl_dataset **box = luaL_checkudata(L, arg, SL_LUA_DATASET);
  if (!*box) luaL_error(L, "attempt to use a closed dataset");
  return *box;
}

static int dataset_gc(lua_State *L) {
  sl_dataset **box = luaL_checkudata(L, 1, SL_LUA_DATASET);
  sl_dataset_free(*box);
  *box = NULL;
  return 0;
}

/* Pushes a new tensor box viewing t's storage through a header of its own
 * (so nobody outside can change the shape the dataset relies on). */
static void push_view(lua_State *L, const sl_tensor *t) {
  sl_tensor **box = sl_lua_newtensor(L);
  sl_mem_account *prev = sl_lua_enter(L); /* for dataset_index, which is not wrapped (sl_lua.h) */
  *box = sl_tensor_reshape(t, t->ndim, t->shape);
  sl_mem_account_use(prev);
  if (!*box) sl_lua_error(L);
}

/* Pushes a Dataset box over views of x and y (y may be NULL). */
static void push_dataset(lua_State *L, const sl_tensor *x, const sl_tensor *y) {
  sl_dataset **box = newdataset(L);
  sl_tensor **xv = sl_lua_newtensor(L); /* temporaries owned by Lua while we build */
  if (!(*xv = sl_tensor_reshape(x, x->ndim, x->shape))) sl_lua_error(L);
  sl_tensor **yv = sl_lua_newtensor(L);
  if (y && !(*yv = sl_tensor_reshape(y, y->ndim, y->shape))) sl_lua_error(L);
  if (!(*box = sl_dataset_new(*xv, *yv))) sl_lua_error(L);
  lua_pop(L, 2); /* the dataset holds its own references */
}

/* ---- constructors: selut.data.* ---- */

/* Dataset(x[, y]): x has N samples along dim 1; y N labels (or N x K
 * targets). The dataset shares x's and y's data (no copy). */
static int data_dataset(lua_State *L) {
  sl_tensor *x = sl_lua_checktensor(L, 1);
  sl_tensor *y = lua_isnoneornil(L, 2) ? NULL : sl_lua_checktensor(L, 2);
  if (y && y->shape[0] != x->shape[0]) {
    char a[160], b[160];
    return luaL_argerror(L, 2, lua_pushfstring(L, "y %s has %I samples, x %s has %I", sl_shape_str(y, a, sizeof a),
                                               (lua_Integer)y->shape[0], sl_shape_str(x, b, sizeof b),
                                               (lua_Integer)x->shape[0]));
  }
  push_dataset(L, x, y);
  return 1;
}

static int data_fashion_mnist(lua_State *L) {
  const char *dir = luaL_optstring(L, 1, NULL);
  sl_tensor **x = sl_lua_newtensor(L), **y = sl_lua_newtensor(L);
  sl_dataset **train = newdataset(L), **test = newdataset(L);
  for (int k = 0; k < 2; k++) {
    sl_tensor_release(*x);
    sl_tensor_release(*y);
    *x = *y = NULL;
    sl_lua_check(L, sl_fashion_mnist_load(dir, k == 0, x, y));
    sl_lua_check(L, sl_add_scalar(*y, *y, 1.0f)); /* labels 1..10 */
    sl_dataset **box = k == 0 ? train : test;
    if (!(*box = sl_dataset_new(*x, *y))) sl_lua_error(L);
  }
  return 2;
}

static int data_idx(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double scale = luaL_optnumber(L, 2, 1.0);
  luaL_argcheck(L, scale == scale && scale > -HUGE_VAL && scale < HUGE_VAL, 2, "scale must be a finite number");
  sl_tensor **box = sl_lua_newtensor(L);
  if (!(*box = sl_idx_read(path, scale))) return sl_lua_error(L);
  return 1;
}

/* csv(path[, {header=, label=, delimiter=}]) -> dataset, feature names */
static int data_csv(lua_State *L) {
  static const char *const allowed[] = {"header", "label", "delimiter", NULL};
  const char *path = luaL_checkstring(L, 1);
  sl_csv_options o = sl_csv_defaults();
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      int ok = 0;
      if (lua_type(L, -2) == LUA_TSTRING)
        for (int i = 0; allowed[i]; i++) ok |= strcmp(lua_tostring(L, -2), allowed[i]) == 0;
      if (!ok) {
        lua_pushvalue(L, -2);
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s' (expected header, label, delimiter)",
                                                   luaL_tolstring(L, -1, NULL)));
      }
      lua_pop(L, 1);
    }
    int t = lua_getfield(L, 2, "header");
    if (t == LUA_TBOOLEAN)
      o.header = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
      return luaL_argerror(L, 2, lua_pushfstring(L, "option 'header' must be a boolean, got %s", luaL_typename(L, -1)));
    t = lua_getfield(L, 2, "label");
    if (t == LUA_TSTRING) {
      o.label = lua_tostring(L, -1); /* stays on the stack */
    } else if (t == LUA_TNUMBER) {
      int isint;
      lua_Integer k = lua_tointegerx(L, -1, &isint);
      if (!isint || k < 1 || k > 1000000)
        return luaL_argerror(L, 2, lua_pushfstring(L, "option 'label' must be a column name or a column number "
                                                      ">= 1, got %s", luaL_tolstring(L, -1, NULL)));
      o.label_index = (int)(k - 1);
    } else if (t != LUA_TNIL) {
      return luaL_argerror(L, 2, lua_pushfstring(L, "option 'label' must be a column name or number, got %s",
                                                 luaL_typename(L, -1)));
    }
    t = lua_getfield(L, 2, "delimiter");
    if (t != LUA_TNIL) {
      size_t len;
      const char *d = lua_tolstring(L, -1, &len);
      if (t != LUA_TSTRING || len != 1 || *d == '"' || *d == '\n' || *d == '\r' || *d == '\0' || *d == '.' ||
          *d == '-' || *d == '+' || (*d >= '0' && *d <= '9'))
        return luaL_argerror(L, 2, lua_pushfstring(L, "option 'delimiter' must be one character that cannot be "
                                                      "part of a number, got %s", luaL_tolstring(L, -1, NULL)));
      o.delimiter = *d;
    }
  }
  sl_tensor **x = sl_lua_newtensor(L), **y = sl_lua_newtensor(L);
  sl_dataset **box = newdataset(L);
  lnames *names = lua_newuserdatauv(L, sizeof *names, 0); /* frees the core's name array */
  names->names = NULL;
  names->n = 0;
  luaL_setmetatable(L, SL_LUA_NAMES);
  sl_lua_check(L, sl_csv_read(path, &o, x, y, &names->names, &names->n));
  if (!(*box = sl_dataset_new(*x, *y))) return sl_lua_error(L);
  lua_pushvalue(L, -2); /* the dataset */
  if (names->names) {
    lua_createtable(L, names->n < INT_MAX ? (int)names->n : 0, 0);
    for (int64_t i = 0; i < names->n; i++) {
      lua_pushstring(L, names->names[i]);
      lua_rawseti(L, -2, (lua_Integer)(i + 1));
    }
  } else {
    lua_pushnil(L);
  }
  return 2;
}

/* ---- dataset methods ---- */

static int dataset_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_dataset_size(checkdataset(L, 1)));
  return 1;
}

static int dataset_subset(lua_State *L) {
  sl_dataset *ds = checkdataset(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  int64_t size = sl_dataset_size(ds);
  if (n < 0 || n > size)
    return luaL_argerror(L, 2, lua_pushfstring(L, "n must be in 0..%I (the dataset's size), got %I", (lua_Integer)size, n));
  sl_dataset **box = newdataset(L);
  if (!(*box = sl_dataset_subset(ds, n))) return sl_lua_error(L);
  return 1;
}

static double check_finite(lua_State *L, int arg, const char *what) {
  double v = luaL_checknumber(L, arg);
  if (!(v == v && v > -HUGE_VAL && v < HUGE_VAL))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be finite, got %s", what, lua_pushfstring(L, "%f", v)));
  return v;
}

/* standardize([mean, std]) -> mean, std: one scalar over every element. */
static int dataset_standardize(lua_State *L) {
  sl_dataset *ds = checkdataset(L, 1);
  double mean, sd, m_in, s_in;
  int given = !lua_isnoneornil(L, 2) || !lua_isnoneornil(L, 3);
  if (given) {
    m_in = check_finite(L, 2, "mean");
    s_in = check_finite(L, 3, "std");
    if (!(s_in > 0))
      return luaL_argerror(L, 3, lua_pushfstring(L, "std must be > 0, got %s", lua_pushfstring(L, "%f", s_in)));
  }
  sl_lua_check(L, sl_dataset_standardize(ds, given ? &m_in : NULL, given ? &s_in : NULL, &mean, &sd));
  lua_pushnumber(L, mean);
  lua_pushnumber(L, sd);
  return 2;
}

/* standardize_features([mean, std]) -> mean, std tensors (one per column). */
static int dataset_standardize_features(lua_State *L) {
  sl_dataset *ds = checkdataset(L, 1);
  sl_tensor *m_in = NULL, *s_in = NULL;
  if (!lua_isnoneornil(L, 2) || !lua_isnoneornil(L, 3)) {
    m_in = sl_lua_checktensor(L, 2);
    s_in = sl_lua_checktensor(L, 3);
  }
  lua_settop(L, 3);
  sl_tensor **mb = sl_lua_newtensor(L), **sb = sl_lua_newtensor(L);
  sl_lua_check(L, sl_dataset_standardize_features(ds, m_in, s_in, mb, sb));
  return 2;
}

static int dataset_len(lua_State *L) { return dataset_size(L); }

static int dataset_tostring(lua_State *L) {
  sl_dataset **box = luaL_checkudata(L, 1, SL_LUA_DATASET);
  if (!*box) {
    lua_pushliteral(L, "Dataset (closed)");
    return 1;
  }
  char a[160], b[160];
  sl_tensor *y = sl_dataset_y(*box);
  lua_pushfstring(L, "Dataset(%I samples, x %s, y %s)", (lua_Integer)sl_dataset_size(*box),
                  sl_shape_str(sl_dataset_x(*box), a, sizeof a), y ? sl_shape_str(y, b, sizeof b) : "none");
  return 1;
}

/* ds.x, ds.y: tensors sharing the dataset's data; other names: methods. */
static int dataset_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  const char *k = lua_tostring(L, 2);
  sl_dataset *ds = checkdataset(L, 1);
  if (k && (strcmp(k, "x") == 0 || strcmp(k, "y") == 0)) {
    sl_tensor *t = k[0] == 'x' ? sl_dataset_x(ds) : sl_dataset_y(ds);
    if (t)
      push_view(L, t);
    else
      lua_pushnil(L);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* ---- batches ---- */

static int names_gc(lua_State *L) {
  lnames *n = luaL_checkudata(L, 1, SL_LUA_NAMES);
  sl_csv_free_names(n->names, n->n);
  n->names = NULL;
  n->n = 0;
  return 0;
}

static int batches_gc(lua_State *L) {
  lbatches *b = luaL_checkudata(L, 1, SL_LUA_BATCHES);
  sl_batch_iter_free(b->it);
  b->it = NULL;
  return 0;
}

/* The iterator: upvalues 1 = lbatches, 2 = x box, 3 = y box. */
static int batches_next(lua_State *L) {
  lbatches *b = lua_touserdata(L, sl_lua_upvalueindex(1));
  if (!b->it) {
    lua_pushnil(L);
    return 1;
  }
  sl_tensor **xb = lua_touserdata(L, sl_lua_upvalueindex(2));
  sl_tensor **yb = lua_touserdata(L, sl_lua_upvalueindex(3));
  int r = sl_batch_iter_next_into(b->it, xb, b->has_y ? yb : NULL);
  if (r < 0) return sl_lua_error(L);
  if (r == 0) { /* end of the epoch: give the permutation back now */
    sl_batch_iter_free(b->it);
    b->it = NULL;
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, sl_lua_upvalueindex(2));
  if (b->has_y)
    lua_pushvalue(L, sl_lua_upvalueindex(3));
  else
    lua_pushnil(L);
  return 2;
}

/* shard = true: this rank's part of each global batch (selut.dist's rank and
 * size; one process = no sharding); shard = {rank, size}: explicit, rank
 * 1-based. See docs/distributed.md. */
static void opt_shard(lua_State *L, int arg, int *index, int *count) {
  int t = lua_getfield(L, arg, "shard");
  if (t == LUA_TBOOLEAN) {
    if (lua_toboolean(L, -1)) sl_lua_dist_info(index, count);
  } else if (t == LUA_TTABLE) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    int ok1, ok2;
    lua_Integer r = lua_tointegerx(L, -2, &ok1), n = lua_tointegerx(L, -1, &ok2);
    if (!ok1 || !ok2 || n < 1 || n > INT_MAX || r < 1 || r > n) {
      const char *rs = luaL_tolstring(L, -2, NULL), *ns = luaL_tolstring(L, -2, NULL);
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'shard' must be {rank, size} with 1 <= rank <= size, got "
                                               "{%s, %s}", rs, ns));
    }
    *index = (int)r - 1;
    *count = (int)n;
    lua_pop(L, 2);
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'shard' must be a boolean or {rank, size}, got %s",
                                          luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
}

/* ds:batches(size[, {shuffle=false, drop_last=false, shard=false}]) -> iterator, nil, nil, closer */
static int dataset_batches(lua_State *L) {
  sl_dataset *ds = checkdataset(L, 1);
  int isint;
  lua_Integer size = lua_tointegerx(L, 2, &isint);
  if (!isint) {
    if (lua_type(L, 2) == LUA_TNUMBER)
      return luaL_argerror(L, 2, lua_pushfstring(L, "batch size must be an integer, got %s", luaL_tolstring(L, 2, NULL)));
    return luaL_typeerror(L, 2, "integer");
  }
  if (size < 1)
    return luaL_argerror(L, 2, lua_pushfstring(L, "batch size must be >= 1, got %I", size));
  int shuffle = 0, drop_last = 0, shard_index = 0, shard_count = 1;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (!k || (strcmp(k, "shuffle") != 0 && strcmp(k, "drop_last") != 0 && strcmp(k, "shard") != 0)) {
        lua_pushvalue(L, -2);
        return luaL_argerror(L, 3, lua_pushfstring(L, "unknown option '%s' (expected shuffle, drop_last, shard)",
                                                   luaL_tolstring(L, -1, NULL)));
      }
      lua_pop(L, 1);
    }
    shuffle = sl_lua_optboolfield(L, 3, "shuffle", 0);
    drop_last = sl_lua_optboolfield(L, 3, "drop_last", 0);
    opt_shard(L, 3, &shard_index, &shard_count);
  }
  sl_rng *rng = &sl_lua_context(L)->rng;
  lua_settop(L, 3);
  lbatches *b = lua_newuserdatauv(L, sizeof *b, 0); /* 4 */
  b->it = NULL;
  b->has_y = sl_dataset_y(ds) != NULL;
  luaL_setmetatable(L, SL_LUA_BATCHES);
  sl_lua_newtensor(L); /* 5: x box, filled by the first batch */
  sl_lua_newtensor(L); /* 6: y box */
  if (!(b->it = sl_batch_iter_new(ds, (int64_t)size, shuffle, drop_last, rng))) return sl_lua_error(L);
  if (shard_count > 1) sl_lua_check(L, sl_batch_iter_shard(b->it, shard_index, shard_count));
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_pushvalue(L, 6);
  sl_lua_pushcclosure(L, batches_next, 3);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4); /* closing value of a generic for: frees the iterator on break */
  return 4;
}

static const luaL_Reg data_funcs[] = {
    {"Dataset", data_dataset}, {"fashion_mnist", data_fashion_mnist}, {"idx", data_idx}, {"csv", data_csv},
    {NULL, NULL}};

static const luaL_Reg dataset_methods[] = {
    {"size", dataset_size}, {"subset", dataset_subset}, {"standardize", dataset_standardize},
    {"standardize_features", dataset_standardize_features}, {"batches", dataset_batches}, {NULL, NULL}};

static const luaL_Reg dataset_metamethods[] = {
    {"__gc", dataset_gc}, {"__close", dataset_gc}, {"__len", dataset_len}, {"__tostring", dataset_tostring},
    {NULL, NULL}};

static const luaL_Reg batches_metamethods[] = {{"__gc", batches_gc}, {"__close", batches_gc}, {NULL, NULL}};

void sl_lua_open_data(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_DATASET)) {
    sl_lua_setfuncs(L, dataset_metamethods);
    sl_lua_newlib(L, dataset_methods);
    lua_pushcclosure(L, dataset_index, 1); /* not wrapped (sl_lua.h) */
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SL_LUA_BATCHES)) sl_lua_setfuncs(L, batches_metamethods);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SL_LUA_NAMES)) {
    lua_pushcfunction(L, names_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "data") != LUA_TTABLE) { /* selut_lua.c creates it; be safe */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "data");
  }
  sl_lua_setfuncs(L, data_funcs);
  lua_pop(L, 1);
}
