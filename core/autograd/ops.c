/*
 * Backward functions of the tensor ops (ops.h, blas.h, the activation
 * kernels of nn.h) and the sl_ag_record_* helpers the bindings call after a
 * forward. Each backward overwrites gx[i] for the inputs that need it.
 * Nothing here saves an op's output (no reference cycles): gradients that
 * PyTorch takes from the result (exp, tanh, sigmoid, sqrt) are computed
 * from the saved input with the same float32 function.
 */
#include <math.h>
#include <string.h>

#include "autograd.h"
#include "../nn/nn.h"
#include "../tensor/blas.h"
#include "../tensor/elementwise.h"
#include "../tensor/error.h"
#include "../tensor/ops.h"

/* Broadcast strides: element k of the output (shape gy) reads operand t at
 * sum(idx[d] * st[d]), with stride 0 where t is broadcast (NumPy's rule,
 * shapes aligned from the right). */
static void bstrides(const sl_tensor *t, const sl_tensor *gy, int64_t *st) {
  int64_t s = 1;
  for (int d = gy->ndim - 1; d >= 0; d--) {
    int td = d - (gy->ndim - t->ndim);
    int64_t size = td >= 0 ? t->shape[td] : 1;
    st[d] = size == 1 ? 0 : s;
    s *= size;
  }
}

static int binop_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_binary_op op = (sl_binary_op)n->i[0];
  sl_tensor *a = NULL, *b = NULL;
  int st;
  if ((st = sl_ag_saved(n, 0, &a)) || (st = sl_ag_saved(n, 1, &b))) return st;
  int64_t sa[SL_MAX_DIMS], sb[SL_MAX_DIMS], idx[SL_MAX_DIMS] = {0};
  bstrides(a, gy, sa);
  bstrides(b, gy, sb);
  for (int side = 0; side < 2; side++)
    if (gx[side]) memset(gx[side]->data, 0, (size_t)gx[side]->numel * sizeof(float));
  int64_t ia = 0, ib = 0;
  for (int64_t k = 0; k < gy->numel; k++) {
    float g = gy->data[k], av = a->data[ia], bv = b->data[ib], da = 0, db = 0;
    switch (op) {
    case SL_ADD: da = g, db = g; break;
    case SL_SUB: da = g, db = -g; break;
    case SL_MUL: da = g * bv, db = g * av; break;
    case SL_DIV: da = g / bv, db = -g * av / (bv * bv); break;
    case SL_POW: /* PyTorch's pow_backward_self / pow_backward_exponent, zeros where they put them */
      da = bv == 0.0f ? 0.0f : g * (bv * powf(av, bv - 1.0f));
      db = av == 0.0f && bv >= 0.0f ? 0.0f : g * (powf(av, bv) * logf(av));
      break;
    case SL_MAXIMUM: /* ties split the gradient in halves; NaN passes it to both (PyTorch) */
      da = av == bv ? g / 2 : av < bv ? 0.0f : g;
      db = av == bv ? g / 2 : av > bv ? 0.0f : g;
      break;
    case SL_MINIMUM:
      da = av == bv ? g / 2 : av > bv ? 0.0f : g;
      db = av == bv ? g / 2 : av < bv ? 0.0f : g;
      break;
    default: break;
    }
    if (gx[0]) gx[0]->data[ia] += da;
    if (gx[1]) gx[1]->data[ib] += db;
    for (int d = gy->ndim - 1; d >= 0; d--) { /* odometer over the output's index */
      ia += sa[d], ib += sb[d];
      if (++idx[d] < gy->shape[d]) break;
      ia -= sa[d] * gy->shape[d], ib -= sb[d] * gy->shape[d];
      idx[d] = 0;
    }
  }
  return SL_OK;
}

static const char *const binop_names[] = {"AddBackward", "SubBackward",     "MulBackward",    "DivBackward",
                                          "PowBackward", "MaximumBackward", "MinimumBackward"};

int sl_ag_record_binop(enum sl_ag_binop op, sl_tensor *y, sl_tensor *a, sl_tensor *b) {
  static const sl_binary_op kernel_op[] = {SL_ADD, SL_SUB, SL_MUL, SL_DIV, SL_POW, SL_MAXIMUM, SL_MINIMUM};
  sl_tensor *in[2] = {a, b};
  sl_ag_node *n = sl_ag_record(binop_names[op], binop_backward, y, in, 2);
  if (!n) return SL_ENOMEM;
  n->i[0] = kernel_op[op];
  int st = sl_ag_save(n, a); /* add/sub read only the shapes, but the walk is shared */
  return st ? st : sl_ag_save(n, b);
}

