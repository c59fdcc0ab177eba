/*
 * Backward functions of the indexing ops (core/tensor/index.h) and their
 * sl_ag_record_* helpers. The index tensor and the mask are saved with
 * their version stamps (an in-place write to them afterwards makes the
 * backward refuse); they get no gradient. Accumulations run serially in
 * index order, so the bits do not depend on the thread count.
 */
#include <string.h>

#include "autograd.h"
#include "../tensor/error.h"
#include "../tensor/index.h"

static void zero(sl_tensor *t) {
  if (t->numel) memset(t->data, 0, (size_t)t->numel * sizeof(float));
}

/* gx[.., idx[k], ..] += gy[.., k, ..] (PyTorch's index_add into zeros) */
static int index_select_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *idx;
  int st = sl_ag_saved(n, 0, &idx);
  if (st || !gx[0]) return st;
  sl_tensor *x = gx[0];
  int dim = (int)n->i[0], base = (int)n->i[1];
  zero(x);
  int64_t outer = 1, inner = 1, len = x->shape[dim], k = idx->numel;
  for (int d = 0; d < dim; d++) outer *= x->shape[d];
  for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k; j++) {
      float *dst = x->data + (o * len + (int64_t)idx->data[j] - base) * inner;
      const float *src = gy->data + (o * k + j) * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
    }
  return SL_OK;
}

int sl_ag_record_index_select(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, int base) {
  sl_ag_node *n = sl_ag_record("IndexSelectBackward", index_select_backward, y, &x, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = base;
  return sl_ag_save(n, idx);
}

static int gather_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *idx;
  int st = sl_ag_saved(n, 0, &idx);
  if (st || !gx[0]) return st;
  zero(gx[0]);
  return sl_scatter_add_(gx[0], (int)n->i[0], idx, gy, (int)n->i[1]);
}

int sl_ag_record_gather(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, int base) {
  sl_ag_node *n = sl_ag_record("GatherBackward", gather_backward, y, &x, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = base;
  return sl_ag_save(n, idx);
}

static int scatter_add_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *idx;
  int st = sl_ag_saved(n, 0, &idx);
  if (st) return st;
  if (gx[0]) memcpy(gx[0]->data, gy->data, (size_t)gy->numel * sizeof(float));
  if (!gx[1]) return SL_OK;
  zero(gx[1]); /* src beyond idx's extent does not reach the output */
  return sl_gather_into(gx[1], gy, (int)n->i[0], idx, (int)n->i[1]);
}

int sl_ag_record_scatter_add(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, sl_tensor *src, int base) {
  sl_tensor *in[2] = {x, src};
  sl_ag_node *n = sl_ag_record("ScatterAddBackward", scatter_add_backward, y, in, 2);
  if (!n) return SL_ENOMEM;
  n->i[0] = dim;
  n->i[1] = base;
  return sl_ag_save(n, idx);
}

/* gx = sum over the broadcast dims of gy * (mask == 0): one serial pass over
 * gy with broadcast strides (0 where x or the mask repeats). */
static int masked_fill_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *mask;
  int st = sl_ag_saved(n, 0, &mask);
  if (st || !gx[0]) return st;
  sl_tensor *x = gx[0];
  zero(x);
  int nd = gy->ndim;
  int64_t sx[SL_MAX_DIMS], sm[SL_MAX_DIMS], c[SL_MAX_DIMS] = {0}, ox = 0, om = 0;
  int64_t s1 = 1, s2 = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int dx = d - (nd - x->ndim), dm = d - (nd - mask->ndim);
    int64_t zx = dx >= 0 ? x->shape[dx] : 1, zm = dm >= 0 ? mask->shape[dm] : 1;
    sx[d] = zx == 1 ? 0 : s1;
    sm[d] = zm == 1 ? 0 : s2;
    s1 *= zx;
    s2 *= zm;
  }
  for (int64_t i = 0; i < gy->numel; i++) {
    if (mask->data[om] == 0) x->data[ox] += gy->data[i];
    for (int d = nd - 1; d >= 0; d--) {
      ox += sx[d];
      om += sm[d];
      if (++c[d] < gy->shape[d]) break;
      ox -= sx[d] * gy->shape[d];
      om -= sm[d] * gy->shape[d];
      c[d] = 0;
    }
  }
  return SL_OK;
}

int sl_ag_record_masked_fill(sl_tensor *y, sl_tensor *x, sl_tensor *mask) {
  sl_ag_node *n = sl_ag_record("MaskedFillBackward", masked_fill_backward, y, &x, 1);
  if (!n) return SL_ENOMEM;
  return sl_ag_save(n, mask);
}
