/* The only file that includes cblas.h: every matrix product goes through
 * OpenBLAS here, with shapes validated first so xerbla never prints. */
#include "blas.h"

#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "parallel.h"

#define SL_GEMM_KCHUNK 256
#define SL_GEMM_SPLIT_MIN ((int64_t)1 << 21) /* m*n*k below this: one piece */

/* selut's thread count (0: not set yet, OpenBLAS's default is taken). At 2
 * threads selut splits large products itself (two pieces, one per core)
 * and OpenBLAS runs single-threaded inside each; at other counts OpenBLAS
 * threads them. */
static atomic_int sl_threads;
static int blas_split = -1; /* SELUT_BLAS_SPLIT=0 turns the own split off */

static bool own_split(void) {
  if (blas_split < 0) {
    const char *e = getenv("SELUT_BLAS_SPLIT");
    blas_split = !(e && e[0] == '0');
  }
  return blas_split;
}

/* C (m x n, leading dim ldc) = alpha op(A) op(B) + beta C over all of K,
 * in equal K chunks of at most SL_GEMM_KCHUNK. OpenBLAS's threaded and
 * single-threaded drivers split K differently when GEMM_Q < K < 2 GEMM_Q
 * (e.g. K = 784 here), which changes the summation order; chunks of at most
 * SL_GEMM_KCHUNK (<= GEMM_Q on x86-64 cores) are never split. */
static void sgemm_kchunks(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                          int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  int64_t nchunks = (k + SL_GEMM_KCHUNK - 1) / SL_GEMM_KCHUNK;
  for (int64_t ci = 0, k0 = 0; ci < nchunks; ci++) {
    int64_t kc = k / nchunks + (ci < k % nchunks ? 1 : 0);
    const float *ac = trans_a ? a + k0 * lda : a + k0, *bc = trans_b ? b + k0 : b + k0 * ldb;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)kc, alpha, ac, lda, bc, ldb, ci == 0 ? beta : 1.0f, c, ldc);
    k0 += kc;
  }
}

typedef struct gemm_job {
  bool ta, tb, split_m;
  int64_t m, n, k, half;
  float alpha, beta;
  const float *a, *b;
  float *c;
} gemm_job;

/* Piece i of a product cut in two along M (rows of C) or N (columns). */
static void gemm_piece(const void *ctx, unsigned i) {
  const gemm_job *j = ctx;
  int lda = (int)(j->ta ? j->m : j->k), ldb = (int)(j->tb ? j->k : j->n), ldc = (int)j->n;
  int64_t lo = i == 0 ? 0 : j->half, hi = i == 0 ? j->half : j->split_m ? j->m : j->n;
  if (j->split_m)
    sgemm_kchunks(j->ta, j->tb, hi - lo, j->n, j->k, j->alpha, j->ta ? j->a + lo : j->a + lo * lda, lda, j->b, ldb,
                  j->beta, j->c + lo * ldc, ldc);
  else
    sgemm_kchunks(j->ta, j->tb, j->m, hi - lo, j->k, j->alpha, j->a, lda, j->tb ? j->b + lo * ldb : j->b + lo, ldb,
                  j->beta, j->c + lo, ldc);
}

static sl_sgemm_observer observer;
void sl_set_sgemm_observer(sl_sgemm_observer fn) { observer = fn; }

static void sgemm_run(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      const float *b, float beta, float *c);

