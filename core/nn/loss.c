/* Losses with mean reduction. Cross entropy works on raw logits with a
 * max-shifted log-sum-exp in double; labels are class indices stored as
 * floats, validated (integer, in range, one per row) before any work. */
#include <inttypes.h>
#include <math.h>

#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"

/* floorf(l) == l without the libm call (baseline x86-64 has no roundss):
 * below 2^23 through an int conversion, above it every finite float and
 * inf are integers; NaN is not. */
static inline int is_integral(float l) {
  return fabsf(l) < 0x1p23f ? (float)(int32_t)l == l : l == l;
}

/* logits: (N, C); labels: N elements. */
static int ce_check(const sl_tensor *logits, const sl_tensor *labels, int base, const char *what) {
  char a[160], b[160];
  if (!logits || !labels) return sl_fail(SL_EINVAL, "cross_entropy.%s: %s is NULL", what, logits ? "labels" : "logits");
  if (logits->ndim != 2 || logits->shape[1] < 1)
    return sl_fail(SL_ESHAPE, "cross_entropy.%s: logits must be [batch x classes], got %s", what,
                   sl_shape_str(logits, a, sizeof a));
  int64_t n = logits->shape[0], c = logits->shape[1];
  if (labels->numel != n || (labels->ndim == 2 && labels->shape[1] != 1) || labels->ndim > 2)
    return sl_fail(SL_ESHAPE, "cross_entropy.%s: %" PRId64 " labels (shape %s) for a batch of %" PRId64
                   " (logits %s)", what, labels->numel, sl_shape_str(labels, b, sizeof b), n,
                   sl_shape_str(logits, a, sizeof a));
  if (n == 0) return sl_fail(SL_ESHAPE, "cross_entropy.%s: empty batch", what);
  for (int64_t i = 0; i < n; i++) {
    float l = labels->data[i];
    if (!is_integral(l))
      return sl_fail(SL_EINVAL, "cross_entropy.%s: label %g (row %" PRId64 ") is not an integer class index",
                     what, (double)l, i + base);
    if (l < (float)base || (double)l > (double)(c - 1 + base))
      return sl_fail(SL_ERANGE, "cross_entropy.%s: label %g (row %" PRId64 ") is out of range %d..%" PRId64,
                     what, (double)l, i + base, base, c - 1 + base);
  }
  return SL_OK;
}

/* Rows are processed in blocks: the max-shifted logits of up to CE_BLOCK
 * elements go through the vectorized float exp (tensor/vmath.c, <= 1 ulp)
 * in one call, then each row's sum is taken in double. A row longer than
 * CE_BLOCK is done in pieces. */
#define CE_BLOCK 2048

/* lse[r] = log sum_j exp(x[r, j]) for rows r of x (rows, c), max-shifted;
 * a row whose max is +-inf gives that max (all -inf rows: -inf). */
static void rows_lse(const float *x, int64_t rows, int64_t c, double *lse, float *tmp) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float mx = -INFINITY;
    for (int64_t j = 0; j < c; j++) mx = xr[j] > mx ? xr[j] : mx; /* fmaxf without the call: NaN skipped */
    if (mx == -INFINITY || mx == INFINITY) {
      lse[r] = (double)mx;
      continue;
    }
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < c; j0 += CE_BLOCK) {
      int64_t w = c - j0 < CE_BLOCK ? c - j0 : CE_BLOCK;
      for (int64_t j = 0; j < w; j++) tmp[j] = xr[j0 + j] - mx;
      sl_vexp_f32(tmp, tmp, (size_t)w);
      for (int64_t j = 0; j < w; j++) sum += (double)tmp[j];
    }
    lse[r] = (double)mx + log(sum);
  }
}

/* Small rows: the rows' max, shift, exp, sums and one vectorized double log
 * per row run as whole-block loops in tensor/vmath.c (sl_vrows_lse_f32). */
static void block_lse(const float *x, int64_t rows, int64_t c, double *lse, float *tmp) {
  if (c > CE_BLOCK / 4) {
    rows_lse(x, rows, c, lse, tmp);
    return;
  }
  float mx[CE_BLOCK];
  double sum[CE_BLOCK];
  sl_vrows_lse_f32(lse, x, rows, c, tmp, mx, sum);
}

int sl_cross_entropy_forward_ex(const sl_tensor *logits, const sl_tensor *labels, int label_base, double *loss) {
  int st = ce_check(logits, labels, label_base, "forward");
  if (st) return st;
  int64_t n = logits->shape[0], c = logits->shape[1];
  int64_t rpb = c > CE_BLOCK / 4 ? 1 : CE_BLOCK / c; /* rows per block */
  float tmp[CE_BLOCK];
  double lse[CE_BLOCK];
  double total = 0.0;
  for (int64_t r0 = 0; r0 < n; r0 += rpb) {
    int64_t nr = n - r0 < rpb ? n - r0 : rpb;
    block_lse(logits->data + r0 * c, nr, c, lse, tmp);
    for (int64_t r = 0; r < nr; r++) {
      int64_t k = (int64_t)labels->data[r0 + r] - label_base;
      total += lse[r] - (double)logits->data[(r0 + r) * c + k];
    }
  }
  *loss = total / (double)n;
  return SL_OK;
}

