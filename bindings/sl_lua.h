/*
 * Internal helpers shared by the binding files: the per-state context,
 * tensor boxes, turning core failures into Lua errors, options tables,
 * metatable names, the per-area openers. Defined in sl_lua.c, except the
 * tensor and module boxes' (lua_tensor.c, lua_nn.c). Not installed;
 * embedders use selut_lua.h. docs/architecture.md maps the files.
 */
#ifndef SL_LUA_H
#define SL_LUA_H
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "selut.h"

/* Metatable names are the Lua-visible type names (luaL_typeerror prints them). */
#define SL_LUA_TENSOR "selut.Tensor"
#define SL_LUA_CONTEXT "selut.Context" /* the context's name (its registry key is a static address, sl_lua.c) */

/* Per-lua_State context: lives in a full userdata in the registry, created by
 * luaopen_selut (or on first use). No C globals: two states never share a
 * generator. Userdata that borrow the rng (dropout modules) keep the context
 * alive through their user value. */
typedef struct sl_lua_ctx {
  sl_rng rng;
  uint64_t seed;    /* last manual_seed (or the default) */
  int num_threads;  /* last set_num_threads (0 = library default) */
  size_t gc_limit;  /* core bytes at which the next tensor creation forces a full GC */
  int young_gc;      /* the state runs Lua's generational collector (as last seen; lua_gc.c) */
  size_t young_mark; /* live core bytes after the last young collection, or the lowest since */
  sl_mem_account *account; /* this state's tensor memory (lua_account.c); NULL once closed */
  int64_t sample_offset;   /* rows of the global batch before this process's (selut.dist.sample_offset) */
  int no_grad;             /* > 0 inside selut.no_grad: nothing records (lua_autograd.c) */
  lua_State *ag_L;         /* the thread running sl_ag_backward (Lua Functions call back into it) */
  int *ag_unref;           /* registry refs of freed Lua Function nodes, released at the next record */
  int ag_nunref, ag_capunref;
  sl_ag_pool *ag_pool;     /* recycled nodes and autograd tensors (core/autograd/pool.h), current with the account */
} sl_lua_ctx;

#define SL_LUA_DEFAULT_SEED UINT64_C(67280421310721) /* PyTorch's default seed */
/* Lua's collector sees only the 8-byte boxes, not the tensor memory behind
 * them; creating a tensor forces a full collection once the core's bytes
 * exceed twice what survived the last one plus this slack. */
#define SL_LUA_GC_SLACK ((size_t)16 << 20)
/* In a state running the generational collector, creating a tensor after
 * this many new live core bytes runs a young collection first (about 1 us):
 * the big results a loop just dropped come back before the next one is made,
 * while their blocks are still in cache, as PyTorch's reference counting
 * does. See docs/embedding.md ("The garbage collector"). */
#define SL_LUA_YOUNG_STEP ((size_t)1 << 20)

/* ---- when tensors are freed (lua_gc.c) ---- */
/* Runs the collection a tensor creation makes due, if any (young or full). */
void sl_lua_gc_pressure(lua_State *L);
/* A full collection that also learns whether the state runs the
 * generational collector (c->young_gc). */
void sl_lua_full_gc(lua_State *L, struct sl_lua_ctx *c);
/* 1 when the state runs the generational collector; an incremental state
 * is switched back after one full collection. */
int sl_lua_gc_probe(lua_State *L);

/* Returns the state's context, creating it on first use. Pushes nothing. */
sl_lua_ctx *sl_lua_context(lua_State *L);
/* Pushes the context userdata (for lua_setiuservalue) and returns it. */
sl_lua_ctx *sl_lua_pushcontext(lua_State *L);

/* ---- per-state memory accounts (lua_account.c) ----
 * Register every C function through these (not luaL_setfuncs/luaL_newlib/
 * lua_pushcclosure): the function then runs with its state's memory account
 * current, so core allocations are charged to (and capped for) that state. */
