/*
 * selut.viz.plot (line plots of one or more series) and selut.viz.confusion
 * (a confusion matrix) as PNG files: this file converts the Lua forms
 * (tensors or lists, named series) into arrays for core/viz/plot.c and
 * core/viz/confusion.c. Scratch arrays live in Lua userdata, so a raised
 * error never leaks them.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"

/* ---- selut.viz.plot(series, path[, opts]) ---- */

static const char *const plot_opts[] = {"title", "xlabel", "ylabel", "width", "height", "log_y", NULL};
#define MAX_SERIES 16

/* Length of the values at idx (a tensor or a list of numbers). */
static size_t values_len(lua_State *L, int idx, const char *name, const char *what) {
  idx = lua_absindex(L, idx);
  const sl_tensor *t = sl_lua_totensor(L, idx);
  if (t) return (size_t)t->numel;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_argerror(L, 1, lua_pushfstring(L, "series '%s': %s must be a tensor or a list of numbers, got %s", name, what,
                                        luaL_typename(L, idx)));
  return (size_t)luaL_len(L, idx);
}

/* Copies the values at idx into dst[0..n). */
static void values_copy(lua_State *L, int idx, double *dst, size_t n, const char *name, const char *what) {
  idx = lua_absindex(L, idx);
  const sl_tensor *t = sl_lua_totensor(L, idx);
  if (t) {
    for (size_t i = 0; i < n; i++) dst[i] = (double)t->data[i];
    return;
  }
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, idx, (lua_Integer)(i + 1));
    int isnum;
    dst[i] = lua_tonumberx(L, -1, &isnum);
    if (!isnum)
      luaL_argerror(L, 1, lua_pushfstring(L, "series '%s': %s value %I is not a number (got %s)", name, what,
                                          (lua_Integer)(i + 1), luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
}

/* Builds the list form {{name=, y=[, x=]}, ...} (pushed) from either form. */
static int push_series_list(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L);
  int list = lua_gettop(L);
  int n = 0;
  if (lua_rawgeti(L, 1, 1) != LUA_TNIL) { /* list form */
    lua_pop(L, 1);
    lua_Integer m = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= m; i++) {
      if (lua_geti(L, 1, i) != LUA_TTABLE || sl_lua_totensor(L, -1))
        luaL_argerror(L, 1, lua_pushfstring(L, "series %I must be a table {name=, y=[, x=]}, got %s", i,
                                            luaL_typename(L, -1)));
      if (lua_getfield(L, -1, "name") != LUA_TSTRING)
        luaL_argerror(L, 1, lua_pushfstring(L, "series %I: field 'name' must be a string", i));
      lua_pop(L, 1);
      if (lua_getfield(L, -1, "y") == LUA_TNIL)
        luaL_argerror(L, 1, lua_pushfstring(L, "series %I: field 'y' is missing", i));
      lua_pop(L, 1);
      lua_rawseti(L, list, ++n);
    }
    return n;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, 1, lua_pushfstring(L, "series names must be strings, got a %s key", luaL_typename(L, -2)));
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "y");
    lua_rawseti(L, list, ++n);
    lua_pop(L, 1);
  }
  /* sorted by name (insertion sort: a handful of series) */
  for (int i = 2; i <= n; i++) {
    for (int j = i; j > 1; j--) {
      lua_rawgeti(L, list, j - 1);
      lua_rawgeti(L, list, j);
      lua_getfield(L, -2, "name");
      lua_getfield(L, -2, "name");
      int swap = strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) > 0;
      lua_pop(L, 2);
      if (!swap) {
        lua_pop(L, 2);
        break;
      }
      lua_rawseti(L, list, j - 1);
      lua_rawseti(L, list, j);
    }
  }
  return n;
}

