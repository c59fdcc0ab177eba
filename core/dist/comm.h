/*
 * selut.dist's communication layer (docs/distributed.md): the MPI glue
 * (selut_mpi.so, built from bindings/mpi/selut_mpi.c, the only code that
 * includes mpi.h) is found and loaded here with dlopen, on selut.dist.init()
 * (or at once in a process that already has libmpi), and its collectives
 * are wrapped: MPI counts are int, so large buffers go in chunks, and a
 * failure returns a status with MPI's message recorded by sl_fail
 * ("selut.dist.<fn>: <what> failed: <MPI's message>"). No Lua, no mpi.h.
 * Built without MPI (make MPI=0: SELUT_MPI undefined) nothing loads and
 * sl_comm_active() is 0. Internal: not reachable from core/selut.h.
 */
#ifndef SL_DIST_COMM_H
#define SL_DIST_COMM_H
#include <stdint.h>

#include "dist/mpi_api.h"

double sl_comm_now(void); /* monotonic seconds */
/* The loaded glue, or NULL; loads it when libmpi is already in the process
 * (a host that linked and initialized MPI itself). */
const sl_mpi_api *sl_comm_glue(void);
/* Loads the glue; NULL with "selut.dist.<fn>: cannot load MPI: <why>". */
const sl_mpi_api *sl_comm_load(const char *fn);
/* The glue is loaded or can be found (selut.dist.available). */
int sl_comm_findable(void);
/* MPI built in, initialized and not finalized. */
int sl_comm_active(void);
/* sl_comm_active(), with the 0-based rank and the size (0 and 1 when not). */
int sl_comm_info(int *rank0, int *size);
/* Records "selut.dist.<fn>: <what> failed: <MPI's message for code>";
 * returns SL_EIO. */
int sl_comm_fail(const char *fn, const char *what, int code);
/* In-place allreduce (op SL_MPI_*) / broadcast of n floats, in chunks of 2^30. */
int sl_comm_allreduce_floats(const char *fn, float *x, int64_t n, int op);
int sl_comm_bcast_floats(const char *fn, float *x, int64_t n, int root);
/* Every rank learns whether all passed the same numel (failing with the
 * same message everywhere otherwise), and the smallest and largest n passed. */
int sl_comm_check_same_numel_n(const char *fn, int64_t numel, int64_t n, int64_t *nmin, int64_t *nmax);
/* A BatchNorm reducer (sl_module_set_reducer): the statistics summed over
 * every rank (an in-place MPI_Allreduce of doubles); a no-op on one rank. */
int sl_comm_bn_allreduce(void *ctx, double *buf, int n);

#endif
