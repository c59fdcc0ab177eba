/*
 * The selut launcher and REPL, shaped like Lua's own lua.c: options are
 * parsed, every chunk runs through docall (lua_pcall with a traceback
 * message handler), Ctrl-C interrupts a running chunk through a hook
 * (lua.c's laction), and the REPL reads with GNU readline (history in
 * ~/.selut_history, tab completion of globals and table fields from
 * scripts/repl.lua, continuation lines for incomplete statements).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "selut.h"
#include "selut_lua.h"

#define PROGNAME "selut"
#define PROMPT "selut> "
#define PROMPT2 "   >> "

static lua_State *globalL = NULL;
static volatile sig_atomic_t in_readline = 0;

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: " PROGNAME " [options] [script [args]]\n"
          "Runs a Lua 5.4 script with the selut toolkit preloaded as the global 'selut';\n"
          "without a script (and on a terminal) opens an interactive REPL.\n"
          "Options:\n"
          "  -e stat        execute string 'stat' (may repeat)\n"
          "  -i             enter the REPL after running the script / -e\n"
          "  -l mod         require library 'mod' into global 'mod'\n"
          "  -v             show version information\n"
          "  -h, --help     show this help\n"
          "  --threads N    BLAS threads (default: SELUT_NUM_THREADS or all cores)\n"
          "  --max-memory N cap tensor memory at N bytes (512M, 2G: selut.set_memory_limit)\n"
          "  --             stop handling options\n"
          "  -              run stdin as a script\n");
}

static void l_message(const char *msg) {
  fprintf(stderr, "%s: %s\n", PROGNAME, msg);
  fflush(stderr);
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    l_message(msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Hook set by the SIGINT handler: raises an error inside the running chunk. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int sig) {
  (void)sig;
  if (in_readline) { /* at the prompt: drop the line, like a shell */
    rl_crlf();
    rl_replace_line("", 0);
    rl_on_new_line();
    rl_redisplay();
    return;
  }
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  if (globalL) lua_sethook(globalL, lstop, flag, 1);
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

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  struct sigaction sa = {0};
  sa.sa_handler = laction;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  int status = lua_pcall(L, narg, nres, base);
  lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, name);
  return report(L, status);
}

/* arg table like lua.c: arg[0] = script, negatives = interpreter + options. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  if (script == argc) script = 0;
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

/* ---------- REPL ---------- */

static char history_path[4096];

/* Pushes selut.repl[name] (scripts/repl.lua) and returns 1, or pushes
 * nothing and returns 0 when it cannot be had. */
static int push_repl(lua_State *L, const char *name) {
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "selut.repl");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) && lua_getfield(L, -1, name) == LUA_TFUNCTION) {
    lua_remove(L, -2);
    return 1;
  }
  lua_settop(L, top);
  return 0;
}

/* Tab completion: the candidates come from selut.repl.complete(text). */
static char **completion_matches_list;
static int completion_count;

static char *completion_generator(const char *text, int state) {
  (void)text;
  if (state >= completion_count) return NULL;
  return strdup(completion_matches_list[state]);
}

static char **selut_completion(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1;
  lua_State *L = globalL;
  for (int i = 0; i < completion_count; i++) free(completion_matches_list[i]);
  free(completion_matches_list);
  completion_matches_list = NULL;
  completion_count = 0;
  if (!L) return NULL;
  int top = lua_gettop(L);
  if (push_repl(L, "complete")) {
    lua_pushstring(L, text);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
      int n = (int)lua_rawlen(L, -1);
      completion_matches_list = calloc((size_t)n + 1, sizeof *completion_matches_list);
      for (int i = 1; completion_matches_list && i <= n; i++) {
        const char *s = (lua_rawgeti(L, -1, i), lua_tostring(L, -1));
        if (s && (completion_matches_list[completion_count] = strdup(s))) completion_count++;
        lua_pop(L, 1);
      }
    }
  }
  lua_settop(L, top);
  if (completion_count == 0) return NULL;
  if (completion_count == 1) rl_completion_append_character = '\0';
  return rl_completion_matches(text, completion_generator);
}

static char *read_line(const char *prompt) {
  in_readline = 1;
  char *line = readline(prompt);
  in_readline = 0;
  return line;
}

