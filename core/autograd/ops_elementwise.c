/*
 * Backward of where and clamp, and sl_ag_sum_to, the reduction of a
 * broadcast gradient back to its operand's shape (shared with expand).
 * pow, maximum and minimum share the broadcasting binop walk of ops.c.
 */
#include <string.h>

#include "autograd.h"
#include "../tensor/elementwise.h"
#include "../tensor/error.h"
#include "../tensor/reduce.h"

/* Sums src over its broadcast dims one dim at a time with the sum kernel
 * (double accumulation, thread-independent order). */
int sl_ag_sum_to(sl_tensor *dst, const sl_tensor *src) {
  int lead = src->ndim - dst->ndim;
  sl_tensor *cur = NULL; /* NULL: still src */
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, src->shape, sizeof shape);
  for (int d = 0; d < src->ndim; d++) {
    int64_t want = d < lead ? 1 : dst->shape[d - lead];
    if (want == shape[d]) continue;
    shape[d] = 1;
    sl_tensor *next = sl_tensor_empty(src->ndim, shape);
    int st = next ? sl_reduce(SL_RSUM, next, NULL, cur ? cur : src, d, NULL) : SL_ENOMEM;
    sl_tensor_release(cur);
    cur = next;
    if (st) {
      sl_tensor_release(cur);
      return st;
    }
  }
  const sl_tensor *from = cur ? cur : src;
  if (dst->data != from->data) memcpy(dst->data, from->data, (size_t)dst->numel * sizeof(float));
  sl_tensor_release(cur);
  return SL_OK;
}

/* The gradient of where's operand side 0 (a) or 1 (b): gy where cond
 * selects it, 0 elsewhere, summed down to the operand's shape. */
static int where_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *cond;
  int st = sl_ag_saved(n, 0, &cond);
  if (st) return st;
  float zero = 0.0f;
  sl_tensor z = {0}; /* a 1-element header over a local, as the where binding does for numbers */
  z.data = &zero, z.ndim = 1, z.shape[0] = 1, z.numel = 1, z.refcount = 1;
  for (int k = 0; k < n->ninputs; k++) {
    if (!gx[k]) continue;
    bool full = sl_tensor_same_shape(gx[k], gy);
    sl_tensor *tmp = full ? gx[k] : sl_tensor_empty(gy->ndim, gy->shape);
    if (!tmp) return SL_ENOMEM;
    bool to_a = n->i[k] == 0;
    st = to_a ? sl_where(tmp, cond, gy, &z) : sl_where(tmp, cond, &z, gy);
    if (!st && !full) st = sl_ag_sum_to(gx[k], tmp);
    if (!full) sl_tensor_release(tmp);
    if (st) return st;
  }
  return SL_OK;
}

int sl_ag_record_where(sl_tensor *y, sl_tensor *cond, sl_tensor *a, sl_tensor *b) {
  sl_tensor *in[2];
  int side[2], nin = 0;
  if (a && sl_ag_requires_grad(a)) in[nin] = a, side[nin++] = 0;
  if (b && sl_ag_requires_grad(b)) in[nin] = b, side[nin++] = 1;
  sl_ag_node *n = sl_ag_record("WhereBackward", where_backward, y, in, nin);
  if (!n) return SL_ENOMEM;
  for (int k = 0; k < nin; k++) n->i[k] = side[k];
  return sl_ag_save(n, cond);
}

/* PyTorch's clamp_backward: the gradient passes where lo <= x <= hi (bounds
 * included), so lo > hi passes nothing. */
static int clamp_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *x;
  int st = sl_ag_saved(n, 0, &x);
  if (st) return st;
  bool has_lo = n->i[0], has_hi = n->i[1];
  float lo = (float)n->f[0], hi = (float)n->f[1];
  const float *xv = x->data, *g = gy->data;
  float *o = gx[0]->data;
  for (int64_t k = 0; k < x->numel; k++) {
    bool pass = (!has_lo || xv[k] >= lo) && (!has_hi || xv[k] <= hi);
    o[k] = pass ? g[k] : 0.0f;
  }
  return SL_OK;
}

int sl_ag_record_clamp(sl_tensor *y, sl_tensor *a, bool has_lo, float lo, bool has_hi, float hi) {
  sl_ag_node *n = sl_ag_record("ClampBackward", clamp_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = has_lo;
  n->i[1] = has_hi;
  n->f[0] = lo;
  n->f[1] = hi;
  return sl_ag_save(n, a);
}
