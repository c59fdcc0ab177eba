/*
 * Backward of the reductions other than sum/mean (prod var std max min
 * logsumexp norm) and of softmax/log_softmax, with PyTorch's formulas
 * (derivatives.yaml / FunctionsManual.cpp), including where it puts zeros
 * (a zero std or norm, zeros in prod) and how it splits ties (the
 * all-element max/min: evenly; along a dim: to the index the forward
 * returned). Nothing saves the op's output: the result (a keepdim-shaped
 * tensor, small) is recomputed from the saved input with the same kernel,
 * so it has the forward's bits. An all-element reduction runs on flat
 * views of the input and its gradient (dim 0 of [numel]).
 */
#include <math.h>
#include <string.h>

#include "autograd.h"
#include "../tensor/alloc.h"
#include "../tensor/elementwise.h"
#include "../tensor/error.h"
#include "../tensor/reduce.h"

/* One reduction's operands as the backward sees them: x and g (the input
 * and its gradient, flat for an all-element reduction), gk (the incoming
 * gradient with the reduced dim kept as 1) and r (scratch of gk's shape). */
typedef struct red_views {
  sl_tensor *x, *g, *gk, *r;
  int d;
  int64_t outer, len, inner;
} red_views;

static void views_free(red_views *v) {
  sl_tensor_release(v->x);
  sl_tensor_release(v->g);
  sl_tensor_release(v->gk);
  sl_tensor_release(v->r);
}

static int views_make(red_views *v, const sl_tensor *x, sl_tensor *g, const sl_tensor *gy, int dim) {
  memset(v, 0, sizeof *v);
  int64_t flat = x->numel, kshape[SL_MAX_DIMS];
  if (dim < 0) {
    v->x = sl_tensor_reshape(x, 1, &flat);
    v->g = sl_tensor_reshape(g, 1, &flat);
    v->d = 0;
  } else {
    v->x = sl_tensor_retain((sl_tensor *)x);
    v->g = sl_tensor_retain(g);
    v->d = dim;
  }
  if (!v->x || !v->g) return SL_ENOMEM;
  memcpy(kshape, v->x->shape, sizeof kshape);
  kshape[v->d] = 1;
  v->gk = sl_tensor_reshape(gy, v->x->ndim, kshape);
  v->r = sl_tensor_empty(v->x->ndim, kshape);
  if (!v->gk || !v->r) return SL_ENOMEM;
  v->outer = v->inner = 1;
  v->len = v->x->shape[v->d];
  for (int k = 0; k < v->d; k++) v->outer *= v->x->shape[k];
  for (int k = v->d + 1; k < v->x->ndim; k++) v->inner *= v->x->shape[k];
  return SL_OK;
}

/* g = gy * prod of the other elements of each slice (x has zeros, so
 * result / x does not do): exclusive prefix times suffix products. */
static void prod_with_zeros(const red_views *v) {
  const float *x = v->x->data, *gk = v->gk->data;
  float *g = v->g->data;
  for (int64_t o = 0; o < v->outer; o++)
    for (int64_t i = 0; i < v->inner; i++) {
      const float *xs = x + o * v->len * v->inner + i;
      float *gs = g + o * v->len * v->inner + i;
      double pre = 1;
      for (int64_t j = 0; j < v->len; j++) { /* gs[j] = prefix product, then times the suffix */
        gs[j * v->inner] = (float)pre;
        pre *= (double)xs[j * v->inner];
      }
      double suf = 1;
      for (int64_t j = v->len - 1; j >= 0; j--) {
        gs[j * v->inner] = (float)((double)gs[j * v->inner] * suf) * gk[o * v->inner + i];
        suf *= (double)xs[j * v->inner];
      }
    }
}

/* PyTorch's norm_backward for a finite p other than 0, 1 and 2. */
static void norm_general(const red_views *v, double p) {
  const float *x = v->x->data, *gk = v->gk->data, *nr = v->r->data;
  float *g = v->g->data, pf = (float)p;
  for (int64_t o = 0; o < v->outer; o++)
    for (int64_t j = 0; j < v->len; j++)
      for (int64_t i = 0; i < v->inner; i++) {
        int64_t at = (o * v->len + j) * v->inner + i, k = o * v->inner + i;
        float xv = x[at], sg = (float)((xv > 0) - (xv < 0)), ax = fabsf(xv), nv = nr[k];
        if (p < 1) {
          float scaled = xv == 0.0f ? 0.0f : sg * powf(ax, pf - 1.0f);
          g[at] = scaled * gk[k] * powf(nv, 1.0f - pf);
        } else {
          float scaled = p < 2 ? sg * powf(ax, pf - 1.0f) : xv * powf(ax, pf - 2.0f);
          float scale = nv == 0.0f ? 0.0f : gk[k] / powf(nv, pf - 1.0f);
          g[at] = scaled * scale;
        }
      }
}

