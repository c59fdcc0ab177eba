/*
 * selut.save / selut.load: safetensors checkpoints of a net (anything with a
 * parameters() method returning {param=, grad=, name=} entries: C layers,
 * nn.Sequential, Lua modules) or of a table {name = tensor}. Names are the
 * parameters' names ("0.weight"), so a file saved from an nn.Sequential loads
 * into the equivalent PyTorch nn.Sequential with load_state_dict. Loading
 * into a net is all-or-nothing: every name and shape is checked before the
 * first byte is copied (core/io/safetensors_match.c). What a net holds is
 * walked in Lua (scripts/io.lua); this file does the file I/O.
 */
#include "sl_lua.h"

#define SL_LUA_STFILE "selut.SafetensorsFile" /* internal: owns a loaded file */

/* ---- targets: a net's parameters or a table of tensors ---- */

#define TARGET "net (with a parameters method) or table of tensors"

/* True when the value at idx has a callable 'parameters' field. */
static int has_parameters(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t != LUA_TTABLE && t != LUA_TUSERDATA) return 0;
  if (t == LUA_TUSERDATA && luaL_testudata(L, idx, SL_LUA_TENSOR)) return 0;
  lua_getfield(L, idx, "parameters");
  int ok = lua_isfunction(L, -1);
  if (!ok && !lua_isnil(L, -1) && luaL_getmetafield(L, -1, "__call") != LUA_TNIL) {
    ok = 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

/* collect's helpers: whether v is an open tensor; f(x) from C. */
static int is_open(lua_State *L) {
  lua_pushboolean(L, sl_lua_totensor(L, 1) != NULL);
  return 1;
}

static int call1(lua_State *L) {
  lua_settop(L, 2);
  lua_call(L, 1, 1);
  return 1;
}

/* The walk of the target at 2 (and of the formats at 4 and the metadata at
 * 3, for save) is Lua's (scripts/io.lua's collect); a bad argument is
 * raised here, as this function's own. Pushes {name, tensor box, format,
 * ...} and {key, value, ...}; returns the number of tensors. */
static int collect(lua_State *L, int save, int *is_net) {
  *is_net = has_parameters(L, 2);
  if (!*is_net && !lua_istable(L, 2)) luaL_typeerror(L, 2, TARGET);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "selut.io") != LUA_TTABLE || lua_getfield(L, -1, "collect") != LUA_TFUNCTION)
    luaL_error(L, "selut: scripts/io.lua (selut.io) is not loaded");
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, *is_net);
  if (save) { /* the formats, the metadata */
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 3);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  sl_lua_pushcclosure(L, is_open, 0);
  sl_lua_pushcclosure(L, call1, 0);
  lua_call(L, 6, 3);
  if (lua_isnil(L, -3)) luaL_argerror(L, (int)lua_tointeger(L, -2), lua_tostring(L, -1));
  lua_pop(L, 1);
  return (int)(luaL_len(L, -2) / 3);
}

/* The entries of the list at idx as arrays in a scratch userdata (pushed:
 * collected even if something raises); the names and boxes stay alive in
 * the list. */
static void entry_arrays(lua_State *L, int idx, int n, const char ***names, sl_tensor ***tensors, int **formats) {
  void **scratch = lua_newuserdatauv(L, (size_t)n * 2 * sizeof *scratch + (size_t)n * sizeof(int) + 1, 0);
  *names = (const char **)scratch;
  *tensors = (sl_tensor **)(scratch + n);
  *formats = (int *)(scratch + 2 * n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, 3 * i + 1);
    (*names)[i] = lua_tostring(L, -1);
    lua_rawgeti(L, idx, 3 * i + 2);
    (*tensors)[i] = sl_lua_totensor(L, -1);
    lua_rawgeti(L, idx, 3 * i + 3);
    (*formats)[i] = (int)lua_tointeger(L, -1);
    lua_pop(L, 3);
  }
}

/* ---- selut.save ---- */

static int io_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_argcheck(L, *path, 1, "empty path");
  if (lua_isnoneornil(L, 2)) luaL_typeerror(L, 2, TARGET);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4); /* 2 target, 3 metadata, 4 formats */
  int is_net;
  int n = collect(L, 1, &is_net); /* 5 entries, 6 metadata */
  int nmeta = (int)(luaL_len(L, 6) / 2);
  const char **keys = lua_newuserdatauv(L, (size_t)nmeta * 2 * sizeof *keys + 1, 0), **values = keys + nmeta;
  for (int i = 0; i < nmeta; i++) { /* the strings stay alive in the list at 6 */
    lua_rawgeti(L, 6, 2 * i + 1);
    lua_rawgeti(L, 6, 2 * i + 2);
    keys[i] = lua_tostring(L, -2);
    values[i] = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  const char **names;
  sl_tensor **tensors;
  int *formats;
  entry_arrays(L, 5, n, &names, &tensors, &formats);
  sl_lua_check(L, sl_safetensors_save_ex(path, n, names, tensors, formats, nmeta, keys, values));
  return 0;
}

/* ---- selut.load ---- */

