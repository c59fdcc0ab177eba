/*
 * Embedding selut in a C host. luaopen_selut is the Lua C module entry
 * point (require "selut"); the host helpers let a program share float
 * buffers with scripts without copying, route the library's output to its
 * own log, keep per-state data, and bound the time or instructions a script
 * call may take. docs/embedding.md walks through them.
 */
#ifndef SELUT_LUA_H
#define SELUT_LUA_H
#ifdef __cplusplus
extern "C" {
#endif
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Pushes the selut table (also stored in package.loaded["selut"]). The
 * package library must be open (luaL_openlibs). */
int luaopen_selut(lua_State *L);

/* A new state with the standard libraries and selut loaded (package.loaded
 * and the global `selut`), or NULL when it cannot be created; the reason is
 * then in sl_last_error(). Close it with lua_close. Each state has its own
 * generator (seeded with PyTorch's default seed), metatables, scripts and
 * log hook; nothing is shared between states. */
lua_State *sl_lua_newstate(void);

/* Message of the last core failure on this thread (also in core/selut.h). */
const char *sl_last_error(void);

/* ---- tensors shared with the host -------------------------------------- */

/* Called once, when the last reference to a wrapped buffer goes away: the
 * Lua value and every view, dataset or module holding it. That can happen in
 * any later call into Lua that runs the garbage collector, or in lua_close. */
typedef void (*sl_lua_release_fn)(void *ud, float *data);

/* Pushes a float32 tensor of shape shape[0..ndim) (1 <= ndim <= 8, row-major,
 * contiguous) that reads and writes data in place: no copy. The host keeps
 * ownership of the memory: it must stay valid until release(ud, data) is
 * called, or, when release is NULL, until lua_close(L) has returned.
 * Returns 0 and pushes the tensor; on a bad shape or NULL data returns a
 * negative SL_E* code, pushes nothing, does not call release, and leaves the
 * reason in sl_last_error(). Like lua_newuserdatauv, raises only on memory
 * errors. */
int sl_lua_pushbuffer(lua_State *L, float *data, int ndim, const int64_t *shape, sl_lua_release_fn release,
                      void *ud);

typedef struct sl_lua_tensorinfo {
  float *data;       /* first element, row-major contiguous */
  int ndim;          /* 1..8 */
  int64_t shape[8];  /* shape[0..ndim) */
  int64_t numel;
} sl_lua_tensorinfo;

/* Fills *info and returns 1 when the value at idx is an open selut tensor;
 * returns 0 otherwise. The pointer stays valid while the tensor value is
 * reachable and not closed, and until the next call into the library that
 * may resize it (module outputs and gradients are reused buffers: a forward
 * pass with another batch size reallocates them). */
int sl_lua_gettensor(lua_State *L, int idx, sl_lua_tensorinfo *info);

/* ---- output ------------------------------------------------------------ */

/* Receives one line (no trailing newline; msg is NUL-terminated at len). */
typedef void (*sl_lua_log_fn)(void *ud, const char *msg, size_t len);

/* Where selut.print sends its lines in this state. The library writes to no
 * stream by itself; selut.print without a hook writes to stderr. fn == NULL
 * restores that default. When capture_print is nonzero the global `print`
 * is replaced by selut.print too, so plain scripts log through the hook. */
void sl_lua_setlog(lua_State *L, sl_lua_log_fn fn, void *ud, int capture_print);

/* ---- per-state host data ----------------------------------------------- */

/* An opaque pointer kept with the state (NULL until set), for C functions
 * the host registers. */
void sl_lua_sethostdata(lua_State *L, void *p);
void *sl_lua_gethostdata(lua_State *L);

/* ---- budgeted calls ---------------------------------------------------- */

typedef struct sl_lua_budget {
  double ms;                /* wall-clock limit in milliseconds, 0 = none */
  long long instructions;   /* Lua VM instruction limit, 0 = none */
  int exceeded;             /* out: 1 when the call was stopped by the budget */
} sl_lua_budget;

/* lua_pcall with a traceback message handler and an optional budget: the
 * function and its nargs arguments on top of the stack are called; returns
 * LUA_OK with nresults results, or an error status with the message (plus
 * traceback) on the stack. When the budget runs out a Lua error
 * "selut: script stopped: ... budget ... exceeded" is raised inside the
 * script (through lua_sethook, checked every 1000 VM instructions, so a
 * single long C call such as a big matmul finishes first) and raised again
 * at every instruction if the script catches it, so it ends the call.
 * budget may be NULL. Any hook the host had set is suspended during the call
 * and restored afterwards. The state stays usable afterwards. */
int sl_lua_pcall(lua_State *L, int nargs, int nresults, sl_lua_budget *budget);

/* Loads code (chunk name chunkname, may be NULL) and runs it through
 * sl_lua_pcall with no results. Returns LUA_OK, or an error status with the
 * message on the stack. */
int sl_lua_dostring(lua_State *L, const char *code, const char *chunkname, sl_lua_budget *budget);

/* ---- memory accounts --------------------------------------------------- */

/* The memory account of L's selut state (core/tensor/alloc.h): every byte
 * the core allocates for the state (tensors, module buffers, optimizer
 * state) is charged to it, and selut.set_memory_limit caps it, whatever
 * thread runs the state and whatever other states share that thread. A host
 * may read it (sl_mem_account_bytes), cap it (sl_mem_account_set_limit), or
 * make it current (sl_mem_account_use) around its own core calls for L. Every
 * selut function makes it current while it runs and restores the previous
 * one when it returns. A Lua error skips that restore: after an error that
 * escapes a plain lua_pcall, L's account stays current on this thread until
 * the host calls sl_mem_account_use(NULL) or closes L on this thread
 * (sl_lua_pcall and sl_lua_dostring restore the caller's account
 * themselves). Valid until lua_close(L). Raises only on memory errors. */
typedef struct sl_mem_account sl_mem_account;
sl_mem_account *sl_lua_account(lua_State *L);

/* Tells L that its script ended normally (ok != 0) or with an error, just
 * before lua_close(L). With ok, closing L finalizes MPI when selut.dist.init
 * was called and selut.dist.finalize was not (a rank that just ends exits
 * 0); otherwise closing L aborts the MPI job (the failing rank's message is
 * printed first, the other ranks never hang). No-op without selut.dist. */
void sl_lua_dist_ending(lua_State *L, int ok);

#ifdef __cplusplus
}
#endif
#endif
