/*
 * The MPI glue's interface (docs/distributed.md): bindings/mpi/selut_mpi.c
 * is the only code that includes mpi.h and links libmpi. It is built as its
 * own shared object (selut_mpi.so, make MPI=1) that core/dist/comm.c loads
 * with dlopen on selut.dist.init(), so selut, libselut.so and selut.so do
 * not load Open MPI (libmpi and its ten dependencies) at start-up. The glue
 * knows nothing of Lua: every function returns MPI's status code
 * (0 = MPI_SUCCESS). Internal: not reachable from core/selut.h.
 */
#ifndef SL_DIST_MPI_API_H
#define SL_DIST_MPI_API_H
#include <stddef.h>

#define SL_MPI_API_VERSION 2 /* 2: SL_MPI_DOUBLE */
#define SL_MPI_API_SYMBOL "sl_mpi_glue" /* a const sl_mpi_api, found with dlsym */
#define SL_MPI_GLUE_NAME "selut_mpi.so"

enum { SL_MPI_FLOAT, SL_MPI_LONG_LONG, SL_MPI_BYTE, SL_MPI_DOUBLE };
enum { SL_MPI_SUM, SL_MPI_MAX, SL_MPI_MIN };

typedef struct sl_mpi_api {
  int version; /* SL_MPI_API_VERSION */
  /* MPI_Initialized, MPI_Finalized */
  void (*state)(int *initialized, int *finalized);
  /* MPI_Init_thread(FUNNELED) unless already initialized, then errors are
   * returned as codes (MPI_ERRORS_RETURN) on MPI_COMM_WORLD */
  int (*init)(void);
  /* 0-based rank and size in MPI_COMM_WORLD */
  void (*rank_size)(int *rank, int *size);
  int (*finalize)(void);
  void (*abort)(int code); /* MPI_Abort(MPI_COMM_WORLD, code): does not return */
  int (*barrier)(void);
  /* in place over MPI_COMM_WORLD; type SL_MPI_*, op SL_MPI_* */
  int (*allreduce)(void *buf, int count, int type, int op);
  int (*bcast)(void *buf, int count, int type, int root);
  /* MPI_Error_string into buf (always NUL-terminated) */
  void (*error_string)(int code, char *buf, size_t n);
} sl_mpi_api;

#endif