static int scalar_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  enum sl_ag_binop op = (enum sl_ag_binop)n->i[0];
  bool left = n->i[1];
  float s = (float)n->f[0];
  float *g = gx[0]->data;
  const float *d = gy->data;
  int64_t len = gy->numel;
  sl_tensor *a = NULL;
  int st;
  switch (op) {
  case SL_AG_ADD: memcpy(g, d, (size_t)len * sizeof *g); break;
  case SL_AG_SUB:
    for (int64_t k = 0; k < len; k++) g[k] = left ? -d[k] : d[k];
    break;
  case SL_AG_MUL:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] * s;
    break;
  case SL_AG_DIV:
    if (!left) {
      for (int64_t k = 0; k < len; k++) g[k] = d[k] / s;
      break;
    }
    if ((st = sl_ag_saved(n, 0, &a))) return st;
    for (int64_t k = 0; k < len; k++) g[k] = -d[k] * s / (a->data[k] * a->data[k]); /* d(s/a) */
    break;
  case SL_AG_POW:
    if ((st = sl_ag_saved(n, 0, &a))) return st;
    if (!left) { /* a^s */
      for (int64_t k = 0; k < len; k++) g[k] = s == 0.0f ? 0.0f : d[k] * (s * powf(a->data[k], s - 1.0f));
    } else { /* s^a: zero where s == 0 and a >= 0, as PyTorch */
      float ls = logf(s);
      for (int64_t k = 0; k < len; k++)
        g[k] = s == 0.0f && a->data[k] >= 0.0f ? 0.0f : d[k] * (powf(s, a->data[k]) * ls);
    }
    break;
  case SL_AG_MAXIMUM:
  case SL_AG_MINIMUM: /* the number is a constant operand: ties halve the gradient */
    if ((st = sl_ag_saved(n, 0, &a))) return st;
    for (int64_t k = 0; k < len; k++) {
      float v = a->data[k];
      bool lose = op == SL_AG_MAXIMUM ? v < s : v > s;
      g[k] = v == s ? d[k] / 2 : lose ? 0.0f : d[k];
    }
    break;
  }
  return SL_OK;
}

int sl_ag_record_scalar(enum sl_ag_binop op, sl_tensor *y, sl_tensor *a, double s, bool scalar_left) {
  sl_ag_node *n = sl_ag_record(binop_names[op], scalar_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = op;
  n->i[1] = scalar_left;
  n->f[0] = s;
  return (op == SL_AG_DIV && scalar_left) || op >= SL_AG_POW ? sl_ag_save(n, a) : SL_OK;
}

static int unary_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  enum sl_ag_unop op = (enum sl_ag_unop)n->i[0];
  float *g = gx[0]->data;
  const float *d = gy->data;
  int64_t len = gy->numel;
  if (op == SL_AG_CLONE || op == SL_AG_VIEW) {
    memcpy(g, d, (size_t)len * sizeof *g);
    return SL_OK;
  }
  if (op == SL_AG_NEG) {
    for (int64_t k = 0; k < len; k++) g[k] = -d[k];
    return SL_OK;
  }
  sl_tensor *xt;
  int st = sl_ag_saved(n, 0, &xt);
  if (st) return st;
  const float *x = xt->data;
  switch (op) {
  case SL_AG_EXP:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] * expf(x[k]);
    break;
  case SL_AG_LOG:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] / x[k];
    break;
  case SL_AG_SQRT:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] / (2.0f * sqrtf(x[k]));
    break;
  case SL_AG_ABS:
    for (int64_t k = 0; k < len; k++) g[k] = x[k] > 0 ? d[k] : x[k] < 0 ? -d[k] : 0.0f;
    break;
  case SL_AG_TANH:
    for (int64_t k = 0; k < len; k++) {
      float t = tanhf(x[k]);
      g[k] = d[k] * (1.0f - t * t);
    }
    break;
  case SL_AG_SIGMOID:
    for (int64_t k = 0; k < len; k++) {
      float s = 1.0f / (1.0f + expf(-x[k]));
      g[k] = d[k] * (1.0f - s) * s;
    }
    break;
  case SL_AG_SELU: sl_selu_backward_f32(g, x, d, (size_t)len); break;
  case SL_AG_RELU: sl_relu_backward_f32(g, x, d, (size_t)len); break;
  case SL_AG_ELU: sl_elu_backward_f32(g, x, d, (size_t)len, (float)n->f[0], 1.0f); break;
  case SL_AG_LOG1P:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] / (1.0f + x[k]);
    break;
  case SL_AG_EXPM1:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] * expf(x[k]);
    break;
  case SL_AG_RSQRT:
    for (int64_t k = 0; k < len; k++) {
      float r = 1.0f / sqrtf(x[k]);
      g[k] = -0.5f * d[k] * r * r * r;
    }
    break;
  case SL_AG_SIN:
    for (int64_t k = 0; k < len; k++) g[k] = d[k] * cosf(x[k]);
    break;
  case SL_AG_COS:
    for (int64_t k = 0; k < len; k++) g[k] = -d[k] * sinf(x[k]);
    break;
  case SL_AG_STEP: memset(g, 0, (size_t)len * sizeof *g); break;
  default: break;
  }
  return SL_OK;
}

