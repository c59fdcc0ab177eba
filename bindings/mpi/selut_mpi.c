/*
 * selut_mpi.so: MPI calls behind the sl_mpi_api table (core/dist/mpi_api.h),
 * loaded by core/dist/comm.c on selut.dist.init(). Built and linked with Open MPI
 * only here (Makefile: $(BUILD)/selut_mpi.so).
 */
#include "dist/mpi_api.h"

#include <mpi.h>
#include <string.h>

static MPI_Datatype dtype(int type) {
  return type == SL_MPI_LONG_LONG ? MPI_LONG_LONG
         : type == SL_MPI_BYTE    ? MPI_BYTE
         : type == SL_MPI_DOUBLE  ? MPI_DOUBLE
                                  : MPI_FLOAT;
}

static MPI_Op op_of(int op) { return op == SL_MPI_MAX ? MPI_MAX : op == SL_MPI_MIN ? MPI_MIN : MPI_SUM; }

static void glue_state(int *initialized, int *finalized) {
  *initialized = 0;
  *finalized = 0;
  MPI_Initialized(initialized);
  MPI_Finalized(finalized);
}

static int glue_init(void) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

static void glue_rank_size(int *rank, int *size) {
  *rank = 0;
  *size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
}

static int glue_finalize(void) { return MPI_Finalize(); }
static void glue_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int glue_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

static int glue_allreduce(void *buf, int count, int type, int op) {
  return MPI_Allreduce(MPI_IN_PLACE, buf, count, dtype(type), op_of(op), MPI_COMM_WORLD);
}

static int glue_bcast(void *buf, int count, int type, int root) {
  return MPI_Bcast(buf, count, dtype(type), root, MPI_COMM_WORLD);
}

static void glue_error_string(int code, char *buf, size_t n) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (n == 0) return;
  if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS || len < 0) len = 0;
  if (len >= MPI_MAX_ERROR_STRING) len = MPI_MAX_ERROR_STRING - 1;
  msg[len] = '\0';
  if (len == 0) {
    strncpy(msg, "unknown MPI error", sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
  }
  size_t m = strlen(msg) < n - 1 ? strlen(msg) : n - 1;
  memcpy(buf, msg, m);
  buf[m] = '\0';
}

extern const sl_mpi_api sl_mpi_glue; /* SL_MPI_API_SYMBOL */
const sl_mpi_api sl_mpi_glue = {
    .version = SL_MPI_API_VERSION,
    .state = glue_state,
    .init = glue_init,
    .rank_size = glue_rank_size,
    .finalize = glue_finalize,
    .abort = glue_abort,
    .barrier = glue_barrier,
    .allreduce = glue_allreduce,
    .bcast = glue_bcast,
    .error_string = glue_error_string,
};
