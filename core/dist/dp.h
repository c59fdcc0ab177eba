/*
 * DataParallel's bookkeeping (docs/distributed.md): a model's parameters
 * and gradients, the flat gradient buffer they are reduced in, the layout
 * of the shared segment of ranks on one machine, and the collectives over them
 * (through the MPI glue, comm.h; no mpi.h and no Lua). The DataParallel
 * object itself, its argument checks and errors are bindings/lua_dist_dp.c.
 * Internal: not reachable from core/selut.h, so none of it is exported.
 */
#ifndef SL_DIST_DP_H
#define SL_DIST_DP_H
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"
#include "tensor/tensor.h"

/* A model's parameters and gradients (one reference each) and the flat
 * buffer (numel + 1 floats: the last one carries the sample count). Each
 * gradient lives in its slice of the flat buffer (sl_tensor_rehome), so the
 * allreduce runs in place with no copies; a gradient that cannot move (its
 * storage is shared with another view, or wraps a host buffer) is copied in
 * and out instead (homed[i] == 0). */
typedef struct sl_dp {
  int n;
  sl_tensor **params, **grads;
  int64_t *offset; /* of each tensor in flat */
  char *homed;     /* 1: grads[i] lives at flat + offset[i] (when it moved: tried again) */
  sl_tensor *flat; /* NULL: closed */
  int64_t total;   /* parameter elements */
  int64_t steps;
  double pack_seconds, comm_seconds;
  int scaled;           /* 1 after loss_scale(n) until allreduce_gradients */
  int64_t scaled_n;     /* its n */
  int nbuf;
  sl_tensor **bufs;     /* the model's buffers (m:buffers(), e.g. running stats): broadcast with the weights */
  long long scaled_sum; /* sum(n_r) of the last loss_scale */
  /* dp:step(opt) on ranks of one machine: one shared segment holds the
   * parameters P, the optimizer state S0/S1 (at P's offsets) and every
   * rank's gradients G + r * seg; each rank steps its slice of P from the
   * sum of all ranks' gradients (docs/distributed.md). */
  int shared_tried;       /* the first dp:step decided (collectively) */
  int shared;             /* 1: on */
  const char *shared_why; /* why not, when tried and off (static text) */
  sl_tensor *seg_t;       /* the mapping (unmapped when its last view goes) */
  float *P, *S0, *S1, *G;
  int64_t seg;      /* floats per segment (total rounded up to 16) */
  int shared_rank;  /* this rank (0-based): its gradients are at G + shared_rank * seg */
  int swept;        /* stale segments of dead jobs the creator unlinked (dp:stats().swept) */
  int nbn;          /* BatchNorm1d layers with synchronized statistics (kept by the binding) */
  sl_optim *opt;    /* the optimizer it steps (kept alive by the binding) */
} sl_dp;

/* Room for n parameters (d zeroed by the caller); SL_ENOMEM on failure. */
int sl_dp_init(sl_dp *d, int n);
/* Parameter i and its gradient (same numel, checked by the caller), at the
 * next offset; retains both. */
void sl_dp_set_param(sl_dp *d, int i, sl_tensor *p, sl_tensor *g);
/* The flat gradient buffer, allocated once, when the DataParallel is built
 * (after the last sl_dp_set_param; the constructor in lua_dist_dp.c is the
 * only caller): total + 1 floats, the last one carrying the sample count.
 * Each gradient moves into its slice (sl_tensor_rehome); one that cannot
 * (a view sharing its storage, a wrapped host buffer) is copied in and out
 * instead. */
int sl_dp_alloc_flat(sl_dp *d);
/* Releases every tensor and array; d->flat is NULL afterwards (closed). */
void sl_dp_free(sl_dp *d);

/* Gradients that are not (or no longer: resized, or moved by another
 * DataParallel) in their slice move there, or are copied there. */
void sl_dp_gather_grads(sl_dp *d);
/* The copied gradients get their slice back. */
void sl_dp_scatter_grads(sl_dp *d);
/* x[i] *= s for the total parameter elements of the flat buffer. */
void sl_dp_scale(sl_dp *d, float s);
/* Parameters -> f (total floats), one after the other, and back. */
void sl_dp_pack_params(const sl_dp *d, float *f);
void sl_dp_unpack_params(const sl_dp *d, const float *f);
/* Elements of the kept buffers. */
int64_t sl_dp_buffer_numel(const sl_dp *d);
/* Gradients not where the reduction reads them (dp:stats().copied). */
int sl_dp_copied(const sl_dp *d);

/* ---- collectives (dp_shared.c): every rank calls them, in the same order ---- */

/* The gradients' mean over the ranks, in place in the flat buffer (one
 * allreduce; dp:allreduce_gradients): weighted by n (this rank's samples)
 * when weighted, already weighted after a loss_scale; *result is sum(n_r),
 * or the number of ranks. */
int sl_dp_allreduce(sl_dp *d, int weighted, int64_t n, int64_t *result);
/* Every rank gets root's (0-based) weights and buffers; no-op on one process. */
int sl_dp_broadcast(sl_dp *d, int root);
/* dp:loss_scale(n): *scale = n / sum(n_r) over the ranks. */
int sl_dp_loss_scale(sl_dp *d, int64_t n, double *scale);
/* NULL when o holds exactly d's parameters, in order; else why not. */
const char *sl_dp_optim_matches(const sl_dp *d, const sl_optim *o);
/* The first dp:step on several ranks: decides together whether the ranks
 * share one segment (d->shared; d->shared_why says why not) and, if so,
 * moves the parameters, o's state and the gradients into it. */
int sl_dp_share(sl_dp *d, sl_optim *o);
/* A shared step (after sl_dp_share turned d->shared on): the ranks'
 * gradients summed (weighted by n_r / sum when weighted) over this rank's
 * slice of the parameters, which it steps; *result as sl_dp_allreduce. */
int sl_dp_shared_step(sl_dp *d, sl_optim *o, int weighted, int64_t n, int64_t *result);
/* Parameters, o's state (o may be NULL) and gradients leave the segment
 * for private copies; o may be stepped on its own again. */
void sl_dp_unshare(sl_dp *d, sl_optim *o);

#endif
