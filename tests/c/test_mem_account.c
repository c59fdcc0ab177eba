/*
 * Memory accounts (core/tensor/alloc.h) and the per-state memory cap built
 * on them (bindings/lua_account.c): two lua_States on ONE thread, called
 * through plain lua_pcall, keep separate byte counts and caps; a block is
 * credited to the account that paid for it whatever account is current when
 * it is freed; an account outlives its state while the host holds one of the
 * state's tensors (lifetimes checked under ASan).
 */
#include <criterion/criterion.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "selut.h"
#include "selut_lua.h"
#include "sl_lua.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define LEAK_CHECK() ((void)0)
#endif

#define MB ((size_t)1 << 20)

/* A state opened the way a host that does not use sl_lua_newstate does. */
static lua_State *plain_state(void) {
  lua_State *L = luaL_newstate();
  cr_assert_not_null(L);
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1);
  lua_settop(L, 0);
  return L;
}

/* Runs code through plain lua_pcall (no selut helper); returns the status and
 * leaves one result (or the error message) on the stack. */
static int run(lua_State *L, const char *code) {
  cr_assert_eq(luaL_loadstring(L, code), LUA_OK, "%s", lua_tostring(L, -1));
  return lua_pcall(L, 0, 1, 0);
}

static void run_ok(lua_State *L, const char *code) {
  int st = run(L, code);
  cr_assert_eq(st, LUA_OK, "%s: %s", code, lua_tostring(L, -1));
  lua_pop(L, 1);
}