/* Is the chunk incomplete (error at <eof>)? Then keep reading lines. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Reads one statement (maybe several lines, while the chunk is incomplete)
 * and leaves the compiled chunk or an error message on the stack. Returns
 * the load status, or -1 at end of input (Ctrl-D). */
static int load_statement(lua_State *L) {
  char *code = read_line(PROMPT);
  if (!code) return -1;
  if (code[0] == '=') memmove(code, code + 1, strlen(code)); /* Lua 5.1-style "=expr" */
  int status;
  for (;;) {
    /* first as an expression, so "1 + 41" prints 42 */
    const char *ret = lua_pushfstring(L, "return %s;", code);
    status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2);
    if (status == LUA_OK) break;
    lua_pop(L, 1);
    status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
    if (!incomplete(L, status)) break;
    char *more = read_line(PROMPT2);
    if (!more) {
      lua_pushliteral(L, "unfinished statement at end of input");
      status = LUA_ERRSYNTAX;
      break;
    }
    size_t a = strlen(code), b = strlen(more);
    char *joined = realloc(code, a + b + 2);
    if (!joined) {
      free(more);
      lua_pushliteral(L, "out of memory reading input");
      status = LUA_ERRMEM;
      break;
    }
    code = joined;
    code[a] = '\n';
    memcpy(code + a + 1, more, b + 1);
    free(more);
  }
  if (code[0]) {
    add_history(code);
    if (history_path[0]) append_history(1, history_path);
  }
  free(code);
  return status;
}

/* Prints the values a statement returned, through selut.repl.format
 * (tensors get their values plus a shape/mean/std/min/max/NaN line). */
static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  int fmt = push_repl(L, "format") ? lua_gettop(L) : 0;
  for (int i = 1; i <= n; i++) {
    const char *s;
    if (fmt) {
      lua_pushvalue(L, fmt);
      lua_pushvalue(L, base + i);
      if (docall(L, 1, 1) != LUA_OK) {
        report(L, LUA_ERRRUN);
        break;
      }
      s = lua_tostring(L, -1);
    } else {
      s = luaL_tolstring(L, base + i, NULL);
    }
    fputs(s ? s : "?", stdout);
    fputs(i < n ? "\t" : "\n", stdout);
    lua_pop(L, 1);
  }
  fflush(stdout);
  lua_settop(L, base);
}

static void doREPL(lua_State *L) {
  globalL = L;
  const char *home = getenv("HOME");
  history_path[0] = '\0';
  if (home && strlen(home) + 32 < sizeof history_path) {
    snprintf(history_path, sizeof history_path, "%s/.selut_history", home);
    read_history(history_path);
    FILE *touch = fopen(history_path, "a"); /* append_history needs the file */
    if (touch) fclose(touch);
  }
  rl_readline_name = PROGNAME;
  rl_attempted_completion_function = selut_completion;
  rl_basic_word_break_characters = " \t\n\"\\'><=;+-*/%^~#{}()[],";
  struct sigaction sa = {0};
  sa.sa_handler = laction;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  printf("selut %s (%s) -- self-normalizing networks in Lua. Ctrl-D exits.\n", SELUT_VERSION, LUA_RELEASE);
  for (;;) {
    int base = lua_gettop(L);
    int status = load_statement(L);
    if (status == -1) break;
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L, base);
    else
      report(L, status);
    lua_settop(L, base);
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
}

/* ---------- options ---------- */

static int set_threads(lua_State *L, const char *value, const char *origin) {
  char *end;
  long n = strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || n < 1 || n > 1024) {
    fprintf(stderr, "%s: %s expects a thread count from 1 to 1024, got '%s'\n", PROGNAME, origin, value);
    return 0;
  }
  lua_getglobal(L, "selut");
  if (lua_istable(L, -1) && lua_getfield(L, -1, "set_num_threads") == LUA_TFUNCTION) {
    lua_pushinteger(L, n);
    if (report(L, docall(L, 1, 0)) != LUA_OK) return 0;
  } else {
    sl_set_num_threads((int)n);
  }
  lua_settop(L, 0);
  return 1;
}

