/*
 * selut.viz: activation-histogram sheets, single-tensor histograms and line
 * plots as PNG files (core/viz does the binning, drawing and atomic writing).
 * viz.histograms and nn.stats walk the net in Lua (scripts/viz.lua); this
 * file gives them the kernels: a sheet object that bins each layer's output
 * as soon as it is produced (one pass, no copy) and writes the PNG, and the
 * statistics of one output. Scratch memory (histograms, panel arrays,
 * series) lives in Lua userdata, so a raised error never leaks it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"


typedef struct hist_slot {
  sl_histogram h;
  sl_stats s;
} hist_slot;

/* How a layer's units saturate (its descriptor's rule, core/nn/nn.h). */
static double saturated_fraction(sl_saturation rule, double at, const sl_tensor *y) {
  if (rule == SL_SAT_NONE || y->numel == 0) return 0;
  int64_t k = 0;
  const float *p = y->data;
  float t = (float)at;
  if (rule == SL_SAT_BELOW)
    for (int64_t i = 0; i < y->numel; i++) k += p[i] < t;
  else
    for (int64_t i = 0; i < y->numel; i++) k += p[i] <= t;
  return (double)k / (double)y->numel;
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* Sets mean=, std=, var=, min=, max=, count=, nonfinite= of s in the
 * table on top. */
static void set_stats(lua_State *L, const sl_stats *s) {
  set_num(L, "mean", s->mean);
  set_num(L, "std", s->std);
  set_num(L, "var", s->std * s->std);
  set_num(L, "min", s->min);
  set_num(L, "max", s->max);
  set_int(L, "count", s->count);
  set_int(L, "nonfinite", s->nonfinite);
}

/* The open tensor a layer returned (arg), or the error naming the layer. */
static const sl_tensor *check_output(lua_State *L, int arg, const char *fname, const char *layer) {
  const sl_tensor *y = sl_lua_totensor(L, arg);
  if (!y)
    luaL_error(L, "%s: layer '%s' returned %s, expected an open tensor", fname, layer, luaL_typename(L, arg));
  return y;
}

/* ---- options ---- */

static int check_known_options(lua_State *L, int arg, const char *const *known) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "option names must be strings, got a %s key", luaL_typename(L, -1)));
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (int i = 0; known[i] && !ok; i++) ok = strcmp(k, known[i]) == 0;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; known[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, known[i]);
      }
      luaL_pushresult(&b);
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (known: %s)", k, lua_tostring(L, -1)));
    }
  }
  return 1;
}

/* opts[k] as an integer in lo..hi, or def when absent. */
static int opt_int(lua_State *L, int arg, const char *k, int lo, int hi, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNUMBER || !isint || v < lo || v > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be an integer in %d..%d, got %s", k, lo, hi,
                                          luaL_tolstring(L, -1, NULL)));
  lua_pop(L, 1);
  return (int)v;
}

static int opt_bool(lua_State *L, int arg, const char *k, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a boolean, got %s", k, luaL_typename(L, -1)));
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Pushes opts[k] (a string or nil) and returns it; the caller keeps it on
 * the stack while the pointer is in use. */
static const char *opt_string(lua_State *L, int arg, const char *k) {
  if (lua_isnoneornil(L, arg)) {
    lua_pushnil(L);
    return NULL;
  }
  int t = lua_getfield(L, arg, k);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a string, got %s", k, luaL_typename(L, -1)));
  return lua_tostring(L, -1);
}

/* Reads the sheet options shared by histograms() and histogram(); pushes
 * the title (string or nil), which must stay on the stack. */
static void read_sheet_opts(lua_State *L, int arg, sl_hist_sheet_opts *o) {
  memset(o, 0, sizeof *o);
  o->bins = opt_int(L, arg, "bins", 1, SL_HIST_MAX_BINS, 60);
  o->columns = opt_int(L, arg, "columns", 1, 64, 0);
  o->width = opt_int(L, arg, "width", 200, SL_CANVAS_MAX_SIDE, 0);
  o->log_counts = opt_bool(L, arg, "log", 0);
  o->no_normal = !opt_bool(L, arg, "normal", 1);
  o->lo = -4;
  o->hi = 4;
  if (!lua_isnoneornil(L, arg)) {
    int t = lua_getfield(L, arg, "range");
    if (t != LUA_TNIL) {
      int ok = t == LUA_TTABLE && luaL_len(L, -1) == 2;
      if (ok) {
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        int a, b;
        o->lo = lua_tonumberx(L, -2, &a);
        o->hi = lua_tonumberx(L, -1, &b);
        lua_pop(L, 2);
        ok = a && b && isfinite(o->lo) && isfinite(o->hi) && o->lo < o->hi;
      }
      if (!ok) luaL_argerror(L, arg, "option 'range' must be {lo, hi} with finite lo < hi");
    }
    lua_pop(L, 1);
  }
  o->title = opt_string(L, arg, "title");
}

static void check_path(lua_State *L, int arg) {
  size_t len;
  luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0, arg, "path must not be empty");
}