static int viz_plot(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  sl_lua_checkpath(L, 2);
  sl_lua_checkoptnames(L, 3, plot_opts);
  lua_settop(L, 3);
  sl_plot_opts o;
  memset(&o, 0, sizeof o);
  o.width = sl_lua_optintfield(L, 3, "width", 300, SL_CANVAS_MAX_SIDE, 0);
  o.height = sl_lua_optintfield(L, 3, "height", 200, SL_CANVAS_MAX_SIDE, 0);
  o.log_y = sl_lua_optboolfield(L, 3, "log_y", 0);
  o.title = sl_lua_optstrfield(L, 3, "title");   /* 4 */
  o.xlabel = sl_lua_optstrfield(L, 3, "xlabel"); /* 5 */
  o.ylabel = sl_lua_optstrfield(L, 3, "ylabel"); /* 6 */
  int n = push_series_list(L);
  int list = lua_gettop(L);
  if (n < 1) luaL_argerror(L, 1, "at least one series expected");
  if (n > MAX_SERIES) luaL_argerror(L, 1, lua_pushfstring(L, "%d series, at most %d fit a plot", n, MAX_SERIES));
  /* pass 1: lengths */
  size_t total = 0, len[MAX_SERIES];
  int has_x[MAX_SERIES];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    lua_getfield(L, -1, "name");
    const char *name = lua_tostring(L, -1);
    lua_getfield(L, -2, "y");
    len[i] = values_len(L, -1, name, "y");
    if (len[i] == 0) luaL_argerror(L, 1, lua_pushfstring(L, "series '%s' has no values", name));
    lua_getfield(L, -3, "x");
    has_x[i] = !lua_isnil(L, -1);
    if (has_x[i] && values_len(L, -1, name, "x") != len[i])
      luaL_argerror(L, 1, lua_pushfstring(L, "series '%s': %I x values for %I y values", name,
                                          (lua_Integer)values_len(L, -1, name, "x"), (lua_Integer)len[i]));
    if (len[i] > ((size_t)1 << 40) || total > ((size_t)1 << 40))
      luaL_argerror(L, 1, lua_pushfstring(L, "series '%s' is too long", name));
    total += len[i] * (has_x[i] ? 2 : 1);
    lua_pop(L, 4);
  }
  sl_series *series = lua_newuserdatauv(L, sizeof *series * (size_t)n + sizeof(double) * total, 0);
  double *buf = (double *)(void *)(series + n);
  /* pass 2: values */
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    lua_getfield(L, -1, "name");
    const char *name = lua_tostring(L, -1); /* anchored by the list */
    lua_getfield(L, -2, "y");
    values_copy(L, -1, buf, len[i], name, "y");
    series[i] = (sl_series){name, buf, NULL, len[i]};
    buf += len[i];
    lua_getfield(L, -3, "x");
    if (has_x[i]) {
      values_copy(L, -1, buf, len[i], name, "x");
      series[i].x = buf;
      buf += len[i];
    }
    lua_pop(L, 4);
  }
  sl_lua_check(L, sl_plot_write(lua_tostring(L, 2), series, n, &o));
  return 0;
}


/* ---- selut.viz.confusion(preds, labels, path[, opts]) ---- */

static const char *const confusion_opts[] = {"classes", "title", NULL};

/* Number of class indices at arg (a tensor or a list). */
static size_t indices_len(lua_State *L, int arg, const char *what) {
  const sl_tensor *t = sl_lua_totensor(L, arg);
  if (t) return (size_t)t->numel;
  if (lua_type(L, arg) != LUA_TTABLE)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a tensor or a list of class indices, got %s", what,
                                          luaL_typename(L, arg)));
  return (size_t)luaL_len(L, arg);
}

/* Copies the indices at arg into dst[0..n) as numbers (the core checks
 * they are integers in range) and returns the largest finite one. */
