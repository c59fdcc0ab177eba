/* A game engine that learns while it runs: a fixed-timestep frame loop owning
 * N CartPoles (core/rl/env.h) in its own memory. Each frame it steps the
 * poles with the actions the agent wrote last frame, then hands the agent
 * (examples/game/agent.lua, PPO in selut.rl) its observation, reward and flag
 * arrays as zero-copy tensors: act_frame() observes and writes the next
 * actions into the engine's action array; train_frame(budget_ms) trains
 * within the frame budget. Every script call goes through sl_lua_pcall: an
 * error is logged and the loop goes on. At the end it prints the agent's
 * frame-time percentiles, the resident memory, a hash of the run (same seed
 * and --train-steps => same hash), and writes the learning curve and a
 * filmstrip of the trained agent as PNGs.
 *
 *   make examples && build/examples/game/host [--agents N] [--frames F]
 *     [--budget MS] [--train-steps K] [--seed S] [--out DIR] [--bad CASE]
 *     [--script PATH] [--max-memory BYTES]
 * --bad CASE (tests/embed/run.sh) injects one failure at frame 10: action
 * (an out-of-range action), obs (observations of the wrong shape), nan (a
 * NaN reward), sample (a buffer sampled empty), act (an error inside act),
 * train (an error inside train_for), memory (a script over the memory cap).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "selut.h"
#include "selut_lua.h"

#define HIST_US 100000 /* frame-time histogram: 1 us bins up to 100 ms */

typedef struct timing {
  uint32_t *bins; /* HIST_US + 1 (the last one: >= 100 ms) */
  uint64_t n;
  double max_us, sum_us;
} timing;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* CPU time of the whole process (worker threads included): on a loaded
   machine the wall-clock percentiles measure the scheduler, these the work. */
static double cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void timing_add(timing *t, double us) {
  long b = (long)us;
  t->bins[b < 0 ? 0 : b > HIST_US ? HIST_US : b]++;
  t->n++;
  t->sum_us += us;
  if (us > t->max_us) t->max_us = us;
}

static double timing_pct(const timing *t, double p) {
  uint64_t want = (uint64_t)ceil(p * (double)t->n), acc = 0;
  for (long b = 0; b <= HIST_US; b++) {
    acc += t->bins[b];
    if (acc >= want && want > 0) return (double)b + 1; /* upper edge of the bin */
  }
  return t->max_us;
}

static void timing_print(const char *name, const timing *t) {
  printf("%-14s p50 %7.0f us  p90 %7.0f  p99 %7.0f  max %8.0f  mean %7.1f us  (%llu frames)\n", name,
         timing_pct(t, 0.5), timing_pct(t, 0.9), timing_pct(t, 0.99), t->max_us, t->n ? t->sum_us / (double)t->n : 0,
         (unsigned long long)t->n);
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = -1;
  fclose(f);
  return res * 4; /* 4 KiB pages */
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Calls global fname with the arguments already pushed; logs an error and returns its status. */
static int call(lua_State *L, const char *fname, int nargs, int nres, long frame, int *errors) {
  lua_getglobal(L, fname);
  lua_insert(L, -nargs - 1);
  sl_lua_budget budget = {.ms = 1000}; /* a runaway script is stopped, not the engine */
  int st = sl_lua_pcall(L, nargs, nres, &budget);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    const char *nl = msg ? strchr(msg, '\n') : NULL;
    printf("frame %ld: %s failed: %.*s -- carrying on\n", frame, fname, nl ? (int)(nl - msg) : (int)strlen(msg), msg);
    lua_pop(L, 1);
    (*errors)++;
  }
  return st;
}

static int push_buffer(lua_State *L, const char *name, float *data, int ndim, int64_t a, int64_t b) {
  int64_t shape[2] = {a, b};
  if (sl_lua_pushbuffer(L, data, ndim, shape, NULL, NULL) != 0) return -1;
  lua_setglobal(L, name);
  return 0;
}

/* ---- pictures ---- */

