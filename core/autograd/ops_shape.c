/*
 * Backward of the shape ops that rearrange or pick elements (permute,
 * transpose, expand, select, the pieces of split/chunk, cat, stack) and of
 * the batched products (torch.matmul with 3-D+ operands, bmm). Each
 * gradient runs on an existing kernel: the strided copy of permute, the sum
 * kernel (sl_ag_sum_to) for expand, narrow's block copy for select and the
 * pieces, sl_sgemm_f32 for the products.
 */
#include <string.h>

#include "autograd.h"
#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "../tensor/shape.h"

/* y's dim k is x's dim perm[k]: gx takes gy with the inverse permutation,
 * one strided copy (perm packed 4 bits per dim in i[0]). */
static int permute_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  int nd = gy->ndim;
  int64_t gs[SL_MAX_DIMS], src[SL_MAX_DIMS], s = 1;
  for (int k = nd - 1; k >= 0; k--) {
    gs[k] = s;
    s *= gy->shape[k];
  }
  for (int k = 0; k < nd; k++) src[(n->i[0] >> (4 * k)) & 15] = gs[k];
  if (gx[0]->numel) sl_strided_copy_f32(gx[0]->data, gy->data, nd, gx[0]->shape, src);
  return SL_OK;
}

int sl_ag_record_permute(sl_tensor *y, sl_tensor *a, const int *perm, const char *name) {
  sl_ag_node *n = sl_ag_record(name, permute_backward, y, &a, 1);
  if (!n) return SL_ENOMEM;
  n->i[0] = 0;
  for (int k = 0; k < a->ndim; k++) n->i[0] |= (int64_t)perm[k] << (4 * k);
  return SL_OK;
}

static int expand_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  (void)n;
  return sl_ag_sum_to(gx[0], gy);
}

int sl_ag_record_expand(sl_tensor *y, sl_tensor *a) {
  return sl_ag_record("ExpandBackward", expand_backward, y, &a, 1) ? SL_OK : SL_ENOMEM;
}

/* select and the pieces are narrow's gradient (a block placed in zeros):
 * select's removed dim has size 1, so gy's layout is the narrowed one. */
int sl_ag_record_select(sl_tensor *y, sl_tensor *a, int dim, int64_t i) {
  int st = sl_ag_record_narrow(y, a, dim, i, 1);
  if (!st) sl_ag_grad_fn(y)->name = "SelectBackward";
  return st;
}

int sl_ag_record_piece(sl_tensor *y, sl_tensor *a, int dim, int64_t start, int64_t length) {
  int st = sl_ag_record_narrow(y, a, dim, start, length);
  if (!st) sl_ag_grad_fn(y)->name = "SplitBackward";
  return st;
}

/* Input k gets its block of gy along dim: len_k = its size there (1 for
 * stack, whose inputs lack the dim; 0 for PyTorch's legacy empty 1-D
 * tensors that cat lets join anything). */
static int cat_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  int dim = (int)n->i[0];
  bool stack = n->i[1];
  int64_t outer = 1, inner = 1, total = gy->shape[dim], off = 0;
  for (int d = 0; d < dim; d++) outer *= gy->shape[d];
  for (int d = dim + 1; d < gy->ndim; d++) inner *= gy->shape[d];
  for (int k = 0; k < n->ninputs; k++) {
    const sl_tensor *x = n->inputs[k];
    int64_t len = x->numel == 0 ? 0 : stack ? 1 : x->shape[dim];
    if (gx[k] && len)
      for (int64_t o = 0; o < outer; o++)
        memcpy(gx[k]->data + o * len * inner, gy->data + (o * total + off) * inner, (size_t)(len * inner) * sizeof(float));
    off += len;
  }
  return SL_OK;
}

static int record_cat_one(sl_tensor *y, sl_tensor *const *ts, int n, int dim, bool stack) {
  sl_ag_node *nd = sl_ag_record(stack ? "StackBackward" : "CatBackward", cat_backward, y, ts, n);
  if (!nd) return SL_ENOMEM;
  nd->i[0] = dim;
  nd->i[1] = stack;
  return SL_OK;
}

/* More inputs than a node holds: groups of SL_AG_MAX_INPUTS become
 * intermediate tensors (their own cat/stack nodes; the data is never read,
 * only the shapes) that a cat node over the groups joins along dim. */
