/* The recurrent layers on the autograd path (layer_rnn.h). */
#include <stdio.h>
#include <string.h>

#include "layer_rnn.h"
#include "layer.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

typedef struct rnn_ctx {
  sl_module *m;   /* retained */
  uint64_t stamp; /* m->forwards right after this call's forward */
  bool has_h0, has_c0;
} rnn_ctx;

static void ctx_free(void *p) {
  rnn_ctx *c = p;
  sl_module_release(c->m);
  sl_free(c);
}

/* A view of flat[start, start + like->numel) shaped like `like`. */
static sl_tensor *piece_of(const sl_tensor *flat, int64_t start, const sl_tensor *like) {
  sl_tensor *p = sl_tensor_narrow(flat, 0, start, like->numel);
  if (!p) return NULL;
  sl_tensor *r = sl_tensor_reshape(p, like->ndim, like->shape);
  sl_tensor_release(p);
  return r;
}

static int rnn_node_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  rnn_ctx *c = n->ctx;
  sl_tensor *x;
  int st = sl_ag_saved(n, 0, &x); /* also refuses a freed graph */
  if (st) return st;
  sl_module *m = c->m;
  if (m->forwards != c->stamp)
    return sl_fail(SL_EINVAL, "backward: %s ran forward again before the backward of an earlier call recorded by "
                              "autograd, and this backward needs the activations of that call; use one %s per "
                              "call in a graph (or backward before calling it again)",
                   sl_module_type(m), sl_module_type(m));
  sl_rnn_mode mode;
  bool cell;
  sl_rnn_info(m, &mode, &cell);
  /* the module's output buffers still have this call's shapes (the stamp) */
  sl_tensor *gout = piece_of(gy, 0, m->output), *ghn = NULL, *gcn = NULL;
  int64_t off = m->output->numel;
  const sl_tensor *hn = NULL, *cn = NULL;
  sl_rnn_forward_results(m, &hn, &cn);
  if (gout && !cell) {
    ghn = piece_of(gy, off, hn);
    off += hn->numel;
  }
  if (gout && mode == SL_RNN_LSTM) gcn = piece_of(gy, off, cn);
  if (!gout || (!cell && !ghn) || (mode == SL_RNN_LSTM && !gcn)) {
    st = sl_last_status() ? sl_last_status() : SL_ENOMEM;
  } else {
    const sl_tensor *g = NULL, *gh0 = NULL, *gc0 = NULL;
    m->skip_grad_input = gx[0] == NULL; /* x is data: no input-gradient sgemm */
    st = sl_rnn_backward(m, x, gout, ghn, gcn, &g, &gh0, &gc0);
    m->skip_grad_input = false;
    int k = 1;
    if (!st && gx[0]) st = sl_tensor_copy(gx[0], g);
    if (!st && c->has_h0 && gx[k++]) st = sl_tensor_copy(gx[k - 1], gh0);
    if (!st && c->has_c0 && gx[k]) st = sl_tensor_copy(gx[k], gc0);
  }
  sl_tensor_release(gout);
  sl_tensor_release(ghn);
  sl_tensor_release(gcn);
  return st;
}

/* A recorded view of piece [start, start + like->numel) of all, shaped like `like`. */
static sl_tensor *recorded_piece(sl_tensor *all, int64_t start, const sl_tensor *like, bool record) {
  sl_tensor *p = sl_tensor_narrow(all, 0, start, like->numel);
  if (!p) return NULL;
  if (record && sl_ag_record_narrow(p, all, 0, start, like->numel)) {
    sl_tensor_release(p);
    return NULL;
  }
  sl_tensor *r = sl_tensor_reshape(p, like->ndim, like->shape);
  if (r && record && sl_ag_record_unary(SL_AG_VIEW, r, p, 0)) {
    sl_tensor_release(r);
    r = NULL;
  }
  sl_tensor_release(p);
  return r;
}

int sl_ag_rnn_call(sl_module *m, sl_tensor *x, sl_tensor *h0, sl_tensor *c0, bool record, sl_tensor **out,
                   sl_tensor **hn, sl_tensor **cn) {
  *out = *hn = *cn = NULL;
  sl_rnn_mode mode;
  bool cell;
  if (!m || !x || !sl_rnn_info(m, &mode, &cell))
    return sl_fail(SL_EINVAL, "rnn call: %s", !m || !x ? "NULL module or input" : "not a recurrent layer");
  if (record) {
    int st = sl_ag_layer_bind_grads(m);
    if (st) return st;
  }
  const sl_tensor *o, *h, *c;
  int st = sl_rnn_forward(m, x, h0, c0, &o, &h, &c);
  if (st) return st;
  const sl_tensor *parts[3] = {o, cell ? NULL : h, mode == SL_RNN_LSTM ? c : NULL};
  int64_t total = 0;
  for (int i = 0; i < 3; i++) total += parts[i] ? parts[i]->numel : 0;
  sl_tensor *all = sl_tensor_zeros(1, &total);
  if (!all) return sl_last_status();
  int64_t off = 0;
  for (int i = 0; i < 3; i++)
    if (parts[i]) {
      memcpy(all->data + off, parts[i]->data, (size_t)parts[i]->numel * sizeof(float));
      off += parts[i]->numel;
    }
  if (record) {
    sl_tensor *in[3] = {x};
    int nin = 1;
    if (h0) in[nin++] = h0;
    if (c0) in[nin++] = c0;
    rnn_ctx *ctx = sl_malloc(sizeof *ctx);
    sl_ag_node *n = ctx ? sl_ag_record("RNNBackward", rnn_node_backward, all, in, nin) : NULL;
    if (!n) {
      sl_free(ctx);
      sl_tensor_release(all);
      return sl_last_status() ? sl_last_status() : SL_ENOMEM;
    }
    snprintf(n->label, sizeof n->label, "%sBackward", sl_module_type(m));
    n->name = n->label;
    *ctx = (rnn_ctx){.m = sl_module_retain(m), .stamp = m->forwards, .has_h0 = h0 != NULL, .has_c0 = c0 != NULL};
    n->ctx = ctx;
    n->ctx_free = ctx_free;
    if ((st = sl_ag_save(n, x))) {
      sl_tensor_release(all);
      return st;
    }
  }
  sl_tensor **dst[3] = {out, hn, cn};
  off = 0;
  for (int i = 0; i < 3; i++)
    if (parts[i]) {
      if (!(*dst[i] = recorded_piece(all, off, parts[i], record))) {
        st = sl_last_status() ? sl_last_status() : SL_ENOMEM;
        break;
      }
      off += parts[i]->numel;
    }
  sl_tensor_release(all);
  if (st)
    for (int i = 0; i < 3; i++) {
      sl_tensor_release(*dst[i]);
      *dst[i] = NULL;
    }
  return st;
}
