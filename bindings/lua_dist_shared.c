/*
 * DataParallel's shared-memory step (docs/distributed.md): on ranks of one
 * machine, dp:step(opt) moves the parameters, the optimizer state and every
 * rank's gradients into one shared segment; each rank then sums the ranks'
 * gradients over its slice of the parameters and steps that slice. The
 * segment's layout and the per-slice work are core/dist/dp.c; here are the
 * collectives around them.
 */
#define _GNU_SOURCE /* getpid */

#include "dist.h"
#include "dist/shm.h"

#ifdef SELUT_MPI
#include <stdatomic.h>
#include <unistd.h>
#endif

/* Parameters, optimizer state and gradients leave the shared segment for
 * private copies (the other ranks no longer step them), and the optimizer
 * may be stepped on its own again. */
void sl_dist_unshare(lua_State *L, sl_dp *d) {
  if (!d->shared) return;
  lua_getiuservalue(L, 1, 1);
  struct sl_optim *o = sl_lua_tooptim(L, -1); /* NULL when it was collected first */
  lua_pop(L, 1);
  sl_dp_unshare(d, o);
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

/* Collective: all ranks call it in their first dp:step. Decides together
 * whether the shared segment is used; on any failure every rank keeps the
 * allreduce path (d->shared_why says why). */
void sl_dist_shared_setup(lua_State *L, sl_dp *d, struct sl_optim *o) {
  d->shared_tried = 1;
  int r = 0, size = 1;
  sl_dist_mpi()->rank_size(&r, &size);
  const char *why = sl_dp_share_check(d, o, size);
  size_t bytes = sl_dp_shared_bytes(d, o, size);
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
  sl_dp_share_layout(d, o, base);
  /* rank 1's weights and optimizer state become everyone's: it copies them
   * in, the others then point at them without copying */
  unsigned flags = r == 0 ? 0 : SL_REHOME_NOCOPY;
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0) != (r == 0)) {
      shared_barrier(L);
      continue;
    }
    sl_lua_check(L, sl_dp_share_params(d, o, flags));
  }
  /* this rank's gradients move into its own slot (out of d->flat) */
  sl_lua_check(L, sl_dp_share_grads(d, o, r, dp_owner));
}

/* The shared step: after a barrier (every rank's gradients are complete),
 * this rank sums the ranks' gradients over its slice of the parameters, in
 * rank order, into its own gradient slot, steps that slice of P and S, and
 * a second barrier ends the step (nobody reads P or writes a gradient
 * before every slice is done). Returns sum(n_r) (or the rank count). */
lua_Integer sl_dist_shared_step(lua_State *L, sl_dp *d, struct sl_optim *o, int weighted, lua_Integer n) {
  int r = 0, size = 1;
  sl_dist_mpi()->rank_size(&r, &size);
  long long counts[64] = {0}, sum = 0;
  const long long *weights = NULL; /* the counts, unless loss_scale weighted the gradients already */
  lua_Integer result = size;
  double t0 = sl_dist_now();
  if (d->scaled) { /* loss_scale weighted the gradients already: a plain sum */
    result = (lua_Integer)d->scaled_sum;
    shared_barrier(L);
  } else { /* everyone's n (the allreduce is the first barrier too) */
    counts[r] = weighted ? (long long)n : 1;
    atomic_thread_fence(memory_order_seq_cst);
    MPI_CHECK(L, "DataParallel:step", "MPI_Allreduce", sl_dist_mpi()->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
    atomic_thread_fence(memory_order_seq_cst);
    for (int q = 0; q < size; q++) sum += counts[q];
    if (sum <= 0) return luaL_error(L, "selut.dist.DataParallel:step: no samples on any rank");
    result = weighted ? (lua_Integer)sum : size;
    weights = counts;
  }
  d->scaled = 0;
  double t1 = sl_dist_now();
  sl_lua_check(L, sl_dp_shared_step(d, o, weights, sum, r, size));
  double t2 = sl_dist_now();
  shared_barrier(L);
  d->comm_seconds += (t1 - t0) + (sl_dist_now() - t2);
  d->pack_seconds += t2 - t1; /* the summing (the step's own work is in there too) */
  d->steps++;
  return result;
}
#endif
