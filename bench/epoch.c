/* bench/epoch: one epoch of the default recipe (bench/epoch.lua, the real
 * Lua API) timed in this process, with every cblas_sgemm call timed by an
 * interposer, so it reports the share of the epoch spent in sgemm; then the
 * sgemm-bound limit, measured in the same run by replaying one step's exact
 * sgemm calls (shapes, transposes, beta) with OpenBLAS alone at the same
 * thread count (40 steps, best of 3 rounds, scaled to the epoch's steps):
 * natural_seconds on the products' own shapes, chunked_seconds on the K
 * chunks sl_sgemm_f32 issues (so results do not depend on the thread count).
 *
 *   build/bench/epoch [--threads N] [--limit SAMPLES]
 * Without --threads it runs 1 and 2 threads; without --limit, 10000 samples
 * (the full 60000-sample epoch: --limit 0). Data: SELUT_FASHION_MNIST or
 * the Debian dataset directory. Run from the source tree (or BENCH_DIR=bench). */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "selut.h"
#include "selut_lua.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                         const blasint, const blasint, const blasint, const float, const float *, const blasint,
                         const float *, const blasint, const float, float *, const blasint);

typedef struct call {
  enum CBLAS_TRANSPOSE ta, tb;
  blasint m, n, k, lda, ldb, ldc;
  float alpha, beta;
} call;

#define MAX_CALLS 256
static sgemm_fn real_sgemm;
static double sgemm_total;
static int recording, ncalls;
static call calls[MAX_CALLS];

/* The interposer: libselut.a's blas.o binds to this definition at link time. */
void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float *a,
                 const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                 const blasint ldc) {
  if (!real_sgemm) real_sgemm = (sgemm_fn)(uintptr_t)dlsym(RTLD_NEXT, "cblas_sgemm");
  if (recording && ncalls < MAX_CALLS) calls[ncalls++] = (call){ta, tb, m, n, k, lda, ldb, ldc, alpha, beta};
  double t0 = now();
  real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  sgemm_total += now() - t0;
}

static int l_reset(lua_State *L) {
  (void)L;
  sgemm_total = 0;
  return 0;
}
static int l_seconds(lua_State *L) {
  lua_pushnumber(L, sgemm_total);
  return 1;
}
static int l_record(lua_State *L) {
  recording = lua_toboolean(L, 1);
  if (recording) ncalls = 0;
  return 0;
}

/* Seconds for `steps` repetitions of the recorded step's sgemm calls, each
 * call on buffers of its own (like the layers' own weights/activations). */
static double replay(const call *cs, int nc, int steps) {
  float *buf[MAX_CALLS][3];
  sl_rng r;
  sl_rng_seed(&r, 7);
  for (int i = 0; i < nc; i++) {
    const call *c = &cs[i];
    size_t sa = (size_t)(c->ta == CblasNoTrans ? c->m : c->k) * (size_t)c->lda;
    size_t sb = (size_t)(c->tb == CblasNoTrans ? c->k : c->n) * (size_t)c->ldb;
    size_t sc = (size_t)c->m * (size_t)c->ldc;
    size_t sz[3] = {sa, sb, sc};
    for (int j = 0; j < 3; j++) {
      buf[i][j] = malloc(sz[j] * sizeof(float));
      if (!buf[i][j]) return -1;
      sl_rng_fill_uniform_f32(&r, buf[i][j], sz[j], -0.1f, 0.1f);
    }
  }
  double t0 = now();
  for (int s = 0; s < steps; s++)
    for (int i = 0; i < nc; i++) {
      const call *c = &cs[i];
      real_sgemm(CblasRowMajor, c->ta, c->tb, c->m, c->n, c->k, c->alpha, buf[i][0], c->lda, buf[i][1], c->ldb,
                 c->beta, buf[i][2], c->ldc);
    }
  double t = now() - t0;
  for (int i = 0; i < nc; i++)
    for (int j = 0; j < 3; j++) free(buf[i][j]);
  return t;
}

/* The natural shapes: sl_sgemm_f32 splits K into chunks (results independent
 * of the thread count); merge consecutive chunks of one product back. */
static int merge_chunks(call *out) {
  int n = 0;
  for (int i = 0; i < ncalls; i++) {
    const call *c = &calls[i];
    blasint kfull = c->ta == CblasNoTrans ? c->lda : c->tb == CblasTrans ? c->ldb : -1;
    if (n > 0 && c->beta == 1.0f && kfull > 0) {
      call *p = &out[n - 1];
      if (p->ta == c->ta && p->tb == c->tb && p->m == c->m && p->n == c->n && p->lda == c->lda &&
          p->ldb == c->ldb && p->ldc == c->ldc && p->k + c->k <= kfull) {
        p->k += c->k;
        continue;
      }
    }
    out[n++] = *c;
  }
  return n;
}

static int run(int threads, long limit, const char *dir) {
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1);
  lua_pop(L, 1);
  static const luaL_Reg hooks[] = {{"sgemm_reset", l_reset}, {"sgemm_seconds", l_seconds}, {"record", l_record},
                                   {NULL, NULL}};
  luaL_newlib(L, hooks);
  lua_setglobal(L, "bench");
  lua_createtable(L, 2, 0);
  lua_pushfstring(L, "%I", (lua_Integer)limit);
  lua_rawseti(L, -2, 1);
  lua_pushfstring(L, "%d", threads);
  lua_rawseti(L, -2, 2);
  lua_setglobal(L, "arg");
  char path[4096];
  snprintf(path, sizeof path, "%s/epoch.lua", dir);
  /* the script prints one "selut_epoch key=value ..." line; capture it */
  if (luaL_loadfile(L, path) || lua_pcall(L, 0, 0, 0)) {
    fprintf(stderr, "epoch: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_close(L);
  return 0;
}

int main(int argc, char **argv) {
  int only = 0;
  long limit = 10000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) only = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atol(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--threads N] [--limit SAMPLES (0 = all)]\n", argv[0]);
      return 2;
    }
  }
  const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "bench";
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int threads = 1; threads <= 2; threads++) {
    if (only && threads != only) continue;
    if (run(threads, limit, dir)) return 1;
    /* the Lua line above gave seconds and the sgemm seconds of the epoch */
    int steps = (int)((limit > 0 && limit < 60000 ? limit : 60000) + 127) / 128;
    sl_set_num_threads(threads);
    static call natural[MAX_CALLS];
    int nnat = merge_chunks(natural);
    /* at most 40 steps per replay, scaled; 3 alternating rounds, best of each */
    int rsteps = steps < 40 ? steps : 40;
    double t = 1e30, tn = 1e30;
    for (int round = 0; round < 3; round++) {
      double a = replay(natural, nnat, rsteps), b = replay(calls, ncalls, rsteps);
      if (a < tn) tn = a;
      if (b < t) t = b;
    }
    t *= (double)steps / rsteps, tn *= (double)steps / rsteps;
    double flop = 0;
    for (int i = 0; i < nnat; i++) flop += 2.0 * natural[i].m * natural[i].n * natural[i].k;
    printf("sgemm_limit natural_seconds=%.4f chunked_seconds=%.4f threads=%d calls_per_step=%d natural_calls=%d "
           "steps=%d gflops=%.1f\n", tn, t, threads, ncalls, nnat, steps, flop * steps / tn * 1e-9);
  }
  return 0;
}
