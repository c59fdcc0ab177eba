/* Elementwise kernels over the broadcasting iterator (broadcast.h). Each op
 * is one scalar expression; run_binary instantiates the four stride cases
 * (both contiguous, either operand broadcast, both) with the op a constant,
 * so every loop is a plain loop GCC vectorizes (-O3 for this file). */
#include "elementwise.h"

#include <math.h>

#include "binary_apply.h"
#include "broadcast.h"
#include "error.h"
#include "parallel.h"
#include "stream.h"
#include "vmath.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_EW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SL_EW_CLONES
#endif

static const char *const binary_names[SL_BINARY_COUNT] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"};
static const char *const unary_names[SL_UNARY_COUNT] = {
    "neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh",
    "sigmoid", "sin", "cos", "floor", "ceil", "round"};

const char *sl_binary_name(sl_binary_op op) { return op < SL_BINARY_COUNT ? binary_names[op] : "?"; }
const char *sl_unary_name(sl_unary_op op) { return op < SL_UNARY_COUNT ? unary_names[op] : "?"; }

/* rows runs of n outputs (broadcast.h's rows kernel): run r reads a from
 * a + r * oa and b from b + r * ob. */
static inline __attribute__((always_inline)) void run_binary(sl_binary_op op, float *y, const float *a,
                                                             int64_t sa, const float *b, int64_t sb, int64_t n,
                                                             int64_t rows, int64_t oa, int64_t ob) {
  for (int64_t r = 0; r < rows; r++, y += n, a += oa, b += ob) {
    if (sa && sb)
      for (int64_t i = 0; i < n; i++) y[i] = sl_binary_apply(op, a[i], b[i]);
    else if (sa) {
      float s = b[0];
      for (int64_t i = 0; i < n; i++) y[i] = sl_binary_apply(op, a[i], s);
    } else if (sb) {
      float s = a[0];
      for (int64_t i = 0; i < n; i++) y[i] = sl_binary_apply(op, s, b[i]);
    } else {
      float v = sl_binary_apply(op, a[0], b[0]);
      for (int64_t i = 0; i < n; i++) y[i] = v;
    }
  }
}

/* One copy of the loops per op, in baseline x86-64, AVX2 and AVX-512 (every
 * op is one IEEE operation or a libm call per element: the same bits in
 * each clone). */
typedef struct binary_job {
  sl_binary_op op;
  bool stream; /* a large output: sl_stream_binary */
} binary_job;

