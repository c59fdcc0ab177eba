/*
 * Losses on the autograd path (nn.functional): the value is a [1] tensor
 * computed by the kernels of core/nn/loss.c, the node's backward calls the
 * matching gradient kernel and scales it by the incoming gradient (a
 * multiplication by 1 when the loss is the root: the same bits as the
 * explicit CrossEntropyLoss:backward). Reduction "sum" multiplies the mean's
 * value and gradient by the count.
 */
#include <string.h>

#include "loss.h"
#include "pool.h"
#include "../nn/nn.h"
#include "../tensor/error.h"

static sl_tensor *scalar_out(double v) {
  int64_t one = 1;
  sl_tensor *y = sl_ag_tensor_empty(1, &one);
  if (y) y->data[0] = (float)v;
  return y;
}

/* gx = g * scale, in place (scale and g exact when 1) */
static void scale_by(sl_tensor *gx, double factor, float g) {
  if (factor == 1.0 && g == 1.0f) return;
  for (int64_t i = 0; i < gx->numel; i++) gx->data[i] = (float)((double)gx->data[i] * factor) * g;
}

/* Records a node over inputs in[0..n) for y, saving them all. */
static int record(const char *name, sl_ag_backward_fn fn, sl_tensor *y, sl_tensor **in, int n, double factor,
                  int64_t base) {
  sl_ag_node *node = sl_ag_record(name, fn, y, in, n);
  if (!node) return sl_last_status() ? sl_last_status() : SL_ENOMEM;
  node->f[0] = factor;
  node->i[0] = base;
  for (int k = 0; k < n; k++) {
    int st = sl_ag_save(node, in[k]);
    if (st) return st;
  }
  return SL_OK;
}

static int finish(int st, sl_tensor *o, sl_tensor **y) {
  if (st) {
    sl_ag_release(o);
    return st;
  }
  *y = o;
  return SL_OK;
}

/* ---- cross entropy ---- */

static int ce_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *logits, *labels;
  int st;
  if ((st = sl_ag_saved(n, 0, &logits)) || (st = sl_ag_saved(n, 1, &labels))) return st;
  if (!gx[0]) return SL_OK;
  if ((st = sl_cross_entropy_backward_ex(gx[0], logits, labels, (int)n->i[0]))) return st;
  scale_by(gx[0], n->f[0], gy->data[0]);
  return SL_OK;
}

int sl_ag_cross_entropy(sl_tensor *logits, sl_tensor *labels, int label_base, bool sum, bool record_it,
                        sl_tensor **y) {
  *y = NULL;
  double loss;
  int st = sl_cross_entropy_forward_ex(logits, labels, label_base, &loss);
  if (st) return st;
  double factor = sum ? (double)logits->shape[0] : 1.0;
  sl_tensor *o = scalar_out(loss * factor);
  if (!o) return sl_last_status();
  if (record_it) st = record("CrossEntropyBackward", ce_backward, o, (sl_tensor *[]){logits, labels}, 2, factor,
                             label_base);
  return finish(st, o, y);
}

/* ---- mean squared error ---- */

static int mse_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *pred, *target;
  int st;
  if ((st = sl_ag_saved(n, 0, &pred)) || (st = sl_ag_saved(n, 1, &target))) return st;
  sl_tensor *g = gx[0] ? gx[0] : gx[1];
  if (!g) return SL_OK;
  if ((st = sl_mse_backward(g, pred, target))) return st;
  scale_by(g, n->f[0], gy->data[0]);
  if (gx[0] && gx[1]) st = sl_tensor_copy(gx[1], gx[0]);
  if (gx[1]) /* d/dtarget = -d/dpred */
    for (int64_t i = 0; i < gx[1]->numel; i++) gx[1]->data[i] = -gx[1]->data[i];
  return st;
}

int sl_ag_mse_loss(sl_tensor *pred, sl_tensor *target, bool sum, bool record_it, sl_tensor **y) {
  *y = NULL;
  double loss;
  int st = sl_mse_forward(pred, target, &loss);
  if (st) return st;
  double factor = sum ? (double)pred->numel : 1.0;
  sl_tensor *o = scalar_out(loss * factor);
  if (!o) return sl_last_status();
  if (record_it) st = record("MseLossBackward", mse_backward, o, (sl_tensor *[]){pred, target}, 2, factor, 0);
  return finish(st, o, y);
}

/* ---- negative log likelihood ---- */

static int nll_check(const sl_tensor *logp, const sl_tensor *labels, int base) {
  char a[160];
  if (logp->ndim != 2 || logp->shape[0] == 0)
    return sl_fail(SL_ESHAPE, "nll_loss: input of shape [N x C] with N >= 1 expected, got %s",
                   sl_shape_str(logp, a, sizeof a));
  if (labels->numel != logp->shape[0])
    return sl_fail(SL_ESHAPE, "nll_loss: %lld labels expected (one per row of input), got %lld",
                   (long long)logp->shape[0], (long long)labels->numel);
  for (int64_t i = 0; i < labels->numel; i++) {
    float l = labels->data[i];
    if (!(l >= (float)base && l < (float)(logp->shape[1] + base)) || l != (float)(int64_t)l)
      return sl_fail(SL_EINVAL, "nll_loss: label %g at position %lld out of range %d..%lld", (double)l,
                     (long long)(i + base), base, (long long)(logp->shape[1] - 1 + base));
  }
  return SL_OK;
}

/* d/dlogp[i, label_i] = -g / N (sum: -g) */
static int nll_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *logp, *labels;
  int st;
  if ((st = sl_ag_saved(n, 0, &logp)) || (st = sl_ag_saved(n, 1, &labels))) return st;
  if (!gx[0]) return SL_OK;
  int64_t rows = logp->shape[0], c = logp->shape[1];
  memset(gx[0]->data, 0, (size_t)gx[0]->numel * sizeof(float));
  float v = (float)(-(double)gy->data[0] * n->f[0] / (double)rows);
  for (int64_t i = 0; i < rows; i++) gx[0]->data[i * c + (int64_t)labels->data[i] - n->i[0]] = v;
  return SL_OK;
}

int sl_ag_nll_loss(sl_tensor *logp, sl_tensor *labels, int label_base, bool sum, bool record_it, sl_tensor **y) {
  *y = NULL;
  int st = nll_check(logp, labels, label_base);
  if (st) return st;
  int64_t rows = logp->shape[0], c = logp->shape[1];
  double total = 0;
  for (int64_t i = 0; i < rows; i++) total -= (double)logp->data[i * c + (int64_t)labels->data[i] - label_base];
  double factor = sum ? (double)rows : 1.0;
  sl_tensor *o = scalar_out(total / (double)rows * factor);
  if (!o) return sl_last_status();
  if (record_it) st = record("NllLossBackward", nll_backward, o, (sl_tensor *[]){logp, labels}, 2, factor, label_base);
  return finish(st, o, y);
}