/* luaL_setfuncs(L, l, 0) into the table on top, each function wrapped. */
void sl_lua_setfuncs(lua_State *L, const luaL_Reg *l);
#define sl_lua_newlib(L, l) (luaL_newlibtable(L, l), sl_lua_setfuncs(L, l))
/* lua_pushcclosure(L, f, n), wrapped: f reads its upvalues with
 * sl_lua_upvalueindex(i) (the first upvalue belongs to the wrapper). */
void sl_lua_pushcclosure(lua_State *L, lua_CFunction f, int n);
#define sl_lua_upvalueindex(i) lua_upvalueindex((i) + 1)
/* For entry points that are not wrapped (host helpers; the __index closures,
 * plain lua_pushcclosure so a method lookup costs no account switch): makes
 * L's account current and returns the previous one. Bracket only the core
 * call with it, `prev = sl_lua_enter(L); *box = sl_tensor_...(...);
 * sl_mem_account_use(prev);`, and raise after restoring. */
sl_mem_account *sl_lua_enter(lua_State *L);
/* Called by sl_lua_pushcontext with the new context userdata on top: gives it
 * a __gc closing the account, then creates the account (raises on OOM). */
void sl_lua_ctx_open_account(lua_State *L, sl_lua_ctx *c);

/* Raises the core's last error as a Lua error; never returns. */
int sl_lua_error(lua_State *L);
/* Raises when status != SL_OK (the "%s" of sl_last_error()). */
void sl_lua_check(lua_State *L, int status);

/* Tensor boxes: a userdata holding one reference (sl_tensor **), NULL once
 * closed. sl_lua_newtensor pushes an empty box with the metatable set: store
 * the core result in *box, then raise if it is NULL (the box's __gc frees
 * whatever is stored in it). */
sl_tensor **sl_lua_newtensor(lua_State *L);
/* Pushes a box holding a new uninitialized tensor of this shape for the
 * result of a tensor op that records: it comes from the autograd pool (and
 * goes back there with its last reference), so a training step written with
 * tensor ops allocates nothing once warm. Raises on failure. */
sl_tensor *sl_lua_newresult(lua_State *L, int nd, const int64_t *shape);
/* Pushes a new box holding a new reference to t (t stays owned by its
 * owner too: module outputs, parameters, optimizer state). */
void sl_lua_pushtensor(lua_State *L, sl_tensor *t);
/* The tensor at arg, raising "selut.Tensor expected" or "attempt to use a
 * closed tensor". */
sl_tensor *sl_lua_checktensor(lua_State *L, int arg);
/* The C layer (selut.nn module userdata) at idx, NULL if it is none or
 * released; raises nothing. */
struct sl_module *sl_lua_tomodule(lua_State *L, int idx);
/* The userdata at idx when its metatable has the key tag (a light
 * userdata address) set to a boolean, else NULL: how losses and optimizers
 * recognize their boxes without a name lookup per call. */
static inline void *sl_lua_totagged(lua_State *L, int idx, const void *tag) {
  void *p = lua_touserdata(L, idx);
  int ok = p && lua_getmetatable(L, idx);
  if (ok) {
    ok = lua_rawgetp(L, -1, tag) == LUA_TBOOLEAN;
    lua_pop(L, 2);
  }
  return ok ? p : NULL;
}
/* The optimizer at idx (selut.optim.*), raising on anything else. */
struct sl_optim *sl_lua_checkoptim(lua_State *L, int idx);
struct sl_optim *sl_lua_tooptim(lua_State *L, int idx); /* NULL if not an open optimizer */
/* The tensor at idx or NULL when idx is not an open tensor box. */
sl_tensor *sl_lua_totensor(lua_State *L, int idx);

/* Reads a shape given as varargs of integers starting at arg, or a table
 * at arg ({2, 3}); raises "bad argument" naming the offending size. Returns
 * ndim (1..SL_MAX_DIMS). */
int sl_lua_checkshape(lua_State *L, int arg, int64_t *shape);
/* The same with -1 allowed as a size (view, reshape, expand). */
int sl_lua_checkviewshape(lua_State *L, int arg, int64_t *shape);
/* sl_lua_checkdim for ndim dims (unsqueeze and stack take ndim + 1), and
 * its optional form: def (0-based) when arg is absent or nil.
 * (lua_tensor_shape.c) */
