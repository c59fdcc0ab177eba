/*
 * selut.save / selut.load: safetensors checkpoints of a net (anything with a
 * parameters() method returning {param=, grad=, name=} entries: C layers,
 * nn.Sequential, Lua modules) or of a table {name = tensor}. Names are the
 * parameters' names ("0.weight"), so a file saved from an nn.Sequential loads
 * into the equivalent PyTorch nn.Sequential with load_state_dict. Loading
 * into a net is all-or-nothing: every name and shape is checked before the
 * first byte is copied.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_lua.h"

#define SL_LUA_STFILE "selut.SafetensorsFile" /* internal: owns a loaded file */

/* ---- targets: a net's parameters or a table of tensors ---- */

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

static int cmp_strings(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks a tensor name at the top of the stack (no NUL byte, not empty). */
static const char *check_name(lua_State *L, int arg, const char *fname, lua_Integer pos) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (!s || len == 0 || strlen(s) != len) {
    if (pos > 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "parameter %I has %s name (a non-empty string without NUL bytes "
                                               "expected)", pos, s ? "an invalid" : "no"));
    luaL_argerror(L, arg, "tensor names must be non-empty strings without NUL bytes");
  }
  (void)fname;
  return s;
}

/* Calls the method on top of the stack with the net at arg, replacing it by
 * the list it returns; returns the list's length, raising when it is not a
 * table or longer than max. */
static lua_Integer call_list(lua_State *L, int arg, const char *method, lua_Integer max) {
  lua_pushvalue(L, arg);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s() returned a %s, expected a list", method, luaL_typename(L, -1)));
  lua_Integer len = luaL_len(L, -1);
  if (len > max) luaL_argerror(L, arg, lua_pushfstring(L, "too many %s", method));
  return len;
}

/* The storage format of an entry at idx ({dtype = "F32" | "I64", scalar =
 * true}, either optional); `what` names the entry in errors. */
static int read_format(lua_State *L, int idx, int arg, const char *what) {
  idx = lua_absindex(L, idx);
  int fmt = SL_ST_F32;
  int t = lua_getfield(L, idx, "dtype");
  const char *d = lua_tostring(L, -1);
  if (t == LUA_TSTRING && strcmp(d, "I64") == 0) fmt = SL_ST_I64;
  else if (t != LUA_TNIL && !(t == LUA_TSTRING && strcmp(d, "F32") == 0))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s has dtype %s, expected \"F32\" or \"I64\"", what,
                                          t == LUA_TSTRING ? d : luaL_typename(L, -1)));
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "scalar") != LUA_TNIL && lua_toboolean(L, -1)) fmt |= SL_ST_SCALAR;
  lua_pop(L, 1);
  return fmt;
}

/* Appends the net's buffers() entries (when it has that method) to the list
 * at out as {name, tensor box, format} (format: SL_ST_F32 or SL_ST_I64, |
 * SL_ST_SCALAR), after the n parameters; returns the new count. */
static int collect_buffers(lua_State *L, int arg, const char *fname, int out, int n) {
  if (lua_getfield(L, arg, "buffers") == LUA_TNIL) {
    lua_pop(L, 1);
    return n;
  }
  int list = lua_gettop(L);
  lua_Integer len = call_list(L, arg, "buffers", 1000000 - (lua_Integer)n);
  for (lua_Integer i = 1; i <= len; i++) {
    if (lua_geti(L, list, i) != LUA_TTABLE)
      luaL_argerror(L, arg, lua_pushfstring(L, "buffer %I is a %s, expected {tensor=, name=}", i, luaL_typename(L, -1)));
    int e = lua_gettop(L);
    lua_createtable(L, 3, 0);
    lua_getfield(L, e, "name");
    size_t len_name;
    const char *s = lua_tolstring(L, -1, &len_name);
    if (!s || len_name == 0 || strlen(s) != len_name)
      luaL_argerror(L, arg, lua_pushfstring(L, "buffer %I has %s name (a non-empty string without NUL bytes "
                                               "expected)", i, s ? "an invalid" : "no"));
    lua_rawseti(L, -2, 1);
    lua_getfield(L, e, "tensor");
    if (!sl_lua_totensor(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "buffer %I ('%s') has no open tensor 'tensor'", i, s));
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, read_format(L, e, arg, lua_pushfstring(L, "buffer %I ('%s')", i, s)));
    lua_remove(L, -2); /* the label */
    lua_rawseti(L, -2, 3);
    lua_rawseti(L, out, ++n);
    lua_settop(L, list);
  }
  lua_pop(L, 1);
  (void)fname;
  return n;
}

