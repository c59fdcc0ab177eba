/* A toy "engine" embedding selut: a fixed number of frames, each with a time
 * budget for the script. The engine owns its sample buffers (C arrays) and
 * hands them to the script without copying; it refreshes a few samples every
 * frame, and the script's selut.Trainer trains on them with step_for(ms).
 * On two frames the engine deliberately calls a broken script function and a
 * runaway loop: both come back as errors through the protected call and the
 * loop goes on. Prints a progress line every 10 frames, then the accuracy.
 *
 *   make examples && build/examples/embed/host [frames=100] [frame_ms=2]
 *   out of the tree: cc host.c $(pkg-config --cflags --libs selut)
 * Exit status 0 when the net learned (accuracy > 0.9), the errors were
 * survived and the engine's buffers were released. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "selut_lua.h"

#define N 512 /* samples: two noisy rings, class 1 inside, class 2 outside */

typedef struct engine {
  float *x, *y; /* N x 2 features, N labels (1 or 2) */
  int released; /* buffers given back by the script side */
  int frame;
  unsigned rng;
  int log_lines;
} engine;

static const char script[] =
    "local nn, optim = selut.nn, selut.optim\n"
    "selut.manual_seed(1)\n"
    "net = nn.Sequential{nn.Linear(2, 32), nn.SELU(), nn.Linear(32, 32), nn.SELU(), nn.Linear(32, 2)}\n"
    "nn.init.lecun_normal(net)\n"
    "local data = selut.data.Dataset(X, Y) -- the engine's arrays, not copies\n"
    "trainer = selut.Trainer{net = net, loss = nn.CrossEntropyLoss(), data = data, batch_size = 32,\n"
    "                        optim = optim.Adam(net:parameters(), {lr = 0.01})}\n"
    "function update(ms)\n"
    "  local p = trainer:step_for(ms)\n"
    "  return p.epoch, p.steps, p.epoch_loss or p.loss or 0\n"
    "end\n"
    "function accuracy()\n"
    "  net:evaluate()\n"
    "  local wrong = (net:forward(X):argmax(2) - Y):abs():sum()\n"
    "  net:train()\n"
    "  return 1 - wrong / #Y\n"
    "end\n"
    "function buggy() return selut.tensor.zeros(3) + selut.tensor.zeros(4) end\n"
    "function runaway() local n = 0 while true do n = n + 1 end end\n"
    "print(string.format('script ready: %d samples, frame %d', #X, engine_frame()))\n";

static float uniform(engine *e) { /* xorshift32 in [0, 1) */
  e->rng ^= e->rng << 13;
  e->rng ^= e->rng >> 17;
  e->rng ^= e->rng << 5;
  return (float)(e->rng >> 8) / 16777216.0f;
}

static void new_sample(engine *e, int i) {
  int inside = i % 2 == 0;
  float r = (inside ? 0.8f : 1.2f) + 0.4f * (uniform(e) - 0.5f);
  float a = 6.2831853f * uniform(e);
  e->x[2 * i] = r * cosf(a);
  e->x[2 * i + 1] = r * sinf(a);
  e->y[i] = inside ? 1.0f : 2.0f;
}

static void engine_log(void *ud, const char *msg, size_t len) {
  engine *e = ud;
  e->log_lines++;
  printf("[script] %.*s\n", (int)len, msg);
}

static void release_buffer(void *ud, float *data) {
  engine *e = ud;
  free(data);
  e->released++;
}

/* engine_frame(): a C function scripts call; finds its engine through the
 * state's host data. */
static int engine_frame(lua_State *L) {
  engine *e = sl_lua_gethostdata(L);
  lua_pushinteger(L, e ? e->frame : -1);
  return 1;
}

