/*
 * DataParallel's shared-memory step (docs/distributed.md): on ranks of one
 * machine, dp:step(opt) moves the parameters, the optimizer state and every
 * rank's gradients into one shared segment; each rank then sums the ranks'
 * gradients over its slice of the parameters and steps that slice.
 */
#define _GNU_SOURCE /* getpid */
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "dist/shm.h"

#ifdef SELUT_MPI
#include <stdatomic.h>
#include <unistd.h>
#endif

/* Parameters, optimizer state and gradients leave the shared segment for
 * private copies (the other ranks no longer step them), and the optimizer
 * may be stepped on its own again. */
void sl_dist_unshare(lua_State *L, ldp *d) {
  if (!d->shared) return;
  d->shared = 0;
  lua_getiuservalue(L, 1, 1);
  struct sl_optim *o = sl_lua_tooptim(L, -1); /* NULL when it was collected first */
  lua_pop(L, 1);
  int kinds = o ? sl_optim_state_kinds(o) : 0;
  for (int i = 0; i < d->n; i++)
    for (int k = -2; k < kinds; k++) {
      sl_tensor *t = k == -2 ? d->grads[i] : k == -1 ? d->params[i] : sl_optim_state_tensor(o, kinds * i + k, NULL);
      sl_tensor *home = sl_tensor_shares_storage(t, d->seg_t) ? sl_tensor_empty(1, &t->numel) : NULL;
      if (home) sl_tensor_rehome_ex(t, home, 0, SL_REHOME_DETACH); /* t keeps home's storage */
      sl_tensor_release(home);
    }
  if (o) sl_optim_set_external(o, NULL);
  d->opt = NULL;
}


#ifdef SELUT_MPI
static const char dp_owner[] = "selut.dist.DataParallel:step";

/* Ends with a full barrier; fences make the other ranks' plain stores to the
 * segment visible (MPI orders the messages, not our memory). */
static void shared_barrier(lua_State *L) {
  atomic_thread_fence(memory_order_seq_cst);
  MPI_CHECK(L, "DataParallel:step", "MPI_Barrier", sl_dist_mpi()->barrier());
  atomic_thread_fence(memory_order_seq_cst);
}

/* The optimizer must hold exactly DataParallel's parameters, in order. */
const char *sl_dist_optim_matches(ldp *d, struct sl_optim *o) {
  if (sl_optim_param_count(o) != d->n) return "the optimizer holds other parameters than DataParallel";
  for (int i = 0; i < d->n; i++)
    if (sl_optim_param(o, i) != d->params[i]) return "the optimizer holds other parameters than DataParallel";
  return NULL;
}

/* Every tensor that moves into the segment must be movable (not a view
 * sharing its storage with another, not a wrapped host buffer). */
static int movable(const sl_tensor *t) { return sl_tensor_storage_refcount(t) == 1 && sl_tensor_owns_storage(t); }

/* Collective: all ranks call it in their first dp:step. Decides together
 * whether the shared segment is used; on any failure every rank keeps the
 * allreduce path (d->shared_why says why). */