int sl_lua_checkdim_n(lua_State *L, int arg, int ndim);
int sl_lua_optdim(lua_State *L, int arg, int ndim, int def);

/* A dim argument: 1..ndim, or -ndim..-1 counting from the end (PyTorch);
 * returns it 0-based, raising "dimension 3 out of range 1..2" otherwise. */
int sl_lua_checkdim(lua_State *L, int arg, const sl_tensor *t);

/* Field key of the options table at arg: a finite number, or def when the
 * field is absent (or arg is none/nil); raises "field 'key' must be a finite
 * number, got ..." otherwise. */
double sl_lua_optnumfield(lua_State *L, int arg, const char *key, double def);
/* An options table at arg (nil/none: def) whose only key is the boolean
 * `key`: its value, def when absent; raises "unknown option 'x' (expected
 * key)" or "option 'key' must be a boolean, got T". */
int sl_lua_onlyboolopt(lua_State *L, int arg, const char *key, int def);
/* The options table at arg (none/nil: 0, else 1) may hold only the string
 * keys in known (NULL-terminated); raises "unknown option 'x' (known: a, b)"
 * otherwise. */
int sl_lua_checkoptnames(lua_State *L, int arg, const char *const *known);
/* Field k of the options table at arg (none/nil or absent: def), raising
 * "option 'k' must be ..., got ...": an integer in lo..hi, a boolean, or a
 * string (pushed, nil when absent: keep it on the stack while it is used). */
int sl_lua_optintfield(lua_State *L, int arg, const char *k, int lo, int hi, int def);
int sl_lua_optboolfield(lua_State *L, int arg, const char *k, int def);
const char *sl_lua_optstrfield(lua_State *L, int arg, const char *k);
/* A non-empty path string at arg. */
void sl_lua_checkpath(lua_State *L, int arg);

/* Writes "[2 x 3]" into buf (for messages); returns buf. */
const char *sl_lua_shapestr(const sl_tensor *t, char *buf, size_t n);

/* Area openers: each is called with the selut table on top of the stack and
 * leaves the stack as it found it. Adding an area = defining its opener and
 * adding one line to the table in selut_lua.c. */
void sl_lua_open_tensor(lua_State *L);
/* Tensor op families, one binding file each (lua_tensor_<family>.c), opened
 * right after sl_lua_open_tensor. */
void sl_lua_open_tensor_elementwise(lua_State *L);
void sl_lua_open_tensor_reduce(lua_State *L);
void sl_lua_open_tensor_shape(lua_State *L);
void sl_lua_open_tensor_index(lua_State *L);
void sl_lua_open_tensor_random(lua_State *L);
/* With the selut table on top: adds methods to the tensor method table,
 * tensor_fns to selut.tensor and selut_fns to selut itself (each may be
 * NULL; an entry replaces an earlier one of the same name). */
void sl_lua_tensor_extend(lua_State *L, const luaL_Reg *methods, const luaL_Reg *tensor_fns,
                          const luaL_Reg *selut_fns);
/* ---- autograd (lua_autograd.c) ---- */
void sl_lua_open_autograd(lua_State *L);
/* True when an op over a and b (either may be NULL) must record: one of them
 * requires grad and grad mode is on. Costs two pointer tests when no input
 * ever touched autograd. */
int sl_lua_grad_mode(lua_State *L);
static inline int sl_lua_recording(lua_State *L, const sl_tensor *a, const sl_tensor *b) {
  if (!(a && a->ag) && !(b && b->ag)) return 0;
  if (!((a && sl_ag_requires_grad(a)) || (b && sl_ag_requires_grad(b)))) return 0;
  return sl_lua_grad_mode(L);
}
/* Before an in-place write to t by the binding op `op`: raises for a leaf
 * that requires grad (grad mode on) or a recorded tensor, else bumps t's
 * version when something may have saved it. */
