/*
 * The embedding API (bindings/selut_lua.h): independent states, budgets that
 * stop runaway scripts, errors returned through the protected call, wrapped
 * host buffers (lifetime checked under ASan), the log hook and host data.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "selut.h"
#include "selut_lua.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define LEAK_CHECK() ((void)0)
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static lua_State *newstate(void) {
  lua_State *L = sl_lua_newstate();
  cr_assert_not_null(L, "sl_lua_newstate: %s", sl_last_error());
  return L;
}

/* Runs code that must succeed and returns its single number result. */
static double run_number(lua_State *L, const char *code) {
  cr_assert_eq(luaL_loadstring(L, code), LUA_OK, "%s", lua_tostring(L, -1));
  int st = sl_lua_pcall(L, 0, 1, NULL);
  cr_assert_eq(st, LUA_OK, "%s: %s", code, lua_tostring(L, -1));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static void run_ok(lua_State *L, const char *code) {
  int st = sl_lua_dostring(L, code, NULL, NULL);
  cr_assert_eq(st, LUA_OK, "%s: %s", code, lua_tostring(L, -1));
}

/* ---- log capture ---- */
typedef struct logbuf {
  char text[512];
  int lines;
} logbuf;

static void log_to(void *ud, const char *msg, size_t len) {
  logbuf *b = ud;
  size_t used = strlen(b->text);
  if (used + len + 2 < sizeof b->text) {
    memcpy(b->text + used, msg, len);
    b->text[used + len] = '\n';
    b->text[used + len + 1] = '\0';
  }
  b->lines++;
}

Test(embed, two_states_share_no_generator_log_or_host_data) {
  size_t bytes0 = sl_alloc_thread_bytes();
  lua_State *A = newstate(), *B = newstate();
  run_ok(A, "selut.manual_seed(7)");
  run_ok(B, "selut.manual_seed(7)");
  double a1 = run_number(A, "return selut.tensor.randn(3):sum()");
  double a2 = run_number(A, "return selut.tensor.randn(3):sum()");
  /* B's stream starts where A's started: A's draws did not advance it. */
  double b1 = run_number(B, "return selut.tensor.randn(3):sum()");
  cr_assert_eq(a1, b1, "B's first draw %g differs from A's first draw %g", b1, a1);
  run_ok(A, "selut.manual_seed(12345)"); /* reseeding A leaves B alone */
  double b2 = run_number(B, "return selut.tensor.randn(3):sum()");
  cr_assert_eq(a2, b2, "B's second draw %g differs from A's second draw %g", b2, a2);
  cr_assert_eq(run_number(B, "return selut.initial_seed()"), 7.0);
  cr_assert_eq(run_number(A, "return selut.initial_seed()"), 12345.0);

  logbuf la = {{0}, 0}, lb = {{0}, 0};
  sl_lua_setlog(A, log_to, &la, 0);
  sl_lua_setlog(B, log_to, &lb, 1);
  run_ok(A, "selut.print('from A', 1)");
  run_ok(B, "selut.print('from B') print('plain', nil, true)");
  cr_assert_str_eq(la.text, "from A\t1\n");
  cr_assert_str_eq(lb.text, "from B\nplain\tnil\ttrue\n");
  cr_assert_eq(lb.lines, 2);

  int x = 1, y = 2;
  cr_assert_null(sl_lua_gethostdata(A));
  sl_lua_sethostdata(A, &x);
  sl_lua_sethostdata(B, &y);
  cr_assert_eq(sl_lua_gethostdata(A), &x);
  cr_assert_eq(sl_lua_gethostdata(B), &y);

  /* settings stay per state: a tensor in A does not move B's GC bookkeeping
   * or selut table */
  run_ok(A, "selut.custom = 1; big = selut.tensor.zeros(1000)");
  run_ok(B, "assert(selut.custom == nil and big == nil)");
  lua_close(A);
  run_ok(B, "local t = selut.tensor.ones(2, 2); assert(t:sum() == 4)"); /* B unaffected by A's close */
  lua_close(B);
  cr_assert_eq(sl_alloc_thread_bytes(), bytes0, "core bytes left after closing both states");
  LEAK_CHECK();
}

Test(embed, time_budget_stops_a_runaway_loop_and_the_state_stays_usable) {
  lua_State *L = newstate();
  sl_lua_budget b = {.ms = 50};
  double t0 = now();
  int st = sl_lua_dostring(L, "local n = 0 while true do n = n + 1 end", "=runaway", &b);
  double dt = now() - t0;
  cr_assert_eq(st, LUA_ERRRUN);
  cr_assert_eq(b.exceeded, 1);
  const char *msg = lua_tostring(L, -1);
  cr_assert_not_null(strstr(msg, "selut: script stopped: time budget of 50"), "message: %s", msg);
  cr_assert_not_null(strstr(msg, "stack traceback"), "message: %s", msg);
  cr_assert(dt >= 0.045 && dt < 1.0, "stopped after %.3f s for a 50 ms budget", dt);
  lua_pop(L, 1);
  cr_assert_null(lua_gethook(L), "the budget hook is removed after the call");
  cr_assert_eq(run_number(L, "return 6 * 7"), 42.0);
  /* a budgeted call that fits: exceeded stays 0 */
  b.exceeded = 7;
  cr_assert_eq(sl_lua_dostring(L, "x = 0 for i = 1, 100 do x = x + i end", NULL, &b), LUA_OK);
  cr_assert_eq(b.exceeded, 0);
  cr_assert_eq(run_number(L, "return x"), 5050.0);
  lua_close(L);
  LEAK_CHECK();
}

Test(embed, budget_cannot_be_caught_by_the_script) {
  lua_State *L = newstate();
  sl_lua_budget b = {.ms = 30};
  const char *sneaky =
      "caught = 0\n"
      "while true do\n"
      "  local ok = pcall(function() while true do end end)\n"
      "  if not ok then caught = caught + 1 end\n"
      "end";
  double t0 = now();
  int st = sl_lua_dostring(L, sneaky, "=sneaky", &b);
  cr_assert_eq(st, LUA_ERRRUN);
  cr_assert_eq(b.exceeded, 1);
  cr_assert(now() - t0 < 1.0);
  lua_pop(L, 1);
  /* inside a coroutine created during the call */
  b.exceeded = 0;
  st = sl_lua_dostring(L, "local co = coroutine.wrap(function() while true do end end) co()", "=co", &b);
  cr_assert_eq(st, LUA_ERRRUN);
  cr_assert_eq(b.exceeded, 1);
  cr_assert_not_null(strstr(lua_tostring(L, -1), "time budget"), "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_close(L);
  LEAK_CHECK();
}

Test(embed, instruction_budget_counts_vm_instructions) {
  lua_State *L = newstate();
  sl_lua_budget b = {.instructions = 100000};
  int st = sl_lua_dostring(L, "n = 0 for i = 1, 1e9 do n = n + 1 end", NULL, &b);
  cr_assert_eq(st, LUA_ERRRUN);
  cr_assert_eq(b.exceeded, 1);
  cr_assert_not_null(strstr(lua_tostring(L, -1), "instruction budget of 100000 exceeded"), "%s",
                     lua_tostring(L, -1));
  lua_pop(L, 1);
  /* each iteration of the loop above is 2-3 instructions: n stops well before 1e5 */
  double n = run_number(L, "return n");
  cr_assert(n > 10000 && n < 100000, "the loop ran %g iterations", n);
  b.instructions = 50; /* a period below 1000 */
  cr_assert_eq(sl_lua_dostring(L, "while true do end", NULL, &b), LUA_ERRRUN);
  cr_assert_eq(b.exceeded, 1);
  lua_pop(L, 1);
  lua_close(L);
  LEAK_CHECK();
}

/* A C function scripts can call: runs its argument with a budget of its own. */
static int nested_call(lua_State *L) {
  sl_lua_budget inner = {.instructions = 2000};
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  int st = sl_lua_pcall(L, 0, 0, &inner);
  lua_pushboolean(L, st == LUA_OK);
  lua_pushboolean(L, inner.exceeded);
  return 2;
}

Test(embed, nested_budgets_restore_the_outer_one) {
  lua_State *L = newstate();
  lua_register(L, "nested", nested_call);
  sl_lua_budget outer = {.ms = 40};
  int st = sl_lua_dostring(L,
                           "ok1, ex1 = nested(function() while true do end end)\n"
                           "ok2, ex2 = nested(function() end)\n"
                           "while true do end",
                           NULL, &outer);
  cr_assert_eq(st, LUA_ERRRUN);
  cr_assert_eq(outer.exceeded, 1, "the outer budget still applies after the inner call");
  lua_pop(L, 1);
  run_ok(L, "assert(ok1 == false and ex1 == true and ok2 == true and ex2 == false)");
  lua_close(L);
  LEAK_CHECK();
}

static int host_hook_calls;
static void host_hook(lua_State *L, lua_Debug *ar) {
  (void)L;
  (void)ar;
  host_hook_calls++;
}

Test(embed, a_host_hook_is_restored_after_a_budgeted_call) {
  lua_State *L = newstate();
  lua_sethook(L, host_hook, LUA_MASKCOUNT, 10);
  sl_lua_budget b = {.ms = 1000};
  host_hook_calls = 0;
  cr_assert_eq(sl_lua_dostring(L, "for i = 1, 100 do end", NULL, &b), LUA_OK);
  cr_assert_eq(host_hook_calls, 0, "the host hook is suspended during the call");
  cr_assert_eq(lua_gethook(L), host_hook);
  cr_assert_eq(lua_gethookmask(L), LUA_MASKCOUNT);
  cr_assert_eq(lua_gethookcount(L), 10);
  lua_sethook(L, NULL, 0, 0);
  lua_close(L);
  LEAK_CHECK();
}

Test(embed, errors_come_back_through_the_protected_call) {
  lua_State *L = newstate();
  cr_assert_eq(sl_lua_dostring(L, "error('boom from script')", "=script", NULL), LUA_ERRRUN);
  const char *msg = lua_tostring(L, -1);
  cr_assert_not_null(strstr(msg, "script:1: boom from script"), "%s", msg);
  cr_assert_not_null(strstr(msg, "stack traceback"), "%s", msg);
  lua_pop(L, 1);
  /* a core failure: shapes in the message */
  cr_assert_eq(sl_lua_dostring(L, "local a = selut.tensor.zeros(2, 3) + selut.tensor.zeros(4)", NULL, NULL),
               LUA_ERRRUN);
  msg = lua_tostring(L, -1);
  cr_assert_not_null(strstr(msg, "[2 x 3]"), "%s", msg);
  lua_pop(L, 1);
  /* an argument error from a binding */
  cr_assert_eq(sl_lua_dostring(L, "selut.nn.Linear(0, -1)", NULL, NULL), LUA_ERRRUN);
  msg = lua_tostring(L, -1);
  cr_assert_not_null(strstr(msg, "bad argument"), "%s", msg);
  lua_pop(L, 1);
  /* syntax errors come back from the load */
  cr_assert_eq(sl_lua_dostring(L, "this is not lua", "=bad", NULL), LUA_ERRSYNTAX);
  lua_pop(L, 1);
  /* a non-string error object */
  cr_assert_eq(sl_lua_dostring(L, "error({})", NULL, NULL), LUA_ERRRUN);
  cr_assert_not_null(strstr(lua_tostring(L, -1), "error object is a table value"), "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  cr_assert_eq(lua_gettop(L), 0);
  cr_assert_eq(run_number(L, "return 1"), 1.0); /* still usable */
  lua_close(L);
  LEAK_CHECK();
}

/* ---- wrapped buffers ---- */
typedef struct buffer {
  float *data;
  int released;
} buffer;

static void release_buffer(void *ud, float *data) {
  buffer *b = ud;
  cr_assert_eq(data, b->data);
  b->released++;
  free(data);
  b->data = NULL;
}

Test(embed, wrapped_buffer_is_shared_without_copy_and_released_once) {
  size_t bytes0 = sl_alloc_thread_bytes();
  lua_State *L = newstate();
  buffer buf = {malloc(6 * sizeof(float)), 0};
  cr_assert_not_null(buf.data);
  for (int i = 0; i < 6; i++) buf.data[i] = (float)(i + 1);
  float *const host = buf.data;
  int64_t shape[2] = {2, 3};
  cr_assert_eq(sl_lua_pushbuffer(L, buf.data, 2, shape, release_buffer, &buf), SL_OK);
  sl_lua_tensorinfo info;
  cr_assert_eq(sl_lua_gettensor(L, -1, &info), 1);
  cr_assert_eq(info.data, host, "no copy: the tensor reads the host's memory");
  cr_assert_eq(info.ndim, 2);
  cr_assert_eq(info.shape[0], 2);
  cr_assert_eq(info.shape[1], 3);
  cr_assert_eq(info.numel, 6);
  lua_setglobal(L, "x");
  /* the script writes in place; the host sees it */
  run_ok(L, "x:mul_(2) assert(x:get(2, 3) == 12)");
  cr_assert_eq(host[5], 12.0f);
  host[0] = 100.0f; /* and the other way round */
  cr_assert_eq(run_number(L, "return x:get(1, 1)"), 100.0);
  /* a view, a dataset and a trained step keep the buffer alive */
  run_ok(L,
         "v = x:reshape(6)\n"
         "ds = selut.data.Dataset(x, selut.tensor.new{1, 2})\n"
         "x = nil");
  lua_gc(L, LUA_GCCOLLECT);
  cr_assert_eq(buf.released, 0, "released while a view and a dataset still use it");
  cr_assert_eq(run_number(L, "return v[6]"), 12.0);
  run_ok(L, "v = nil");
  lua_gc(L, LUA_GCCOLLECT);
  cr_assert_eq(buf.released, 0, "released while the dataset still uses it");
  run_ok(L, "ds = nil");
  lua_gc(L, LUA_GCCOLLECT);
  cr_assert_eq(buf.released, 1, "released once when the last reference is gone");
  lua_close(L);
  cr_assert_eq(buf.released, 1);
  cr_assert_eq(sl_alloc_thread_bytes(), bytes0);
  LEAK_CHECK();
}

Test(embed, wrapped_buffer_without_release_lives_until_close) {
  lua_State *L = newstate();
  float data[4] = {1, 2, 3, 4};
  int64_t shape[1] = {4};
  cr_assert_eq(sl_lua_pushbuffer(L, data, 1, shape, NULL, NULL), SL_OK);
  lua_setglobal(L, "x");
  cr_assert_eq(run_number(L, "return x:sum()"), 10.0);
  lua_close(L); /* nothing to free: the host owns data on its stack */
  LEAK_CHECK();
}

Test(embed, pushbuffer_rejects_bad_shapes_and_keeps_ownership) {
  lua_State *L = newstate();
  buffer buf = {malloc(4 * sizeof(float)), 0};
  int64_t bad[2] = {2, -1};
  int top = lua_gettop(L);
  cr_assert_lt(sl_lua_pushbuffer(L, buf.data, 2, bad, release_buffer, &buf), 0);
  cr_assert_eq(lua_gettop(L), top, "nothing pushed on failure");
  cr_assert_eq(buf.released, 0, "release not called on failure");
  cr_assert_neq(sl_last_error()[0], '\0');
  int64_t ok[1] = {4};
  cr_assert_lt(sl_lua_pushbuffer(L, buf.data, 0, ok, release_buffer, &buf), 0);
  cr_assert_lt(sl_lua_pushbuffer(L, buf.data, 9, ok, release_buffer, &buf), 0);
  cr_assert_lt(sl_lua_pushbuffer(L, NULL, 1, ok, release_buffer, &buf), 0);
  cr_assert_lt(sl_lua_pushbuffer(L, buf.data, 1, NULL, release_buffer, &buf), 0);
  cr_assert_eq(lua_gettop(L), top);
  cr_assert_eq(buf.released, 0);
  /* not a tensor */
  lua_pushinteger(L, 3);
  cr_assert_eq(sl_lua_gettensor(L, -1, NULL), 0);
  lua_pop(L, 1);
  /* a closed tensor */
  run_ok(L, "do local t <close> = selut.tensor.zeros(2); closed = t end");
  lua_getglobal(L, "closed");
  cr_assert_eq(sl_lua_gettensor(L, -1, NULL), 0);
  lua_pop(L, 1);
  lua_close(L);
  free(buf.data);
  LEAK_CHECK();
}

Test(embed, memory_limit_failure_of_a_wrap_leaves_the_buffer_to_the_host) {
  buffer buf = {malloc(4 * sizeof(float)), 0};
  int64_t shape[1] = {4};
  size_t old = sl_memory_limit();
  sl_set_memory_limit(sl_alloc_bytes() + 1); /* no room for the storage record */
  sl_tensor *t = sl_tensor_wrap(1, shape, buf.data, release_buffer, &buf);
  sl_set_memory_limit(old);
  cr_assert_null(t);
  cr_assert_eq(buf.released, 0);
  cr_assert_eq(sl_last_status(), SL_ELIMIT);
  free(buf.data);
  LEAK_CHECK();
}

Test(embed, trainer_runs_on_host_data_and_reduces_the_loss) {
  lua_State *L = newstate();
  enum { N = 64 };
  float *x = malloc(N * 2 * sizeof(float)), *y = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) { /* two separable blobs */
    float s = i % 2 ? 1.0f : -1.0f;
    x[2 * i] = s + 0.1f * (float)((i * 7) % 5 - 2);
    x[2 * i + 1] = -s + 0.1f * (float)((i * 3) % 5 - 2);
    y[i] = i % 2 ? 2.0f : 1.0f;
  }
  int64_t sx[2] = {N, 2}, sy[1] = {N};
  cr_assert_eq(sl_lua_pushbuffer(L, x, 2, sx, NULL, NULL), SL_OK);
  lua_setglobal(L, "X");
  cr_assert_eq(sl_lua_pushbuffer(L, y, 1, sy, NULL, NULL), SL_OK);
  lua_setglobal(L, "Y");
  run_ok(L,
         "selut.manual_seed(3)\n"
         "local nn = selut.nn\n"
         "net = nn.Sequential{nn.Linear(2, 8), nn.SELU(), nn.Linear(8, 2)}\n"
         "nn.init.lecun_normal(net)\n"
         "tr = selut.Trainer{net = net, loss = nn.CrossEntropyLoss(),\n"
         "  optim = selut.optim.SGD(net:parameters(), {lr = 0.1}), data = selut.data.Dataset(X, Y),\n"
         "  batch_size = 16, epochs = 20}");
  double first = run_number(L, "return tr:step(4).mean_loss");
  double steps = 4;
  for (int frame = 0; frame < 1000; frame++) {
    cr_assert_eq(sl_lua_dostring(L, "p = tr:step_for(1)", NULL, NULL), LUA_OK, "%s", lua_tostring(L, -1));
    steps += run_number(L, "return p.ran");
    if (run_number(L, "return p.done and 1 or 0") != 0) break;
  }
  cr_assert_eq(steps, 80.0, "20 epochs of 4 batches");
  double last = run_number(L, "return tr:progress().epoch_loss");
  cr_assert_lt(last, first * 0.5, "epoch loss %g after training vs %g at the start", last, first);
  cr_assert_eq(run_number(L, "return tr:progress().samples"), 20.0 * N);
  lua_close(L);
  free(x);
  free(y);
  LEAK_CHECK();
}
