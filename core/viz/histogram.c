/*
 * Histogram binning and summary statistics: one pass over the data, no
 * sorting, sums in double. The loops are unrolled by four with independent
 * accumulators (fixed order, so results are deterministic) because a single
 * double accumulator's add latency would otherwise bound the speed.
 */
#include <math.h>
#include <string.h>

#include "tensor/error.h"
#include "viz/viz.h"

int sl_histogram_init(sl_histogram *h, int bins, double lo, double hi) {
  if (!h) return sl_fail(SL_EINVAL, "histogram: NULL histogram");
  if (bins < 1 || bins > SL_HIST_MAX_BINS)
    return sl_fail(SL_EINVAL, "histogram: bins = %d, expected 1..%d", bins, SL_HIST_MAX_BINS);
  if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
    return sl_fail(SL_EINVAL, "histogram: range [%g, %g) is empty or not finite", lo, hi);
  memset(h, 0, sizeof *h);
  h->bins = bins;
  h->lo = lo;
  h->hi = hi;
  return SL_OK;
}

int64_t sl_histogram_max(const sl_histogram *h) {
  int64_t m = 0;
  for (int i = 0; i < h->bins; i++)
    if (h->counts[i] > m) m = h->counts[i];
  return m;
}

/* Bin of a value d known to be in [lo, hi] (see viz.h: the formula is the
 * definition, so no edge fix-up is needed and the loop stays branch-free). */
static inline int bin_of(double d, double lo, double inv, int bins) {
  int b = (int)((d - lo) * inv);
  return b < bins - 1 ? b : bins - 1;
}

/* The shared loop: always bins; accumulates stats when acc != NULL. */
typedef struct {
  int64_t count, nonfinite;
  double shift, s1, s2, mn, mx;
  int have_shift;
} accum;

/* Slow path for one value (non-finite or in the tail of the array). */
static void add_one(float v, double shift, double *s1, double *s2, float *mn, float *mx,
                    int64_t *cnt, int64_t *nonfinite) {
  if (isfinite(v)) {
    double t = (double)v - shift;
    *s1 += t;
    *s2 += t * t;
    *mn = v < *mn ? v : *mn;
    *mx = v > *mx ? v : *mx;
    (*cnt)++;
  } else {
    (*nonfinite)++;
  }
}

/* Stats over x (when acc) and binning (when h), in one pass. */
static void add_impl(sl_histogram *h, accum *acc, const float *x, size_t n) {
  double lo = 0, hi = 0, inv = 0;
  int bins = 0;
  int64_t *counts = NULL, under = 0, over = 0, nan = 0;
  if (h) {
    lo = h->lo, hi = h->hi, inv = h->bins / (h->hi - h->lo), bins = h->bins;
    counts = h->counts;
  }
  double shift = 0;
  if (acc) {
    if (!acc->have_shift)
      for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
          acc->shift = x[i];
          acc->have_shift = 1;
          break;
        }
    shift = acc->shift;
  }
  /* four independent accumulator sets */
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  float mn0 = INFINITY, mn1 = INFINITY, mx0 = -INFINITY, mx1 = -INFINITY;
  int64_t cnt = 0, nonfinite = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float v0 = x[i], v1 = x[i + 1], v2 = x[i + 2], v3 = x[i + 3];
    if (isfinite(v0) && isfinite(v1) && isfinite(v2) && isfinite(v3)) {
      if (acc) {
        double t0 = (double)v0 - shift, t1 = (double)v1 - shift;
        double t2 = (double)v2 - shift, t3 = (double)v3 - shift;
        a0 += t0, a1 += t1, a2 += t2, a3 += t3;
        q0 += t0 * t0, q1 += t1 * t1, q2 += t2 * t2, q3 += t3 * t3;
        float l01 = v0 < v1 ? v0 : v1, l23 = v2 < v3 ? v2 : v3;
        float h01 = v0 > v1 ? v0 : v1, h23 = v2 > v3 ? v2 : v3;
        mn0 = l01 < mn0 ? l01 : mn0, mn1 = l23 < mn1 ? l23 : mn1;
        mx0 = h01 > mx0 ? h01 : mx0, mx1 = h23 > mx1 ? h23 : mx1;
        cnt += 4;
      }
      if (h) {
        double d[4] = {v0, v1, v2, v3};
        for (int k = 0; k < 4; k++) {
          if (d[k] < lo) under++;
          else if (d[k] > hi) over++;
          else counts[bin_of(d[k], lo, inv, bins)]++;
        }
      }
      continue;
    }
    for (int k = 0; k < 4; k++) { /* rare: some value is NaN or inf */
      float v = x[i + (size_t)k];
      if (acc) add_one(v, shift, &a0, &q0, &mn0, &mx0, &cnt, &nonfinite);
      if (h) {
        double d = v;
        if (isnan(d)) nan++;
        else if (d < lo) under++;
        else if (d > hi) over++;
        else counts[bin_of(d, lo, inv, bins)]++;
      }
    }
  }
  for (; i < n; i++) {
    float v = x[i];
    if (acc) add_one(v, shift, &a0, &q0, &mn0, &mx0, &cnt, &nonfinite);
    if (h) {
      double d = v;
      if (isnan(d)) nan++;
      else if (d < lo) under++;
      else if (d > hi) over++;
      else counts[bin_of(d, lo, inv, bins)]++;
    }
  }
  if (h) {
    h->under += under;
    h->over += over;
    h->nan += nan;
    h->total += (int64_t)n;
  }
  if (acc) {
    acc->count += cnt;
    acc->nonfinite += nonfinite;
    acc->s1 += (a0 + a1) + (a2 + a3);
    acc->s2 += (q0 + q1) + (q2 + q3);
    double m = mn0 < mn1 ? mn0 : mn1, M = mx0 > mx1 ? mx0 : mx1;
    if (m < acc->mn) acc->mn = m;
    if (M > acc->mx) acc->mx = M;
  }
}

static void accum_init(accum *a) {
  memset(a, 0, sizeof *a);
  a->mn = INFINITY;
  a->mx = -INFINITY;
}

static void accum_finish(sl_stats *s, const accum *a) {
  s->count = a->count;
  s->nonfinite = a->nonfinite;
  if (a->count == 0) {
    s->mean = s->std = s->min = s->max = NAN;
    return;
  }
  double n = (double)a->count;
  s->mean = a->shift + a->s1 / n;
  s->min = a->mn;
  s->max = a->mx;
  if (a->count < 2) {
    s->std = NAN;
  } else {
    double ss = a->s2 - a->s1 * a->s1 / n;
    s->std = sqrt(ss > 0 ? ss / (n - 1) : 0.0);
  }
}

void sl_histogram_add(sl_histogram *h, const float *x, size_t n) {
  add_impl(h, NULL, x, n);
}

void sl_histogram_stats(sl_histogram *h, sl_stats *s, const float *x, size_t n) {
  accum a;
  accum_init(&a);
  add_impl(h, &a, x, n);
  accum_finish(s, &a);
}

void sl_stats_compute(sl_stats *s, const float *x, size_t n) {
  accum a;
  accum_init(&a);
  add_impl(NULL, &a, x, n);
  accum_finish(s, &a);
}
