/*
 * selut.viz: activation-histogram sheets and single-tensor histograms as PNG
 * files (core/viz does the binning, drawing and atomic writing; line plots
 * and confusion matrices are lua_viz_plot.c).
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

/* Reads the sheet options shared by histograms() and histogram(); pushes
 * the title (string or nil), which must stay on the stack. */
static void read_sheet_opts(lua_State *L, int arg, sl_hist_sheet_opts *o) {
  memset(o, 0, sizeof *o);
  o->bins = sl_lua_optintfield(L, arg, "bins", 1, SL_HIST_MAX_BINS, 60);
  o->columns = sl_lua_optintfield(L, arg, "columns", 1, 64, 0);
  o->width = sl_lua_optintfield(L, arg, "width", 200, SL_CANVAS_MAX_SIDE, 0);
  o->log_counts = sl_lua_optboolfield(L, arg, "log", 0);
  o->no_normal = !sl_lua_optboolfield(L, arg, "normal", 1);
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
  o->title = sl_lua_optstrfield(L, arg, "title");
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
  sl_lua_checkpath(L, 3);
  sl_lua_checkoptnames(L, optarg, histograms_opts);
  luaL_checktype(L, types, LUA_TTABLE);
  lua_settop(L, types);
  sl_hist_sheet_opts o;
  read_sheet_opts(L, optarg, &o); /* pushes the title: index 6 */
  int with_input = sl_lua_optboolfield(L, optarg, "input", 0);
  int training = sl_lua_optboolfield(L, optarg, "train", 0);
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
  set_num(L, "frac_saturated", sl_saturated_fraction(rule, at, y->data, y->numel));
  return 1;
}

/* ---- selut.viz.histogram(tensor, path[, opts]) ---- */

static const char *const histogram_opts[] = {"bins", "range", "title", "log", "width", "name", "normal", NULL};

static int viz_histogram(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  sl_lua_checkpath(L, 2);
  sl_lua_checkoptnames(L, 3, histogram_opts);
  lua_settop(L, 3);
  sl_hist_sheet_opts o;
  read_sheet_opts(L, 3, &o); /* title at 4 */
  const char *name = sl_lua_optstrfield(L, 3, "name"); /* at 5 */
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

static const luaL_Reg viz_funcs[] = {{"histogram", viz_histogram}, {"_sheet", viz_sheet},
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
  sl_lua_open_viz_plot(L); /* plot, confusion (lua_viz_plot.c) */
  if (luaL_newmetatable(L, "selut.viz.Sheet")) {
    sl_lua_newlib(L, sheet_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 2);
}