/* --max-memory: selut.set_memory_limit(value) parses and applies it. */
static int set_max_memory(lua_State *L, const char *value) {
  lua_getglobal(L, "selut");
  lua_getfield(L, -1, "set_memory_limit");
  lua_pushstring(L, value);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "%s: --max-memory: %s\n", PROGNAME, lua_tostring(L, -1));
    lua_settop(L, 0);
    return 0;
  }
  lua_settop(L, 0);
  return 1;
}

enum { RUN_ERROR = 1, RUN_USAGE = 2 };

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int *result = (int *)lua_touserdata(L, 3);
  int script = 0, interactive = 0, has_e = 0;
  const char *threads = getenv("SELUT_NUM_THREADS");
  const char *threads_origin = "SELUT_NUM_THREADS";
  const char *max_memory = NULL;
  *result = RUN_ERROR;
  luaL_checkversion(L);
  lua_gc(L, LUA_GCGEN, 0, 0); /* as lua5.4's own interpreter (lua.c); selut then runs young collections */
  luaL_openlibs(L);
  luaL_requiref(L, "selut", luaopen_selut, 1); /* preloaded as a global */
  lua_pop(L, 1);
  /* pass 1: validate options, find the script */
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') break;
    if (strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_usage(stdout);
      *result = 0;
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("selut %s (%s)\n", SELUT_VERSION, LUA_RELEASE);
      if (argc == 2) {
        *result = 0;
        return 0;
      }
    } else if (strcmp(a, "-i") == 0) {
      interactive = 1;
    } else if (strncmp(a, "-e", 2) == 0 || strncmp(a, "-l", 2) == 0) {
      if (a[2] == '\0' && (++i >= argc || argv[i] == NULL)) {
        fprintf(stderr, "%s: '%s' needs an argument\n", PROGNAME, a);
        print_usage(stderr);
        *result = RUN_USAGE;
        return 0;
      }
      if (a[1] == 'e') has_e = 1;
    } else if (strcmp(a, "--threads") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "%s: '--threads' needs a number\n", PROGNAME);
        *result = RUN_USAGE;
        return 0;
      }
      threads = argv[i];
      threads_origin = "--threads";
    } else if (strcmp(a, "--max-memory") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "%s: '--max-memory' needs a byte count (e.g. 512M)\n", PROGNAME);
        *result = RUN_USAGE;
        return 0;
      }
      max_memory = argv[i];
    } else if (strncmp(a, "--max-memory=", 13) == 0) {
      max_memory = a + 13;
    } else if (strncmp(a, "--threads=", 10) == 0) {
      threads = a + 10;
      threads_origin = "--threads";
    } else {
      fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, a);
      print_usage(stderr);
      *result = RUN_USAGE;
      return 0;
    }
  }
  script = i < argc ? i : 0;
  createargtable(L, argv, argc, script ? script : argc);
  if (threads && !set_threads(L, threads, threads_origin)) {
    *result = RUN_USAGE;
    return 0;
  }
  if (max_memory && !set_max_memory(L, max_memory)) {
    *result = RUN_USAGE;
    return 0;
  }
  /* pass 2: run -e and -l in order */
  int stop = script ? script : argc;
  for (i = 1; i < stop; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--threads") == 0 || strcmp(a, "--max-memory") == 0) {
      i++;
      continue;
    }
    if (strncmp(a, "-e", 2) == 0 || strncmp(a, "-l", 2) == 0) {
      const char *v = a[2] ? a + 2 : argv[++i];
      int st = a[1] == 'e' ? dostring(L, v, "=(command line)") : dolibrary(L, v);
      if (st != LUA_OK) return 0;
    }
  }
  if (script && handle_script(L, argv + script) != LUA_OK) return 0;
  if (interactive) {
    doREPL(L);
  } else if (!script && !has_e) {
    if (isatty(0)) {
      doREPL(L);
    } else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
      return 0;
    }
  }
  *result = 0;
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) {
    l_message("cannot create Lua state: not enough memory");
    return EXIT_FAILURE;
  }
  int result = RUN_ERROR;
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  lua_pushlightuserdata(L, &result);
  int status = lua_pcall(L, 3, 0, 0);
  report(L, status);
  sl_lua_dist_ending(L, status == LUA_OK && result == 0); /* a rank that just ends finalizes MPI */
  lua_close(L);
  return status == LUA_OK ? result : EXIT_FAILURE;
}
