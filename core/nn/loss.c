/* Losses with mean reduction. Cross entropy works on raw logits with a
 * max-shifted log-sum-exp in double; labels are class indices stored as
 * floats, validated (integer, in range, one per row) before any work. */
#include <inttypes.h>
#include <math.h>

#include "../tensor/error.h"
#include "nn.h"

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
    if (!(l == floorf(l)))
      return sl_fail(SL_EINVAL, "cross_entropy.%s: label %g (row %" PRId64 ") is not an integer class index",
                     what, (double)l, i + base);
    if (l < (float)base || (double)l > (double)(c - 1 + base))
      return sl_fail(SL_ERANGE, "cross_entropy.%s: label %g (row %" PRId64 ") is out of range %d..%" PRId64,
                     what, (double)l, i + base, base, c - 1 + base);
  }
  return SL_OK;
}

/* log sum_j exp(x_j) for one row, shifted by its max. */
static double row_lse(const float *x, int64_t c) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < c; j++) mx = fmaxf(mx, x[j]);
  if (mx == -INFINITY || mx == INFINITY) return (double)mx;
  double sum = 0.0;
  for (int64_t j = 0; j < c; j++) sum += exp((double)x[j] - (double)mx);
  return (double)mx + log(sum);
}

int sl_cross_entropy_forward_ex(const sl_tensor *logits, const sl_tensor *labels, int label_base, double *loss) {
  int st = ce_check(logits, labels, label_base, "forward");
  if (st) return st;
  int64_t n = logits->shape[0], c = logits->shape[1];
  double total = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float *x = logits->data + i * c;
    int64_t k = (int64_t)labels->data[i] - label_base;
    total += row_lse(x, c) - (double)x[k];
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
  double inv_n = 1.0 / (double)n;
  for (int64_t i = 0; i < n; i++) {
    const float *x = logits->data + i * c;
    float *g = grad->data + i * c;
    int64_t k = (int64_t)labels->data[i] - label_base;
    double lse = row_lse(x, c);
    for (int64_t j = 0; j < c; j++) {
      double p = exp((double)x[j] - lse);
      g[j] = (float)((p - (j == k ? 1.0 : 0.0)) * inv_n);
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
