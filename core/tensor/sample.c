/* Random sampling and creation (sample.h). Every sampler draws from r in
 * element order on the calling thread only: the stream a seed gives cannot
 * depend on the thread pool, so results are the same for any thread count. */
#include "sample.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

#define SHAPE_BUF 160

/* For messages: NaN without its sign, so 0/0 prints "nan", not "-nan". */
static double shown(double v) { return isnan(v) ? fabs(v) : v; }

sl_tensor *sl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape, sl_rng *r) {
  if (lo >= hi)
    return sl_fail_null(SL_EINVAL, "randint: range [%lld, %lld) is empty (expected lo < hi)", (long long)lo,
                        (long long)hi);
  if (lo < -SL_SAMPLE_MAX_EXACT || hi > SL_SAMPLE_MAX_EXACT)
    return sl_fail_null(SL_ERANGE,
                        "randint: range [%lld, %lld) is beyond float32's exact integers (expected lo and hi "
                        "within -16777216..16777216)",
                        (long long)lo, (long long)hi);
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (!t) return NULL;
  uint64_t span = (uint64_t)(hi - lo);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(lo + (int64_t)sl_rng_below(r, span));
  return t;
}

sl_tensor *sl_randperm(int64_t n, sl_rng *r) {
  if (n < 0 || n > SL_SAMPLE_MAX_EXACT)
    return sl_fail_null(SL_EINVAL, "randperm: n is %lld (expected 0..16777216)", (long long)n);
  sl_tensor *t = sl_tensor_empty(1, &n);
  if (!t) return NULL;
  float *x = t->data;
  for (int64_t i = 0; i < n; i++) x[i] = (float)(i + 1);
  /* Fisher-Yates from the top: each of the n! orders is equally likely. */
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)sl_rng_below(r, (uint64_t)i + 1);
    float s = x[i];
    x[i] = x[j];
    x[j] = s;
  }
  return t;
}

/* u < p with u uniform in [0, 1) at 53 bits: P = p to within 2^-53, exactly
 * 0 for p = 0 and 1 for p = 1. */
static void bernoulli_fill(float *out, const float *p, double p0, int64_t n, sl_rng *r) {
  for (int64_t i = 0; i < n; i++) out[i] = sl_rng_uniform_double(r) < (p ? (double)p[i] : p0) ? 1.0f : 0.0f;
}

sl_tensor *sl_bernoulli(const sl_tensor *p, sl_rng *r) {
  for (int64_t i = 0; i < p->numel; i++) {
    float v = p->data[i];
    if (!(v >= 0.0f && v <= 1.0f)) /* also NaN */
      return sl_fail_null(SL_EINVAL, "bernoulli: probability %g at index %lld of %s (expected a value in [0, 1])",
                          shown((double)v), (long long)i + 1, sl_shape_str(p, (char[SHAPE_BUF]){0}, SHAPE_BUF));
  }
  sl_tensor *t = sl_tensor_empty(p->ndim, p->shape);
  if (t) bernoulli_fill(t->data, p->data, 0.0, t->numel, r);
  return t;
}

sl_tensor *sl_bernoulli_p(double p, int ndim, const int64_t *shape, sl_rng *r) {
  if (!(p >= 0.0 && p <= 1.0))
    return sl_fail_null(SL_EINVAL, "bernoulli: probability %g (expected a value in [0, 1])", shown(p));
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (t) bernoulli_fill(t->data, NULL, p, t->numel, r);
  return t;
}

/* Checks one row of weights; returns the number of positive ones or a
 * negative status. row is 1-based for messages, 0 when probs is 1-D. */
static int64_t check_row(const float *w, int64_t k, int64_t row) {
  int64_t pos = 0;
  double sum = 0.0;
  for (int64_t j = 0; j < k; j++) {
    if (!(w[j] >= 0.0f) || isinf(w[j])) {
      if (row)
        return sl_fail(SL_EINVAL, "multinomial: weight %g at row %lld, category %lld (expected finite and >= 0)",
                       shown((double)w[j]), (long long)row, (long long)j + 1);
      return sl_fail(SL_EINVAL, "multinomial: weight %g at category %lld (expected finite and >= 0)", shown((double)w[j]),
                     (long long)j + 1);
    }
    pos += w[j] > 0.0f;
    sum += (double)w[j];
  }
  if (!(sum > 0.0)) {
    if (row) return sl_fail(SL_EINVAL, "multinomial: row %lld has all weights 0 (expected a positive sum)", (long long)row);
    return sl_fail(SL_EINVAL, "multinomial: all weights are 0 (expected a positive sum)");
  }
  return pos;
}