/* Calls the global fname with the frame budget; returns the status. */
static int call(lua_State *L, const char *fname, double ms, int nres, const char *what) {
  lua_getglobal(L, fname);
  int nargs = 0;
  if (ms > 0) {
    lua_pushnumber(L, ms);
    nargs = 1;
  }
  sl_lua_budget budget = {.ms = 2 * ms + 20}; /* hard stop well above the trainer's own pacing */
  int st = sl_lua_pcall(L, nargs, nres, &budget);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    const char *nl = strchr(msg, '\n');
    printf("engine: %s failed%s: %.*s -- carrying on\n", what, budget.exceeded ? " (budget)" : "",
           nl ? (int)(nl - msg) : (int)strlen(msg), msg);
    lua_pop(L, 1);
  }
  return st;
}

int main(int argc, char **argv) {
  int frames = argc > 1 ? atoi(argv[1]) : 100; /* >= 1 batch per frame: enough to learn */
  double frame_ms = argc > 2 ? atof(argv[2]) : 2.0;
  if (frames < 1 || !(frame_ms > 0)) {
    fprintf(stderr, "usage: %s [frames >= 1] [frame_ms > 0]\n", argv[0]);
    return 2;
  }
  engine e = {0};
  e.rng = 2463534242u;
  e.x = malloc(N * 2 * sizeof(float));
  e.y = malloc(N * sizeof(float));
  if (!e.x || !e.y) return 1;
  for (int i = 0; i < N; i++) new_sample(&e, i);

  lua_State *L = sl_lua_newstate();
  if (!L) {
    fprintf(stderr, "host: %s\n", sl_last_error());
    return 1;
  }
  sl_lua_setlog(L, engine_log, &e, 1); /* print and selut.print go to the engine's log */
  sl_lua_sethostdata(L, &e);
  lua_register(L, "engine_frame", engine_frame);
  /* The buffers: wrapped, not copied; the engine frees them when Lua lets go. */
  int64_t xs[2] = {N, 2}, ys[1] = {N};
  if (sl_lua_pushbuffer(L, e.x, 2, xs, release_buffer, &e) != 0) { /* the engine still owns both */
    fprintf(stderr, "host: %s\n", sl_last_error());
    lua_close(L);
    free(e.x);
    free(e.y);
    return 1;
  }
  lua_setglobal(L, "X");
  if (sl_lua_pushbuffer(L, e.y, 1, ys, release_buffer, &e) != 0) {
    fprintf(stderr, "host: %s\n", sl_last_error());
    lua_close(L); /* releases X */
    free(e.y);
    return 1;
  }
  lua_setglobal(L, "Y");
  if (sl_lua_dostring(L, script, "=game_script", NULL) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }

  int survived = 0;
  for (e.frame = 1; e.frame <= frames; e.frame++) {
    for (int k = 0; k < 8; k++) new_sample(&e, (e.frame * 8 + k) % N); /* fresh data, seen at once */
    if (e.frame == frames / 3 && call(L, "buggy", 0, 0, "buggy()") != LUA_OK) survived++;
    if (e.frame == frames / 2 && call(L, "runaway", frame_ms, 0, "runaway()") != LUA_OK) survived++;
    if (call(L, "update", frame_ms, 3, "update()") != LUA_OK) continue;
    long epoch = (long)lua_tointeger(L, -3), steps = (long)lua_tointeger(L, -2);
    double loss = lua_tonumber(L, -1);
    lua_pop(L, 3);
    if (e.frame % 10 == 0 || e.frame == frames)
      printf("frame %4d/%d  epoch %3ld  steps %5ld  loss %.4f\n", e.frame, frames, epoch, steps, loss);
  }
  double acc = 0;
  if (call(L, "accuracy", 0, 1, "accuracy()") == LUA_OK) {
    acc = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_close(L); /* the last references to X and Y go: release_buffer runs */
  int expected_errors = (frames / 3 >= 1) + (frames / 2 >= 1);
  printf("accuracy %.3f  script errors survived %d/%d  buffers released %d/2  log lines %d\n", acc, survived,
         expected_errors, e.released, e.log_lines);
  return acc > 0.9 && survived == expected_errors && e.released == 2 ? 0 : 1;
}
