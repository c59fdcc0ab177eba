/* Elementwise arithmetic and reductions over contiguous float32 tensors.
 * Loops are plain and branch-free so GCC vectorizes them at -O2/-O3;
 * reductions accumulate in double. */
#include "ops.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "elementwise.h"
#include "error.h"

/* The tensor-tensor forms are the broadcasting ops of elementwise.c (one
 * iterator for every shape); y needs only the broadcast numel. */
int sl_add(sl_tensor *y, const sl_tensor *a, const sl_tensor *b) { return sl_binary(SL_ADD, y, a, b); }
int sl_sub(sl_tensor *y, const sl_tensor *a, const sl_tensor *b) { return sl_binary(SL_SUB, y, a, b); }
int sl_mul(sl_tensor *y, const sl_tensor *a, const sl_tensor *b) { return sl_binary(SL_MUL, y, a, b); }
int sl_div(sl_tensor *y, const sl_tensor *a, const sl_tensor *b) { return sl_binary(SL_DIV, y, a, b); }

static int check_unary(const char *name, const sl_tensor *y, const sl_tensor *a) {
  char sa[160], sy[160];
  if (y->numel != a->numel)
    return sl_fail(SL_ESHAPE, "%s: output %s does not match input %s", name,
                   sl_shape_str(y, sy, sizeof sy), sl_shape_str(a, sa, sizeof sa));
  return SL_OK;
}

#define SCALAR_OP(fname, label, expr)                                   \
  int fname(sl_tensor *y, const sl_tensor *a, float s) {                \
    int st = check_unary(label, y, a);                                  \
    if (st) return st;                                                  \
    float *yd = y->data;                                                \
    const float *ad = a->data;                                          \
    for (int64_t i = 0; i < a->numel; i++) yd[i] = (expr);              \
    return SL_OK;                                                       \
  }
SCALAR_OP(sl_add_scalar, "add", ad[i] + s)
SCALAR_OP(sl_sub_scalar, "sub", ad[i] - s)
SCALAR_OP(sl_mul_scalar, "mul", ad[i] * s)
SCALAR_OP(sl_div_scalar, "div", ad[i] / s)
SCALAR_OP(sl_rsub_scalar, "sub", s - ad[i])
SCALAR_OP(sl_rdiv_scalar, "div", s / ad[i])
#undef SCALAR_OP

int sl_neg(sl_tensor *y, const sl_tensor *a) {
  int st = check_unary("neg", y, a);
  if (st) return st;
  for (int64_t i = 0; i < a->numel; i++) y->data[i] = -a->data[i];
  return SL_OK;
}

int sl_axpy(sl_tensor *y, float alpha, const sl_tensor *x) {
  int st = check_unary("axpy", y, x);
  if (st) return st;
  for (int64_t i = 0; i < x->numel; i++) y->data[i] += alpha * x->data[i];
  return SL_OK;
}

int sl_fill(sl_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
  return SL_OK;
}

/* Sum of n floats with stride, in double; blocks of 4 partial sums keep the
 * loop vectorizable and the result independent of thread count. */
static double sum_strided(const float *x, int64_t n, int64_t stride) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  if (stride == 1) {
    for (; i + 4 <= n; i += 4) {
      s0 += (double)x[i];
      s1 += (double)x[i + 1];
      s2 += (double)x[i + 2];
      s3 += (double)x[i + 3];
    }
  }
  for (; i < n; i++) s0 += (double)x[i * stride];
  return (s0 + s1) + (s2 + s3);
}

static double var_strided(const float *x, int64_t n, int64_t stride) {
  if (n < 2) return (double)NAN;
  double mean = sum_strided(x, n, stride) / (double)n;
  double ss = 0, c = 0; /* two-pass with compensation term (Chan et al.) */
  for (int64_t i = 0; i < n; i++) {
    double d = (double)x[i * stride] - mean;
    ss += d * d;
    c += d;
  }
  return (ss - c * c / (double)n) / (double)(n - 1);
}

double sl_sum(const sl_tensor *t) { return sum_strided(t->data, t->numel, 1); }

double sl_mean(const sl_tensor *t) { return t->numel ? sl_sum(t) / (double)t->numel : (double)NAN; }

double sl_var(const sl_tensor *t) { return var_strided(t->data, t->numel, 1); }

double sl_std(const sl_tensor *t) { return sqrt(sl_var(t)); }

