/*
 * C layers on the autograd path (layer.h): one node per call whose backward
 * is the layer's own sl_module_backward. The node's context holds the module
 * (retained) and its forward stamp; the input is saved with its version.
 */
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "pool.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

typedef struct layer_ctx {
  sl_module *m;   /* retained */
  uint64_t stamp; /* forwards of m and its children right after this call's forward */
  int next;       /* ext tensors after x in the node's inputs */
} layer_ctx;

static uint64_t stamp_of(const sl_module *m) {
  uint64_t s = m->forwards;
  for (int i = 0; i < m->nchildren; i++) s += stamp_of(m->children[i]);
  return s;
}

static bool has_params(const sl_module *m) {
  if (m->nparams > 0) return true;
  for (int i = 0; i < m->nchildren; i++)
    if (has_params(m->children[i])) return true;
  return false;
}

bool sl_ag_layer_wants_record(const sl_module *m, const sl_tensor *x) {
  return sl_ag_requires_grad(x) || has_params(m);
}

int sl_ag_layer_bind_grads(sl_module *m) {
  for (int i = 0; i < m->nparams; i++) {
    if (sl_ag_grad(m->params[i]) == m->grads[i]) continue;
    int st = sl_ag_set_grad(m->params[i], m->grads[i]);
    if (st) return st;
  }
  for (int i = 0; i < m->nchildren; i++) {
    int st = sl_ag_layer_bind_grads(m->children[i]);
    if (st) return st;
  }
  return SL_OK;
}

_Static_assert(sizeof(layer_ctx) <= sizeof(((sl_ag_node *)0)->ctx_inline), "layer_ctx fits in the node");

static void ctx_free(void *p) { /* the context lives in the node (ctx_inline) */
  layer_ctx *c = p;
  sl_module_release(c->m);
}

/* n->name = "<Type>Backward" in the node's label, without snprintf's cost */
static void set_label(sl_ag_node *n, const char *type) {
  static const char suffix[] = "Backward";
  size_t len = strlen(type), max = sizeof n->label - sizeof suffix;
  if (len > max) len = max;
  memcpy(n->label, type, len);
  memcpy(n->label + len, suffix, sizeof suffix);
  n->name = n->label;
}

/* Whether m's output buffer can be handed out as the call's result (the
 * module gets a fresh buffer of the same shape instead): a layer with one
 * buffer of its own. A container's output is its last child's, and an
 * in-place activation's is its input. */
static bool hands_out(const sl_module *m) {
  return !(m->vt->flags & SL_LAYER_CONTAINER) && m->nchildren == 0 && !sl_activation_inplace(m);
}

/* Takes *buf (a module's output or grad_input buffer, just written) for the
 * caller and leaves a fresh buffer of the same shape in its place: the
 * result needs no copy, and the module's next call never writes into a
 * tensor handed out before. The fresh buffer comes from the pool. */
static int take_buffer(sl_tensor **buf, sl_tensor **out) {
  sl_tensor *o = *buf;
  sl_tensor *fresh = sl_ag_tensor_empty(o->ndim, o->shape);
  if (!fresh) return sl_last_status() ? sl_last_status() : SL_ENOMEM;
  if (!o->ag && !sl_ag_meta_of(o)) { /* a module-made buffer: give it autograd state now, as results have */
    sl_ag_release(fresh);
    return sl_last_status() ? sl_last_status() : SL_ENOMEM;
  }
  *buf = fresh;
  *out = o;
  return SL_OK;
}

/* What a stateful layer's backward reads from its last forward. */
static const char *state_name(const sl_module *m) {
  unsigned f = m->vt->flags;
  if (f & SL_LAYER_CONTAINER) return "its children's outputs";
  if (f & SL_LAYER_STOCHASTIC) return "its dropout mask";
  if (f & SL_LAYER_NORMALIZATION) return "its normalization statistics";
  return "its pooling indices";
}

