/* Learning-rate schedules as closed-form functions (PyTorch's StepLR and
 * CosineAnnealingLR._get_closed_form_lr). Invalid periods give NaN and set
 * sl_last_error. */
#include <inttypes.h>
#include <math.h>

#include "../tensor/error.h"
#include "nn.h"

/* base_lr * gamma^floor(epoch / step_size) */
double sl_lr_step(double base_lr, int64_t epoch, int64_t step_size, double gamma) {
  if (step_size <= 0) {
    sl_fail(SL_EINVAL, "lr_step: step_size must be positive, got %" PRId64, step_size);
    return (double)NAN;
  }
  if (epoch < 0) epoch = 0;
  return base_lr * pow(gamma, (double)(epoch / step_size));
}

/* eta_min + (base_lr - eta_min) * (1 + cos(pi t / t_max)) / 2 */
double sl_lr_cosine(double base_lr, int64_t t, int64_t t_max, double eta_min) {
  if (t_max <= 0) {
    sl_fail(SL_EINVAL, "lr_cosine: t_max must be positive, got %" PRId64, t_max);
    return (double)NAN;
  }
  const double pi = 3.14159265358979323846;
  return eta_min + (base_lr - eta_min) * (1.0 + cos(pi * (double)t / (double)t_max)) / 2.0;
}