/* Pushes a sequence of {name, tensor box[, format]} entries for the target at
 * arg (a net with parameters() and optionally buffers(), or a table name ->
 * tensor), sorted by name for a table, parameters then buffers for a net.
 * Sets *is_net. */
static int collect_targets(lua_State *L, int arg, const char *fname, int *is_net) {
  *is_net = has_parameters(L, arg);
  lua_newtable(L);
  int out = lua_gettop(L);
  int n = 0;
  if (*is_net) {
    lua_getfield(L, arg, "parameters");
    int list = lua_gettop(L);
    lua_Integer len = call_list(L, arg, "parameters", 1000000);
    for (lua_Integer i = 1; i <= len; i++) {
      if (lua_geti(L, list, i) != LUA_TTABLE)
        luaL_argerror(L, arg, lua_pushfstring(L, "parameter %I is a %s, expected {param=, name=}", i, luaL_typename(L, -1)));
      int e = lua_gettop(L);
      lua_createtable(L, 2, 0);
      lua_getfield(L, e, "name");
      check_name(L, arg, fname, i);
      lua_rawseti(L, -2, 1);
      lua_getfield(L, e, "param");
      if (!sl_lua_totensor(L, -1))
        luaL_argerror(L, arg, lua_pushfstring(L, "parameter %I ('%s') has no open tensor 'param'", i,
                                              (lua_rawgeti(L, -2, 1), lua_tostring(L, -1))));
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, out, ++n);
      lua_settop(L, list);
    }
    lua_settop(L, out);
    return collect_buffers(L, arg, fname, out, n);
  }
  if (!lua_istable(L, arg))
    luaL_typeerror(L, arg, "net (with a parameters method) or table of tensors");
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "table keys must be tensor names (strings), got a %s key",
                                            luaL_typename(L, -2)));
    if (!sl_lua_totensor(L, -1))
      luaL_argerror(L, arg, lua_pushfstring(L, "value of '%s' is %s, expected an open selut.Tensor",
                                            lua_tostring(L, -2),
                                            luaL_testudata(L, -1, SL_LUA_TENSOR) ? "a closed selut.Tensor"
                                                                                  : luaL_typename(L, -1)));
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -3);
    check_name(L, arg, fname, 0);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, out, ++n);
    lua_pop(L, 1);
    if (n > 1000000) luaL_argerror(L, arg, "too many tensors");
  }
  /* sort by name: through a scratch userdata of indices */
  if (n > 1) {
    const char **names = lua_newuserdatauv(L, (size_t)n * 2 * sizeof *names, 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, out, i + 1);
      lua_rawgeti(L, -1, 1);
      names[2 * i] = lua_tostring(L, -1); /* kept alive by the pair table */
      names[2 * i + 1] = (const char *)(intptr_t)(i + 1);
      lua_pop(L, 2);
    }
    qsort(names, (size_t)n, 2 * sizeof *names, cmp_strings);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, out, (lua_Integer)(intptr_t)names[2 * i + 1]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, out);
    lua_settop(L, out);
  }
  return n;
}

/* save(path, tensors, metadata, formats): formats[name] = {dtype=,
 * scalar=} for tensors of the table (what load(path) returns third), set as
 * the entries' formats in the list at `list`. */
