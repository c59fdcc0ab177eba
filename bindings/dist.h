/*
 * Internal to selut.dist (lua_dist.c: MPI glue and collectives;
 * lua_dist_dp.c: the DataParallel object; lua_dist_shared.c: its shared-
 * memory step on one machine). docs/distributed.md describes the protocol.
 * Not installed; none of this is exported from libselut.so.
 */
#ifndef SL_DIST_H
#define SL_DIST_H
#include <stdint.h>

#include "sl_lua.h"

#ifdef SELUT_MPI
#include "mpi/selut_mpi.h"
#endif

#define SL_LUA_DP "selut.dist.DataParallel"
#define NO_MPI "selut was built without MPI (rebuild with make MPI=1 after apt-get install libopenmpi-dev)"

/* A model's parameters and gradients (one reference each) and the flat
 * buffer (numel + 1 floats: the last one carries the sample count). Each
 * gradient lives in its slice of the flat buffer (sl_tensor_rehome), so the
 * allreduce runs in place with no copies; a gradient that cannot move (its
 * storage is shared with another view, or wraps a host buffer) is copied in
 * and out instead (homed[i] == 0). */
typedef struct ldp {
  int n;
  sl_tensor **params, **grads;
  int64_t *offset; /* of each tensor in flat */
  char *homed;     /* 1: grads[i] lives at flat + offset[i] (when it moved: tried again) */
  sl_tensor *flat;
  int64_t total; /* parameter elements */
  int64_t steps;
  double pack_seconds, comm_seconds;
  int scaled;             /* 1 after loss_scale(n) until allreduce_gradients */
  lua_Integer scaled_n;   /* its n */
  int nbuf;
  sl_tensor **bufs; /* the model's buffers (m:buffers(), e.g. running stats): broadcast with the weights */
  long long scaled_sum;   /* sum(n_r) of the last loss_scale */
  /* dp:step(opt) on ranks of one machine: one shared segment holds the
   * parameters P, the optimizer state S0/S1 (at P's offsets) and every
   * rank's gradients G + r * seg; each rank steps its slice of P from the
   * sum of all ranks' gradients (docs/distributed.md). */
  int shared_tried;       /* the first dp:step decided (collectively) */
  int shared;             /* 1: on */
  const char *shared_why; /* why not, when tried and off (static text) */
  sl_tensor *seg_t;       /* the mapping (unmapped when its last view goes) */
  float *P, *S0, *S1, *G;
  int64_t seg;            /* floats per segment (total rounded up to 16) */
  int shared_rank;        /* this rank (0-based): its gradients are at G + shared_rank * seg */
  int swept;              /* stale segments of dead jobs the creator unlinked (dp:stats().swept) */
  int nbn;                /* BatchNorm1d layers with synchronized statistics (user value 2 keeps them) */
  struct sl_optim *opt;   /* the optimizer it steps (kept alive in user value 1) */
} ldp;

double sl_dist_now(void); /* monotonic seconds */
int sl_dist_active(void); /* MPI built in, initialized and not finalized */
/* Raises unless MPI is built in and initialized ("selut.dist.<fn>: ..."). */
void sl_dist_need_init(lua_State *L, const char *fn);
/* The root rank at arg (1-based, default 1), checked; returns it 0-based. */
int sl_dist_check_root(lua_State *L, int arg);
/* DataParallel's methods and metatable into the dist table on top. */
void sl_lua_open_dataparallel(lua_State *L);

#ifdef SELUT_MPI
const sl_mpi_api *sl_dist_mpi(void); /* the loaded glue, where MPI is known to be active */
/* Raises "selut.dist.<fn>: <what> failed: <MPI's message>". */
int sl_dist_mpi_error(lua_State *L, const char *fn, const char *what, int code);
#define MPI_CHECK(L, fn, what, call)                           \
  do {                                                         \
    int mpi_rc_ = (call);                                      \
    if (mpi_rc_ != 0) sl_dist_mpi_error(L, fn, what, mpi_rc_); \
  } while (0)
/* In-place allreduce / broadcast of n floats, in chunks of 2^30. */
void sl_dist_allreduce_floats(lua_State *L, const char *fn, float *x, int64_t n, int op);
void sl_dist_bcast_floats(lua_State *L, const char *fn, float *x, int64_t n, int root);
/* Every rank learns whether all passed the same numel (raising the same
 * error everywhere otherwise), and the smallest and largest n passed. */
void sl_dist_check_same_numel_n(lua_State *L, const char *fn, int64_t numel, int64_t n, int64_t *nmin,
                                int64_t *nmax);

/* The shared-memory step (lua_dist_shared.c). */
const char *sl_dist_optim_matches(ldp *d, struct sl_optim *o); /* NULL, or why o does not fit */
void sl_dist_shared_setup(lua_State *L, ldp *d, struct sl_optim *o);
lua_Integer sl_dist_shared_step(lua_State *L, ldp *d, struct sl_optim *o, int weighted, lua_Integer n);
#endif
/* Parameters, optimizer state and gradients leave the shared segment. */
void sl_dist_unshare(lua_State *L, ldp *d);

#endif