static int write_curve(const char *dir, const double *x, const double *y, size_t n, int agents) {
  char path[512], title[128];
  snprintf(path, sizeof path, "%s/game_curve.png", dir);
  snprintf(title, sizeof title, "PPO on the frame loop: %d CartPoles", agents);
  sl_series s = {"mean episode return", y, x, n};
  sl_plot_opts o = {.title = title, .xlabel = "environment steps", .ylabel = "return", .width = 900, .height = 500};
  int st = sl_plot_write(path, &s, 1, &o);
  if (st == SL_OK) printf("wrote %s\n", path);
  return st;
}

/* One panel: track, cart and pole of state s, at panel origin (ox, oy). */
static void draw_cartpole(sl_canvas *c, int ox, int oy, int w, int h, const double *s, int step) {
  const double scale = w / 4.8; /* the track spans x in [-2.4, 2.4] */
  int ground = oy + h - 22, cx = ox + (int)lround(w / 2.0 + s[0] * scale);
  sl_canvas_rect(c, ox, oy, w, h, 0xccccccu);
  sl_canvas_line(c, ox + 2, ground, ox + w - 3, ground, 1, 0x000000u);
  sl_canvas_fill_rect(c, cx - 18, ground - 14, 36, 14, 0x202020u);
  double len = 1.0 * scale; /* pole length 2 * 0.5 m */
  int px = cx + (int)lround(len * sin(s[2])), py = ground - 14 - (int)lround(len * cos(s[2]));
  sl_canvas_line(c, cx, ground - 14, px, py, 4, 0xca9865u);
  char label[32];
  snprintf(label, sizeof label, "t=%d", step);
  sl_canvas_text(c, ox + 4, oy + 4, label, 1, 0x000000u);
}

