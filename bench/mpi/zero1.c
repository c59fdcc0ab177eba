/* bench/mpi/zero1.c: what a ZeRO-1 style sharded optimizer step would save
 * per step on N ranks (docs/distributed.md). With the default
 * recipe's gradient (2246155 floats) and SGD with momentum (selut's own
 * sl_vsgd_f32 kernel), it times
 *   A  MPI_Allreduce of the gradients + the optimizer step over every parameter
 *      (what selut.dist.DataParallel does), and
 *   B  MPI_Reduce_scatter_block of the gradients + the optimizer step over
 *      this rank's 1/N of the parameters + MPI_Allgather of the parameters.
 * Built and run by bench/dist_scaling.sh:
 *   mpicc -O2 -std=c11 -Icore bench/mpi/zero1.c build/libselut.a -lopenblas -lpng16 -lz -lm
 *   mpirun -np 2 ./zero1 [floats=2246155] [reps=50] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor/vmath.h"

static void sgd(float *p, const float *g, float *buf, size_t n) {
  sl_vsgd_f32(p, g, buf, n, 0.01f, 0.0f, 0.9f, 1.0f, false, false);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long n = argc > 1 ? atol(argv[1]) : 2246155, reps = argc > 2 ? atol(argv[2]) : 50;
  n = (n + size - 1) / size * size; /* Reduce_scatter_block wants equal shards */
  long shard = n / size;
  float *g = calloc((size_t)n, sizeof *g), *p = calloc((size_t)n, sizeof *p), *buf = calloc((size_t)n, sizeof *buf);
  if (!g || !p || !buf) MPI_Abort(MPI_COMM_WORLD, 1);
  for (long i = 0; i < n; i++) g[i] = (float)(i % 7) * 0.25f;
  double ta[3] = {0}, tb[4] = {0}; /* comm, step | reduce-scatter, step, allgather */
  for (long r = -3; r < reps; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t1 = MPI_Wtime();
    sgd(p, g, buf, (size_t)n);
    double t2 = MPI_Wtime();
    MPI_Barrier(MPI_COMM_WORLD);
    double t3 = MPI_Wtime();
    MPI_Reduce_scatter_block(MPI_IN_PLACE, g, (int)shard, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t4 = MPI_Wtime(); /* this rank's summed shard is now at g[0 .. shard) */
    sgd(p + rank * shard, g, buf + rank * shard, (size_t)shard);
    double t5 = MPI_Wtime();
    MPI_Allgather(MPI_IN_PLACE, (int)shard, MPI_FLOAT, p, (int)shard, MPI_FLOAT, MPI_COMM_WORLD);
    double t6 = MPI_Wtime();
    if (r >= 0) {
      ta[0] += t1 - t0, ta[1] += t2 - t1;
      tb[0] += t4 - t3, tb[1] += t5 - t4, tb[2] += t6 - t5;
    }
    for (long i = 0; i < n; i++) g[i] = (float)(i % 7) * 0.25f; /* fresh gradients, not an ever-growing sum */
  }
  if (rank == 0) {
    double k = 1000.0 / (double)reps;
    printf("zero1: %d ranks, %ld floats (%.2f MB): allreduce %.2f + step %.2f = %.2f ms/step; "
           "reduce-scatter %.2f + step on 1/%d %.2f + allgather %.2f = %.2f ms/step\n",
           size, n, (double)n * 4e-6, ta[0] * k, ta[1] * k, (ta[0] + ta[1]) * k, tb[0] * k, size, tb[1] * k,
           tb[2] * k, (tb[0] + tb[1] + tb[2]) * k);
  }
  free(g), free(p), free(buf);
  MPI_Finalize();
  return 0;
}
