/*
 * selut.viz: activation-histogram sheets, single-tensor histograms and line
 * plots as PNG files (core/viz does the binning, drawing and atomic writing),
 * plus selut.nn.stats, the per-layer statistics the sheets print.
 *
 * A net is walked layer by layer: a container (a table with a `modules`
 * list, like nn.Sequential) runs its children in order, anything else is one
 * layer. Each layer's output is binned as soon as it is produced (one pass,
 * no copy), so a sheet of a deep net never holds more than one activation
 * batch besides the modules' own buffers. The walk runs in evaluation mode by
 * default and restores the previous modes afterwards, also when a layer
 * raises. Scratch memory (histograms, panel arrays, series) lives in Lua
 * userdata, so a raised error never leaks it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sl_lua.h"


/* ---- small helpers ---- */

/* The Lua type name of a layer: "Linear" for a C module (metatable
 * "selut.nn.Linear"), a Lua module's `name` field, its metatable's __name
 * without "selut.nn." ("Sequential"), else "Module". Pushes the string. */
static const char *push_layer_type(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    if (lua_getfield(L, idx, "name") == LUA_TSTRING) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    if (strncmp(s, "selut.nn.", 9) == 0 && s[9]) {
      lua_pushstring(L, s + 9);
      lua_remove(L, -2);
    }
    return lua_tostring(L, -1);
  }
  if (!lua_isnil(L, -1)) lua_pop(L, 1); /* a non-string __name */
  lua_pushliteral(L, "Module");
  return lua_tostring(L, -1);
}

/* Whether the value at idx can be run: a table or userdata whose `forward`
 * is a function. Indexing a userdata without __index would raise, so that
 * is checked first. */
static int is_runnable(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t == LUA_TUSERDATA) {
    if (luaL_getmetafield(L, idx, "__index") == LUA_TNIL) return 0;
    lua_pop(L, 1);
  } else if (t != LUA_TTABLE) {
    return 0;
  }
  int ok = lua_getfield(L, idx, "forward") == LUA_TFUNCTION;
  lua_pop(L, 1);
  return ok;
}

/* Pushes the list of layers of the net at arg (its `modules` list when it
 * has one, else {net}) and returns their number. */
static int push_layers(lua_State *L, int arg, const char *fname) {
  if (!is_runnable(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "module expected (a table or userdata with a forward method), got %s",
                                          luaL_typename(L, arg)));
  if (lua_type(L, arg) == LUA_TTABLE && lua_getfield(L, arg, "modules") == LUA_TTABLE) {
    int n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      if (!is_runnable(L, -1))
        luaL_error(L, "%s: layer %d of the net is not a module (got %s)", fname, i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    return n;
  }
  if (lua_type(L, arg) == LUA_TTABLE) lua_pop(L, 1); /* the non-table `modules` */
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, arg);
  lua_rawseti(L, -2, 1);
  return 1;
}

/* Calls obj:method(arg) when obj has such a method (arg < 0: no argument). */
static void call_method(lua_State *L, int obj, const char *method, int arg) {
  obj = lua_absindex(L, obj);
  if (lua_getfield(L, obj, method) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, obj);
  if (arg >= 0) lua_pushboolean(L, arg);
  lua_call(L, arg >= 0 ? 2 : 1, 0);
}

/* Saves the `training` flags of the net (arg) and of each layer into a new
 * table (pushed: [0] = net, [i] = layer i), then switches the net to the
 * requested mode. */
static void save_and_set_mode(lua_State *L, int net, int layers, int n, int training) {
  lua_createtable(L, n, 1);
  lua_getfield(L, net, "training");
  lua_rawseti(L, -2, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, layers, i);
    lua_getfield(L, -1, "training");
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  call_method(L, net, training ? "train" : "evaluate", training ? 1 : -1);
}