void sl_lua_inplace(lua_State *L, sl_tensor *t, const char *op);
/* The out= option (lua_tensor_out.c). sl_lua_optout reads the options table
 * at arg (none/nil: NULL; only the key `out` allowed); sl_lua_outfield reads
 * just its `out` field (for tables with other options). Either returns the
 * tensor or NULL; a non-tensor raises. sl_lua_checkout raises unless out has
 * the result's shape (nd, shape), no input (in1, in2, either NULL) records
 * autograd, and out shares no memory with an input (may_alias: except being
 * that input itself, for ops that may write over their input); then marks
 * out as written in place (sl_lua_inplace). */
sl_tensor *sl_lua_optout(lua_State *L, int arg, const char *op);
sl_tensor *sl_lua_outfield(lua_State *L, int arg, const char *op);
void sl_lua_checkout(lua_State *L, sl_tensor *out, const char *op, int nd, const int64_t *shape, const sl_tensor *in1,
                     const sl_tensor *in2, bool may_alias);
/* Tensor fields grad, grad_fn, requires_grad, is_leaf (pushes nil for other
 * keys) and their assignment (raises for other keys). */
int sl_lua_tensor_getfield(lua_State *L, sl_tensor *t, const char *key);
int sl_lua_tensor_setfield(lua_State *L, sl_tensor *t, const char *key, int val);
void sl_lua_open_nn(lua_State *L);
void sl_lua_open_loss(lua_State *L); /* nn.CrossEntropyLoss, nn.MSELoss (lua_loss.c), after sl_lua_open_nn */
/* With the box of a module or loss at index 1: pushes the tensor box cached
 * in its user value uv when it still holds t (the same buffer, not closed
 * by the user), else a new box for t, cached there. Only this function
 * stores these user values (lua_nn.c). */
void sl_lua_pushcached(lua_State *L, int uv, sl_tensor *t);
/* Pushes an empty box of layer type ("Conv2d": metatable selut.nn.Conv2d,
 * which lua_nn.c registers) and returns its slot: store the new module there,
 * then raise if it is NULL. */
struct sl_module **sl_lua_newmodule(lua_State *L, const char *type);
/* The new module box at the top borrows the context's rng (dropout): keeps
 * the context alive with it. */
void sl_lua_keepcontext(lua_State *L);
extern const luaL_Reg sl_lua_nn_ctors[]; /* lua_nn_ctors.c: Linear, SELU, ..., BatchNorm1d */
void sl_lua_open_nn_rnn(lua_State *L);    /* GRU/LSTM/cells: forward/backward with states (lua_nn_rnn.c) */
void sl_lua_open_nn_layers(lua_State *L); /* Conv1d/2d, pools, Flatten (lua_nn_layers.c) */
void sl_lua_open_nn_attention(lua_State *L); /* MultiheadAttention's calls, nn.F.scaled_dot_product_attention */
void sl_lua_open_optim(lua_State *L);
void sl_lua_open_data(lua_State *L);
void sl_lua_open_io(lua_State *L);
void sl_lua_open_viz(lua_State *L);
void sl_lua_open_viz_plot(lua_State *L); /* viz.plot, viz.confusion into the table on top (lua_viz_plot.c) */
void sl_lua_open_sys(lua_State *L);
void sl_lua_open_limits(lua_State *L); /* adds to the selut table itself */
void sl_lua_open_snn(lua_State *L);
void sl_lua_open_rl(lua_State *L); /* selut.rl.envs (lua_rl.c) */
void sl_lua_open_rl_ops(lua_State *L); /* pushes selut.rl with its kernels (lua_rl_ops.c) */
void sl_lua_open_dist(lua_State *L); /* selut.dist (lua_dist.c, MPI optional) */
/* 0-based MPI rank and world size; 0 and 1 when selut.dist is not initialized
 * (or built without MPI). Returns 1 when MPI is active. (lua_dist.c) */
int sl_lua_dist_info(int *rank0, int *size);
void sl_lua_open_host(lua_State *L); /* selut.print; the host helpers are in lua_host.c */
void sl_lua_open_onnx(lua_State *L); /* selut.onnx's C half (lua_onnx.c) */

#endif
