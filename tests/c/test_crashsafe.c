/*
 * Crash safety of the three writers a training run depends on: safetensors
 * checkpoints (sl_safetensors_save), PNG pictures (sl_canvas_write_png) and
 * the metrics log (selut.sys.write_file). Each trial overwrites a file that
 * holds a previous version from a child process and SIGKILLs the child after
 * a random delay (0 .. ~1.5x the measured time of one save, seeded, so some
 * kills land before, some during and some after the write). Afterwards the
 * target must be byte-identical to the old file or to the complete new one;
 * for checkpoints the old one must also load with identical tensors. Every
 * series must see both outcomes and at least one kill that left a temporary
 * file behind (killed mid-write), or the kills did not cover the write.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "selut.h"
#include "selut_lua.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CRASH_LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define CRASH_LEAK_CHECK() ((void)0)
#endif

#define TRIALS 60

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads a whole file (malloc'ed, *n bytes); NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
  size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
  fclose(f);
  if (!buf || got != (size_t)len) {
    free(buf);
    return NULL;
  }
  *n = got;
  return buf;
}

static int same_bytes(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
  return na == nb && memcmp(a, b, na) == 0;
}

static void make_dir(char *dir, size_t n) {
  snprintf(dir, n, "/tmp/selut-crash-XXXXXX");
  cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
}

/* Removes dir and what a killed writer may have left in it (temp files). */
static void remove_dir(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Deletes what a killed writer left behind (its temporary file) in dir:
 * everything but the target and the references. Returns how many. */
static int remove_leftovers(const char *dir, const char *name) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, name) == 0 || strncmp(e->d_name, "ref", 3) == 0) continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
    n++;
  }
  closedir(d);
  return n;
}

/* The writer under test: writes version `which` (0 old, 1 new) to path;
 * returns 0 on success. Runs in the parent (to make the reference files)
 * and in the killed children. */
typedef int (*writer_fn)(const char *path, int which);

/* ---- checkpoints ---- */

#define CK_TENSORS 4
#define CK_NUMEL (1 << 20) /* 4 x 4 MB: a save takes tens of milliseconds */

static sl_tensor *ck_tensors[2][CK_TENSORS];

static void ck_make(void) {
  int64_t shape[1] = {CK_NUMEL};
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < CK_TENSORS; i++) {
      ck_tensors[v][i] = sl_tensor_empty(1, shape);
      cr_assert_not_null(ck_tensors[v][i], "%s", sl_last_error());
      for (int64_t k = 0; k < CK_NUMEL; k++) ck_tensors[v][i]->data[k] = (float)(v * 1000 + i) + (float)k * 0.5f;
    }
}

static void ck_free(void) {
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < CK_TENSORS; i++) {
      sl_tensor_release(ck_tensors[v][i]);
      ck_tensors[v][i] = NULL;
    }
}

static int ck_write(const char *path, int which) {
  static const char *const names[CK_TENSORS] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  const char *keys[1] = {"epoch"}, *vals[2][1] = {{"3"}, {"4"}};
  return sl_safetensors_save(path, CK_TENSORS, names, ck_tensors[which], 1, keys, vals[which]);
}

/* The checkpoint at path loads and equals version `which` tensor by tensor. */
static void ck_check_loads(const char *path, int which) {
  sl_safetensors *st = sl_safetensors_load(path);
  cr_assert_not_null(st, "checkpoint does not load: %s", sl_last_error());
  cr_assert_eq(sl_safetensors_count(st), CK_TENSORS);
  static const char *const names[CK_TENSORS] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  for (int i = 0; i < CK_TENSORS; i++) {
    int k = sl_safetensors_find(st, names[i]);
    cr_assert_geq(k, 0, "tensor %s missing", names[i]);
    sl_tensor *t = sl_safetensors_tensor(st, k);
    cr_assert_eq(t->numel, CK_NUMEL);
    cr_assert_eq(memcmp(t->data, ck_tensors[which][i]->data, sizeof(float) * CK_NUMEL), 0,
                 "tensor %s differs from version %d", names[i], which);
  }
  cr_assert_str_eq(sl_safetensors_meta_get(st, "epoch"), which ? "4" : "3");
  sl_safetensors_free(st);
}

