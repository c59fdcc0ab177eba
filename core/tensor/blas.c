/* The only file that includes cblas.h: every matrix product goes through
 * OpenBLAS here, with shapes validated first so xerbla never prints. */
#include "blas.h"

#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "error.h"

#define SL_GEMM_KCHUNK 256

void sl_sgemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, const float *b, float beta, float *c) {
  if (m == 0 || n == 0) return;
  if (k == 0) { /* BLAS would reject lda = 0; the product is empty */
    for (int64_t i = 0; i < m * n; i++) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  int lda = (int)(trans_a ? m : k), ldb = (int)(trans_b ? k : n);
  /* OpenBLAS's threaded and single-threaded drivers split K differently when
   * GEMM_Q < K < 2 GEMM_Q (e.g. K = 784 here), which changes the summation
   * order. Equal K chunks of at most SL_GEMM_KCHUNK (<= GEMM_Q on x86-64
   * cores) are never split, so results are the same for any thread count. */
  int64_t nchunks = (k + SL_GEMM_KCHUNK - 1) / SL_GEMM_KCHUNK;
  for (int64_t ci = 0, k0 = 0; ci < nchunks; ci++) {
    int64_t kc = k / nchunks + (ci < k % nchunks ? 1 : 0);
    const float *ac = trans_a ? a + k0 * m : a + k0, *bc = trans_b ? b + k0 : b + k0 * n;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)kc, alpha, ac, lda, bc, ldb, ci == 0 ? beta : 1.0f, c,
                (blasint)n);
    k0 += kc;
  }
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
  openblas_set_num_threads(n);
}

int sl_get_num_threads(void) { return openblas_get_num_threads(); }

const char *sl_blas_corename(void) {
  const char *name = openblas_get_corename();
  return name ? name : "unknown";
}

/* The AVX-512 families share OpenBLAS 0.3.21's SkylakeX sgemm kernels
 * (verified here on Cooperlake). */
bool sl_blas_threads_bitwise(void) {
  const char *c = sl_blas_corename();
  return strcmp(c, "SkylakeX") == 0 || strcmp(c, "Cooperlake") == 0 || strcmp(c, "SapphireRapids") == 0;
}
