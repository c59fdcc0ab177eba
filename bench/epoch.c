/* bench/epoch: one epoch of the default recipe (bench/epoch.lua, the real
 * Lua API) timed in this process, with every product timed through
 * sl_sgemm_f32's observer hook, so it reports the share of the epoch spent in
 * sgemm; then the sgemm-bound limit, measured in the same run by replaying
 * one step's exact products (shapes, transposes, beta) with OpenBLAS alone
 * at the same thread count (40 steps, best of 3 rounds, scaled to the
 * epoch's steps): natural_seconds on the products' own shapes (the limit),
 * chunked_seconds on the K chunks sl_sgemm_f32 issues (so results do not
 * depend on the thread count), selut_seconds through sl_sgemm_f32 itself
 * (K chunks, and at 2 threads selut's own two-core split).
 *
 *   build/bench/epoch [--threads N] [--limit SAMPLES]
 * Without --threads it runs 1 and 2 threads; without --limit, 10000 samples
 * (the full 60000-sample epoch: --limit 0). Data: SELUT_FASHION_MNIST or
 * the Debian dataset directory. Run from the source tree (or BENCH_DIR=bench).
 * BENCH_PHASES=1 adds one line with the wall and sgemm seconds of each phase
 * of the step (forward, loss, zero_grad, backward, step, batching). */
#define _GNU_SOURCE
#include <cblas.h>
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

typedef struct call {
  bool ta, tb;
  int m, n, k;
  float beta;
} call;

#define MAX_CALLS 256
static double sgemm_total, sgemm_t0;
static int recording, ncalls;
static call calls[MAX_CALLS];

/* Called by sl_sgemm_f32 (the one entry of every product) on the caller's
 * thread, before and after the product: whole products, before selut cuts
 * them into K chunks and two-core pieces. */
static void observe(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float beta, bool done) {
  if (!done) {
    if (recording && ncalls < MAX_CALLS) calls[ncalls++] = (call){ta, tb, (int)m, (int)n, (int)k, beta};
    sgemm_t0 = now();
  } else {
    sgemm_total += now() - sgemm_t0;
  }
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

enum { REPLAY_NATURAL, REPLAY_CHUNKED, REPLAY_SELUT };
#define KCHUNK 256 /* SL_GEMM_KCHUNK in core/tensor/blas.c */

/* One product with OpenBLAS alone: whole (natural) or in selut's equal K
 * chunks of at most KCHUNK (chunked). */
static void openblas_call(const call *c, const float *a, const float *b, float *cc, int chunked) {
  int lda = c->ta ? c->m : c->k, ldb = c->tb ? c->k : c->n;
  int nch = chunked ? (c->k + KCHUNK - 1) / KCHUNK : 1;
  for (int ci = 0, k0 = 0; ci < nch; ci++) {
    int kc = c->k / nch + (ci < c->k % nch ? 1 : 0);
    const float *ac = c->ta ? a + (size_t)k0 * lda : a + k0, *bc = c->tb ? b + k0 : b + (size_t)k0 * ldb;
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans, c->m, c->n,
                kc, 1.0f, ac, lda, bc, ldb, ci == 0 ? c->beta : 1.0f, cc, c->n);
    k0 += kc;
  }
}

/* Seconds for `steps` repetitions of the recorded step's products, each on
 * buffers of its own (like the layers' own weights/activations): OpenBLAS
 * alone (natural, chunked) or selut's sl_sgemm_f32 (K chunks + own split). */
static double replay(int mode, int steps) {
  float *buf[MAX_CALLS][3];
  sl_rng r;
  sl_rng_seed(&r, 7);
  for (int i = 0; i < ncalls; i++) {
    const call *c = &calls[i];
    size_t sz[3] = {(size_t)c->m * c->k, (size_t)c->k * c->n, (size_t)c->m * c->n};
    for (int j = 0; j < 3; j++) {
      buf[i][j] = malloc(sz[j] * sizeof(float));
      if (!buf[i][j]) return -1;
      sl_rng_fill_uniform_f32(&r, buf[i][j], sz[j], -0.1f, 0.1f);
    }
  }
  double t0 = now();
  for (int s = 0; s < steps; s++)
    for (int i = 0; i < ncalls; i++) {
      const call *c = &calls[i];
      if (mode == REPLAY_SELUT)
        sl_sgemm_f32(c->ta, c->tb, c->m, c->n, c->k, 1.0f, buf[i][0], buf[i][1], c->beta, buf[i][2]);
      else
        openblas_call(c, buf[i][0], buf[i][1], buf[i][2], mode == REPLAY_CHUNKED);
    }
  double t = now() - t0;
  for (int i = 0; i < ncalls; i++)
    for (int j = 0; j < 3; j++) free(buf[i][j]);
  return t;
}

static int run(int threads, long limit, const char *dir) {
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);
  sl_set_sgemm_observer(observe);
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
    /* at most 40 steps per replay, scaled; 3 alternating rounds, best of each:
     * OpenBLAS alone with its own threads (natural shapes: the limit; K
     * chunks), and selut's sl_sgemm_f32 at the same thread count */
    int rsteps = steps < 40 ? steps : 40;
    double tb[3] = {1e30, 1e30, 1e30};
    for (int round = 0; round < 3; round++)
      for (int mode = 0; mode < 3; mode++) {
        if (mode == REPLAY_SELUT) sl_set_num_threads(threads);
        else openblas_set_num_threads(threads);
        double t = replay(mode, rsteps);
        if (t < tb[mode]) tb[mode] = t;
      }
    for (int mode = 0; mode < 3; mode++) tb[mode] *= (double)steps / rsteps;
    double flop = 0;
    for (int i = 0; i < ncalls; i++) flop += 2.0 * calls[i].m * calls[i].n * calls[i].k;
    printf("sgemm_limit natural_seconds=%.4f chunked_seconds=%.4f selut_seconds=%.4f threads=%d calls_per_step=%d "
           "steps=%d gflops=%.1f\n", tb[REPLAY_NATURAL], tb[REPLAY_CHUNKED], tb[REPLAY_SELUT], threads, ncalls, steps,
           flop * steps / tb[REPLAY_NATURAL] * 1e-9);
  }
  return 0;
}