void sl_sgemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, const float *b, float beta, float *c) {
  if (!observer) {
    sgemm_run(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    return;
  }
  observer(trans_a, trans_b, m, n, k, beta, false);
  sgemm_run(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  observer(trans_a, trans_b, m, n, k, beta, true);
}

static void sgemm_run(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      const float *b, float beta, float *c) {
  if (m == 0 || n == 0) return;
  if (k == 0) { /* BLAS would reject lda = 0; the product is empty */
    for (int64_t i = 0; i < m * n; i++) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  sl_get_num_threads(); /* first use: selut's count taken, OpenBLAS set to one thread at 2 */
  int64_t big = m >= n ? m : n;
  if (own_split() && m * n * k >= SL_GEMM_SPLIT_MIN && big >= 64) {
    /* Large products are always cut in the same two pieces (one per core at
     * 2 threads, one after the other at 1), so the bits do not depend on
     * the thread count whatever OpenBLAS's kernels do at the cut. */
    gemm_job j = {trans_a, trans_b, m >= n, m, n, k, ((big / 2) + 15) & ~(int64_t)15, alpha, beta, a, b, c};
    sl_par_tasks(2, gemm_piece, &j);
    return;
  }
  sgemm_kchunks(trans_a, trans_b, m, n, k, alpha, a, (int)(trans_a ? m : k), b, (int)(trans_b ? k : n), beta, c,
                (int)n);
}

int sl_gemm(sl_tensor *c, const sl_tensor *a, bool trans_a, const sl_tensor *b, bool trans_b,
            float alpha, float beta) {
  char sa[160], sb[160], sc[160];
  if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2)
    return sl_fail(SL_ESHAPE, "matmul: expected 2-D tensors, got %s, %s and output %s",
                   sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb),
                   sl_shape_str(c, sc, sizeof sc));
  int64_t m = trans_a ? a->shape[1] : a->shape[0], ka = trans_a ? a->shape[0] : a->shape[1];
  int64_t kb = trans_b ? b->shape[1] : b->shape[0], n = trans_b ? b->shape[0] : b->shape[1];
  if (ka != kb)
    return sl_fail(SL_ESHAPE, "matmul: shapes %" PRId64 "x%" PRId64 " and %" PRId64 "x%" PRId64
                   " cannot be multiplied (%" PRId64 " != %" PRId64 ")",
                   m, ka, kb, n, ka, kb);
  if (c->shape[0] != m || c->shape[1] != n)
    return sl_fail(SL_ESHAPE, "matmul: output %s should be [%" PRId64 " x %" PRId64 "]",
                   sl_shape_str(c, sc, sizeof sc), m, n);
  if (m > INT_MAX || n > INT_MAX || ka > INT_MAX)
    return sl_fail(SL_ESHAPE, "matmul: dimension exceeds the BLAS limit of %d", INT_MAX);
  if (c->data == a->data || c->data == b->data)
    return sl_fail(SL_EINVAL, "matmul: output may not alias an input");
  sl_sgemm_f32(trans_a, trans_b, m, n, ka, alpha, a->data, b->data, beta, c->data);
  return SL_OK;
}

sl_tensor *sl_matmul(const sl_tensor *a, const sl_tensor *b) {
  char sa[160], sb[160];
  if (a->ndim > 2 || b->ndim > 2)
    return sl_fail_null(SL_ESHAPE, "matmul: expected 1-D or 2-D tensors, got %s and %s",
                        sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb));
  /* Treat a vector as a 1xK row (left) or Kx1 column (right), like torch.matmul. */
  int64_t m = a->ndim == 2 ? a->shape[0] : 1, k = a->shape[a->ndim - 1];
  int64_t kb = b->shape[0], n = b->ndim == 2 ? b->shape[1] : 1;
  if (k != kb)
    return sl_fail_null(SL_ESHAPE, "matmul: shapes %s and %s cannot be multiplied (%" PRId64 " != %" PRId64 ")",
                        sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb), k, kb);
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
    return sl_fail_null(SL_ESHAPE, "matmul: dimension exceeds the BLAS limit of %d", INT_MAX);
  int64_t shape[2];
  int nd = 0;
  if (a->ndim == 2) shape[nd++] = m;
  if (b->ndim == 2) shape[nd++] = n;
  if (nd == 0) shape[nd++] = 1; /* vector . vector: a 1-element tensor */
  sl_tensor *c = sl_tensor_empty(nd, shape);
  if (c) sl_sgemm_f32(false, false, m, n, k, 1.0f, a->data, b->data, 0.0f, c->data);
  return c;
}

void sl_set_num_threads(int n) {
  if (n < 1) n = 1;
  atomic_store(&sl_threads, n);
  openblas_set_num_threads(n == 2 && own_split() ? 1 : n);
}

int sl_get_num_threads(void) {
  int n = atomic_load_explicit(&sl_threads, memory_order_relaxed);
  if (n) return n;
  n = openblas_get_num_threads(); /* the library default (OPENBLAS_NUM_THREADS or the cores) */
  sl_set_num_threads(n);
  return n;
}

const char *sl_blas_corename(void) {
  const char *name = openblas_get_corename();
  return name ? name : "unknown";
}

/* The AVX-512 families share OpenBLAS 0.3.21's SkylakeX sgemm kernels
 * (verified here on Cooperlake). */
bool sl_blas_threads_bitwise(void) {
  if (own_split()) return true; /* 1 and 2 threads: the same pieces, OpenBLAS single-threaded in each */
  const char *c = sl_blas_corename();
  return strcmp(c, "SkylakeX") == 0 || strcmp(c, "Cooperlake") == 0 || strcmp(c, "SapphireRapids") == 0;
}