/* ---- PNG ---- */

static sl_canvas *png_canvas[2];

static void png_make(void) {
  for (int v = 0; v < 2; v++) {
    png_canvas[v] = sl_canvas_new(640, 480, v ? 0x204080 : 0xffffff);
    cr_assert_not_null(png_canvas[v], "%s", sl_last_error());
    /* noise-like content so compression takes a while */
    uint32_t s = 12345u + (uint32_t)v;
    for (int y = 0; y < 480; y++)
      for (int x = 0; x < 640; x++) {
        s = s * 1664525u + 1013904223u;
        sl_canvas_set(png_canvas[v], x, y, s >> 8);
      }
  }
}

static void png_free(void) {
  for (int v = 0; v < 2; v++) {
    sl_canvas_free(png_canvas[v]);
    png_canvas[v] = NULL;
  }
}

static int png_write(const char *path, int which) { return sl_canvas_write_png(png_canvas[which], path); }

/* ---- metrics log (selut.sys.write_file, as examples/train.lua uses it) ---- */

static lua_State *metrics_L;

static void metrics_make(void) {
  metrics_L = luaL_newstate();
  cr_assert_not_null(metrics_L);
  luaL_openlibs(metrics_L);
  luaL_requiref(metrics_L, "selut", luaopen_selut, 1);
  lua_settop(metrics_L, 0);
  /* two versions of a 6 MB CSV log: the new one has one more epoch line */
  static const char *const setup =
      "local lines = {'epoch,batch,loss,acc'}\n"
      "for i = 1, 120000 do lines[#lines + 1] = string.format('%d,%d,%.6f,%.4f', i // 100, i, 1 / i, i / 1e6) end\n"
      "metrics_old = table.concat(lines, '\\n') .. '\\n'\n"
      "metrics_new = metrics_old .. '1201,120001,0.000008,0.1200\\n'\n"
      "function write_metrics(path, which) selut.sys.write_file(path, which == 1 and metrics_new or metrics_old) end\n";
  cr_assert_eq(luaL_dostring(metrics_L, setup), LUA_OK, "%s", lua_tostring(metrics_L, -1));
}

static void metrics_free(void) {
  lua_close(metrics_L);
  metrics_L = NULL;
}

static int metrics_write(const char *path, int which) {
  lua_getglobal(metrics_L, "write_metrics");
  lua_pushstring(metrics_L, path);
  lua_pushinteger(metrics_L, which);
  int st = lua_pcall(metrics_L, 2, 0, 0);
  if (st != LUA_OK) lua_pop(metrics_L, 1);
  return st == LUA_OK ? 0 : -1;
}

/* ---- the kill loop ---- */

/* Runs TRIALS kill trials of writer over dir/name; check_old (may be NULL)
 * is an extra check on a target that holds the old version. */