static int extreme(const sl_tensor *t, float *out, bool want_max, const char *name) {
  if (t->numel == 0) return sl_fail(SL_EINVAL, "%s: tensor is empty", name);
  float m = t->data[0];
  for (int64_t i = 1; i < t->numel; i++) {
    float v = t->data[i];
    if (isnan(m)) break; /* NaN propagates, as in PyTorch */
    if (isnan(v) || (want_max ? v > m : v < m)) m = v;
  }
  *out = m;
  return SL_OK;
}

int sl_min(const sl_tensor *t, float *out) { return extreme(t, out, false, "min"); }
int sl_max(const sl_tensor *t, float *out) { return extreme(t, out, true, "max"); }

static int64_t argmax_strided(const float *x, int64_t n, int64_t stride) {
  int64_t best = 0;
  float m = x[0];
  for (int64_t i = 1; i < n && !isnan(m); i++) {
    float v = x[i * stride];
    if (isnan(v) || v > m) {
      m = v;
      best = i;
    }
  }
  return best;
}

int sl_argmax(const sl_tensor *t, int64_t *out) {
  if (t->numel == 0) return sl_fail(SL_EINVAL, "argmax: tensor is empty");
  *out = argmax_strided(t->data, t->numel, 1);
  return SL_OK;
}

int sl_reduce_shape(const sl_tensor *x, int dim, int *ndim, int64_t *shape) {
  char buf[160];
  if (dim < 0 || dim >= x->ndim)
    return sl_fail(SL_ERANGE, "dimension %d out of range 1..%d for %s", dim + 1, x->ndim,
                   sl_shape_str(x, buf, sizeof buf));
  if (x->ndim == 1) {
    *ndim = 1;
    shape[0] = 1;
    return SL_OK;
  }
  int k = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != dim) shape[k++] = x->shape[i];
  *ndim = k;
  return SL_OK;
}

enum red { R_SUM, R_MEAN, R_VAR, R_STD, R_MAX, R_MIN, R_ARGMAX };

static int reduce_dim(enum red kind, const char *name, sl_tensor *y, const sl_tensor *x, int dim) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  char a[160], b[160];
  int st = sl_reduce_shape(x, dim, &nd, shape);
  if (st) {
    char msg[256]; /* sl_fail would read the buffer it writes */
    snprintf(msg, sizeof msg, "%s", sl_last_error());
    return sl_fail(st, "%s: %s", name, msg);
  }
  int64_t outn = 1;
  for (int i = 0; i < nd; i++) outn *= shape[i];
  if (y->numel != outn)
    return sl_fail(SL_ESHAPE, "%s: output %s should be %s", name, sl_shape_str(y, a, sizeof a),
                   sl_shape_str_raw(nd, shape, b, sizeof b));
  int64_t n = x->shape[dim], outer = 1, inner = 1;
  for (int i = 0; i < dim; i++) outer *= x->shape[i];
  for (int i = dim + 1; i < x->ndim; i++) inner *= x->shape[i];
  if (n == 0 && (kind == R_MAX || kind == R_MIN || kind == R_ARGMAX))
    return sl_fail(SL_EINVAL, "%s: dimension %d is empty", name, dim + 1);
  if (y->data == x->data) return sl_fail(SL_EINVAL, "%s: output may not alias the input", name);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t in = 0; in < inner; in++) {
      const float *p = x->data + o * n * inner + in;
      double v;
      switch (kind) {
      case R_SUM: v = sum_strided(p, n, inner); break;
      case R_MEAN: v = n ? sum_strided(p, n, inner) / (double)n : (double)NAN; break;
      case R_VAR: v = var_strided(p, n, inner); break;
      case R_STD: v = sqrt(var_strided(p, n, inner)); break;
      case R_ARGMAX: v = (double)argmax_strided(p, n, inner); break;
      default: {
        float m = p[0];
        for (int64_t i = 1; i < n && !isnan(m); i++) {
          float e = p[i * inner];
          if (isnan(e) || (kind == R_MAX ? e > m : e < m)) m = e;
        }
        v = (double)m;
      }
      }
      y->data[o * inner + in] = (float)v;
    }
  }
  return SL_OK;
}

int sl_sum_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_SUM, "sum", y, x, dim); }
int sl_mean_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_MEAN, "mean", y, x, dim); }
int sl_var_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_VAR, "var", y, x, dim); }
int sl_std_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_STD, "std", y, x, dim); }
int sl_max_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_MAX, "max", y, x, dim); }
int sl_min_dim(sl_tensor *y, const sl_tensor *x, int dim) { return reduce_dim(R_MIN, "min", y, x, dim); }
int sl_argmax_dim(sl_tensor *y, const sl_tensor *x, int dim) {
  return reduce_dim(R_ARGMAX, "argmax", y, x, dim);
}
