/* DataParallel's collectives (dp.h): the allreduce of the flat gradient
 * buffer, the broadcast of the weights, and the shared-memory step of ranks
 * on one machine, over the MPI glue (comm.h). Every function is collective:
 * all ranks call it in the same order. */
#define _GNU_SOURCE /* getpid */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/comm.h"
#include "dist/dp.h"
#include "dist/shm.h"
#include "tensor/alloc.h"
#include "tensor/error.h"

#define GLUE sl_comm_glue()
#define TRY(fn, what, call)                                \
  do {                                                     \
    int rc_ = (call);                                      \
    if (rc_ != 0) return sl_comm_fail(fn, what, rc_);      \
  } while (0)

static const char STEP[] = "DataParallel:step";

/* ---- the allreduce path ---- */

int sl_dp_allreduce(sl_dp *d, int weighted, int64_t n, int64_t *result) {
  static const char fn[] = "DataParallel:allreduce_gradients";
  int scaled = d->scaled;
  d->scaled = 0;
  int r, size, st;
  int active = sl_comm_info(&r, &size);
  double t0 = sl_comm_now();
  sl_dp_gather_grads(d);
  float *f = d->flat->data;
  double t1 = sl_comm_now();
  int same_n = 1;
  if (active) { /* n is sent as -1 after loss_scale, so every rank sees a disagreement on that */
    int64_t lo, hi;
    if ((st = sl_comm_check_same_numel_n(fn, d->total + 1, scaled ? -1 : n, &lo, &hi)) != SL_OK) return st;
    if ((lo < 0) != (hi < 0))
      return sl_fail(SL_EINVAL, "selut.dist.%s: some ranks called loss_scale this step and others did not (every "
                                "rank must)", fn);
    same_n = lo == hi;
  }
  double t2 = sl_comm_now();
  if (weighted && !same_n) sl_dp_scale(d, (float)n);
  f[d->total] = (float)n; /* exact: n <= 2^24 */
  double t3 = sl_comm_now();
  if (active && (st = sl_comm_allreduce_floats(fn, f, d->total + 1, SL_MPI_SUM)) != SL_OK) return st;
  double t4 = sl_comm_now();
  float count = weighted || scaled ? f[d->total] : (float)size;
  if (!(count > 0)) return sl_fail(SL_EINVAL, "selut.dist.%s: no samples on any rank", fn);
  float scale = scaled ? 1.0f : weighted && !same_n ? 1.0f / count : 1.0f / (float)size;
  if (scale != 1.0f) sl_dp_scale(d, scale);
  sl_dp_scatter_grads(d);
  d->pack_seconds += (t1 - t0) + (t3 - t2) + (sl_comm_now() - t4);
  d->comm_seconds += (t2 - t1) + (t4 - t3);
  d->steps++;
  *result = weighted || scaled ? (int64_t)count : size;
  return SL_OK;
}

int sl_dp_broadcast(sl_dp *d, int root) {
  static const char fn[] = "DataParallel:broadcast_parameters";
  if (!sl_comm_active()) return SL_OK;
  int64_t nb = sl_dp_buffer_numel(d), lo, hi;
  int st = sl_comm_check_same_numel_n(fn, d->total, nb, &lo, &hi);
  if (st != SL_OK) return st;
  if (lo != hi)
    return sl_fail(SL_EINVAL, "selut.dist.%s: ranks disagree on the buffers: %lld buffer elements here, between %lld "
                              "and %lld across ranks", fn, (long long)nb, (long long)lo, (long long)hi);
  if (!d->shared) { /* shared: one copy of the weights for all ranks of this machine already */
    /* Not through d->flat: the gradients live there (rehomed), and a
     * broadcast between a backward and the step must not overwrite them. */
    int64_t total = d->total;
    sl_tensor *tmp = sl_tensor_empty(1, &total);
    if (!tmp) {
      char why[512];
      snprintf(why, sizeof why, "%s", sl_last_error());
      return sl_fail(sl_last_status(), "selut.dist.%s: %s", fn, why);
    }
    sl_dp_pack_params(d, tmp->data);
    st = sl_comm_bcast_floats(fn, tmp->data, d->total, root);
    if (st == SL_OK) sl_dp_unpack_params(d, tmp->data);
    sl_tensor_release(tmp);
    if (st != SL_OK) return st;
  }
  for (int i = 0; i < d->nbuf; i++)
    if ((st = sl_comm_bcast_floats(fn, d->bufs[i]->data, d->bufs[i]->numel, root)) != SL_OK) return st;
  return SL_OK;
}

