/*
 * Matrix products through OpenBLAS. Shapes are validated before the BLAS
 * call (OpenBLAS's xerbla would print to stderr otherwise).
 */
#ifndef SL_BLAS_H
#define SL_BLAS_H
#include <stdbool.h>

#include "tensor.h"

/* c = alpha * op(a) @ op(b) + beta * c, all 2-D; op = transpose when the
 * flag is set. c must be [M x N]. beta = 1 accumulates (gradients). */
int sl_gemm(sl_tensor *c, const sl_tensor *a, bool trans_a, const sl_tensor *b,
            bool trans_b, float alpha, float beta);
/* New tensor a @ b for 2-D a, b (or 1-D b: matrix-vector, 1-D a: vector-matrix). */
sl_tensor *sl_matmul(const sl_tensor *a, const sl_tensor *b);
/* Raw row-major sgemm on arrays: C[MxN] = alpha*op(A)*op(B) + beta*C. */
void sl_sgemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, const float *b, float beta, float *c);
/* Benchmark hook (bench/epoch.c): when set, fn is called at the start
 * (done = false) and the end (done = true) of every sl_sgemm_f32 with its
 * shape, from the calling thread. NULL (the default) turns it off. */
typedef void (*sl_sgemm_observer)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float beta,
                                  bool done);
void sl_set_sgemm_observer(sl_sgemm_observer fn);
/* selut's thread count: 1 runs everything in the caller; 2 splits large
 * products (two pieces, OpenBLAS single-threaded in each) and large
 * elementwise loops over a helper thread (parallel.h); more hands the
 * products to OpenBLAS's own threads. 1 and 2 give the same bits. */
void sl_set_num_threads(int n);
int sl_get_num_threads(void);
/* OpenBLAS's kernel family for this CPU ("SkylakeX", "Haswell", "Zen", ...). */
const char *sl_blas_corename(void);
/* True where sl_sgemm_f32 is known to give the same bits with 1 and 2
 * threads: always with selut's own two-piece split (the default; the same
 * pieces run one after the other or side by side). With SELUT_BLAS_SPLIT=0
 * OpenBLAS threads the products: bitwise for OpenBLAS 0.3.21's SkylakeX
 * kernels (also used for Cooperlake and SapphireRapids) with the K chunking
 * above; the Haswell/Zen (AVX2) kernels then differ in the last bits between
 * thread counts (docs/performance.md). */
bool sl_blas_threads_bitwise(void);

#endif