static void apply_formats(lua_State *L, int formats, int list, int n, int is_net) {
  if (is_net) luaL_argerror(L, formats, "formats are for a table of tensors (a net's buffers() give theirs)");
  lua_pushnil(L);
  while (lua_next(L, formats)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, formats, lua_pushfstring(L, "formats keys must be tensor names (strings), got a %s key",
                                                luaL_typename(L, -2)));
    const char *name = lua_tostring(L, -2);
    if (!lua_istable(L, -1))
      luaL_argerror(L, formats, lua_pushfstring(L, "format of '%s' is a %s, expected {dtype=, scalar=}", name,
                                                luaL_typename(L, -1)));
    int i = 1;
    for (; i <= n; i++, lua_pop(L, 1)) {
      lua_rawgeti(L, list, i);
      lua_rawgeti(L, -1, 1);
      int same = strcmp(lua_tostring(L, -1), name) == 0;
      lua_pop(L, 1);
      if (same) break;
    }
    if (i > n) luaL_argerror(L, formats, lua_pushfstring(L, "formats name '%s', which is not in the table", name));
    int value = lua_gettop(L) - 1;
    int fmt = read_format(L, value, formats, lua_pushfstring(L, "format of '%s'", name));
    lua_pop(L, 1); /* the label */
    lua_pushinteger(L, fmt);
    lua_rawseti(L, -2, 3);
    lua_pop(L, 2); /* the entry and the value: the key stays for lua_next */
  }
}

/* ---- selut.save ---- */

static int io_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_argcheck(L, *path, 1, "empty path");
  if (lua_isnoneornil(L, 2)) luaL_typeerror(L, 2, "net (with a parameters method) or table of tensors");
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  int has_formats = !lua_isnoneornil(L, 4);
  if (has_formats) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4); /* 2 target, 3 metadata, 4 formats */
  int is_net;
  int n = collect_targets(L, 2, "save", &is_net); /* 5 */
  if (has_formats) apply_formats(L, 4, 5, n, is_net);
  lua_remove(L, 4); /* the list back at 4, as below expects */
  /* metadata: sorted keys, values as strings */
  lua_newtable(L); /* 5: list of {key, value} */
  int nmeta = 0;
  if (!lua_isnil(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      size_t kl, vl;
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_argerror(L, 3, lua_pushfstring(L, "metadata keys must be strings, got a %s key", luaL_typename(L, -2)));
      const char *k = lua_tolstring(L, -2, &kl);
      int vt = lua_type(L, -1);
      if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
        luaL_argerror(L, 3, lua_pushfstring(L, "metadata value of '%s' is a %s, expected a string or number", k,
                                            luaL_typename(L, -1)));
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, -3);
      lua_rawseti(L, -2, 1);
      const char *v = luaL_tolstring(L, -2, &vl); /* numbers as tostring() writes them */
      if (strlen(k) != kl || strlen(v) != vl)
        luaL_argerror(L, 3, lua_pushfstring(L, "metadata entry '%s' contains a NUL byte", k));
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, 5, ++nmeta);
      lua_pop(L, 1);
    }
  }
  /* scratch arrays as a userdata (collected even if something raises) */
  size_t slots = (size_t)n * 2 + (size_t)nmeta * 2 + 1;
  void **scratch = lua_newuserdatauv(L, slots * sizeof *scratch, 0); /* 6 */
  int *formats = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *formats, 0); /* 7 */
  const char **names = (const char **)scratch;
  sl_tensor **tensors = (sl_tensor **)(scratch + n);
  const char **keys = (const char **)(scratch + 2 * n);
  const char **values = keys + nmeta;
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 4, i + 1);
    lua_rawgeti(L, -1, 1);
    names[i] = lua_tostring(L, -1);
    lua_rawgeti(L, -2, 2);
    tensors[i] = sl_lua_totensor(L, -1);
    lua_rawgeti(L, -3, 3);
    formats[i] = (int)lua_tointeger(L, -1); /* nil (parameters, tables) -> 0 = SL_ST_F32 */
    lua_pop(L, 4);
  }
  for (int i = 0; i < nmeta; i++) {
    lua_rawgeti(L, 5, i + 1);
    lua_rawgeti(L, -1, 1);
    keys[i] = lua_tostring(L, -1);
    lua_rawgeti(L, -2, 2);
    values[i] = lua_tostring(L, -1);
    lua_pop(L, 3);
  }
  /* sort metadata by key (pairs() order is arbitrary; the file should not be) */
  for (int i = 1; i < nmeta; i++)
    for (int j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
      const char *tk = keys[j], *tv = values[j];
      keys[j] = keys[j - 1];
      values[j] = values[j - 1];
      keys[j - 1] = tk;
      values[j - 1] = tv;
    }
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