static int layer_backward(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx) {
  layer_ctx *c = n->ctx;
  sl_tensor *x;
  int st = sl_ag_saved(n, 0, &x); /* also refuses a freed graph */
  if (st) return st;
  sl_module *m = c->m;
  if ((m->vt->flags & SL_LAYER_FORWARD_STATE) && stamp_of(m) != c->stamp)
    return sl_fail(SL_EINVAL, "backward: %s ran forward again before the backward of an earlier call recorded by "
                              "autograd, and this backward needs %s from that call; use one %s per call in a "
                              "graph (or backward before calling it again)",
                   sl_module_type(m), state_name(m), sl_module_type(m));
  for (int i = 0; i < c->next; i++) memset(m->grads[i]->data, 0, (size_t)m->grads[i]->numel * sizeof(float));
  if (gx[0]) {
    const sl_tensor *g = NULL;
    st = sl_module_backward(m, x, gy, &g);
    sl_tensor *taken;
    if (!st && hands_out(m) && g == m->grad_input && sl_tensor_same_shape(g, gx[0]) &&
        !take_buffer(&m->grad_input, &taken)) {
      sl_ag_release(gx[0]); /* the engine's buffer: the module's gradient is handed over instead of copied */
      gx[0] = taken;
    } else if (!st) {
      st = sl_tensor_copy(gx[0], g);
    }
  } else if (has_params(m)) {
    st = sl_module_backward_params(m, x, gy); /* x is data: a Linear skips the input-gradient sgemm */
  }
  for (int i = 0; !st && i < c->next; i++)
    if (gx[1 + i]) st = sl_tensor_copy(gx[1 + i], m->grads[i]);
  return st;
}

int sl_ag_layer_call_ext(sl_module *m, sl_tensor *x, sl_tensor *const *ext, int next, bool record,
                         sl_tensor **y) {
  char a[160], b[160];
  *y = NULL;
  if (!m || !x) return sl_fail(SL_EINVAL, "%s(x): %s is NULL", m ? sl_module_type(m) : "module", m ? "x" : "module");
  if (next < 0 || next > m->nparams)
    return sl_fail(SL_EINVAL, "%s(x): %d external parameters, the module has %d", sl_module_type(m), next,
                   m->nparams);
  if (record && sl_activation_inplace(m))
    return sl_fail(SL_EINVAL, "%s(inplace=true) cannot be recorded by autograd (it overwrites its input); construct "
                              "it with inplace=false", sl_module_type(m));
  for (int i = 0; i < next; i++) {
    if (!sl_tensor_same_shape(ext[i], m->params[i]))
      return sl_fail(SL_ESHAPE, "%s: %s has shape %s, expected %s", sl_module_type(m), m->param_names[i],
                     sl_shape_str(ext[i], a, sizeof a), sl_shape_str(m->params[i], b, sizeof b));
    int st = sl_tensor_copy(m->params[i], ext[i]);
    if (st) return st;
  }
  const sl_tensor *out = NULL;
  int st = sl_module_forward(m, x, &out);
  if (st) return st;
  if (out == x && !record) { /* an in-place activation outside recording: the result is x */
    *y = sl_tensor_retain(x);
    return SL_OK;
  }
  /* the node's output must not be the module's reused buffer: take it (or copy it) */
  sl_tensor *o = NULL;
  if (hands_out(m) && out == m->output) {
    if ((st = take_buffer(&m->output, &o))) return st;
  } else if (!(o = sl_tensor_clone(out))) {
    return sl_last_status();
  }
  if (record) {
    sl_tensor *in[1 + SL_MAX_PARAMS] = {x};
    for (int i = 0; i < next; i++) in[1 + i] = ext[i];
    sl_ag_node *n = sl_ag_record("LayerBackward", layer_backward, o, in, 1 + next);
    if (!n) {
      sl_ag_release(o);
      return sl_last_status() ? sl_last_status() : SL_ENOMEM;
    }
    set_label(n, sl_module_type(m));
    layer_ctx *c = (layer_ctx *)n->ctx_inline;
    c->m = sl_module_retain(m);
    c->stamp = stamp_of(m);
    c->next = next;
    n->ctx = c;
    n->ctx_free = ctx_free;
    if ((st = sl_ag_save(n, x))) {
      sl_ag_release(o);
      return st;
    }
  }
  *y = o;
  return SL_OK;
}

int sl_ag_layer_call(sl_module *m, sl_tensor *x, bool record, sl_tensor **y) {
  return sl_ag_layer_call_ext(m, x, NULL, 0, record, y);
}