/* Puts back what save_and_set_mode recorded (saved at index `saved`). */
static void restore_mode(lua_State *L, int net, int layers, int n, int saved) {
  if (lua_rawgeti(L, saved, 0) == LUA_TBOOLEAN) call_method(L, net, "train", lua_toboolean(L, -1));
  lua_pop(L, 1);
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(L, saved, i) == LUA_TBOOLEAN) {
      int want = lua_toboolean(L, -1);
      lua_geti(L, layers, i);
      lua_getfield(L, -1, "training");
      int now = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (now != want) call_method(L, -1, "train", want); /* e.g. a child that was in another mode */
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* ---- the walk ---- */

enum sat_kind { SAT_NONE = SL_SAT_NONE, SAT_BELOW = SL_SAT_BELOW, SAT_ATMOST = SL_SAT_ATMOST };

typedef struct layer_info {
  int slot;            /* histogram slot, -1 when the layer is not shown */
  enum sat_kind sat;   /* how nn.stats counts saturated units */
  double sat_at;
} layer_info;

typedef struct hist_slot {
  sl_histogram h;
  sl_stats s;
} hist_slot;

typedef struct walk {
  const char *fname;
  int n;               /* layers */
  layer_info *info;    /* [n + 1]; [0] is the input */
  hist_slot *slots;    /* histograms mode */
  int stats_mode;      /* nn.stats: build result entries as we go */
} walk;

static double saturated_fraction(const layer_info *li, const sl_tensor *y) {
  if (li->sat == SAT_NONE || y->numel == 0) return 0;
  int64_t k = 0;
  const float *p = y->data;
  if (li->sat == SAT_BELOW) {
    float t = (float)li->sat_at;
    for (int64_t i = 0; i < y->numel; i++) k += p[i] < t;
  } else {
    float t = (float)li->sat_at;
    for (int64_t i = 0; i < y->numel; i++) k += p[i] <= t;
  }
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

/* Pushes {name=, type=, layer=, mean=, std=, var=, min=, max=, count=}
 * for stats s; names is the table of panel names, types of type names. */
static void push_stats_entry(lua_State *L, const sl_stats *s, int layer, int names, int types) {
  lua_createtable(L, 0, 14);
  lua_rawgeti(L, names, layer);
  lua_setfield(L, -2, "name");
  lua_rawgeti(L, types, layer);
  lua_setfield(L, -2, "type");
  set_int(L, "layer", layer);
  set_num(L, "mean", s->mean);
  set_num(L, "std", s->std);
  set_num(L, "var", s->std * s->std);
  set_num(L, "min", s->min);
  set_num(L, "max", s->max);
  set_int(L, "count", s->count);
  set_int(L, "nonfinite", s->nonfinite);
}

/* Runs under lua_pcall: 1 layers, 2 x, 3 walk (light userdata), 4 names,
 * 5 types, 6 results (stats mode). Each layer's forward gets the previous
 * output; each output is binned (or summarized) at once. */
static int walk_run(lua_State *L) {
  walk *w = lua_touserdata(L, 3);
  lua_pushvalue(L, 2);
  for (int i = 1; i <= w->n; i++) {
    int x = lua_gettop(L);
    lua_geti(L, 1, i);
    lua_getfield(L, -1, "forward");
    lua_insert(L, -2);
    lua_pushvalue(L, x);
    lua_call(L, 2, 1);
    const sl_tensor *y = sl_lua_totensor(L, -1);
    if (!y) {
      lua_rawgeti(L, 4, i);
      return luaL_error(L, "%s: layer '%s' returned %s, expected an open tensor", w->fname, lua_tostring(L, -1),
                        luaL_typename(L, -2));
    }
    lua_remove(L, x);
    const layer_info *li = &w->info[i];
    if (w->stats_mode) {
      sl_stats s;
      sl_stats_compute(&s, y->data, (size_t)y->numel);
      push_stats_entry(L, &s, i, 4, 5);
      set_num(L, "frac_saturated", saturated_fraction(li, y));
      lua_rawseti(L, 6, (lua_Integer)luaL_len(L, 6) + 1);
    } else if (li->slot >= 0) {
      hist_slot *hs = &w->slots[li->slot];
      sl_histogram_stats(&hs->h, &hs->s, y->data, (size_t)y->numel);
    }
  }
  return 0;
}

/* Runs the walk in the requested mode, restoring the modes afterwards even
 * when a layer raises (the error is then re-raised). */
static void run_walk(lua_State *L, walk *w, int net, int layers, int x, int names, int types, int results,
                     int training) {
  save_and_set_mode(L, net, layers, w->n, training);
  int saved = lua_gettop(L);
  lua_pushcfunction(L, walk_run);
  lua_pushvalue(L, layers);
  lua_pushvalue(L, x);
  lua_pushlightuserdata(L, w);
  lua_pushvalue(L, names);
  lua_pushvalue(L, types);
  if (results) lua_pushvalue(L, results);
  else lua_pushnil(L);
  int st = lua_pcall(L, 6, 0, 0);
  restore_mode(L, net, layers, w->n, saved);
  if (st != LUA_OK) lua_error(L);
  lua_pop(L, 1); /* saved */
}

/* Fills the names ("3 SELU") and types ("SELU") tables (pushed, in this
 * order) for the layers; [0] is the input. */
static void push_names(lua_State *L, int layers, int n) {
  lua_createtable(L, n, 1);
  lua_createtable(L, n, 1);
  int names = lua_gettop(L) - 1, types = names + 1;
  lua_pushliteral(L, "input");
  lua_rawseti(L, names, 0);
  lua_pushliteral(L, "input");
  lua_rawseti(L, types, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, layers, i);
    const char *type = push_layer_type(L, -1);
    lua_pushfstring(L, "%d %s", i, type);
    lua_rawseti(L, names, i);
    lua_rawseti(L, types, i);
    lua_pop(L, 1);
  }
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

/* ---- selut.viz.histograms(net, x, path[, opts]) ---- */

static const char *const histograms_opts[] = {"bins", "range", "columns", "title", "log", "width", "layers",
                                              "input", "train", "normal", NULL};

/* Marks the layers chosen by opts.layers (indices or type names). */
static void select_layers(lua_State *L, int arg, int types, layer_info *info, int n) {
  int t = lua_isnoneornil(L, arg) ? LUA_TNIL : lua_getfield(L, arg, "layers");
  if (t == LUA_TNIL) {
    for (int i = 1; i <= n; i++) info[i].slot = 1;
    if (!lua_isnoneornil(L, arg)) lua_pop(L, 1);
    return;
  }
  if (t != LUA_TTABLE)
    luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers' must be a list of layer indices or type names, got %s",
                                          luaL_typename(L, -1)));
  int sel = lua_gettop(L);
  lua_Integer m = luaL_len(L, sel);
  for (lua_Integer j = 1; j <= m; j++) {
    int et = lua_geti(L, sel, j);
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (et == LUA_TNUMBER && isint) {
      if (v < 1 || v > n)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': index %I out of range 1..%d", v, n));
      info[v].slot = 1;
    } else if (et == LUA_TSTRING) {
      const char *name = lua_tostring(L, -1);
      int found = 0;
      for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, types, i);
        if (strcmp(lua_tostring(L, -1), name) == 0) info[i].slot = 1, found = 1;
        lua_pop(L, 1);
      }
      if (!found)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': the net has no layer of type '%s'", name));
    } else {
      luaL_argerror(L, arg, lua_pushfstring(L, "option 'layers': entry %I must be an index or a type name, got %s",
                                            j, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int viz_histograms(lua_State *L) {
  const int net = 1, x = 2, optarg = 4;
  sl_tensor *xt = sl_lua_checktensor(L, x);
  check_path(L, 3);
  check_known_options(L, optarg, histograms_opts);
  lua_settop(L, 4);
  sl_hist_sheet_opts o;
  read_sheet_opts(L, optarg, &o); /* pushes the title: index 5 */
  int with_input = opt_bool(L, optarg, "input", 0);
  int training = opt_bool(L, optarg, "train", 0);

  int n = push_layers(L, net, "histograms");
  int layers = lua_gettop(L);
  push_names(L, layers, n);
  int names = layers + 1, types = layers + 2;
  layer_info *info = lua_newuserdatauv(L, sizeof *info * (size_t)(n + 1), 0);
  for (int i = 0; i <= n; i++) info[i] = (layer_info){-1, SAT_NONE, 0};
  select_layers(L, optarg, types, info, n);
  if (with_input) info[0].slot = 1;
  int k = 0;
  for (int i = 0; i <= n; i++)
    if (info[i].slot >= 0) info[i].slot = k++;
  if (k > 256) luaL_argerror(L, optarg, lua_pushfstring(L, "%d panels selected, at most 256 fit a sheet", k));
  if (k == 0) luaL_argerror(L, 1, "nothing to draw: the net has no layers (or none were selected)");
  hist_slot *slots = lua_newuserdatauv(L, sizeof *slots * (size_t)k, 0);
  for (int i = 0; i < k; i++) sl_lua_check(L, sl_histogram_init(&slots[i].h, o.bins, o.lo, o.hi));
  if (with_input) sl_histogram_stats(&slots[0].h, &slots[0].s, xt->data, (size_t)xt->numel);

  walk w = {"histograms", n, info, slots, 0};
  run_walk(L, &w, net, layers, x, names, types, 0, training);

  sl_hist_panel *panels = lua_newuserdatauv(L, sizeof *panels * (size_t)k, 0);
  for (int i = 0; i <= n; i++) {
    int s = info[i].slot;
    if (s < 0) continue;
    lua_rawgeti(L, names, i);
    panels[s] = (sl_hist_panel){lua_tostring(L, -1), NULL, 0, &slots[s].h, &slots[s].s};
    lua_pop(L, 1); /* still referenced by the names table */
  }
  write_sheet(L, lua_tostring(L, 3), panels, k, &o);

  lua_createtable(L, k, 0);
  for (int i = 0; i <= n; i++) {
    int s = info[i].slot;
    if (s < 0) continue;
    push_stats_entry(L, &slots[s].s, i, names, types);
    set_int(L, "under", slots[s].h.under);
    set_int(L, "over", slots[s].h.over);
    set_int(L, "nan", slots[s].h.nan);
    lua_rawseti(L, -2, s + 1);
  }
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
  set_num(L, "mean", hs->s.mean);
  set_num(L, "std", hs->s.std);
  set_num(L, "var", hs->s.std * hs->s.std);
  set_num(L, "min", hs->s.min);
  set_num(L, "max", hs->s.max);
  set_int(L, "count", hs->s.count);
  set_int(L, "nonfinite", hs->s.nonfinite);
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

/* ---- selut.nn.stats(net, x) ---- */

/* How a C layer's output saturates: its descriptor says (docs/api.md,
 * selut.nn.stats); other modules have no rule. */
static void saturation_rule(lua_State *L, int module, layer_info *li) {
  sl_module *m = sl_lua_tomodule(L, module);
  li->sat = SAT_NONE;
  if (m) li->sat = (enum sat_kind)sl_module_saturation(m, &li->sat_at);
}

static int nn_stats(lua_State *L) {
  sl_lua_checktensor(L, 2);
  lua_settop(L, 2);
  int n = push_layers(L, 1, "stats");
  int layers = lua_gettop(L);
  push_names(L, layers, n);
  int names = layers + 1, types = layers + 2;
  layer_info *info = lua_newuserdatauv(L, sizeof *info * (size_t)(n + 1), 0);
  for (int i = 0; i <= n; i++) {
    info[i] = (layer_info){-1, SAT_NONE, 0};
    if (i == 0) continue;
    lua_geti(L, layers, i);
    saturation_rule(L, -1, &info[i]);
    lua_pop(L, 1);
  }
  lua_createtable(L, n, 0);
  int results = lua_gettop(L);
  walk w = {"stats", n, info, NULL, 1};
  run_walk(L, &w, 1, layers, 2, names, types, results, 0);
  lua_settop(L, results);
  return 1;
}

static const luaL_Reg viz_funcs[] = {
    {"histograms", viz_histograms}, {"histogram", viz_histogram}, {"plot", viz_plot}, {NULL, NULL}};

void sl_lua_open_viz(lua_State *L) {
  if (lua_getfield(L, -1, "viz") != LUA_TTABLE) { /* luaopen_selut creates it; be safe */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "viz");
  }
  sl_lua_setfuncs(L, viz_funcs);
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "nn") == LUA_TTABLE) { /* sl_lua_open_nn runs first */
    sl_lua_pushcclosure(L, nn_stats, 0);
    lua_setfield(L, -2, "stats");
  }
  lua_pop(L, 1);
}