/* An integer buffer (format SL_ST_I64; I64 in files) must receive integers:
 * pops the format at the top, pushes and returns a message if src has a
 * non-integer element, else NULL. */
static const char *check_integral(lua_State *L, const char *name, const sl_tensor *src, lua_Integer fmt,
                                  const char *path, const char *what) {
  lua_pop(L, 1);
  if ((fmt & ~SL_ST_SCALAR) != SL_ST_I64) return NULL;
  for (int64_t j = 0; j < src->numel; j++)
    if (!(src->data[j] == floorf(src->data[j]) && src->data[j] >= -9.2233720368547758e18f &&
          src->data[j] < 9.2233720368547758e18f))
      return lua_pushfstring(L, "load: tensor '%s' in '%s' has element %I = %f, %s expects integers (I64)", name,
                             path, (lua_Integer)(j + 1), (double)src->data[j], what);
  return NULL;
}

/* load(path) -> {name = tensor}, metadata
 * load(path, net_or_table[, {strict=true}]) -> metadata */
static int io_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int strict = sl_lua_onlyboolopt(L, 3, "strict", 1);
  int has_target = !lua_isnoneornil(L, 2);
  lua_settop(L, 3);
  int n = 0, is_net = 0;
  if (has_target) n = collect_targets(L, 2, "load", &is_net); /* 4 */
  else lua_pushnil(L);
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
  const char *what = is_net ? "the net" : "the table";
  char a[160], b[160];
  int errors = 0;
  lua_newtable(L); /* 6: set of target names (+ the first error message) */
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 4, i + 1);
    lua_rawgeti(L, -1, 1);
    const char *name = lua_tostring(L, -1);
    lua_rawgeti(L, -2, 2);
    sl_tensor *dst = sl_lua_totensor(L, -1);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, 6);
    int k = sl_safetensors_find(st, name);
    const char *msg = NULL;
    if (k < 0) {
      if (strict)
        msg = lua_pushfstring(L, "load: '%s' has no tensor '%s' (%s expects %s)", path, name, what,
                              sl_shape_str(dst, a, sizeof a));
    } else {
      sl_tensor *src = sl_safetensors_tensor(st, k);
      if (!sl_tensor_same_shape(src, dst))
        msg = lua_pushfstring(L, "load: tensor '%s' is %s in '%s', %s expects %s", name, sl_shape_str(src, a, sizeof a),
                              path, what, sl_shape_str(dst, b, sizeof b));
      else
        msg = check_integral(L, name, src, (lua_rawgeti(L, -3, 3), lua_tointeger(L, -1)), path, what);
    }
    if (msg) {
      if (errors++ == 0) {
        lua_pushvalue(L, -1);
        lua_setfield(L, 6, "\1first"); /* not a valid tensor name: safe key */
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 3);
  }
  if (strict)
    for (int i = 0; i < count; i++) {
      const char *name = sl_safetensors_name(st, i);
      if (lua_getfield(L, 6, name) == LUA_TNIL) {
        if (errors++ == 0) {
          lua_pushfstring(L, "load: '%s' has tensor '%s' %s that %s does not have (pass {strict = false} to ignore "
                             "extra tensors)", path, name, sl_shape_str(sl_safetensors_tensor(st, i), a, sizeof a), what);
          lua_setfield(L, 6, "\1first");
        }
      }
      lua_pop(L, 1);
    }
  if (errors) {
    lua_getfield(L, 6, "\1first");
    if (errors > 1) {
      lua_pushfstring(L, " (and %d more mismatch%s; nothing was loaded)", errors - 1, errors > 2 ? "es" : "");
    } else {
      lua_pushliteral(L, " (nothing was loaded)");
    }
    lua_concat(L, 2);
    return lua_error(L);
  }
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 4, i + 1);
    lua_rawgeti(L, -1, 1);
    int k = sl_safetensors_find(st, lua_tostring(L, -1));
    lua_rawgeti(L, -2, 2);
    if (k >= 0) sl_lua_check(L, sl_tensor_copy(sl_lua_totensor(L, -1), sl_safetensors_tensor(st, k)));
    lua_pop(L, 3);
  }
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
