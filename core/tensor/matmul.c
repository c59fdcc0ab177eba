/* torch.matmul's shape rules over sl_sgemm_f32: every shape is checked here
 * first, so BLAS only ever sees valid sizes. */
#include "matmul.h"

#include <inttypes.h>
#include <limits.h>

#include "blas.h"
#include "error.h"

sl_tensor *sl_bmm(const sl_tensor *a, const sl_tensor *b) {
  char sa[160], sb[160];
  if (a->ndim != 3 || b->ndim != 3)
    return sl_fail_null(SL_ESHAPE, "bmm: expected 3-D tensors, got %s and %s", sl_shape_str(a, sa, sizeof sa),
                        sl_shape_str(b, sb, sizeof sb));
  if (a->shape[0] != b->shape[0])
    return sl_fail_null(SL_ESHAPE, "bmm: batch sizes of %s and %s differ (%" PRId64 " vs %" PRId64 ")",
                        sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb), a->shape[0], b->shape[0]);
  if (a->shape[2] != b->shape[1]) /* checked here so the message names bmm, not matmul */
    return sl_fail_null(SL_ESHAPE, "bmm: shapes %s and %s cannot be multiplied (%" PRId64 " != %" PRId64 ")",
                        sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb), a->shape[2], b->shape[1]);
  return sl_matmul_nd(a, b);
}

sl_tensor *sl_matmul_nd(const sl_tensor *a, const sl_tensor *b) {
  char sa[160], sb[160];
  if (a->ndim <= 2 && b->ndim <= 2) return sl_matmul(a, b);
  /* a: [batch_a..., m, k] (m = 1 for a vector), b: [batch_b..., k, n] (n = 1 for a vector) */
  int64_t m = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1, k = a->shape[a->ndim - 1];
  int64_t kb = b->ndim >= 2 ? b->shape[b->ndim - 2] : b->shape[0], n = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
  if (k != kb)
    return sl_fail_null(SL_ESHAPE, "matmul: shapes %s and %s cannot be multiplied (%" PRId64 " != %" PRId64 ")",
                        sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb), k, kb);
  int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
  int nbatch = na > nb ? na : nb;
  int64_t batch[SL_MAX_DIMS], sta[SL_MAX_DIMS], stb[SL_MAX_DIMS]; /* per batch dim: size, matrix strides */
  for (int d = nbatch - 1, ia = na - 1, ib = nb - 1; d >= 0; d--, ia--, ib--) {
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return sl_fail_null(SL_ESHAPE,
                          "matmul: batch dimensions of %s and %s cannot broadcast (dim %d: %" PRId64 " vs %" PRId64 ")",
                          sl_shape_str(a, sa, sizeof sa), sl_shape_str(b, sb, sizeof sb), d + 1, da, db);
    batch[d] = da == 1 ? db : da;
    sta[d] = da == 1 ? 0 : 1; /* scaled to matrix strides below */
    stb[d] = db == 1 ? 0 : 1;
  }
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
    return sl_fail_null(SL_ESHAPE, "matmul: dimension exceeds the BLAS limit of %d", INT_MAX);
  int64_t shape[SL_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < nbatch; d++) shape[nd++] = batch[d];
  if (a->ndim >= 2) shape[nd++] = m;
  if (b->ndim >= 2) shape[nd++] = n;
  sl_tensor *c = sl_tensor_empty(nd, shape); /* checks the size of the result */
  if (!c || c->numel == 0) return c;
  if (k == 0) { /* empty sums (and no division by k below) */
    for (int64_t i = 0; i < c->numel; i++) c->data[i] = 0.0f;
    return c;
  }
  if (nb == 0 && a->ndim >= 2) { /* b has no batch: one product with a's batch folded into its rows */
    sl_sgemm_f32(false, false, a->numel / k, n, k, 1.0f, a->data, b->data, 0.0f, c->data);
    return c;
  }
  int64_t count = c->numel / (m * n), ma = m * k, mb = k * n;
  /* matrix strides of a and b per batch dim (0 where the dim broadcasts) */
  int64_t sa_run = ma, sb_run = mb;
  for (int d = nbatch - 1, ia = na - 1, ib = nb - 1; d >= 0; d--, ia--, ib--) {
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    sta[d] = sta[d] ? sa_run : 0;
    stb[d] = stb[d] ? sb_run : 0;
    sa_run *= da;
    sb_run *= db;
  }
  int64_t idx[SL_MAX_DIMS] = {0}, oa = 0, ob = 0;
  for (int64_t i = 0; i < count; i++) {
    sl_sgemm_f32(false, false, m, n, k, 1.0f, a->data + oa, b->data + ob, 0.0f, c->data + i * m * n);
    for (int d = nbatch - 1; d >= 0; d--) { /* odometer over the batch dims */
      oa += sta[d];
      ob += stb[d];
      if (++idx[d] < batch[d]) break;
      oa -= sta[d] * batch[d];
      ob -= stb[d] * batch[d];
      idx[d] = 0;
    }
  }
  return c;
}