static double indices_copy(lua_State *L, int arg, double *dst, size_t n, const char *what) {
  const sl_tensor *t = sl_lua_totensor(L, arg);
  double mx = 0;
  for (size_t i = 0; i < n; i++) {
    if (t) {
      dst[i] = (double)t->data[i];
    } else {
      lua_geti(L, arg, (lua_Integer)(i + 1));
      int isnum;
      dst[i] = lua_tonumberx(L, -1, &isnum);
      if (!isnum)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s[%I] must be a class index, got %s", what, (lua_Integer)(i + 1),
                                              luaL_typename(L, -1)));
      lua_pop(L, 1);
    }
    if (isfinite(dst[i]) && dst[i] > mx) mx = dst[i];
  }
  return mx;
}

static int viz_confusion(lua_State *L) {
  size_t n = indices_len(L, 1, "preds"), nl = indices_len(L, 2, "labels");
  sl_lua_checkpath(L, 3);
  sl_lua_checkoptnames(L, 4, confusion_opts);
  lua_settop(L, 4);
  if (n != nl)
    luaL_argerror(L, 2, lua_pushfstring(L, "%I labels for %I preds, expected as many", (lua_Integer)nl,
                                        (lua_Integer)n));
  if (n == 0) luaL_argerror(L, 1, "preds is empty, expected at least one class index");
  sl_confusion_opts o = {NULL, NULL};
  o.title = sl_lua_optstrfield(L, 4, "title"); /* 5 */
  int k = 0;
  const char **names = NULL;
  if (!lua_isnil(L, 4) && lua_getfield(L, 4, "classes") != LUA_TNIL) { /* 6 */
    if (!lua_istable(L, 6)) luaL_argerror(L, 4, "option 'classes' must be a list of class names");
    lua_Integer m = luaL_len(L, 6);
    if (m < 1 || m > SL_CONFUSION_MAX_CLASSES)
      luaL_argerror(L, 4, lua_pushfstring(L, "option 'classes' has %I names, expected 1..%d", m,
                                          SL_CONFUSION_MAX_CLASSES));
    k = (int)m;
    names = lua_newuserdatauv(L, sizeof *names * (size_t)k, 0); /* 7 */
    for (int i = 0; i < k; i++) {
      if (lua_geti(L, 6, i + 1) != LUA_TSTRING)
        luaL_argerror(L, 4, lua_pushfstring(L, "option 'classes': name %d must be a string, got %s", i + 1,
                                            luaL_typename(L, -1)));
      names[i] = lua_tostring(L, -1); /* anchored by the classes table */
      lua_pop(L, 1);
    }
    o.classes = names;
  }
  double *buf = lua_newuserdatauv(L, sizeof *buf * 2 * n, 0);
  double mp = indices_copy(L, 1, buf, n, "preds");
  double ml = indices_copy(L, 2, buf + n, n, "labels");
  if (k == 0) { /* the classes seen: the largest index */
    double mx = mp > ml ? mp : ml;
    if (mx > SL_CONFUSION_MAX_CLASSES) {
      char num[32];
      snprintf(num, sizeof num, "%g", mx);
      luaL_argerror(L, 1, lua_pushfstring(L, "class index %s found, at most %d classes fit a confusion matrix", num,
                                          SL_CONFUSION_MAX_CLASSES));
    }
    k = mx >= 1 ? (int)mx : 1;
  }
  int64_t *counts = lua_newuserdatauv(L, sizeof *counts * (size_t)k * (size_t)k, 0);
  sl_lua_check(L, sl_confusion_count(counts, k, buf, buf + n, n));
  sl_tensor **box = sl_lua_newtensor(L);
  *box = sl_tensor_zeros(2, (int64_t[]){k, k});
  if (!*box) sl_lua_error(L);
  for (int i = 0; i < k * k; i++) (*box)->data[i] = (float)counts[i];
  sl_lua_check(L, sl_confusion_write(lua_tostring(L, 3), counts, k, &o));
  return 1;
}

static const luaL_Reg plot_funcs[] = {{"confusion", viz_confusion}, {"plot", viz_plot}, {NULL, NULL}};

void sl_lua_open_viz_plot(lua_State *L) { sl_lua_setfuncs(L, plot_funcs); }
