/*
 * Host helpers (declared in selut_lua.h): zero-copy buffers, the log hook
 * behind selut.print, per-state host data and budgeted calls. Everything a
 * state needs lives in a "selut.Host" userdata in its registry: no C
 * globals, so states are independent (one state per thread at a time, as
 * for any lua_State).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lualib.h>

#include "selut_lua.h"
#include "sl_lua.h"

_Static_assert(SL_MAX_DIMS == 8, "sl_lua_tensorinfo.shape has 8 entries");

#define SL_LUA_HOST "selut.Host" /* registry key of the per-state host record */
#define HOOK_PERIOD 1000         /* VM instructions between budget checks */

typedef struct budget_state {
  int active;
  double deadline;         /* CLOCK_MONOTONIC seconds, 0 = none */
  double ms;               /* for the message */
  long long limit, done;   /* instructions */
  int period;
  int exceeded;
} budget_state;

typedef struct host {
  sl_lua_log_fn log;
  void *log_ud;
  void *hostdata;
  budget_state budget;
} host;

static host *gethost(lua_State *L, int create) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, SL_LUA_HOST) == LUA_TUSERDATA) {
    host *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return h;
  }
  lua_pop(L, 1);
  if (!create) return NULL;
  host *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  lua_setfield(L, LUA_REGISTRYINDEX, SL_LUA_HOST);
  return h;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- state ---- */

static int open_all(lua_State *L) {
  lua_gc(L, LUA_GCGEN, 0, 0); /* as the selut launcher and lua5.4's own interpreter */
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1);
  return 0;
}

lua_State *sl_lua_newstate(void) {
  lua_State *L = luaL_newstate();
  if (!L) {
    sl_fail(SL_ENOMEM, "sl_lua_newstate: cannot create a Lua state (out of memory)");
    return NULL;
  }
  lua_pushcfunction(L, open_all);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    sl_fail(SL_EINVAL, "sl_lua_newstate: opening selut failed: %s", msg ? msg : "(error object is not a string)");
    lua_close(L);
    return NULL;
  }
  return L;
}

/* ---- tensors ---- */

int sl_lua_pushbuffer(lua_State *L, float *data, int ndim, const int64_t *shape, sl_lua_release_fn release,
                      void *ud) {
  if (!shape) return sl_fail(SL_EINVAL, "sl_lua_pushbuffer: shape is NULL");
  sl_tensor **box = sl_lua_newtensor(L); /* may raise a memory error: nothing is owned yet */
  sl_mem_account *prev = sl_lua_enter(L); /* the storage record is charged to L */
  *box = sl_tensor_wrap(ndim, shape, data, release, ud);
  sl_mem_account_use(prev);
  if (!*box) {
    lua_pop(L, 1);
    return sl_last_status() ? sl_last_status() : SL_EINVAL;
  }
  return SL_OK;
}

int sl_lua_gettensor(lua_State *L, int idx, sl_lua_tensorinfo *info) {
  sl_tensor *t = sl_lua_totensor(L, idx);
  if (!t) return 0;
  if (info) {
    memset(info, 0, sizeof *info);
    info->data = t->data;
    info->ndim = t->ndim;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->numel = t->numel;
  }
  return 1;
}

/* ---- output: selut.print ---- */

/* selut.print(...): tostring of each argument, tab-separated, as one line
 * to the state's log hook (stderr when none is set). */
static int host_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    luaL_tolstring(L, i, NULL);
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  host *h = gethost(L, 0);
  if (h && h->log) {
    h->log(h->log_ud, msg, len);
  } else {
    fwrite(msg, 1, len, stderr);
    fputc('\n', stderr);
    fflush(stderr);
  }
  return 0;
}

void sl_lua_setlog(lua_State *L, sl_lua_log_fn fn, void *ud, int capture_print) {
  host *h = gethost(L, 1);
  h->log = fn;
  h->log_ud = fn ? ud : NULL;
  if (capture_print) {
    sl_lua_pushcclosure(L, host_print, 0);
    lua_setglobal(L, "print");
  }
}

/* ---- host data ---- */

void sl_lua_sethostdata(lua_State *L, void *p) { gethost(L, 1)->hostdata = p; }

void *sl_lua_gethostdata(lua_State *L) {
  host *h = gethost(L, 0);
  return h ? h->hostdata : NULL;
}

/* ---- budgets ---- */

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  host *h = gethost(L, 0);
  if (!h || !h->budget.active) return;
  budget_state *b = &h->budget;
  b->done += b->period;
  if (!b->exceeded) {
    if (b->limit && b->done >= b->limit) b->exceeded = 1;
    else if (b->deadline > 0 && now_seconds() >= b->deadline) b->exceeded = 2;
    if (!b->exceeded) return;
  }
  /* From now on every instruction of this thread raises, so a script that
   * catches the error with pcall cannot keep running. */
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  if (b->exceeded == 1)
    luaL_error(L, "selut: script stopped: instruction budget of %I exceeded", (lua_Integer)b->limit);
  else
    luaL_error(L, "selut: script stopped: time budget of %f ms exceeded", (lua_Number)b->ms);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int sl_lua_pcall(lua_State *L, int nargs, int nresults, sl_lua_budget *budget) {
  int base = lua_gettop(L) - nargs; /* the function */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int use = budget && (budget->ms > 0 || budget->instructions > 0);
  host *h = NULL;
  budget_state saved = {0};
  lua_Hook old_hook = lua_gethook(L);
  int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
  if (budget) budget->exceeded = 0;
  sl_mem_account *account = sl_mem_account_current(); /* the caller's, restored below */
  if (use) {
    h = gethost(L, 1); /* may raise a memory error, before anything is set */
    saved = h->budget; /* nested budgeted calls restore the outer budget */
    budget_state *b = &h->budget;
    memset(b, 0, sizeof *b);
    b->active = 1;
    b->ms = budget->ms;
    b->deadline = budget->ms > 0 ? now_seconds() + budget->ms / 1000.0 : 0;
    b->limit = budget->instructions > 0 ? budget->instructions : 0;
    b->period = b->limit && b->limit < HOOK_PERIOD ? (int)b->limit : HOOK_PERIOD;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, b->period);
  }
  int status = lua_pcall(L, nargs, nresults, base);
  sl_mem_account_use(account); /* an error leaves the failing state's account current */
  lua_remove(L, base);
  if (use) {
    if (h->budget.exceeded) budget->exceeded = 1;
    int outer_active = saved.active;
    h->budget = saved;
    if (outer_active) /* back inside an outer budgeted call: its hook again */
      lua_sethook(L, budget_hook, LUA_MASKCOUNT, saved.exceeded ? 1 : saved.period);
    else
      lua_sethook(L, old_hook, old_mask, old_count);
  }
  return status;
}

int sl_lua_dostring(lua_State *L, const char *code, const char *chunkname, sl_lua_budget *budget) {
  if (budget) budget->exceeded = 0;
  if (!code) {
    lua_pushliteral(L, "sl_lua_dostring: code is NULL");
    return LUA_ERRRUN;
  }
  int status = luaL_loadbufferx(L, code, strlen(code), chunkname ? chunkname : "=(host)", "t");
  if (status != LUA_OK) return status;
  return sl_lua_pcall(L, 0, 0, budget);
}

/* ---- selut.print ---- */

void sl_lua_open_host(lua_State *L) {
  gethost(L, 1);
  sl_lua_pushcclosure(L, host_print, 0);
  lua_setfield(L, -2, "print");
}