/* The gradient of max|x| (p = inf) or min|x| (p = -inf): split evenly
 * among the elements whose |x| equals the norm (or is NaN), signed. */
static void norm_inf(const red_views *v) {
  const float *x = v->x->data, *gk = v->gk->data, *nr = v->r->data;
  float *g = v->g->data;
  for (int64_t o = 0; o < v->outer; o++)
    for (int64_t i = 0; i < v->inner; i++) {
      int64_t k = o * v->inner + i, count = 0;
      for (int64_t j = 0; j < v->len; j++) {
        float ax = fabsf(x[(o * v->len + j) * v->inner + i]);
        count += ax == nr[k] || ax != ax;
      }
      float share = gk[k] / (float)count;
      for (int64_t j = 0; j < v->len; j++) {
        int64_t at = (o * v->len + j) * v->inner + i;
        float xv = x[at], ax = fabsf(xv), sg = (float)((xv > 0) - (xv < 0));
        g[at] = ax == nr[k] || ax != ax ? sg * share : 0.0f * sg;
      }
    }
}

static int reduce_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_reduce_op op = (sl_reduce_op)n->i[2];
  sl_reduce_opts o = {n->i[1] != 0, n->f[0]};
  sl_tensor *x0;
  int st = sl_ag_saved(n, 0, &x0);
  if (st) return st;
  red_views v;
  if ((st = views_make(&v, x0, gx[0], gy, (int)n->i[0]))) goto out;
  float *g = v.g->data, *r = v.r->data;
  switch (op) {
  case SL_RPROD: {
    bool zeros = false;
    for (int64_t k = 0; k < v.x->numel && !zeros; k++) zeros = v.x->data[k] == 0.0f;
    if (zeros) {
      prod_with_zeros(&v);
      break;
    }
    if ((st = sl_reduce(SL_RPROD, v.r, NULL, v.x, v.d, NULL)) || (st = sl_binary(SL_DIV, v.g, v.r, v.x))) break;
    st = sl_binary(SL_MUL, v.g, v.gk, v.g); /* grad * (result / x) */
    break;
  }
  case SL_RVAR:
  case SL_RSTD: { /* (2 / (n - correction)) * grad * (x - mean); std: grad / (2 std), 0 where std == 0 */
    float c = (float)(2.0 / (double)(v.len - (o.unbiased ? 1 : 0)));
    if ((st = sl_reduce(SL_RMEAN, v.r, NULL, v.x, v.d, NULL)) || (st = sl_binary(SL_SUB, v.g, v.x, v.r))) break;
    if (op == SL_RSTD) {
      if ((st = sl_reduce(SL_RSTD, v.r, NULL, v.x, v.d, &o))) break;
      for (int64_t k = 0; k < v.r->numel; k++) r[k] = r[k] == 0.0f ? 0.0f : v.gk->data[k] / (r[k] * 2.0f);
      st = sl_binary_scalar(SL_MUL, v.r, v.r, c, true);
    } else {
      st = sl_binary_scalar(SL_MUL, v.r, v.gk, c, true);
    }
    if (!st) st = sl_binary(SL_MUL, v.g, v.r, v.g);
    break;
  }
  case SL_RMAX:
  case SL_RMIN:
    if (n->ctx) { /* along a dim: to the index the forward returned */
      const int64_t *idx = n->ctx;
      memset(g, 0, (size_t)v.g->numel * sizeof *g);
      for (int64_t a = 0; a < v.outer; a++)
        for (int64_t i = 0; i < v.inner; i++) {
          int64_t k = a * v.inner + i;
          g[(a * v.len + idx[k]) * v.inner + i] = v.gk->data[k];
        }
    } else { /* all elements: evenly among the ties (and NaNs when the result is NaN) */
      double m;
      if ((st = sl_reduce_all(op, v.x, NULL, &m, NULL))) break;
      float mf = (float)m;
      st = mf != mf ? sl_binary(SL_NE, v.g, v.x, v.x) : sl_binary_scalar(SL_EQ, v.g, v.x, mf, false);
      double count;
      if (st || (st = sl_reduce_all(SL_RSUM, v.g, NULL, &count, NULL))) break;
      st = sl_binary_scalar(SL_MUL, v.g, v.g, v.gk->data[0] / (float)count, false); /* mask * (grad / count) */
    }
    break;
  case SL_RLOGSUMEXP: /* grad * exp(x - result) */
    if ((st = sl_reduce(SL_RLOGSUMEXP, v.r, NULL, v.x, v.d, NULL)) || (st = sl_binary(SL_SUB, v.g, v.x, v.r)) ||
        (st = sl_unary(SL_EXP, v.g, v.g)))
      break;
    st = sl_binary(SL_MUL, v.g, v.gk, v.g);
    break;
  case SL_RNORM:
    if (o.p == 0) { /* a count: no gradient (PyTorch leaves it undefined; zeros here) */
      memset(g, 0, (size_t)v.g->numel * sizeof *g);
      break;
    }
    if (o.p == 1) { /* sign(x) * grad */
      if (!(st = sl_unary(SL_SIGN, v.g, v.x))) st = sl_binary(SL_MUL, v.g, v.g, v.gk);
      break;
    }
    if ((st = sl_reduce(SL_RNORM, v.r, NULL, v.x, v.d, &o))) break;
    if (isinf(o.p)) {
      norm_inf(&v);
    } else if (o.p == 2) { /* x * (grad / norm), 0 where the norm is 0 */
      for (int64_t k = 0; k < v.r->numel; k++) r[k] = r[k] == 0.0f ? 0.0f : v.gk->data[k] / r[k];
      st = sl_binary(SL_MUL, v.g, v.x, v.r);
    } else {
      norm_general(&v, o.p);
    }
    break;
  default: st = sl_fail(SL_EINVAL, "autograd: %s has no backward", n->name); break;
  }