int sl_ag_record_cat(sl_tensor *y, sl_tensor *const *ts, int n, int dim, bool stack) {
  if (n <= SL_AG_MAX_INPUTS) return record_cat_one(y, ts, n, dim, stack);
  int ng = (n + SL_AG_MAX_INPUTS - 1) / SL_AG_MAX_INPUTS, st = SL_OK;
  sl_tensor **groups = sl_calloc((size_t)ng, sizeof *groups);
  if (!groups) return SL_ENOMEM;
  for (int g = 0; g < ng && !st; g++) {
    int cnt = n - g * SL_AG_MAX_INPUTS < SL_AG_MAX_INPUTS ? n - g * SL_AG_MAX_INPUTS : SL_AG_MAX_INPUTS;
    int64_t shape[SL_MAX_DIMS];
    int nd = y->ndim;
    memcpy(shape, y->shape, sizeof shape);
    shape[dim] = 0;
    for (int k = 0; k < cnt; k++) {
      const sl_tensor *x = ts[g * SL_AG_MAX_INPUTS + k];
      shape[dim] += stack ? 1 : x->numel == 0 ? 0 : x->shape[dim];
    }
    if (!(groups[g] = sl_tensor_empty(nd, shape))) st = SL_ENOMEM;
    else if (sl_ag_any_requires_grad(ts + g * SL_AG_MAX_INPUTS, cnt))
      st = record_cat_one(groups[g], ts + g * SL_AG_MAX_INPUTS, cnt, dim, stack);
  }
  if (!st) st = sl_ag_record_cat(y, groups, ng, dim, false);
  for (int g = 0; g < ng; g++) sl_tensor_release(groups[g]);
  sl_free(groups);
  return st;
}

/* torch.matmul with batch dims: a' = a as [batch_a..., m, k] (m = 1 for a
 * vector), b' = [batch_b..., k, n]; gy' = gy as [batch..., m, n]. ga = gy'
 * b'^T and gb = a'^T gy', accumulated (beta = 1) into the block of each
 * operand that a broadcast batch reused: the sum over broadcast dims. */
static int matmul_nd_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  sl_tensor *a, *b;
  int st;
  if ((st = sl_ag_saved(n, 0, &a)) || (st = sl_ag_saved(n, 1, &b))) return st;
  int64_t m = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1, k = a->shape[a->ndim - 1];
  int64_t nn = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
  for (int s = 0; s < 2; s++)
    if (gx[s]) memset(gx[s]->data, 0, (size_t)gx[s]->numel * sizeof(float));
  if (gy->numel == 0 || k == 0) return SL_OK;
  int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
  if (nb == 0 && a->ndim >= 2) { /* b has no batch: a's batch folds into rows, as the forward did */
    int64_t rows = a->numel / k;
    if (gx[0]) sl_sgemm_f32(false, true, rows, k, nn, 1.0f, gy->data, b->data, 0.0f, gx[0]->data);
    if (gx[1]) sl_sgemm_f32(true, false, k, nn, rows, 1.0f, a->data, gy->data, 0.0f, gx[1]->data);
    return SL_OK;
  }
  int nbatch = na > nb ? na : nb;
  int64_t batch[SL_MAX_DIMS], sta[SL_MAX_DIMS], stb[SL_MAX_DIMS], ra = m * k, rb = k * nn;
  for (int d = nbatch - 1, ia = na - 1, ib = nb - 1; d >= 0; d--, ia--, ib--) {
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    batch[d] = da == 1 ? db : da;
    sta[d] = da == 1 ? 0 : ra;
    stb[d] = db == 1 ? 0 : rb;
    ra *= da;
    rb *= db;
  }
  int64_t count = gy->numel / (m * nn), idx[SL_MAX_DIMS] = {0}, oa = 0, ob = 0;
  for (int64_t i = 0; i < count; i++) {
    const float *g = gy->data + i * m * nn;
    if (gx[0]) sl_sgemm_f32(false, true, m, k, nn, 1.0f, g, b->data + ob, 1.0f, gx[0]->data + oa);
    if (gx[1]) sl_sgemm_f32(true, false, k, nn, m, 1.0f, a->data + oa, g, 1.0f, gx[1]->data + ob);
    for (int d = nbatch - 1; d >= 0; d--) { /* odometer over the batch dims, as the forward */
      oa += sta[d];
      ob += stb[d];
      if (++idx[d] < batch[d]) break;
      oa -= sta[d] * batch[d];
      ob -= stb[d] * batch[d];
      idx[d] = 0;
    }
  }
  return SL_OK;
}

int sl_ag_record_matmul_nd(sl_tensor *y, sl_tensor *a, sl_tensor *b) {
  sl_tensor *in[2] = {a, b};
  sl_ag_node *n = sl_ag_record(a->ndim == 3 && b->ndim == 3 ? "BmmBackward" : "MatmulBackward", matmul_nd_backward,
                               y, in, 2);
  if (!n) return SL_ENOMEM;
  int st = sl_ag_save(n, a);
  return st ? st : sl_ag_save(n, b);
}