static void kill_trials(const char *name, writer_fn writer, void (*check_old)(const char *path)) {
  char dir[64], path[128], ref[2][128];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unsigned char *want[2];
  size_t nwant[2];
  double t_write = 0;
  for (int v = 0; v < 2; v++) {
    snprintf(ref[v], sizeof ref[v], "%s/ref%d-%s", dir, v, name);
    double t0 = now();
    cr_assert_eq(writer(ref[v], v), 0, "writing reference %d: %s", v, sl_last_error());
    t_write += (now() - t0) / 2;
    want[v] = slurp(ref[v], &nwant[v]);
    cr_assert_not_null(want[v]);
  }
  cr_assert(!same_bytes(want[0], nwant[0], want[1], nwant[1]), "old and new versions must differ");
  /* A forked writer can be much slower than the parent (under qemu the
   * child rebuilds its translated code): time one, fork to exit, and let
   * the kill window cover the slower of the two. */
  {
    char scratch[160];
    snprintf(scratch, sizeof scratch, "%s/child-%s", dir, name);
    fflush(NULL);
    double t0 = now();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) _exit(writer(scratch, 1) == 0 ? 0 : 3);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    double t_child = now() - t0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked writer failed on its own");
    remove(scratch);
    if (t_child > t_write) t_write = t_child;
  }

  unsigned seed = 20261124u;
  int outcome[2] = {0, 0}, leftovers = 0;
  for (int trial = 0; trial < TRIALS; trial++) {
    cr_assert_eq(writer(path, 0), 0, "writing the old version: %s", sl_last_error()); /* the previous file */
    /* delay uniform in [0, 1.5 * t_write + 2 ms) */
    seed = seed * 1103515245u + 12345u;
    double frac = (double)(seed >> 8) / (double)(1u << 24);
    long delay = (long)(frac * (1.5 * t_write + 0.002) * 1e9); /* ns */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
      int st = writer(path, 1);
      _exit(st == 0 ? 0 : 3); /* no atexit handlers, no leak report in the child */
    }
    struct timespec ts = {delay / 1000000000L, delay % 1000000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) != 0), "trial %d: the writer failed on its own", trial);

    size_t n;
    unsigned char *got = slurp(path, &n);
    cr_assert_not_null(got, "trial %d: %s is missing after the kill", trial, path);
    int is_old = same_bytes(got, n, want[0], nwant[0]), is_new = same_bytes(got, n, want[1], nwant[1]);
    free(got);
    cr_assert(is_old || is_new, "trial %d (kill after %ld us): %s is neither the old nor the new file (%zu bytes)",
              trial, delay / 1000, name, n);
    outcome[is_new]++;
    leftovers += remove_leftovers(dir, name);
    if (is_old && check_old) check_old(path);
  }
  cr_log_info("%s: %d trials, save %.1f ms, old kept %d, new complete %d, temp files left by kills %d", name,
              TRIALS, t_write * 1e3, outcome[0], outcome[1], leftovers);
  cr_assert_gt(outcome[0], 0, "%s: no kill landed before the rename (save takes %.1f ms)", name, t_write * 1e3);
  cr_assert_gt(outcome[1], 0, "%s: no save completed before its kill", name);
  cr_assert_gt(leftovers, 0, "%s: no kill landed while the temporary file was being written", name);
  free(want[0]);
  free(want[1]);
  remove_dir(dir);
}

static void ck_check_old(const char *path) { ck_check_loads(path, 0); }

Test(crashsafe, checkpoint_survives_sigkill_during_save, .timeout = 120) {
  ck_make();
  kill_trials("model.safetensors", ck_write, ck_check_old);
  ck_free();
  CRASH_LEAK_CHECK();
}

Test(crashsafe, png_survives_sigkill_during_write, .timeout = 120) {
  png_make();
  kill_trials("act.png", png_write, NULL);
  png_free();
  CRASH_LEAK_CHECK();
}

Test(crashsafe, metrics_log_survives_sigkill_during_write, .timeout = 120) {
  metrics_make();
  kill_trials("metrics.csv", metrics_write, NULL);
  metrics_free();
  CRASH_LEAK_CHECK();
}

/* The reference check itself can fail: a truncated checkpoint is neither
 * version, and does not load. */
Test(crashsafe, truncated_checkpoint_is_detected) {
  ck_make();
  char dir[64], path[128];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/t.safetensors", dir);
  cr_assert_eq(ck_write(path, 0), 0, "%s", sl_last_error());
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_eq(truncate(path, sb.st_size / 2), 0);
  cr_assert_null(sl_safetensors_load(path), "a half-written checkpoint loaded");
  cr_assert_neq(strstr(sl_last_error(), "t.safetensors"), NULL, "message should name the file: %s", sl_last_error());
  remove_dir(dir);
  ck_free();
  CRASH_LEAK_CHECK();
}
