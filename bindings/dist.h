/*
 * Internal to selut.dist (lua_dist.c: MPI glue and collectives;
 * lua_dist_dp.c: the DataParallel object; lua_dist_shared.c: its shared-
 * memory step on one machine; the bookkeeping they share is core/dist/dp.c).
 * docs/distributed.md describes the protocol.
 * Not installed; none of this is exported from libselut.so.
 */
#ifndef SL_DIST_H
#define SL_DIST_H
#include <stdint.h>

#include "dist/dp.h"
#include "sl_lua.h"

#ifdef SELUT_MPI
#include "mpi/selut_mpi.h"
#endif

#define SL_LUA_DP "selut.dist.DataParallel"
#define NO_MPI "selut was built without MPI (rebuild with make MPI=1 after apt-get install libopenmpi-dev)"

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
void sl_dist_shared_setup(lua_State *L, sl_dp *d, struct sl_optim *o);
lua_Integer sl_dist_shared_step(lua_State *L, sl_dp *d, struct sl_optim *o, int weighted, lua_Integer n);
#endif
/* Parameters, optimizer state and gradients leave the shared segment. */
void sl_dist_unshare(lua_State *L, sl_dp *d);

#endif