/* Writes the sheet, raising the core's message (which names the path). */
static void write_sheet(lua_State *L, const char *path, const sl_hist_panel *p, int k, const sl_hist_sheet_opts *o) {
  sl_lua_check(L, sl_hist_sheet_write(path, p, k, o));
}

/* ---- the sheet of viz.histograms(net, x, path[, opts]) ---- */

static const char *const histograms_opts[] = {"bins", "range", "columns", "title", "log", "width", "layers",
                                              "input", "train", "normal", NULL};

/* A sheet being filled: panel[i] is layer i's panel (-1: not shown; 0 is
 * the input), slots the panels' histograms. One userdata (its user value
 * keeps the title string o.title points into). */
typedef struct lsheet {
  int n, k;
  sl_hist_sheet_opts o;
  hist_slot *slots; /* [k], after the struct */
  int *panel;       /* [n + 1], after the slots */
} lsheet;

/* Marks in sel[0..n] the layers chosen by opts.layers (indices or type
 * names; types[i] is layer i's type). */
static void select_layers(lua_State *L, int arg, int types, int *sel, int n) {
  int t = lua_isnoneornil(L, arg) ? LUA_TNIL : lua_getfield(L, arg, "layers");
  if (t == LUA_TNIL) {
    for (int i = 1; i <= n; i++) sel[i] = 1;
    if (!lua_isnoneornil(L, arg)) lua_pop(L, 1);
    return;
  }
  if (t != LUA_TTABLE)
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers' must be a list of layer indices or type names, got %s",
                                          luaL_typename(L, -1)));
  int list = lua_gettop(L);
  lua_Integer m = luaL_len(L, list);
  for (lua_Integer j = 1; j <= m; j++) {
    int et = lua_geti(L, list, j);
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (et == LUA_TNUMBER && isint) {
      if (v < 1 || v > n)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': index %I out of range 1..%d", v, n));
      sel[v] = 1;
    } else if (et == LUA_TSTRING) {
      int found = 0;
      for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, types, i);
        if (lua_rawequal(L, -1, -2)) sel[i] = 1, found = 1;
        lua_pop(L, 1);
      }
      if (!found)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': the net has no layer of type '%s'",
                                              lua_tostring(L, -1)));
    } else {
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': entry %I must be an index or a type name, got %s",
                                            j, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* viz._sheet(net, x, path, opts, types) -> sheet, train: checks the
 * arguments as viz.histograms received them (types: the layers' type
 * names, [1..n]) and bins the input when opts.input asks. */
static int viz_sheet(lua_State *L) {
  const int x = 2, optarg = 4, types = 5;
  sl_tensor *xt = sl_lua_checktensor(L, x);
  check_path(L, 3);
  check_known_options(L, optarg, histograms_opts);
  luaL_checktype(L, types, LUA_TTABLE);
  lua_settop(L, types);
  sl_hist_sheet_opts o;
  read_sheet_opts(L, optarg, &o); /* pushes the title: index 6 */
  int with_input = opt_bool(L, optarg, "input", 0);
  int training = opt_bool(L, optarg, "train", 0);
  int n = (int)luaL_len(L, types);
  int *sel = lua_newuserdatauv(L, sizeof *sel * (size_t)(n + 1), 0);
  memset(sel, 0, sizeof *sel * (size_t)(n + 1));
  select_layers(L, optarg, types, sel, n);
  sel[0] = with_input;
  int k = 0;
  for (int i = 0; i <= n; i++) k += sel[i];
  if (k > 256) luaL_argerror(L, optarg, lua_pushfstring(L, "%d panels selected, at most 256 fit a sheet", k));
  if (k == 0) luaL_argerror(L, 1, "nothing to draw: the net has no layers (or none were selected)");
  lsheet *sh = lua_newuserdatauv(L, sizeof *sh + sizeof(hist_slot) * (size_t)k + sizeof(int) * (size_t)(n + 1), 1);
  luaL_setmetatable(L, "selut.viz.Sheet");
  sh->n = n;
  sh->k = k;
  sh->o = o;
  sh->slots = (hist_slot *)(void *)(sh + 1);
  sh->panel = (int *)(void *)(sh->slots + k);
  for (int i = 0, next = 0; i <= n; i++) sh->panel[i] = sel[i] ? next++ : -1;
  lua_pushvalue(L, 6);
  lua_setiuservalue(L, -2, 1);
  for (int i = 0; i < k; i++) sl_lua_check(L, sl_histogram_init(&sh->slots[i].h, o.bins, o.lo, o.hi));
  if (with_input) sl_histogram_stats(&sh->slots[0].h, &sh->slots[0].s, xt->data, (size_t)xt->numel);
  lua_pushboolean(L, training);
  return 2;
}

/* sheet:add(i, y, name): bins layer i's output y when its panel is shown. */
static int sheet_add(lua_State *L) {
  lsheet *sh = luaL_checkudata(L, 1, "selut.viz.Sheet");
  lua_Integer i = luaL_checkinteger(L, 2);
  const sl_tensor *y = check_output(L, 3, "histograms", luaL_checkstring(L, 4));
  if (i >= 1 && i <= sh->n && sh->panel[i] >= 0) {
    hist_slot *hs = &sh->slots[sh->panel[i]];
    sl_histogram_stats(&hs->h, &hs->s, y->data, (size_t)y->numel);
  }
  return 0;
}

/* sheet:write(path, names, types) -> one entry per panel: names[i] ("3
 * SELU") titles panel i, types[i] is its layer's type ([0] the input). */
static int sheet_write(lua_State *L) {
  lsheet *sh = luaL_checkudata(L, 1, "selut.viz.Sheet");
  const char *path = luaL_checkstring(L, 2);
  sl_hist_panel *panels = lua_newuserdatauv(L, sizeof *panels * (size_t)sh->k, 0);
  for (int i = 0; i <= sh->n; i++) {
    int s = sh->panel[i];
    if (s < 0) continue;
    lua_rawgeti(L, 3, i);
    panels[s] = (sl_hist_panel){lua_tostring(L, -1), NULL, 0, &sh->slots[s].h, &sh->slots[s].s};
    lua_pop(L, 1); /* still referenced by the names table */
  }
  write_sheet(L, path, panels, sh->k, &sh->o);
  lua_createtable(L, sh->k, 0);
  for (int i = 0; i <= sh->n; i++) {
    int s = sh->panel[i];
    if (s < 0) continue;
    lua_createtable(L, 0, 14);
    lua_rawgeti(L, 3, i);
    lua_setfield(L, -2, "name");
    lua_rawgeti(L, 4, i);
    lua_setfield(L, -2, "type");
    set_int(L, "layer", i);
    set_stats(L, &sh->slots[s].s);
    set_int(L, "under", sh->slots[s].h.under);
    set_int(L, "over", sh->slots[s].h.over);
    set_int(L, "nan", sh->slots[s].h.nan);
    lua_rawseti(L, -2, s + 1);
  }
  return 1;
}

/* viz._stats(y, name[, rule, at]) -> {mean=, std=, var=, min=, max=,
 * count=, nonfinite=, frac_saturated=} of a layer's output (nn.stats). */
static int viz_stats(lua_State *L) {
  const sl_tensor *y = check_output(L, 1, "stats", luaL_checkstring(L, 2));
  static const char *const rules[] = {"none", "below", "atmost", NULL};
  sl_saturation rule = (sl_saturation)luaL_checkoption(L, 3, "none", rules);
  double at = luaL_optnumber(L, 4, 0);
  sl_stats s;
  sl_stats_compute(&s, y->data, (size_t)y->numel);
  lua_createtable(L, 0, 12);
  set_stats(L, &s);
  set_num(L, "frac_saturated", saturated_fraction(rule, at, y));
  return 1;
}

/* ---- selut.viz.histogram(tensor, path[, opts]) ---- */

static const char *const histogram_opts[] = {"bins", "range", "title", "log", "width", "name", "normal", NULL};

static int viz_histogram(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  check_path(L, 2);
  check_known_options(L, 3, histogram_opts);
  lua_settop(L, 3);
  sl_hist_sheet_opts o;
  read_sheet_opts(L, 3, &o); /* title at 4 */
  const char *name = opt_string(L, 3, "name"); /* at 5 */
  if (!name) name = "tensor";
  hist_slot *hs = lua_newuserdatauv(L, sizeof *hs, 0);
  sl_lua_check(L, sl_histogram_init(&hs->h, o.bins, o.lo, o.hi));
  sl_histogram_stats(&hs->h, &hs->s, t->data, (size_t)t->numel);
  sl_hist_panel p = {name, NULL, 0, &hs->h, &hs->s};
  write_sheet(L, lua_tostring(L, 2), &p, 1, &o);
  lua_createtable(L, 0, 12);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  set_stats(L, &hs->s);
  set_int(L, "under", hs->h.under);
  set_int(L, "over", hs->h.over);
  set_int(L, "nan", hs->h.nan);
  return 1;
}

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
  check_path(L, 2);
  check_known_options(L, 3, plot_opts);
  lua_settop(L, 3);
  sl_plot_opts o;
  memset(&o, 0, sizeof o);
  o.width = opt_int(L, 3, "width", 300, SL_CANVAS_MAX_SIDE, 0);
  o.height = opt_int(L, 3, "height", 200, SL_CANVAS_MAX_SIDE, 0);
  o.log_y = opt_bool(L, 3, "log_y", 0);
  o.title = opt_string(L, 3, "title");   /* 4 */
  o.xlabel = opt_string(L, 3, "xlabel"); /* 5 */
  o.ylabel = opt_string(L, 3, "ylabel"); /* 6 */
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
  check_path(L, 3);
  check_known_options(L, 4, confusion_opts);
  lua_settop(L, 4);
  if (n != nl)
    luaL_argerror(L, 2, lua_pushfstring(L, "%I labels for %I preds, expected as many", (lua_Integer)nl,
                                        (lua_Integer)n));
  if (n == 0) luaL_argerror(L, 1, "preds is empty, expected at least one class index");
  sl_confusion_opts o = {NULL, NULL};
  o.title = opt_string(L, 4, "title"); /* 5 */
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

static const luaL_Reg viz_funcs[] = {{"confusion", viz_confusion}, {"histogram", viz_histogram}, {"plot", viz_plot}, {"_sheet", viz_sheet},
                                     {"_stats", viz_stats}, {NULL, NULL}};

static const luaL_Reg sheet_methods[] = {{"add", sheet_add}, {"write", sheet_write}, {NULL, NULL}};

void sl_lua_open_viz(lua_State *L) {
  if (lua_getfield(L, -1, "viz") != LUA_TTABLE) { /* luaopen_selut creates it; be safe */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "viz");
  }
  sl_lua_setfuncs(L, viz_funcs);
  if (luaL_newmetatable(L, "selut.viz.Sheet")) {
    sl_lua_newlib(L, sheet_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 2);
}
