/*
 * Axis helpers shared by histogram sheets and plots: nice tick steps
 * (1, 2, 5 x 10^k) and tick label formatting.
 */
#include <math.h>
#include <stdio.h>

#include "tensor/error.h"
#include "viz/viz.h"

static double nice_step(double range, int target) {
  double raw = range / target;
  double mag = pow(10.0, floor(log10(raw)));
  double f = raw / mag;
  double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
  return nice * mag;
}

int sl_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step) {
  if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
    return sl_fail(SL_EINVAL, "ticks: range [%g, %g] is empty or not finite", lo, hi);
  if (target < 2) target = 2;
  double s = nice_step(hi - lo, target);
  if (!(s > 0) || !isfinite(s)) return sl_fail(SL_EINVAL, "ticks: range [%g, %g] too small", lo, hi);
  double tol = s * 1e-9;
  double first = ceil((lo - tol) / s);
  int n = 0;
  for (double k = first; k * s <= hi + tol && n < max; k++) {
    double v = k * s;
    if (fabs(v) < tol) v = 0; /* no "-0" */
    ticks[n++] = v;
  }
  if (step) *step = s;
  return n;
}

void sl_format_tick(char *buf, size_t n, double v, double step) {
  double a = fabs(v);
  if (v == 0) {
    snprintf(buf, n, "0");
  } else if (a >= 1e6 || a < 1e-4 || !(step > 0)) {
    snprintf(buf, n, "%.3g", v);
  } else {
    int dec = 0;
    if (step < 1) dec = (int)ceil(-log10(step) - 1e-9);
    /* a step like 0.25 needs more decimals than its magnitude says */
    while (dec < 12) {
      double scaled = step * pow(10.0, dec);
      if (fabs(scaled - round(scaled)) <= 1e-6 * scaled) break;
      dec++;
    }
    snprintf(buf, n, "%.*f", dec, v);
  }
}