/* With replacement: inverse CDF by binary search over the row's running
 * sums (double). Zero weights repeat the previous sum, so the first sum
 * above u is never theirs. */
static void draw_replace(const float *w, int64_t k, double *cum, float *out, int64_t n, sl_rng *r) {
  double acc = 0.0;
  int64_t last = 0;
  for (int64_t j = 0; j < k; j++) {
    acc += (double)w[j];
    cum[j] = acc;
    if (w[j] > 0.0f) last = j;
  }
  for (int64_t i = 0; i < n; i++) {
    double u = sl_rng_uniform_double(r) * acc;
    int64_t lo = 0, hi = k; /* first j in [lo, hi) with cum[j] > u */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (cum[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    out[i] = (float)((lo < k ? lo : last) + 1); /* lo == k only if rounding put u at the total */
  }
}

/* Without replacement: sequential draws, each from the weights left (the
 * chosen category's weight set to 0), as PyTorch's distribution. */
static void draw_noreplace(const float *w, int64_t k, double *left, float *out, int64_t n, sl_rng *r) {
  for (int64_t j = 0; j < k; j++) left[j] = (double)w[j];
  for (int64_t i = 0; i < n; i++) {
    double total = 0.0;
    int64_t last = 0;
    for (int64_t j = 0; j < k; j++) {
      total += left[j];
      if (left[j] > 0.0) last = j;
    }
    double u = sl_rng_uniform_double(r) * total, acc = 0.0;
    int64_t pick = last;
    for (int64_t j = 0; j < k; j++) {
      acc += left[j];
      if (left[j] > 0.0 && u < acc) {
        pick = j;
        break;
      }
    }
    left[pick] = 0.0;
    out[i] = (float)(pick + 1);
  }
}

sl_tensor *sl_multinomial(const sl_tensor *probs, int64_t n, bool replacement, sl_rng *r) {
  char buf[SHAPE_BUF];
  if (probs->ndim > 2)
    return sl_fail_null(SL_ESHAPE, "multinomial: probs is %s (expected 1-D or 2-D)", sl_shape_str(probs, buf, sizeof buf));
  int64_t k = probs->shape[probs->ndim - 1], rows = probs->ndim == 2 ? probs->shape[0] : 1;
  if (k == 0)
    return sl_fail_null(SL_ESHAPE, "multinomial: probs %s has no categories", sl_shape_str(probs, buf, sizeof buf));
  if (k > SL_SAMPLE_MAX_EXACT)
    return sl_fail_null(SL_ERANGE, "multinomial: %lld categories (expected at most 16777216)", (long long)k);
  if (n < 1) return sl_fail_null(SL_EINVAL, "multinomial: n is %lld (expected at least 1 sample)", (long long)n);
  if (!replacement && n > k)
    return sl_fail_null(SL_EINVAL, "multinomial: cannot draw %lld samples without replacement from %lld categories",
                        (long long)n, (long long)k);
  for (int64_t i = 0; i < rows; i++) {
    int64_t pos = check_row(probs->data + i * k, k, probs->ndim == 2 ? i + 1 : 0);
    if (pos < 0) return NULL;
    if (!replacement && pos < n) {
      if (probs->ndim == 2)
        return sl_fail_null(SL_EINVAL,
                            "multinomial: row %lld has %lld categories of positive weight, cannot draw %lld "
                            "without replacement",
                            (long long)i + 1, (long long)pos, (long long)n);
      return sl_fail_null(SL_EINVAL,
                          "multinomial: %lld categories of positive weight, cannot draw %lld without replacement",
                          (long long)pos, (long long)n);
    }
  }
  int64_t shape[2] = {rows, n};
  sl_tensor *t = probs->ndim == 2 ? sl_tensor_empty(2, shape) : sl_tensor_empty(1, &n);
  if (!t) return NULL;
  double *scratch = sl_malloc((size_t)k * sizeof *scratch);
  if (!scratch) {
    sl_tensor_release(t);
    return NULL;
  }
  for (int64_t i = 0; i < rows; i++) {
    if (replacement) draw_replace(probs->data + i * k, k, scratch, t->data + i * n, n, r);
    else draw_noreplace(probs->data + i * k, k, scratch, t->data + i * n, n, r);
  }
  sl_free(scratch);
  return t;
}

int sl_normal_(sl_tensor *t, double mean, double std, sl_rng *r) {
  if (!isfinite(mean)) return sl_fail(SL_EINVAL, "normal_: mean is %g (expected a finite number)", shown(mean));
  if (!(std >= 0.0) || isinf(std)) return sl_fail(SL_EINVAL, "normal_: std is %g (expected finite and >= 0)", shown(std));
  sl_rng_fill_normal_f32(r, t->data, (size_t)t->numel, (float)mean, (float)std);
  return SL_OK;
}

int sl_uniform_(sl_tensor *t, double a, double b, sl_rng *r) {
  if (!isfinite(a) || !isfinite(b))
    return sl_fail(SL_EINVAL, "uniform_: bounds [%g, %g) (expected finite numbers)", shown(a), shown(b));
  if (a > b) return sl_fail(SL_EINVAL, "uniform_: a %g is greater than b %g (expected a <= b)", a, b);
  float fa = (float)a, fb = (float)b;
  if (!isfinite(fb - fa))
    return sl_fail(SL_ERANGE, "uniform_: range [%g, %g) is wider than float32 can hold", a, b);
  /* The generator T.rand uses: uniform_(0, 1) gives T.rand's bits. */
  sl_rng_fill_uniform_f32(r, t->data, (size_t)t->numel, fa, fb);
  /* fa + (fb - fa) * u can round up to fb: keep the interval half-open. */
  if (fa < fb) {
    float below = nextafterf(fb, fa);
    for (int64_t i = 0; i < t->numel; i++)
      if (t->data[i] >= fb) t->data[i] = below;
  }
  return SL_OK;
}

sl_tensor *sl_eye(int64_t n, int64_t m) {
  if (n < 0 || m < 0)
    return sl_fail_null(SL_EINVAL, "eye: %s is %lld (expected >= 0)", n < 0 ? "n" : "m", (long long)(n < 0 ? n : m));
  int64_t shape[2] = {n, m};
  sl_tensor *t = sl_tensor_zeros(2, shape);
  if (t)
    for (int64_t i = 0; i < n && i < m; i++) t->data[i * m + i] = 1.0f;
  return t;
}

/* PyTorch's CPU linspace (float32, one thread, AVX2 build) computes from
 * both ends: x[i] = a + step*i below n/2, b - step*(n-1-i) from there, each
 * with one rounding (its compiler fuses the multiply-add), and inside
 * blocks of 16 the elements after each block of 8's first are that first
 * plus k*step (two roundings). fmaf is the correctly rounded fused op, the
 * same on every machine; it is called explicitly, never contracted. */
static float linspace_at(float a, float b, float step, int64_t n, int64_t i) {
  return i < n / 2 ? fmaf(step, (float)i, a) : fmaf(-step, (float)(n - 1 - i), b);
}

sl_tensor *sl_linspace(double a, double b, int64_t n) {
  if (n < 0) return sl_fail_null(SL_EINVAL, "linspace: n is %lld (expected >= 0)", (long long)n);
  if (!isfinite(a) || !isfinite(b))
    return sl_fail_null(SL_EINVAL, "linspace: range %g to %g (expected finite numbers)", shown(a), shown(b));
  sl_tensor *t = sl_tensor_empty(1, &n);
  if (!t || n == 0) return t;
  float fa = (float)a, fb = (float)b, *x = t->data;
  if (n == 1) {
    x[0] = fa;
    return t;
  }
  float step = (fb - fa) / (float)(n - 1);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int64_t h = i; h < i + 16; h += 8) {
      float base = linspace_at(fa, fb, step, n, h);
      for (int k = 0; k < 8; k++) x[h + k] = base + (float)k * step;
    }
  for (; i < n; i++) x[i] = linspace_at(fa, fb, step, n, i);
  return t;
}

sl_tensor *sl_full_like(const sl_tensor *x, float v) { return sl_tensor_full(x->ndim, x->shape, v); }
