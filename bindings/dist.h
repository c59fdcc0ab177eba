/*
 * Internal to selut.dist (lua_dist.c: the collectives on tensors;
 * lua_dist_dp.c: the DataParallel object). The MPI glue's loader, the
 * collectives' error checks and DataParallel's bookkeeping and steps are
 * core/dist/ (comm.c, dp.c, dp_shared.c). docs/distributed.md describes the
 * protocol. Not installed; none of this is exported from libselut.so.
 */
#ifndef SL_DIST_H
#define SL_DIST_H
#include "dist/comm.h"
#include "dist/dp.h"
#include "sl_lua.h"

#define SL_LUA_DP "selut.dist.DataParallel"
#define NO_MPI "selut was built without MPI (rebuild with make MPI=1 after apt-get install libopenmpi-dev)"

/* Raises unless MPI is built in and initialized ("selut.dist.<fn>: ..."). */
void sl_dist_need_init(lua_State *L, const char *fn);
/* The root rank at arg (1-based, default 1), checked; returns it 0-based. */
int sl_dist_check_root(lua_State *L, int arg);
/* DataParallel's methods and metatable into the dist table on top. */
void sl_lua_open_dataparallel(lua_State *L);

/* Raises "selut.dist.<fn>: <what> failed: <MPI's message>" when call fails. */
#define MPI_CHECK(L, fn, what, call)                                     \
  do {                                                                   \
    int mpi_rc_ = (call);                                                \
    if (mpi_rc_ != 0) sl_comm_fail(fn, what, mpi_rc_), sl_lua_error(L); \
  } while (0)

#endif