static lua_Integer run_int(lua_State *L, const char *code) {
  int st = run(L, code);
  cr_assert_eq(st, LUA_OK, "%s: %s", code, lua_tostring(L, -1));
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  cr_assert(isint, "%s: returned %s, not an integer", code, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* ---- core ---- */

Test(mem_account, core_blocks_credit_the_account_that_paid_for_them) {
  size_t thread0 = sl_alloc_thread_bytes(), default0 = sl_alloc_bytes();
  uint64_t count0 = sl_alloc_count();
  sl_mem_account *a = sl_mem_account_new(), *b = sl_mem_account_new();
  cr_assert(a && b);
  cr_assert_null(sl_mem_account_current(), "the thread's default account is current at first");

  cr_assert_null(sl_mem_account_use(a));
  void *p = sl_malloc(1000), *q = sl_malloc(24);
  cr_assert(p && q);
  cr_assert_eq(sl_mem_account_use(b), a);
  cr_assert_eq(sl_mem_account_bytes(a), 1024);
  cr_assert_eq(sl_mem_account_blocks(a), 2);
  cr_assert_eq(sl_alloc_bytes(), 0, "sl_alloc_bytes reads the current account (b)");
  cr_assert_eq(sl_mem_account_bytes(NULL), default0, "the default account was not charged");
  cr_assert_eq(sl_alloc_count(), count0 + 2, "the allocation count is per thread, whatever the account");
  cr_assert_eq(sl_alloc_thread_bytes(), thread0 + 1024);

  sl_free(p); /* b is current: a is credited */
  cr_assert_eq(sl_mem_account_bytes(a), 24);
  cr_assert_eq(sl_mem_account_bytes(b), 0);

  /* limits are per account */
  sl_mem_account_set_limit(b, 4096);
  cr_assert_eq(sl_memory_limit(), 4096);
  cr_assert_null(sl_malloc(4097));
  cr_assert_eq(sl_last_status(), SL_ELIMIT);
  cr_assert_str_eq(sl_last_error(), "memory limit exceeded: 4097 bytes requested, 0 of 4096 bytes in use");
  void *r = sl_malloc(4096);
  cr_assert_not_null(r, "a's 24 bytes do not count against b's cap");
  sl_mem_account_use(NULL);
  cr_assert_eq(sl_memory_limit(), sl_mem_account_limit(NULL));
  sl_free(r);
  sl_free(q);
  cr_assert_eq(sl_mem_account_bytes(a), 0);
  cr_assert_eq(sl_mem_account_blocks(a), 0);
  cr_assert_eq(sl_mem_account_bytes(b), 0);
  cr_assert_eq(sl_alloc_thread_bytes(), thread0);
  sl_mem_account_free(a);
  sl_mem_account_free(b);
  sl_mem_account_free(NULL);
  LEAK_CHECK();
}

Test(mem_account, core_account_outlives_its_owner_until_its_last_block) {
  sl_mem_account *a = sl_mem_account_new();
  sl_mem_account_use(a);
  sl_tensor *t = sl_tensor_zeros(2, (const int64_t[]){3, 4});
  cr_assert_not_null(t);
  sl_mem_account_free(a); /* closed while t is alive: current falls back to the default */
  cr_assert_null(sl_mem_account_current());
  cr_assert_geq(sl_mem_account_bytes(a), 48, "the record lives while a block does");
  t->data[11] = 1.0f;
  sl_tensor_release(t); /* frees the last block, then the record: ASan checks both */
  LEAK_CHECK();
}

/* Freed big blocks are kept and handed out again: to a request of the
 * same size or up to an eighth smaller, never to a much smaller one; the
 * cache holds at most 256 MB in 32 blocks, charges no account (bytes and
 * caps count live blocks), and is emptied by sl_alloc_trim and by freeing
 * an account. A reused block's contents are the old ones (sl_malloc does
 * not clear); sl_calloc still clears. */
Test(mem_account, big_blocks_are_cached_and_reused) {
  sl_alloc_trim();
  size_t bytes0 = sl_alloc_bytes();
  cr_assert_eq(sl_alloc_cached_bytes(), 0);
  float *p = sl_malloc(40 * MB);
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % 64, 0, "64-byte aligned");
  p[0] = 1.0f, p[10 * MB - 1] = 2.0f;
  sl_free(p);
  cr_assert_eq(sl_alloc_bytes(), bytes0, "a cached block is credited");
  cr_assert_eq(sl_alloc_cached_bytes(), 40 * MB);

  sl_set_memory_limit(bytes0 + 36 * MB);
  cr_assert_null(sl_malloc(36 * MB + 1), "the cap still applies to a block the cache could give");
  cr_assert_eq(sl_last_status(), SL_ELIMIT);
  float *q = sl_malloc(36 * MB); /* an eighth smaller at most: the same block */
  cr_assert_eq(q, p);
  cr_assert_eq(sl_alloc_bytes(), bytes0 + 36 * MB, "charged what was asked, not the block's capacity");
  cr_assert_eq(sl_alloc_cached_bytes(), 0);
  sl_set_memory_limit(0);
  sl_free(q);
  float *r = sl_malloc(20 * MB); /* half: a new block, the big one stays cached */
  cr_assert_not_null(r);
  cr_assert_neq(r, p);
  cr_assert_eq(sl_alloc_cached_bytes(), 40 * MB);
  float *z = sl_calloc(10 * MB, sizeof(float));
  cr_assert_eq(z, p);
  cr_assert(z[0] == 0.0f && z[10 * MB - 1] == 0.0f, "sl_calloc clears a reused block");
  sl_free(z);
  sl_free(r);
  cr_assert_eq(sl_alloc_cached_bytes(), 60 * MB);
  sl_alloc_trim();
  cr_assert_eq(sl_alloc_cached_bytes(), 0);

  /* bounded: ten 40 MB blocks leave six (240 MB) cached; 36 x 1 MB leave 32 */
  float *many[36];
  for (int i = 0; i < 10; i++) cr_assert_not_null(many[i] = sl_malloc(40 * MB));
  for (int i = 0; i < 10; i++) sl_free(many[i]);
  cr_assert_eq(sl_alloc_cached_bytes(), 240 * MB);
  for (int i = 0; i < 36; i++) cr_assert_not_null(many[i] = sl_malloc(MB));
  for (int i = 0; i < 36; i++) sl_free(many[i]);
  cr_assert_eq(sl_alloc_cached_bytes(), 32 * MB, "32 slots, oldest dropped first");
  float *small = sl_malloc(MB - 64); /* below 1 MB: never cached */
  sl_free(small);
  cr_assert_eq(sl_alloc_cached_bytes(), 32 * MB);

  sl_mem_account *a = sl_mem_account_new();
  sl_mem_account_free(a);
  cr_assert_eq(sl_alloc_cached_bytes(), 0, "freeing an account (closing a state) empties the cache");
  cr_assert_eq(sl_alloc_bytes(), bytes0);
  LEAK_CHECK();
}

/* A capped account cannot hold more than its cap through the cache: the big
 * blocks it frees stay counted while cached, give way to its own requests,
 * charges and a lower cap, and are not cached without room. */
Test(mem_account, cached_blocks_count_against_their_accounts_cap) {
  sl_alloc_trim();
  sl_mem_account *a = sl_mem_account_new(), *b = sl_mem_account_new();
  sl_mem_account_use(a);
  sl_mem_account_set_limit(a, 64 * MB);
#define FITS(acc) cr_assert_leq(sl_mem_account_bytes(acc) + sl_mem_account_cached(acc), sl_mem_account_limit(acc))
  float *p = sl_malloc(24 * MB), *q = sl_malloc(24 * MB);
  cr_assert(p && q, "%s", sl_last_error());
  sl_free(p);
  cr_assert_eq(sl_mem_account_cached(a), 24 * MB, "a freed big block stays counted while cached");
  cr_assert_eq(sl_mem_account_bytes(a), 24 * MB);
  FITS(a);
  float *r = sl_malloc(12 * MB); /* too small to reuse the 24 MB block: a new one */
  cr_assert_not_null(r);
  sl_free(q);
  cr_assert_eq(sl_mem_account_cached(a), 48 * MB);
  FITS(a);
  float *s = sl_malloc(20 * MB); /* 12 live + 48 cached + 20 > 64: the oldest cached block goes */
  cr_assert_not_null(s, "%s", sl_last_error());
  cr_assert_neq(s, p);
  cr_assert_eq(sl_mem_account_cached(a), 24 * MB);
  cr_assert_eq(sl_alloc_cached_bytes(), 24 * MB);
  FITS(a);
  cr_assert_null(sl_malloc(33 * MB), "the cap counts live bytes: 32 MB live + 33 > 64");
  cr_assert_eq(sl_last_status(), SL_ELIMIT);

  /* another account reusing a's cached block takes it off a's count */
  sl_mem_account_use(b);
  float *t = sl_malloc(22 * MB); /* within an eighth of 24 MB: the cached block */
  cr_assert_eq(t, q);
  cr_assert_eq(sl_mem_account_cached(a), 0);
  cr_assert_eq(sl_mem_account_bytes(b), 22 * MB);
  sl_free(t);
  cr_assert_eq(sl_mem_account_cached(b), 24 * MB, "counted for b now, b has no cap");

  /* no room under the cap at free time: not cached; a lower cap sheds */
  sl_mem_account_use(a);
  sl_free(r);
  sl_free(s);
  cr_assert_eq(sl_mem_account_cached(a), 32 * MB);
  sl_mem_account_set_limit(a, 20 * MB);
  cr_assert_eq(sl_mem_account_cached(a), 20 * MB, "a lower cap releases the oldest cached block (12 MB)");
  FITS(a);
  float *u = sl_malloc(16 * MB);
  cr_assert_not_null(u);
  cr_assert_eq(sl_mem_account_cached(a), 0, "the 20 MB block was neither reusable nor within the cap");
  sl_mem_account_set_limit(a, 16 * MB + 1);
  sl_free(u);
  cr_assert_eq(sl_mem_account_cached(a), 16 * MB, "room for it: cached");
  float *v = sl_malloc(MB);
  cr_assert_not_null(v);
  cr_assert_eq(sl_mem_account_cached(a), 0, "a request needing the room sheds it");
  sl_free(v);
  cr_assert_eq(sl_mem_account_cached(a), MB);
  FITS(a);
#undef FITS
  sl_mem_account_use(NULL);
  sl_mem_account_free(a);
  sl_mem_account_free(b);
  cr_assert_eq(sl_alloc_cached_bytes(), 0);
  LEAK_CHECK();
}

/* Memory the core did not allocate (selut.dist's shared segment) is charged
 * like a block: under the cap, refused over it with the cap's message, and
 * the record of a closed account lives until the charge is credited. */
Test(mem_account, external_charges_count_against_the_cap) {
  sl_mem_account *a = sl_mem_account_new(), *charged = NULL;
  sl_mem_account_use(a);
  sl_mem_account_set_limit(a, 10 * MB);
  cr_assert_eq(sl_mem_charge(6 * MB, &charged), SL_OK, "%s", sl_last_error());
  cr_assert_eq(charged, a);
  cr_assert_eq(sl_mem_account_bytes(a), 6 * MB);
  sl_mem_account *other = NULL;
  cr_assert_eq(sl_mem_charge(5 * MB, &other), SL_ELIMIT);
  cr_assert(strstr(sl_last_error(), "memory limit exceeded: 5242880 bytes requested, 6291456 of 10485760"),
            "%s", sl_last_error());
  cr_assert_null(sl_tensor_zeros(1, (const int64_t[]){(int64_t)(MB)}), "a 4 MB tensor no longer fits either");
  sl_mem_account_free(a); /* closed while charged: the record stays */
  cr_assert_eq(sl_mem_account_bytes(a), 6 * MB);
  sl_mem_credit(charged, 6 * MB); /* frees the record: ASan checks it */
  LEAK_CHECK();
}

/* ---- Lua states ---- */

/* State A capped at 8 MB fills near its cap and gets the limit error, while
 * state B on the same thread allocates 64 MB; every call is a plain
 * lua_pcall and the calls interleave. */
Test(mem_account, two_states_on_one_thread_have_separate_caps) {
  size_t thread0 = sl_alloc_thread_bytes();
  lua_State *A = plain_state(), *B = plain_state();
  cr_assert_neq(sl_lua_account(A), sl_lua_account(B));
  cr_assert_eq(run_int(A, "return selut.set_memory_limit('8M')"), 0);
  cr_assert_eq(run_int(B, "return selut.set_memory_limit('96M')"), 0);
  cr_assert_eq(run_int(A, "return selut.get_memory_limit()"), 8 * MB);
  cr_assert_eq(run_int(B, "return selut.get_memory_limit()"), 96 * MB);
  cr_assert_eq(sl_mem_account_limit(sl_lua_account(A)), 8 * MB);
  cr_assert_eq(sl_memory_limit(), 0, "the thread's default account has no cap");

  /* A: 7 x 1 MB */
  run_ok(A, "keep = {} for i = 1, 7 do keep[i] = selut.tensor.zeros(256, 1024) end");
  lua_Integer a_bytes = run_int(A, "return (selut.memory())");
  cr_assert_geq(a_bytes, (lua_Integer)(7 * MB));
  cr_assert_lt(a_bytes, (lua_Integer)(7 * MB + 4096));
  /* B: 64 MB while A is near its cap */
  run_ok(B, "big = selut.tensor.ones(16, 1024, 1024)");
  cr_assert_geq(run_int(B, "return (selut.memory())"), (lua_Integer)(64 * MB));
  cr_assert_eq(run_int(A, "return (selut.memory())"), a_bytes, "B's 64 MB are not A's");
  /* A: 2 MB more is over its cap */
  cr_assert_neq(run(A, "local t = selut.tensor.zeros(512, 1024)"), LUA_OK);
  const char *msg = lua_tostring(A, -1);
  const char *want = "memory limit exceeded: 2097152 bytes requested, ";
  const char *at = msg ? strstr(msg, want) : NULL;
  cr_assert_not_null(at, "A's error: %s (expected to contain: %s)", msg, want);
  long long in_use = -1;
  char tail[64] = "";
  cr_assert_eq(sscanf(at + strlen(want), "%lld of 8388608 bytes in %63s", &in_use, tail), 2, "%s", msg);
  cr_assert_str_eq(tail, "use");
  /* A's bytes (plus the new tensor's header), not A's + B's */
  cr_assert(in_use >= a_bytes && in_use < a_bytes + 4096, "in use %lld, A held %lld", in_use, (long long)a_bytes);
  lua_pop(A, 1);
  /* B, interleaved, keeps allocating */
  run_ok(B, "big2 = selut.tensor.zeros(4, 1024, 1024)");
  cr_assert_geq(run_int(B, "return (selut.memory())"), (lua_Integer)(80 * MB));
  /* within its cap A still works */
  run_ok(A, "local t = selut.tensor.zeros(128, 1024); t:fill_(1); assert(t:sum() == 128 * 1024)");
  cr_assert_eq(run_int(A, "return selut.get_memory_limit()"), 8 * MB);
  cr_assert_eq(run_int(B, "return selut.get_memory_limit()"), 96 * MB);

  lua_close(A);
  lua_close(B);
  cr_assert_eq(sl_alloc_thread_bytes(), thread0, "core bytes left after closing both states");
  LEAK_CHECK();
}

/* The __index closures are not wrapped (a method lookup costs no account
 * switch); their allocating slow paths (x[i] row views, ds.x / ds.y views)
 * charge the state's account all the same. */
Test(mem_account, index_views_are_charged_to_the_state) {
  lua_State *A = plain_state();
  run_ok(A, "m = selut.tensor.zeros(4, 3) ds = selut.data.Dataset(selut.tensor.zeros(5, 2), selut.tensor.arange(5))");
  size_t default0 = sl_mem_account_bytes(NULL), a0 = sl_mem_account_bytes(sl_lua_account(A));
  run_ok(A, "views = {} for i = 1, 100 do views[i] = m[1 + i % 4] end");
  size_t a1 = sl_mem_account_bytes(sl_lua_account(A));
  cr_assert_geq(a1, a0 + 100 * 16, "100 row views: %zu -> %zu bytes in A", a0, a1);
  run_ok(A, "for i = 1, 100 do views[100 + i] = (i % 2 == 0) and ds.x or ds.y end");
  cr_assert_geq(sl_mem_account_bytes(sl_lua_account(A)), a1 + 100 * 16, "100 dataset views");
  cr_assert_eq(sl_mem_account_bytes(NULL), default0, "views charged to the thread's default account");
  run_ok(A, "views = nil collectgarbage() selut.set_memory_limit(selut.memory() + 64)");
  cr_assert_neq(run(A, "local v = {} for i = 1, 100 do v[i] = m[1] end"), LUA_OK, "row views ignore A's cap");
  cr_assert(strstr(lua_tostring(A, -1), "memory limit exceeded"), "%s", lua_tostring(A, -1));
  lua_close(A);
  LEAK_CHECK();
}

/* A's tensors collected by A's GC while B's account is current are credited
 * to A: afterwards A can allocate up to its cap again and B's count did not
 * move. */
Test(mem_account, gc_while_another_state_is_current_credits_the_owner) {
  lua_State *A = plain_state(), *B = plain_state();
  run_ok(A, "selut.set_memory_limit('8M') keep = {} for i = 1, 7 do keep[i] = selut.tensor.zeros(256, 1024) end");
  run_ok(B, "big = selut.tensor.zeros(1024, 1024)");
  size_t a_bytes = sl_mem_account_bytes(sl_lua_account(A));
  size_t b_bytes = sl_mem_account_bytes(sl_lua_account(B));
  cr_assert_geq(a_bytes, 7 * MB);
  cr_assert_geq(b_bytes, MB);
  cr_assert_neq(run(A, "local t = selut.tensor.zeros(512, 1024)"), LUA_OK); /* at its cap */
  lua_pop(A, 1);

  run_ok(A, "keep = nil"); /* plain Lua: no selut function runs, nothing is freed yet */
  cr_assert_eq(sl_mem_account_bytes(sl_lua_account(A)), a_bytes);
  sl_mem_account *prev = sl_mem_account_use(sl_lua_account(B));
  lua_gc(A, LUA_GCCOLLECT); /* A's finalizers run with B's account current */
  sl_mem_account_use(prev);
  cr_assert_lt(sl_mem_account_bytes(sl_lua_account(A)), MB, "A's freed tensors were credited to A");
  cr_assert_eq(sl_mem_account_bytes(sl_lua_account(B)), b_bytes, "B's count moved by A's frees");
  run_ok(A, "again = {} for i = 1, 7 do again[i] = selut.tensor.zeros(256, 1024) end");
  lua_close(A);
  lua_close(B);
  LEAK_CHECK();
}

/* The host keeps a tensor of A past lua_close(A): the account stays alive
 * with the tensor's blocks and is freed with the last one (ASan: no
 * use-after-free; LSan: no leak). */
Test(mem_account, closing_a_state_while_the_host_holds_its_tensor) {
  size_t thread0 = sl_alloc_thread_bytes();
  lua_State *A = plain_state(), *B = plain_state();
  run_ok(A, "selut.set_memory_limit('1M') x = selut.tensor.arange(6):reshape(2, 3)");
  lua_getglobal(A, "x");
  sl_lua_tensorinfo info;
  cr_assert_eq(sl_lua_gettensor(A, -1, &info), 1);
  cr_assert_eq(info.numel, 6);
  sl_tensor *held = sl_tensor_retain(sl_lua_totensor(A, -1));
  lua_pop(A, 1);
  sl_mem_account *acct = sl_lua_account(A);
  lua_close(A);
  cr_assert_null(sl_mem_account_current());
  /* the closed state's account lives with the held tensor's blocks only */
  size_t held_bytes = sl_mem_account_bytes(acct);
  cr_assert(held_bytes >= 6 * sizeof(float) && held_bytes < 1024, "%zu bytes left in A's account", held_bytes);
  cr_assert_geq(sl_mem_account_blocks(acct), 1);
  /* B works meanwhile; freeing A's tensor while B's account is current */
  run_ok(B, "y = selut.tensor.ones(100)");
  sl_mem_account *prev = sl_mem_account_use(sl_lua_account(B));
  size_t b_bytes = sl_alloc_bytes();
  cr_assert_eq(held->data[5], 5.0f); /* arange(6) counts from 0 */
  sl_tensor_release(held); /* last block of A's account: the record goes too */
  cr_assert_eq(sl_alloc_bytes(), b_bytes, "B was not credited with A's tensor");
  sl_mem_account_use(prev);
  lua_close(B);
  cr_assert_eq(sl_alloc_thread_bytes(), thread0);
  LEAK_CHECK();
}

/* Which account is current after calls: none after a successful call; the
 * failing state's after an error escapes a plain lua_pcall (until closed or
 * reset); the caller's after sl_lua_pcall, error or not. */
Test(mem_account, current_account_after_calls_and_errors) {
  lua_State *A = plain_state(), *B = plain_state();
  run_ok(A, "local t = selut.tensor.zeros(3)");
  cr_assert_null(sl_mem_account_current());
  cr_assert_neq(run(A, "selut.tensor.zeros(-1)"), LUA_OK);
  lua_pop(A, 1);
  cr_assert_eq(sl_mem_account_current(), sl_lua_account(A), "an escaped error skips the restore");
  sl_mem_account_use(NULL);

  sl_mem_account_use(sl_lua_account(B));
  cr_assert_eq(luaL_loadstring(A, "selut.tensor.zeros(-1)"), LUA_OK);
  cr_assert_neq(sl_lua_pcall(A, 0, 0, NULL), LUA_OK);
  lua_pop(A, 1);
  cr_assert_eq(sl_mem_account_current(), sl_lua_account(B), "sl_lua_pcall restores the caller's account");
  cr_assert_neq(sl_lua_dostring(A, "error('x')", NULL, NULL), LUA_OK);
  lua_pop(A, 1);
  cr_assert_eq(sl_mem_account_current(), sl_lua_account(B));
  sl_mem_account_use(NULL);

  /* host buffers wrapped for A are charged to A */
  float data[4] = {1, 2, 3, 4};
  size_t a0 = sl_mem_account_bytes(sl_lua_account(A));
  cr_assert_eq(sl_lua_pushbuffer(A, data, 1, (const int64_t[]){4}, NULL, NULL), SL_OK);
  cr_assert_gt(sl_mem_account_bytes(sl_lua_account(A)), a0);
  cr_assert_null(sl_mem_account_current());
  lua_pop(A, 1);

  /* closing a state whose account was left current resets the thread's */
  cr_assert_neq(run(A, "selut.tensor.zeros(-1)"), LUA_OK);
  cr_assert_eq(sl_mem_account_current(), sl_lua_account(A));
  lua_close(A);
  cr_assert_null(sl_mem_account_current());
  lua_close(B);
  LEAK_CHECK();
}
