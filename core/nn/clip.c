/* Gradient clipping with torch.nn.utils' semantics (1.13): the total norm is
 * the p-norm of the per-tensor p-norms, each rounded to float32 as PyTorch's
 * float tensors hold them, and every gradient is scaled by
 * min(1, max_norm / (total + 1e-6)) in float32. Sums run in double. */
#include <math.h>

#include "../tensor/error.h"
#include "nn.h"

static float tensor_norm(const sl_tensor *t, double p) {
  const float *x = t->data;
  double acc = 0.0;
  if (isinf(p)) {
    for (int64_t i = 0; i < t->numel; i++) acc = fmax(acc, fabs((double)x[i]));
    return (float)acc;
  }
  if (p == 1.0) {
    for (int64_t i = 0; i < t->numel; i++) acc += fabs((double)x[i]);
    return (float)acc;
  }
  if (p == 2.0) {
    for (int64_t i = 0; i < t->numel; i++) acc += (double)x[i] * (double)x[i];
    return (float)sqrt(acc);
  }
  for (int64_t i = 0; i < t->numel; i++) acc += pow(fabs((double)x[i]), p);
  return (float)pow(acc, 1.0 / p);
}

int sl_clip_grad_norm(sl_tensor *const *grads, int n, double max_norm, double p, double *total_norm) {
  if (!(max_norm > 0.0) || isnan(max_norm))
    return sl_fail(SL_EINVAL, "clip_grad_norm_: max_norm must be > 0, got %g", max_norm);
  if (!(p > 0.0) || isnan(p)) return sl_fail(SL_EINVAL, "clip_grad_norm_: norm type p must be > 0, got %g", p);
  if (n < 0 || (n > 0 && !grads)) return sl_fail(SL_EINVAL, "clip_grad_norm_: invalid gradient list (%d)", n);
  double acc = 0.0;
  for (int i = 0; i < n; i++) {
    if (!grads[i]) return sl_fail(SL_EINVAL, "clip_grad_norm_: gradient %d is NULL", i);
    double v = (double)tensor_norm(grads[i], p);
    acc = isinf(p) ? fmax(acc, v) : p == 1.0 ? acc + v : p == 2.0 ? acc + v * v : acc + pow(v, p);
  }
  float total = isinf(p) || p == 1.0 ? (float)acc : p == 2.0 ? (float)sqrt(acc) : (float)pow(acc, 1.0 / p);
  if (total_norm) *total_norm = (double)total;
  float coef = (float)max_norm / (total + 1e-6f);
  if (coef < 1.0f) /* PyTorch multiplies by the clamped coefficient, 1.0 included; x * 1 == x */
    for (int i = 0; i < n; i++)
      for (int64_t j = 0; j < grads[i]->numel; j++) grads[i]->data[j] *= coef;
  return SL_OK;
}

int sl_clip_grad_value(sl_tensor *const *grads, int n, double clip_value) {
  if (!(clip_value >= 0.0) || isnan(clip_value))
    return sl_fail(SL_EINVAL, "clip_grad_value_: clip_value must be >= 0, got %g", clip_value);
  if (n < 0 || (n > 0 && !grads)) return sl_fail(SL_EINVAL, "clip_grad_value_: invalid gradient list (%d)", n);
  float hi = (float)clip_value, lo = -hi;
  for (int i = 0; i < n; i++) {
    if (!grads[i]) return sl_fail(SL_EINVAL, "clip_grad_value_: gradient %d is NULL", i);
    float *x = grads[i]->data;
    for (int64_t j = 0; j < grads[i]->numel; j++) x[j] = x[j] < lo ? lo : x[j] > hi ? hi : x[j];
  }
  return SL_OK;
}