int sl_dp_loss_scale(sl_dp *d, int64_t n, double *scale) {
  long long sum = (long long)n;
  if (sl_comm_active()) TRY("DataParallel:loss_scale", "MPI_Allreduce", GLUE->allreduce(&sum, 1, SL_MPI_LONG_LONG, SL_MPI_SUM));
  if (sum <= 0) return sl_fail(SL_EINVAL, "selut.dist.DataParallel:loss_scale: no samples on any rank");
  d->scaled = 1;
  d->scaled_n = n;
  d->scaled_sum = sum;
  *scale = (double)n / (double)sum;
  return SL_OK;
}

/* ---- the shared-memory step of ranks on one machine ---- */

/* Ends with a full barrier; fences make the other ranks' plain stores to the
 * segment visible (MPI orders the messages, not our memory). */
static int shared_barrier(void) {
  atomic_thread_fence(memory_order_seq_cst);
  TRY(STEP, "MPI_Barrier", GLUE->barrier());
  atomic_thread_fence(memory_order_seq_cst);
  return SL_OK;
}

const char *sl_dp_optim_matches(const sl_dp *d, const sl_optim *o) {
  if (sl_optim_param_count(o) != d->n) return "the optimizer holds other parameters than DataParallel";
  for (int i = 0; i < d->n; i++)
    if (sl_optim_param(o, i) != d->params[i]) return "the optimizer holds other parameters than DataParallel";
  return NULL;
}

/* Every tensor that moves into the segment must be movable (not a view
 * sharing its storage with another, not a wrapped host buffer). */
static int movable(const sl_tensor *t) { return sl_tensor_storage_refcount(t) == 1 && sl_tensor_owns_storage(t); }

/* NULL when this rank can share (with `size` ranks); else why not. */
static const char *share_check(const sl_dp *d, const sl_optim *o, int size) {
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
  return why;
}

/* Parameters and o's state move to their places in the segment (flags:
 * SL_REHOME_NOCOPY on the ranks that take rank 1's values). */
static int share_params(sl_dp *d, sl_optim *o, int kinds, unsigned flags) {
  for (int i = 0; i < d->n; i++) {
    int st = sl_tensor_rehome_ex(d->params[i], d->seg_t, d->offset[i], flags);
    for (int k = 0; st == SL_OK && k < kinds; k++)
      st = sl_tensor_rehome_ex(sl_optim_state_tensor(o, kinds * i + k, NULL), d->seg_t,
                               (int64_t)(k + 1) * d->seg + d->offset[i], flags);
    if (st != SL_OK) return st;
  }
  return SL_OK;
}

/* Maps the segment on every rank (rank 1 creates it, the others open it by
 * the name made from rank 1's pid and serial, broadcast); NULL on this rank
 * when that failed, *ok then saying why on some rank. */
static int map_segment(sl_dp *d, int r, size_t bytes, float **base_out, sl_mem_account **charged, long long *ok) {
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
  TRY(STEP, "MPI_Bcast", GLUE->bcast(id, 3, SL_MPI_LONG_LONG, 0));
  if (r != 0) {
    sl_shm_name(name, sizeof name, id[1], id[2]);
    base = id[0] ? sl_shm_map(name, bytes, 0) : NULL;
  }
  /* the mapping counts against this state's memory limit like the private
   * parameters, state and gradients it replaces (they are freed below) */
  *ok = base != NULL;
  if (base && sl_mem_charge(bytes, charged) != SL_OK) {
    sl_shm_unmap(base, bytes);
    base = NULL;
    *ok = -1;
  }
  /* 1 everywhere, else the worst: -1 a rank's memory limit, 0 a mapping failed */
  TRY(STEP, "MPI_Allreduce", GLUE->allreduce(ok, 1, SL_MPI_LONG_LONG, SL_MPI_MIN));
  if (r == 0 && id[0]) sl_shm_unlink(name); /* every rank has mapped it (or given up): the name can go */
  *base_out = base;
  return SL_OK;
}