out:
  views_free(&v);
  return st;
}

int sl_ag_record_reduce(sl_reduce_op op, sl_tensor *y, sl_tensor *a, int dim, const sl_reduce_opts *o,
                        const sl_tensor *idx) {
  static const char *const names[SL_REDUCE_COUNT] = {
      [SL_RPROD] = "ProdBackward", [SL_RVAR] = "VarBackward", [SL_RSTD] = "StdBackward",
      [SL_RMAX] = "MaxBackward", [SL_RMIN] = "MinBackward", [SL_RLOGSUMEXP] = "LogsumexpBackward",
      [SL_RNORM] = "NormBackward"};
  if (!names[op]) return sl_fail(SL_EINVAL, "autograd: %s is not recorded by sl_ag_record_reduce", sl_reduce_name(op));
  sl_ag_node *n = sl_ag_record(names[op], reduce_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = o ? o->unbiased : true;
  n->i[2] = op;
  n->f[0] = o ? o->p : 2.0;
  if (idx && dim >= 0) { /* a copy: the Lua side turns the indices 1-based in place */
    int64_t *c = sl_malloc((size_t)(idx->numel ? idx->numel : 1) * sizeof *c);
    if (!c) return SL_ENOMEM;
    for (int64_t k = 0; k < idx->numel; k++) c[k] = (int64_t)idx->data[k];
    n->ctx = c;
    n->ctx_free = sl_free;
  }
  return sl_ag_save(n, a);
}

/* softmax: y * (grad - sum(grad * y)); log_softmax: grad - exp(y) * sum(grad),
 * y recomputed from the saved input with the forward kernel. */
static int softmax_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  int dim = (int)n->i[0];
  bool log = n->i[1];
  sl_tensor *x;
  int st = sl_ag_saved(n, 0, &x);
  if (st) return st;
  int64_t kshape[SL_MAX_DIMS];
  memcpy(kshape, x->shape, sizeof kshape);
  kshape[dim] = 1;
  sl_tensor *y = sl_tensor_empty(x->ndim, x->shape), *s = sl_tensor_empty(x->ndim, kshape);
  sl_tensor *g = gx[0];
  if (!y || !s) st = SL_ENOMEM;
  if (!st) st = sl_softmax(y, x, dim, log);
  if (!st && !log) {
    if (!(st = sl_binary(SL_MUL, g, gy, y)) && !(st = sl_reduce(SL_RSUM, s, NULL, g, dim, NULL)) &&
        !(st = sl_binary(SL_SUB, g, gy, s)))
      st = sl_binary(SL_MUL, g, y, g);
  } else if (!st) {
    if (!(st = sl_reduce(SL_RSUM, s, NULL, gy, dim, NULL)) && !(st = sl_unary(SL_EXP, g, y)) &&
        !(st = sl_binary(SL_MUL, g, g, s)))
      st = sl_binary(SL_SUB, g, gy, g);
  }
  sl_tensor_release(y);
  sl_tensor_release(s);
  return st;
}

int sl_ag_record_softmax(sl_tensor *y, sl_tensor *a, int dim, bool log) {
  sl_ag_node *n = sl_ag_record(log ? "LogSoftmaxBackward" : "SoftmaxBackward", softmax_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = log;
  return sl_ag_save(n, a);
}
