/*
 * The Lua suites: every tests/lua/NAME.lua (except helpers whose name starts
 * with '_') runs as one Criterion test, in a fresh lua_State with the
 * standard libraries and luaopen_selut (preloaded as the global `selut`, as
 * the launcher does), `arg[0]` set to the file's path. A Lua error fails the
 * test with its traceback. Afterwards the state is closed and the test
 * asserts that every core allocation was freed (sl_alloc_thread_bytes back to its
 * starting value) and, under SAN=1, that LeakSanitizer finds nothing.
 * Files are found under $SELUT_ROOT/tests/lua (the Makefile sets SELUT_ROOT;
 * the current directory otherwise).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "selut.h"
#include "selut_lua.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LUA_LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define LUA_LEAK_CHECK() ((void)0)
#endif

#define MAX_LUA_FILES 256

/* Parameters live in Criterion's shared arena (cr_malloc): no pointers inside. */
struct lua_file {
  char name[128];
};

static const char *root_dir(void) {
  const char *r = getenv("SELUT_ROOT");
  return r && *r ? r : ".";
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(((const struct lua_file *)a)->name, ((const struct lua_file *)b)->name);
}

/* Lists tests/lua/NAME.lua (sorted); returns the count. */
static size_t list_lua_files(struct lua_file *out, size_t cap) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/lua", root_dir());
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    size_t len = strlen(e->d_name);
    if (len < 5 || len >= sizeof out->name || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
    if (e->d_name[0] == '_' || e->d_name[0] == '.') continue;
    memcpy(out[n].name, e->d_name, len + 1);
    n++;
  }
  closedir(d);
  qsort(out, n, sizeof *out, cmp_names);
  return n;
}

static void free_params(struct criterion_test_params *crp) { cr_free(crp->params); }

ParameterizedTestParameters(lua, suite) {
  struct lua_file tmp[MAX_LUA_FILES];
  size_t n = list_lua_files(tmp, MAX_LUA_FILES);
  struct lua_file *files = cr_malloc(sizeof *files * (n ? n : 1));
  memcpy(files, tmp, sizeof *files * n);
  return cr_make_param_array(struct lua_file, files, n, free_params);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs path in a fresh state; returns NULL on success or a malloc'd message. */
static char *run_lua_file(const char *path) {
  lua_State *L = luaL_newstate();
  cr_assert_not_null(L, "luaL_newstate failed");
  lua_gc(L, LUA_GCGEN, 0, 0); /* the collector of the selut launcher (and of lua5.4's lua.c) */
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1);
  lua_pop(L, 1);
  lua_createtable(L, 1, 1);
  lua_pushstring(L, path);
  lua_rawseti(L, -2, 0);
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, msghandler);
  char *err = NULL;
  int st = luaL_loadfile(L, path);
  if (st == LUA_OK) st = lua_pcall(L, 0, 0, -2);
  if (st != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    err = strdup(m ? m : "(no message)");
  }
  lua_close(L);
  return err;
}

ParameterizedTest(struct lua_file *f, lua, suite) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/lua/%s", root_dir(), f->name);
  size_t bytes_before = sl_alloc_thread_bytes();
  char *err = run_lua_file(path);
  if (err) {
    cr_log_error("%s", err);
    char brief[2048];
    snprintf(brief, sizeof brief, "%s", err);
    free(err);
    cr_assert_fail("tests/lua/%s failed:\n%s", f->name, brief);
  }
  cr_assert_eq(sl_alloc_thread_bytes(), bytes_before, "tests/lua/%s: %zu bytes of core memory still allocated after lua_close",
               f->name, sl_alloc_thread_bytes() - bytes_before);
  LUA_LEAK_CHECK();
}

/* The parameterized test silently runs nothing when the files are not found:
 * make that a failure. */
Test(lua, suites_are_found) {
  struct lua_file tmp[MAX_LUA_FILES];
  size_t n = list_lua_files(tmp, MAX_LUA_FILES);
  cr_assert_geq(n, 5, "only %zu Lua suites found under %s/tests/lua (set SELUT_ROOT)", n, root_dir());
}

/* Two states do not share a generator: drawing from one leaves the other's
 * stream where it was. */
Test(lua, states_have_independent_generators) {
  size_t before = sl_alloc_thread_bytes();
  lua_State *a = luaL_newstate(), *b = luaL_newstate();
  luaL_openlibs(a);
  luaL_openlibs(b);
  luaL_requiref(a, "selut", luaopen_selut, 1);
  luaL_requiref(b, "selut", luaopen_selut, 1);
  lua_settop(a, 0);
  lua_settop(b, 0);
  cr_assert_eq(luaL_dostring(a, "selut.manual_seed(7)"), LUA_OK);
  cr_assert_eq(luaL_dostring(b, "selut.manual_seed(7); selut.tensor.randn(5)"), LUA_OK);
  cr_assert_eq(luaL_dostring(a, "return selut.tensor.randn(1):get(1)"), LUA_OK, "%s", lua_tostring(a, -1));
  double interleaved = lua_tonumber(a, -1);
  cr_assert_eq(luaL_dostring(a, "selut.manual_seed(7); return selut.tensor.randn(1):get(1)"), LUA_OK);
  cr_assert_eq(interleaved, lua_tonumber(a, -1), "state b's draws moved state a's generator");
  lua_close(a);
  lua_close(b);
  cr_assert_eq(sl_alloc_thread_bytes(), before);
  LUA_LEAK_CHECK();
}