static const char *const unop_names[] = {"NegBackward", "ExpBackward", "LogBackward", "SqrtBackward",
                                         "AbsBackward", "TanhBackward", "SigmoidBackward", "SeluBackward",
                                         "ReluBackward", "EluBackward", "CloneBackward", "ViewBackward",
                                         "Log1pBackward", "Expm1Backward", "RsqrtBackward", "SinBackward",
                                         "CosBackward", "StepBackward"};

int sl_ag_record_unary(enum sl_ag_unop op, sl_tensor *y, sl_tensor *a, double alpha) {
  sl_ag_node *n = sl_ag_record(unop_names[op], unary_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = op;
  n->f[0] = alpha;
  return op == SL_AG_NEG || op == SL_AG_CLONE || op == SL_AG_VIEW ? SL_OK : sl_ag_save(n, a);
}

static int sum_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  int dim = (int)n->i[0];
  bool mean = n->i[1];
  sl_tensor *x = gx[0];
  if (dim < 0) {
    float v = mean ? gy->data[0] / (float)x->numel : gy->data[0];
    return sl_fill(x, v);
  }
  int64_t outer = 1, inner = 1, len = x->shape[dim];
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < len; j++)
      for (int64_t i = 0; i < inner; i++) {
        float v = gy->data[o * inner + i];
        x->data[(o * len + j) * inner + i] = mean ? v / (float)len : v;
      }
  return SL_OK;
}

int sl_ag_record_sum(sl_tensor *y, sl_tensor *a, int dim, bool mean) {
  sl_ag_node *n = sl_ag_record(mean ? "MeanBackward" : "SumBackward", sum_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = mean;
  return SL_OK;
}

/* a: (m, k) or (k), b: (k, n) or (k); the 1-D cases as sl_matmul reads them. */
static int matmul_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *a, *b;
  int st;
  if ((st = sl_ag_saved(n, 0, &a)) || (st = sl_ag_saved(n, 1, &b))) return st;
  int64_t m = a->ndim == 2 ? a->shape[0] : 1, k = a->shape[a->ndim - 1];
  int64_t nn = b->ndim == 2 ? b->shape[1] : 1;
  if (gx[0]) sl_sgemm_f32(false, true, m, k, nn, 1.0f, gy->data, b->data, 0.0f, gx[0]->data); /* gy b^T */
  if (gx[1]) sl_sgemm_f32(true, false, k, nn, m, 1.0f, a->data, gy->data, 0.0f, gx[1]->data); /* a^T gy */
  return SL_OK;
}

int sl_ag_record_matmul(sl_tensor *y, sl_tensor *a, sl_tensor *b) {
  sl_tensor *in[2] = {a, b};
  sl_ag_node *n = sl_ag_record("MmBackward", matmul_backward, y, in, 2);
  if (!n) return SL_ENOMEM;
  int st = sl_ag_save(n, a);
  return st ? st : sl_ag_save(n, b);
}

static int transpose_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  (void)n;
  int64_t r = gy->shape[0], c = gy->shape[1]; /* gx is [c x r] */
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < c; j++) gx[0]->data[j * r + i] = gy->data[i * c + j];
  return SL_OK;
}

int sl_ag_record_transpose(sl_tensor *y, sl_tensor *a) {
  return sl_ag_record("TBackward", transpose_backward, y, &a, 1) ? SL_OK : SL_ENOMEM;
}

static int narrow_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  int dim = (int)n->i[0];
  int64_t start = n->i[1], length = n->i[2];
  sl_tensor *x = gx[0];
  memset(x->data, 0, (size_t)x->numel * sizeof(float));
  int64_t outer = 1, inner = 1, len = x->shape[dim];
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  for (int64_t o = 0; o < outer; o++)
    memcpy(x->data + (o * len + start) * inner, gy->data + o * length * inner,
           (size_t)(length * inner) * sizeof(float));
  return SL_OK;
}

int sl_ag_record_narrow(sl_tensor *y, sl_tensor *a, int dim, int64_t start, int64_t length) {
  sl_ag_node *n = sl_ag_record("NarrowBackward", narrow_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = start;
  n->i[2] = length;
  return SL_OK;
}