static int stfile_gc(lua_State *L) {
  sl_safetensors **box = luaL_checkudata(L, 1, SL_LUA_STFILE);
  sl_safetensors_free(*box);
  *box = NULL;
  return 0;
}

static void push_metadata(lua_State *L, const sl_safetensors *st) {
  int m = sl_safetensors_meta_count(st);
  lua_createtable(L, 0, m);
  for (int i = 0; i < m; i++) {
    lua_pushstring(L, sl_safetensors_meta_value(st, i));
    lua_setfield(L, -2, sl_safetensors_meta_key(st, i));
  }
}

/* Pushes the message of a load's first mismatch (sl_safetensors_match). */
static void push_mismatch(lua_State *L, const sl_safetensors *st, const sl_st_mismatch *m, const char *const *names,
                          sl_tensor *const *dst, const char *path, const char *what) {
  char a[160], b[160];
  const sl_tensor *src = m->entry >= 0 ? sl_safetensors_tensor(st, m->entry) : NULL;
  if (m->kind == SL_ST_MISSING)
    lua_pushfstring(L, "load: '%s' has no tensor '%s' (%s expects %s)", path, names[m->target], what,
                    sl_shape_str(dst[m->target], a, sizeof a));
  else if (m->kind == SL_ST_SHAPE)
    lua_pushfstring(L, "load: tensor '%s' is %s in '%s', %s expects %s", names[m->target],
                    sl_shape_str(src, a, sizeof a), path, what, sl_shape_str(dst[m->target], b, sizeof b));
  else if (m->kind == SL_ST_NOT_INTEGER)
    lua_pushfstring(L, "load: tensor '%s' in '%s' has element %I = %f, %s expects integers (I64)", names[m->target],
                    path, (lua_Integer)(m->element + 1), (double)src->data[m->element], what);
  else
    lua_pushfstring(L, "load: '%s' has tensor '%s' %s that %s does not have (pass {strict = false} to ignore "
                       "extra tensors)", path, sl_safetensors_name(st, m->entry), sl_shape_str(src, a, sizeof a), what);
}

/* load(path) -> {name = tensor}, metadata
 * load(path, net_or_table[, {strict=true}]) -> metadata */
static int io_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int strict = sl_lua_onlyboolopt(L, 3, "strict", 1);
  int has_target = !lua_isnoneornil(L, 2);
  lua_settop(L, 3);
  int n = 0, is_net = 0;
  if (has_target) {
    n = collect(L, 0, &is_net); /* 4 entries, 5 (nothing) */
    lua_pop(L, 1);
  } else {
    lua_pushnil(L);
  }
  sl_safetensors **box = lua_newuserdatauv(L, sizeof *box, 0); /* 5 */
  *box = NULL;
  luaL_setmetatable(L, SL_LUA_STFILE);
  if (!(*box = sl_safetensors_load(path))) return sl_lua_error(L);
  sl_safetensors *st = *box;
  int count = sl_safetensors_count(st);

  if (!has_target) {
    lua_createtable(L, 0, count);
    for (int i = 0; i < count; i++) {
      sl_lua_pushtensor(L, sl_safetensors_tensor(st, i)); /* shares the loaded data */
      lua_setfield(L, -2, sl_safetensors_name(st, i));
    }
    push_metadata(L, st);
    lua_newtable(L); /* formats of the tensors not stored as plain F32: save(path, t, meta, formats) keeps them */
    for (int i = 0; i < count; i++) {
      int fmt = sl_safetensors_format(st, i);
      if (fmt == SL_ST_F32) continue;
      lua_createtable(L, 0, 2);
      lua_pushstring(L, (fmt & ~SL_ST_SCALAR) == SL_ST_I64 ? "I64" : "F32");
      lua_setfield(L, -2, "dtype");
      if (fmt & SL_ST_SCALAR) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "scalar");
      }
      lua_setfield(L, -2, sl_safetensors_name(st, i));
    }
    return 3;
  }

  /* Validate everything before copying anything. */
  const char **names;
  sl_tensor **dst;
  int *formats;
  entry_arrays(L, 4, n, &names, &dst, &formats);
  sl_st_mismatch first;
  int errors = sl_safetensors_match(st, n, names, dst, formats, strict, &first);
  if (errors < 0) return sl_lua_error(L);
  if (errors) {
    push_mismatch(L, st, &first, names, dst, path, is_net ? "the net" : "the table");
    if (errors > 1) {
      lua_pushfstring(L, " (and %d more mismatch%s; nothing was loaded)", errors - 1, errors > 2 ? "es" : "");
    } else {
      lua_pushliteral(L, " (nothing was loaded)");
    }
    lua_concat(L, 2);
    return lua_error(L);
  }
  sl_lua_check(L, sl_safetensors_copy_into(st, n, names, dst));
  push_metadata(L, st);
  return 1;
}

static const luaL_Reg io_funcs[] = {{"save", io_save}, {"load", io_load}, {NULL, NULL}};

void sl_lua_open_io(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_STFILE)) {
    lua_pushcfunction(L, stfile_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  sl_lua_setfuncs(L, io_funcs);
}