int sl_dp_share(sl_dp *d, sl_optim *o) {
  d->shared_tried = 1;
  int r = 0, size = 1;
  GLUE->rank_size(&r, &size);
  int kinds = sl_optim_state_kinds(o);
  const char *why = share_check(d, o, size);
  d->seg = (d->total + 15) / 16 * 16;
  size_t bytes = (size_t)d->seg * (size_t)(1 + kinds + size) * sizeof(float);
  /* agree on the machine and on "no reason against it" (MAX of {key, -key, bad}) */
  long long v[3] = {sl_shm_node_key(), -sl_shm_node_key(), why != NULL};
  TRY(STEP, "MPI_Allreduce", GLUE->allreduce(v, 3, SL_MPI_LONG_LONG, SL_MPI_MAX));
  if (!why && v[2]) why = "another rank cannot share its parameters";
  if (!why && v[0] != -v[1]) why = "the ranks are on more than one machine";
  if (why) {
    d->shared_why = why;
    return SL_OK;
  }
  float *base = NULL;
  sl_mem_account *charged = NULL;
  long long ok = 0;
  int st = map_segment(d, r, bytes, &base, &charged, &ok);
  if (st != SL_OK) return st;
  if (ok != 1) {
    if (base) {
      sl_shm_unmap(base, bytes);
      sl_mem_credit(charged, bytes);
    }
    d->shared_why = ok < 0 ? "the shared segment would take a rank over its memory limit (selut.set_memory_limit)"
                           : "no shared-memory segment (shm_open, posix_fallocate or mmap failed on a rank: "
                             "/dev/shm too small?)";
    return SL_OK;
  }
  if (!(d->seg_t = sl_shm_wrap(base, bytes, charged))) return sl_last_status();
  d->P = base;
  d->S0 = kinds >= 1 ? base + d->seg : NULL;
  d->S1 = kinds >= 2 ? base + 2 * d->seg : NULL;
  d->G = base + (size_t)(1 + kinds) * (size_t)d->seg;
  /* rank 1's weights and optimizer state become everyone's: it copies them
   * in, the others then point at them without copying */
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0) != (r == 0)) st = shared_barrier();
    else st = share_params(d, o, kinds, r == 0 ? 0 : SL_REHOME_NOCOPY);
    if (st != SL_OK) return st;
  }
  /* this rank's gradients move into its own slot (out of d->flat) */
  int64_t gbase = (int64_t)(d->G - base) + (int64_t)r * d->seg;
  for (int i = 0; i < d->n; i++)
    if ((st = sl_tensor_rehome_ex(d->grads[i], d->seg_t, gbase + d->offset[i], SL_REHOME_DETACH)) != SL_OK) return st;
  /* the flat buffer is no longer read (allreduce_gradients refuses now):
   * keep a one-float stand-in (d->flat marks the object open) and free the rest */
  int64_t one = 1;
  sl_tensor *stub = sl_tensor_empty(1, &one);
  if (stub) {
    sl_tensor_release(d->flat);
    d->flat = stub;
  }
  sl_optim_set_external(o, "selut.dist.DataParallel:step");
  d->opt = o;
  d->shared_rank = r;
  d->shared = 1;
  return SL_OK;
}

/* After a barrier (every rank's gradients are complete), this rank sums the
 * ranks' gradients over its slice of the parameters, in rank order, into
 * its own gradient slot, steps that slice of P and S, and a second barrier
 * ends the step (nobody reads P or writes a gradient before every slice is
 * done). */
int sl_dp_shared_step(sl_dp *d, sl_optim *o, int weighted, int64_t n, int64_t *result) {
  int r = 0, size = 1, st;
  GLUE->rank_size(&r, &size);
  float coef_buf[64], *coef = NULL;
  *result = size;
  double t0 = sl_comm_now();
  if (d->scaled) { /* loss_scale weighted the gradients already: a plain sum */
    *result = (int64_t)d->scaled_sum;
    if ((st = shared_barrier()) != SL_OK) return st;
  } else { /* everyone's n (the allreduce is the first barrier too) */
    long long counts[64] = {0};
    counts[r] = weighted ? (long long)n : 1;
    atomic_thread_fence(memory_order_seq_cst);
    TRY(STEP, "MPI_Allreduce", GLUE->allreduce(counts, size, SL_MPI_LONG_LONG, SL_MPI_SUM));
    atomic_thread_fence(memory_order_seq_cst);
    long long sum = 0;
    for (int q = 0; q < size; q++) sum += counts[q];
    if (sum <= 0) return sl_fail(SL_EINVAL, "selut.dist.DataParallel:step: no samples on any rank");
    for (int q = 0; q < size; q++) coef_buf[q] = (float)((double)counts[q] / (double)sum);
    coef = coef_buf;
    *result = weighted ? (int64_t)sum : size;
  }
  d->scaled = 0;
  double t1 = sl_comm_now();
  size_t a = (size_t)((d->total * r / size + 15) / 16 * 16), b = (size_t)((d->total * (r + 1) / size + 15) / 16 * 16);
  if (b > (size_t)d->total) b = (size_t)d->total;
  if (a > b) a = b;
  float *in[64];
  for (int q = 0; q < size; q++) in[q] = d->G + (size_t)q * (size_t)d->seg;
  float *mine = in[r]; /* this rank's slice of its own gradient takes the sum: the step reads it there */
  sl_shm_sum(mine, in, coef, size, a, b);
  st = sl_optim_step_flat(o, d->P + a, mine + a, d->S0 ? d->S0 + a : NULL, d->S1 ? d->S1 + a : NULL, b - a);
  if (st != SL_OK) return st;
  double t2 = sl_comm_now();
  if ((st = shared_barrier()) != SL_OK) return st;
  d->comm_seconds += (t1 - t0) + (sl_comm_now() - t2);
  d->pack_seconds += t2 - t1; /* the summing (the step's own work is in there too) */
  d->steps++;
  return SL_OK;
}