/* Runs the trained policy on one fresh CartPole and draws every 25th step. */
static int write_filmstrip(lua_State *L, const char *dir, uint64_t seed, int *errors) {
  enum { COLS = 5, ROWS = 4, PW = 200, PH = 120, EVERY = 25 };
  float obs[4], act[1];
  sl_cartpole e;
  sl_rng r;
  sl_rng_seed(&r, seed + 7);
  sl_cartpole_reset(&e, &r, obs);
  if (push_buffer(L, "FILM_OBS", obs, 2, 1, 4) || push_buffer(L, "FILM_ACT", act, 1, 1, 0)) return -1;
  sl_canvas *c = sl_canvas_new(COLS * PW, ROWS * PH, 0xffffffu);
  if (!c) return -1;
  int panel = 0, steps = 0;
  double ret = 0;
  for (int t = 0; t <= SL_CARTPOLE_MAX_STEPS && panel < COLS * ROWS; t++) {
    if (t % EVERY == 0) {
      draw_cartpole(c, (panel % COLS) * PW, (panel / COLS) * PH, PW, PH, e.state, t);
      panel++;
    }
    if (t == SL_CARTPOLE_MAX_STEPS) break;
    lua_getglobal(L, "FILM_OBS");
    lua_getglobal(L, "FILM_ACT");
    if (call(L, "policy_into", 2, 0, -1, errors) != LUA_OK) break;
    double rew;
    int term, trunc;
    if (sl_cartpole_step(&e, (int)act[0] - 1, obs, &rew, &term, &trunc) != SL_OK) break;
    ret += rew;
    steps++;
    if (term || trunc) break;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/game_filmstrip.png", dir);
  int st = sl_canvas_write_png(c, path);
  sl_canvas_free(c);
  if (st == SL_OK) printf("wrote %s (trained agent: return %.0f in %d steps)\n", path, ret, steps);
  return st;
}

static const char *bad_script =
    "local frame = 0\n"
    "local act, train = act_frame, train_frame\n"
    "act_frame = function(stepped)\n"
    "  frame = frame + 1\n"
    "  if frame == 10 then\n"
    "    if BAD == 'action' then act(stepped); ACTIONS[1] = 3; return end\n"
    "    if BAD == 'obs' then return agent:act(selut.tensor.zeros(N + 1, 4)) end\n"
    "    if BAD == 'sample' then return selut.rl.ReplayBuffer(100, 4):sample(32) end\n"
    "    if BAD == 'act' then error('the agent script failed inside act') end\n"
    "    if BAD == 'memory' then local t = {} for i = 1, 100 do t[i] = selut.tensor.zeros(1024, 1024) end end\n"
    "  end\n"
    "  return act(stepped)\n"
    "end\n"
    "train_frame = function(ms)\n"
    "  if frame == 10 and BAD == 'train' then error('the agent script failed inside train_for') end\n"
    "  return train(ms)\n"
    "end\n";

int main(int argc, char **argv) {
  int agents = 16, train_steps = 0;
  long frames = 20000;
  double budget_ms = 2.0;
  uint64_t seed = 1;
  const char *out = ".", *bad = NULL, *script = "examples/game/agent.lua";
  size_t max_memory = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) goto usage;
    if (!strcmp(a, "--agents")) agents = atoi(v);
    else if (!strcmp(a, "--frames")) frames = atol(v);
    else if (!strcmp(a, "--budget")) budget_ms = atof(v);
    else if (!strcmp(a, "--train-steps")) train_steps = atoi(v);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--bad")) bad = v;
    else if (!strcmp(a, "--script")) script = v;
    else if (!strcmp(a, "--max-memory")) max_memory = strtoull(v, NULL, 10);
    else goto usage;
    i++;
  }
  if (agents < 1 || agents > 256 || frames < 1 || !(budget_ms >= 0) || train_steps < 0) goto usage;

  /* The engine's memory: environments and every buffer the agent sees. */
  size_t N = (size_t)agents;
  sl_cartpole *envs = calloc(N, sizeof *envs);
  float *obs = calloc(N * 4, sizeof(float)), *final_obs = calloc(N * 4, sizeof(float));
  float *actions = calloc(N, sizeof(float)), *reward = calloc(N, sizeof(float));
  float *term = calloc(N, sizeof(float)), *trunc = calloc(N, sizeof(float));
  double *ep_ret = calloc(N, sizeof(double));
  timing t_act = {calloc(HIST_US + 1, sizeof(uint32_t)), 0, 0, 0};
  timing t_train = {calloc(HIST_US + 1, sizeof(uint32_t)), 0, 0, 0};
  timing t_all = {calloc(HIST_US + 1, sizeof(uint32_t)), 0, 0, 0};
  timing t_cpu = {calloc(HIST_US + 1, sizeof(uint32_t)), 0, 0, 0};
  size_t cap = 4096; /* learning-curve points */
  double *cx = calloc(cap, sizeof(double)), *cy = calloc(cap, sizeof(double));
  if (!envs || !obs || !final_obs || !actions || !reward || !term || !trunc || !ep_ret || !t_act.bins ||
      !t_train.bins || !t_all.bins || !t_cpu.bins || !cx || !cy) {
    fprintf(stderr, "host: out of memory\n");
    return 1;
  }
  sl_rng rng;
  sl_rng_seed(&rng, seed);
  for (size_t i = 0; i < N; i++) sl_cartpole_reset(&envs[i], &rng, obs + 4 * i);

  lua_State *L = sl_lua_newstate();
  if (!L) {
    fprintf(stderr, "host: %s\n", sl_last_error());
    return 1;
  }
  if (max_memory) sl_mem_account_set_limit(sl_lua_account(L), max_memory);
  if (push_buffer(L, "OBS", obs, 2, agents, 4) || push_buffer(L, "FINAL_OBS", final_obs, 2, agents, 4) ||
      push_buffer(L, "ACTIONS", actions, 1, agents, 0) || push_buffer(L, "REWARD", reward, 1, agents, 0) ||
      push_buffer(L, "TERMINATED", term, 1, agents, 0) || push_buffer(L, "TRUNCATED", trunc, 1, agents, 0)) {
    fprintf(stderr, "host: %s\n", sl_last_error());
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)seed);
  lua_setglobal(L, "SEED");
  lua_pushinteger(L, agents);
  lua_setglobal(L, "N");
  lua_pushinteger(L, train_steps);
  lua_setglobal(L, "TRAIN_STEPS");
  lua_pushstring(L, bad ? bad : "");
  lua_setglobal(L, "BAD");
  if (luaL_loadfile(L, script) != LUA_OK || sl_lua_pcall(L, 0, 0, NULL) != LUA_OK ||
      (bad && sl_lua_dostring(L, bad_script, "=bad_cases", NULL) != LUA_OK)) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }

  int errors = 0, env_errors = 0;
  uint64_t hash = 14695981039346656037ull;
  long window = frames / 200 > 0 ? frames / 200 : 1, rss_first = -1, rss_last = -1;
  double win_sum = 0;
  long win_n = 0, episodes = 0;
  size_t npts = 0;
  double last_mean = NAN;
  for (long f = 1; f <= frames; f++) {
    int stepped = 0;
    if (f > 1) { /* the physics step of this frame, with last frame's actions */
      if (sl_cartpole_vec_step(envs, N, actions, &rng, obs, reward, term, trunc, final_obs) == SL_OK) {
        stepped = 1;
        for (size_t i = 0; i < N; i++) {
          ep_ret[i] += (double)reward[i];
          if (term[i] != 0 || trunc[i] != 0) {
            win_sum += ep_ret[i], win_n++, episodes++;
            ep_ret[i] = 0;
          }
        }
        if (bad && !strcmp(bad, "nan") && f == 10) reward[0] = NAN; /* a broken reward signal */
      } else {
        printf("frame %ld: environment step refused: %s -- carrying on\n", f, sl_last_error());
        env_errors++;
        for (size_t i = 0; i < N; i++) actions[i] = 1; /* the engine's fallback: push left */
      }
    }
    double t0 = now_us(), c0 = cpu_us();
    lua_pushboolean(L, stepped);
    call(L, "act_frame", 1, 0, f, &errors);
    double t1 = now_us();
    lua_pushnumber(L, budget_ms);
    call(L, "train_frame", 1, 0, f, &errors);
    double t2 = now_us(), c2 = cpu_us();
    timing_add(&t_act, t1 - t0);
    timing_add(&t_train, t2 - t1);
    timing_add(&t_all, t2 - t0);
    timing_add(&t_cpu, c2 - c0);
    hash = fnv1a(hash, obs, N * 4 * sizeof(float));
    hash = fnv1a(hash, actions, N * sizeof(float));
    if (f % window == 0 && win_n > 0) {
      if (npts < cap) cx[npts] = (double)f * (double)N, cy[npts] = win_sum / (double)win_n, npts++;
      last_mean = win_sum / (double)win_n;
      win_sum = 0, win_n = 0;
    }
    if (f % (frames / 10 > 0 ? frames / 10 : 1) == 0) {
      long kb = rss_kb();
      if (rss_first < 0 && f >= frames / 10) rss_first = kb;
      rss_last = kb;
      printf("frame %8ld  env steps %9ld  episodes %7ld  mean return %6.1f  rss %ld KiB\n", f, f * (long)N, episodes,
             last_mean, kb);
    }
  }
  long updates = 0;
  lua_getglobal(L, "agent_stats");
  if (sl_lua_pcall(L, 0, 2, NULL) == LUA_OK) {
    updates = (long)lua_tointeger(L, -2);
    lua_pop(L, 2);
  } else {
    lua_pop(L, 1);
  }
  printf("agents %d  frames %ld  budget %.1f ms  train_steps %d  updates %ld\n", agents, frames, budget_ms, train_steps,
         updates);
  timing_print("act (observe+act)", &t_act);
  timing_print("train", &t_train);
  timing_print("agent frame", &t_all);
  timing_print("agent frame CPU", &t_cpu);
  printf("rss %ld KiB after 10%% of the frames, %ld KiB at the end\n", rss_first, rss_last);
  printf("run hash %016llx\n", (unsigned long long)hash);
  printf("errors survived: %d script, %d environment\n", errors, env_errors);
  if (!bad) {
    write_curve(out, cx, cy, npts, agents);
    write_filmstrip(L, out, seed, &errors);
  }
  lua_close(L);
  free(envs), free(obs), free(final_obs), free(actions), free(reward), free(term), free(trunc), free(ep_ret);
  free(t_act.bins), free(t_train.bins), free(t_all.bins), free(t_cpu.bins), free(cx), free(cy);
  return 0;

usage:
  fprintf(stderr,
          "usage: %s [--agents 1..256] [--frames F] [--budget MS] [--train-steps K] [--seed S] [--out DIR]\n"
          "          [--bad action|obs|nan|sample|act|train|memory] [--script PATH] [--max-memory BYTES]\n",
          argv[0]);
  return 2;
}