SL_EW_CLONES static void binary_kernel(const void *ctx, float *y, const float *const *in, const int64_t *s,
                                       int64_t n, int64_t rows, const int64_t *os) {
  const binary_job *j = ctx;
  sl_binary_op op = j->op;
  const float *a = in[0], *b = in[1];
  int64_t sa = s[0], sb = s[1], oa = os[0], ob = os[1];
  if (j->stream) {
    if (!sl_stream_binary_rows(op, y, a, sa, oa, b, sb, ob, n, rows))
      for (int64_t r = 0; r < rows; r++) sl_stream_binary(op, y + r * n, a + r * oa, sa, b + r * ob, sb, n);
    sl_stream_fence(); /* written before the pool counts this piece done */
    return;
  }
  switch (op) {
  case SL_ADD: run_binary(SL_ADD, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_SUB: run_binary(SL_SUB, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_MUL: run_binary(SL_MUL, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_DIV: run_binary(SL_DIV, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_POW: run_binary(SL_POW, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_MAXIMUM: run_binary(SL_MAXIMUM, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_MINIMUM: run_binary(SL_MINIMUM, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_EQ: run_binary(SL_EQ, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_NE: run_binary(SL_NE, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_LT: run_binary(SL_LT, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_LE: run_binary(SL_LE, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_GT: run_binary(SL_GT, y, a, sa, b, sb, n, rows, oa, ob); break;
  case SL_GE: run_binary(SL_GE, y, a, sa, b, sb, n, rows, oa, ob); break;
  default: break;
  }
}

/* Large outputs of the ops that cost less than their memory traffic are
 * written with streaming stores (stream.h). */
static int run_binary_op(sl_binary_op op, sl_tensor *y, const sl_tensor *const *in) {
  binary_job j = {op, sl_stream_binary_op(op) && sl_stream_ok(y->data, (size_t)y->numel)};
  return sl_broadcast_run_rows(binary_names[op], y, 2, in, binary_kernel, &j);
}

static int check_op(int op, int count) {
  return op >= 0 && op < count ? SL_OK : sl_fail(SL_EINVAL, "elementwise: unknown op %d", op);
}

int sl_binary(sl_binary_op op, sl_tensor *y, const sl_tensor *a, const sl_tensor *b) {
  int st = check_op((int)op, SL_BINARY_COUNT);
  if (st) return st;
  int nd;
  int64_t shape[SL_MAX_DIMS];
  if ((st = sl_broadcast_shapes(binary_names[op], a, b, &nd, shape))) return st;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  if (y->numel != n) {
    char s1[160], s2[160];
    return sl_fail(SL_ESHAPE, "%s: output %s does not match the broadcast shape %s", binary_names[op],
                   sl_shape_str(y, s1, sizeof s1), sl_shape_str_raw(nd, shape, s2, sizeof s2));
  }
  /* the iterator walks y with the broadcast shape (y may be a flat buffer of
   * the same numel: view it with that shape) */
  sl_tensor yv = *y;
  yv.ndim = nd;
  for (int i = 0; i < SL_MAX_DIMS; i++) yv.shape[i] = i < nd ? shape[i] : 0;
  const sl_tensor *in[2] = {a, b};
  if ((y->data == b->data && b->numel != n) || (y->data == a->data && a->numel != n))
    return sl_fail(SL_EINVAL, "%s: output may not alias a broadcast input", binary_names[op]);
  return run_binary_op(op, &yv, in);
}

sl_tensor *sl_binary_new(sl_binary_op op, const sl_tensor *a, const sl_tensor *b) {
  if (check_op((int)op, SL_BINARY_COUNT)) return NULL;
  int nd;
  int64_t shape[SL_MAX_DIMS];
  if (sl_broadcast_shapes(binary_names[op], a, b, &nd, shape)) return NULL;
  sl_tensor *y = sl_tensor_empty(nd, shape);
  if (y && sl_binary(op, y, a, b)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

/* A 1-element tensor header over a float on the stack (never retained). */
static sl_tensor scalar_view(float *v) {
  sl_tensor t = {0};
  t.data = v;
  t.ndim = 1;
  t.shape[0] = 1;
  t.numel = 1;
  t.refcount = 1;
  return t;
}

int sl_binary_scalar(sl_binary_op op, sl_tensor *y, const sl_tensor *a, float s, bool scalar_left) {
  int st = check_op((int)op, SL_BINARY_COUNT);
  if (st) return st;
  if (y->numel != a->numel) {
    char s1[160], s2[160];
    return sl_fail(SL_ESHAPE, "%s: output %s does not match input %s", binary_names[op],
                   sl_shape_str(y, s1, sizeof s1), sl_shape_str(a, s2, sizeof s2));
  }
  sl_tensor sv = scalar_view(&s), yv = *y;
  yv.ndim = a->ndim;
  for (int i = 0; i < SL_MAX_DIMS; i++) yv.shape[i] = a->shape[i];
  const sl_tensor *in[2] = {scalar_left ? &sv : a, scalar_left ? a : &sv};
  return run_binary_op(op, &yv, in);
}

sl_tensor *sl_binary_scalar_new(sl_binary_op op, const sl_tensor *a, float s, bool scalar_left) {
  sl_tensor *y = sl_tensor_empty(a->ndim, a->shape);
  if (y && sl_binary_scalar(op, y, a, s, scalar_left)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

static void where_kernel(const void *ctx, float *y, const float *const *in, const int64_t *s, int64_t n) {
  (void)ctx;
  const float *c = in[0], *a = in[1], *b = in[2];
  if (s[0] && s[1] && s[2])
    for (int64_t i = 0; i < n; i++) y[i] = c[i] != 0.0f ? a[i] : b[i];
  else
    for (int64_t i = 0; i < n; i++) y[i] = c[i * s[0]] != 0.0f ? a[i * s[1]] : b[i * s[2]];
}

static int where_shape(const sl_tensor *cond, const sl_tensor *a, const sl_tensor *b, int *nd, int64_t *shape) {
  int n1;
  int64_t s1[SL_MAX_DIMS];
  int st = sl_broadcast_shapes("where", cond, a, &n1, s1);
  if (!st) st = sl_broadcast_shape("where", n1, s1, b->ndim, b->shape, nd, shape);
  return st;
}

int sl_where(sl_tensor *y, const sl_tensor *cond, const sl_tensor *a, const sl_tensor *b) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  int st = where_shape(cond, a, b, &nd, shape);
  if (st) return st;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  if (y->numel != n) {
    char s1[160], s2[160];
    return sl_fail(SL_ESHAPE, "where: output %s does not match the broadcast shape %s",
                   sl_shape_str(y, s1, sizeof s1), sl_shape_str_raw(nd, shape, s2, sizeof s2));
  }
  sl_tensor yv = *y;
  yv.ndim = nd;
  for (int i = 0; i < SL_MAX_DIMS; i++) yv.shape[i] = i < nd ? shape[i] : 0;
  const sl_tensor *in[3] = {cond, a, b};
  return sl_broadcast_run("where", &yv, 3, in, where_kernel, NULL);
}

sl_tensor *sl_where_new(const sl_tensor *cond, const sl_tensor *a, const sl_tensor *b) {
  int nd;
  int64_t shape[SL_MAX_DIMS];
  if (where_shape(cond, a, b, &nd, shape)) return NULL;
  sl_tensor *y = sl_tensor_empty(nd, shape);
  if (y && sl_where(y, cond, a, b)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

/* ---- unary ---- */

static inline float apply_unary(sl_unary_op op, float x) {
  switch (op) {
  case SL_NEG: return -x;
  case SL_ABS: return fabsf(x);
  case SL_SIGN: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f; /* PyTorch 1.13 CPU: (0 < x) - (x < 0), so 0 for NaN and +-0 */
  case SL_LOG: return logf(x);
  case SL_LOG1P: return log1pf(x);
  case SL_SQRT: return sqrtf(x);
  case SL_RSQRT: return 1.0f / sqrtf(x);
  case SL_TANH: return tanhf(x);
  case SL_SIN: return sinf(x);
  case SL_COS: return cosf(x);
  case SL_FLOOR: return floorf(x);
  case SL_CEIL: return ceilf(x);
  case SL_ROUND: return nearbyintf(x); /* default rounding mode: half to even */
  default: return x;
  }
}

static inline __attribute__((always_inline)) void run_unary(sl_unary_op op, float *y, const float *x,
                                                            int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = apply_unary(op, x[i]);
}

typedef struct unary_job {
  sl_unary_op op;
  float *y;
  const float *x;
  bool stream; /* a large output: sl_stream_unary */
} unary_job;

SL_EW_CLONES static void unary_block(sl_unary_op op, float *y, const float *x, int64_t n) {
  switch (op) {
  /* exp, expm1 and sigmoid use the vectorized polynomial exp of vmath.c
   * (<= 2 ulp, the same bits on every ISA) */
  case SL_EXP: sl_vexp_f32(y, x, (size_t)n); break;
  case SL_EXPM1: sl_vexpm1_f32(y, x, (size_t)n); break;
  case SL_SIGMOID: sl_vsigmoid_f32(y, x, (size_t)n); break;
  case SL_NEG: run_unary(SL_NEG, y, x, n); break;
  case SL_ABS: run_unary(SL_ABS, y, x, n); break;
  case SL_SIGN: run_unary(SL_SIGN, y, x, n); break;
  case SL_LOG: run_unary(SL_LOG, y, x, n); break;
  case SL_LOG1P: run_unary(SL_LOG1P, y, x, n); break;
  case SL_SQRT: run_unary(SL_SQRT, y, x, n); break;
  case SL_RSQRT: run_unary(SL_RSQRT, y, x, n); break;
  case SL_TANH: sl_vtanh_f32(y, x, (size_t)n); break; /* vmath's: glibc's tanhf does not vectorize */
  case SL_SIN: run_unary(SL_SIN, y, x, n); break;
  case SL_COS: run_unary(SL_COS, y, x, n); break;
  case SL_FLOOR: run_unary(SL_FLOOR, y, x, n); break;
  case SL_CEIL: run_unary(SL_CEIL, y, x, n); break;
  case SL_ROUND: run_unary(SL_ROUND, y, x, n); break;
  default: break;
  }
}

static void unary_range(const void *vj, size_t b, size_t e) {
  const unary_job *j = vj;
  if (j->stream) {
    sl_stream_unary(j->op, j->y + b, j->x + b, (int64_t)(e - b));
    sl_stream_fence();
  } else {
    unary_block(j->op, j->y + b, j->x + b, (int64_t)(e - b));
  }
}

int sl_unary(sl_unary_op op, sl_tensor *y, const sl_tensor *x) {
  int st = check_op((int)op, SL_UNARY_COUNT);
  if (st) return st;
  if (y->numel != x->numel) {
    char s1[160], s2[160];
    return sl_fail(SL_ESHAPE, "%s: output %s does not match input %s", unary_names[op],
                   sl_shape_str(y, s1, sizeof s1), sl_shape_str(x, s2, sizeof s2));
  }
  unary_job j = {op, y->data, x->data, sl_stream_unary_op(op) && sl_stream_ok(y->data, (size_t)x->numel)};
  if (x->numel) sl_par_for((size_t)x->numel, unary_range, &j);
  return SL_OK;
}

sl_tensor *sl_unary_new(sl_unary_op op, const sl_tensor *x) {
  sl_tensor *y = sl_tensor_empty(x->ndim, x->shape);
  if (y && sl_unary(op, y, x)) {
    sl_tensor_release(y);
    return NULL;
  }
  return y;
}

int sl_clamp(sl_tensor *y, const sl_tensor *x, bool has_lo, float lo, bool has_hi, float hi) {
  if ((has_lo && isnan(lo)) || (has_hi && isnan(hi)))
    return sl_fail(SL_EINVAL, "clamp: %s is NaN (expected a number, or nil for no bound)",
                   has_lo && isnan(lo) ? "min" : "max");
  if (!has_lo && !has_hi) return sl_fail(SL_EINVAL, "clamp: at least one of min and max expected (both are nil)");
  if (y->numel != x->numel) {
    char s1[160], s2[160];
    return sl_fail(SL_ESHAPE, "clamp: output %s does not match input %s", sl_shape_str(y, s1, sizeof s1),
                   sl_shape_str(x, s2, sizeof s2));
  }
  float l = has_lo ? lo : -INFINITY, h = has_hi ? hi : INFINITY;
  float *yd = y->data;
  const float *xd = x->data;
  /* PyTorch: min(max(x, lo), hi), NaN in x propagates */
  for (int64_t i = 0; i < x->numel; i++) {
    float v = xd[i];
    float m = v < l ? l : v;
    yd[i] = v != v ? v : (m > h ? h : m);
  }
  return SL_OK;
}