void sl_dist_shared_setup(lua_State *L, ldp *d, struct sl_optim *o) {
  d->shared_tried = 1;
  int r = 0, size = 1;
  sl_dist_mpi()->rank_size(&r, &size);
  int kinds = sl_optim_state_kinds(o);
  const char *why = NULL;
  const char *env = getenv("SELUT_DIST_SHARED");
  if (env && strcmp(env, "0") == 0) why = "SELUT_DIST_SHARED=0";
  if (size > 64) why = "more than 64 ranks";
  for (int i = 0; !why && i < d->n; i++) {
    if (!movable(d->params[i])) why = "a parameter shares its storage with another view";
    for (int k = 0; !why && k < kinds; k++)
      if (!movable(sl_optim_state_tensor(o, kinds * i + k, NULL))) why = "an optimizer state tensor is a view";
  }
  d->seg = (d->total + 15) / 16 * 16;
  size_t floats = (size_t)d->seg * (size_t)(1 + kinds + size);
  size_t bytes = floats * sizeof(float);
  /* agree on the machine and on "no reason against it" (MAX of {key, -key, bad}) */
  long long v[3] = {sl_shm_node_key(), -sl_shm_node_key(), why != NULL};
  MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", sl_dist_mpi()->allreduce(v, 3, SL_MPI_LONG_LONG, SL_MPI_MAX));
  if (!why && v[2]) why = "another rank cannot share its parameters";
  if (!why && v[0] != -v[1]) why = "the ranks are on more than one machine";
  if (why) {
    d->shared_why = why;
    return;
  }
  /* rank 1 creates the segment, the others open it by the name made from
   * rank 1's pid and serial (broadcast) */
  static atomic_llong serial;
  long long id[3] = {0, (long long)getpid(), atomic_fetch_add(&serial, 1)};
  char name[96];
  float *base = NULL;
  if (r == 0) {
    d->swept = sl_shm_sweep_stale(); /* debris of a job that died while setting up */
    sl_shm_name(name, sizeof name, id[1], id[2]);
    base = sl_shm_map(name, bytes, 1);
    id[0] = base != NULL;
  }
  MPI_CHECK(L, "DataParallel:step", "MPI_Bcast", sl_dist_mpi()->bcast(id, 3, SL_MPI_LONG_LONG, 0));
  if (r != 0) {
    sl_shm_name(name, sizeof name, id[1], id[2]);
    base = id[0] ? sl_shm_map(name, bytes, 0) : NULL;
  }
  /* the mapping counts against this state's memory limit like the private
   * parameters, state and gradients it replaces (they are freed below) */
  sl_mem_account *charged = NULL;
  long long ok = base != NULL;
  if (base && sl_mem_charge(bytes, &charged) != SL_OK) {
    sl_shm_unmap(base, bytes);
    base = NULL;
    ok = -1;
  }
  /* 1 everywhere, else the worst: -1 a rank's memory limit, 0 a mapping failed */
  MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", sl_dist_mpi()->allreduce(&ok, 1, SL_MPI_LONG_LONG, SL_MPI_MIN));
  if (r == 0 && id[0]) sl_shm_unlink(name); /* every rank has mapped it (or given up): the name can go */
  if (ok != 1) {
    if (base) {
      sl_shm_unmap(base, bytes);
      sl_mem_credit(charged, bytes);
    }
    d->shared_why = ok < 0 ? "the shared segment would take a rank over its memory limit (selut.set_memory_limit)"
                           : "no shared-memory segment (shm_open, posix_fallocate or mmap failed on a rank: "
                             "/dev/shm too small?)";
    return;
  }
  if (!(d->seg_t = sl_shm_wrap(base, bytes, charged))) sl_lua_error(L);
  d->P = base;
  d->S0 = kinds >= 1 ? base + d->seg : NULL;
  d->S1 = kinds >= 2 ? base + 2 * d->seg : NULL;
  d->G = base + (size_t)(1 + kinds) * (size_t)d->seg;
  /* rank 1's weights and optimizer state become everyone's: it copies them
   * in, the others then point at them without copying */
  unsigned flags = r == 0 ? 0 : SL_REHOME_NOCOPY;
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0) != (r == 0)) {
      shared_barrier(L);
      continue;
    }
    for (int i = 0; i < d->n; i++) {
      int64_t off = (int64_t)(d->P - base) + d->offset[i];
      sl_lua_check(L, sl_tensor_rehome_ex(d->params[i], d->seg_t, off, flags));
      for (int k = 0; k < kinds; k++)
        sl_lua_check(L, sl_tensor_rehome_ex(sl_optim_state_tensor(o, kinds * i + k, NULL), d->seg_t,
                                            (int64_t)(k + 1) * d->seg + d->offset[i], flags));
    }
  }
  /* this rank's gradients move into its own slot (out of d->flat) */
  int64_t gbase = (int64_t)(d->G - base) + (int64_t)r * d->seg;
  for (int i = 0; i < d->n; i++)
    sl_lua_check(L, sl_tensor_rehome_ex(d->grads[i], d->seg_t, gbase + d->offset[i], SL_REHOME_DETACH));
  /* the flat buffer is no longer read (allreduce_gradients refuses now):
   * keep a one-float stand-in (d->flat marks the object open) and free the rest */
  int64_t one = 1;
  sl_tensor *stub = sl_tensor_empty(1, &one);
  if (stub) {
    sl_tensor_release(d->flat);
    d->flat = stub;
  }
  sl_optim_set_external(o, dp_owner);
  d->opt = o;
  d->shared_rank = r;
  d->shared = 1;
}

/* The shared step: after a barrier (every rank's gradients are complete),
 * this rank sums the ranks' gradients over its slice of the parameters, in
 * rank order, into its own gradient slot, steps that slice of P and S, and
 * a second barrier ends the step (nobody reads P or writes a gradient
 * before every slice is done). Returns sum(n_r) (or the rank count). */
lua_Integer sl_dist_shared_step(lua_State *L, ldp *d, struct sl_optim *o, int weighted, lua_Integer n) {
  int r = 0, size = 1;
  sl_dist_mpi()->rank_size(&r, &size);
  float coef_buf[64], *coef = NULL;
  lua_Integer result = size;
  double t0 = sl_dist_now();
  if (d->scaled) { /* loss_scale weighted the gradients already: a plain sum */
    result = (lua_Integer)d->scaled_sum;
    shared_barrier(L);
  } else { /* everyone's n (the allreduce is the first barrier too) */
    long long counts[64] = {0};
    counts[r] = weighted ? (long long)n : 1;
    atomic_thread_fence(memory_order_seq_cst);
    MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", sl_dist_mpi()->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
    atomic_thread_fence(memory_order_seq_cst);
    long long sum = 0;
    for (int q = 0; q < size; q++) sum += counts[q];
    if (sum <= 0) return luaL_error(L, "selut.dist.DataParallel:step: no samples on any rank");
    for (int q = 0; q < size; q++) coef_buf[q] = (float)((double)counts[q] / (double)sum);
    coef = coef_buf;
    result = weighted ? (lua_Integer)sum : size;
  }
  d->scaled = 0;
  double t1 = sl_dist_now();
  size_t a = (size_t)((d->total * r / size + 15) / 16 * 16), b = (size_t)((d->total * (r + 1) / size + 15) / 16 * 16);
  if (b > (size_t)d->total) b = (size_t)d->total;
  if (a > b) a = b;
  float *in[64];
  for (int q = 0; q < size; q++) in[q] = d->G + (size_t)q * (size_t)d->seg;
  float *mine = in[r]; /* this rank's slice of its own gradient takes the sum: the step reads it there */
  sl_shm_sum(mine, in, coef, size, a, b);
  sl_lua_check(L, sl_optim_step_flat(o, d->P + a, mine + a, d->S0 ? d->S0 + a : NULL, d->S1 ? d->S1 + a : NULL,
                                     b - a));
  double t2 = sl_dist_now();
  shared_barrier(L);
  d->comm_seconds += (t1 - t0) + (sl_dist_now() - t2);
  d->pack_seconds += t2 - t1; /* the summing (the step's own work is in there too) */
  d->steps++;
  return result;
}
#endif