/* grad = (softmax(logits) - onehot(label)) / N */
int sl_cross_entropy_backward_ex(sl_tensor *grad, const sl_tensor *logits, const sl_tensor *labels, int label_base) {
  char a[160], b[160];
  int st = ce_check(logits, labels, label_base, "backward");
  if (st) return st;
  if (!grad || !sl_tensor_same_shape(grad, logits))
    return sl_fail(SL_ESHAPE, "cross_entropy.backward: gradient %s must have the logits' shape %s",
                   grad ? sl_shape_str(grad, a, sizeof a) : "NULL", sl_shape_str(logits, b, sizeof b));
  int64_t n = logits->shape[0], c = logits->shape[1];
  int64_t rpb = c > CE_BLOCK / 4 ? 1 : CE_BLOCK / c;
  float tmp[CE_BLOCK];
  double lse[CE_BLOCK];
  double inv_n = 1.0 / (double)n;
  for (int64_t r0 = 0; r0 < n; r0 += rpb) {
    int64_t nr = n - r0 < rpb ? n - r0 : rpb;
    if (rpb > 1) { /* small rows: p = exp(x - max) / sum, one exp call for the block */
      const float *x = logits->data + r0 * c;
      float *g = grad->data + r0 * c;
      double sum[CE_BLOCK];
      sl_vrows_softmax_f32(g, x, nr, c, inv_n, tmp, sum);
      for (int64_t r = 0; r < nr; r++) { /* (p - 1) / N at the labels */
        int64_t k = (int64_t)labels->data[r0 + r] - label_base;
        g[r * c + k] = (float)(((double)tmp[r * c + k] / sum[r] - 1.0) * inv_n);
      }
      continue;
    }
    block_lse(logits->data + r0 * c, nr, c, lse, tmp);
    for (int64_t r = 0; r < nr; r++) {
      const float *x = logits->data + (r0 + r) * c;
      float *g = grad->data + (r0 + r) * c;
      int64_t k = (int64_t)labels->data[r0 + r] - label_base;
      /* p = exp(x - lse), x - lse in double then rounded (<= 1 ulp of p more) */
      for (int64_t j0 = 0; j0 < c; j0 += CE_BLOCK) {
        int64_t w = c - j0 < CE_BLOCK ? c - j0 : CE_BLOCK;
        for (int64_t j = 0; j < w; j++) tmp[j] = (float)((double)x[j0 + j] - lse[r]);
        sl_vexp_f32(tmp, tmp, (size_t)w);
        for (int64_t j = 0; j < w; j++)
          g[j0 + j] = (float)(((double)tmp[j] - (j0 + j == k ? 1.0 : 0.0)) * inv_n);
      }
    }
  }
  return SL_OK;
}

int sl_cross_entropy_forward(const sl_tensor *logits, const sl_tensor *labels, double *loss) {
  return sl_cross_entropy_forward_ex(logits, labels, 0, loss);
}

int sl_cross_entropy_backward(sl_tensor *grad, const sl_tensor *logits, const sl_tensor *labels) {
  return sl_cross_entropy_backward_ex(grad, logits, labels, 0);
}

static int mse_check(const sl_tensor *pred, const sl_tensor *target, const char *what) {
  char a[160], b[160];
  if (!pred || !target) return sl_fail(SL_EINVAL, "mse.%s: %s is NULL", what, pred ? "target" : "input");
  if (!sl_tensor_same_shape(pred, target))
    return sl_fail(SL_ESHAPE, "mse.%s: input shape %s does not match target shape %s", what,
                   sl_shape_str(pred, a, sizeof a), sl_shape_str(target, b, sizeof b));
  if (pred->numel == 0) return sl_fail(SL_ESHAPE, "mse.%s: empty input", what);
  return SL_OK;
}

int sl_mse_forward(const sl_tensor *pred, const sl_tensor *target, double *loss) {
  int st = mse_check(pred, target, "forward");
  if (st) return st;
  double total = 0.0;
  for (int64_t i = 0; i < pred->numel; i++) {
    double d = (double)pred->data[i] - (double)target->data[i];
    total += d * d;
  }
  *loss = total / (double)pred->numel;
  return SL_OK;
}

/* grad = 2 (pred - target) / numel */
int sl_mse_backward(sl_tensor *grad, const sl_tensor *pred, const sl_tensor *target) {
  char a[160], b[160];
  int st = mse_check(pred, target, "backward");
  if (st) return st;
  if (!grad || !sl_tensor_same_shape(grad, pred))
    return sl_fail(SL_ESHAPE, "mse.backward: gradient %s must have the input's shape %s",
                   grad ? sl_shape_str(grad, a, sizeof a) : "NULL", sl_shape_str(pred, b, sizeof b));
  double scale = 2.0 / (double)pred->numel;
  for (int64_t i = 0; i < pred->numel; i++)
    grad->data[i] = (float)(((double)pred->data[i] - (double)target->data[i]) * scale);
  return SL_OK;
}
