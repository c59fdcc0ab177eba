/* The module protocol: generic dispatch with argument checks, reference
 * counting, recursive train/zero_grad, and the Sequential container, which
 * chains its children's owned output / grad_input buffers. */
#include <stdlib.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/ops.h"
#include "nn.h"

sl_module *sl_module_new(const sl_layer *vt) {
  if (!vt) return sl_fail_null(SL_EINVAL, "module: NULL vtable");
  sl_module *m = sl_calloc(1, sizeof *m);
  if (!m) return NULL;
  m->vt = vt;
  m->refcount = 1;
  m->training = true;
  return m;
}

int sl_module_add_param(sl_module *m, const char *name, int ndim, const int64_t *shape) {
  if (m->nparams >= SL_MAX_PARAMS)
    return sl_fail(SL_EINVAL, "module: more than %d parameters for %s", SL_MAX_PARAMS, m->vt->type);
  sl_tensor *p = sl_tensor_zeros(ndim, shape);
  if (!p) return sl_last_status();
  sl_tensor *g = sl_tensor_zeros(ndim, shape);
  if (!g) {
    sl_tensor_release(p);
    return sl_last_status();
  }
  m->params[m->nparams] = p;
  m->grads[m->nparams] = g;
  m->param_names[m->nparams] = name;
  m->nparams++;
  return SL_OK;
}

const char *sl_module_type(const sl_module *m) { return m && m->vt ? m->vt->type : "?"; }

int sl_module_forward(sl_module *m, const sl_tensor *x, const sl_tensor **y) {
  if (!m || !x) return sl_fail(SL_EINVAL, "forward: %s is NULL", m ? "input" : "module");
  m->forwards++;
  int st = m->vt->forward(m, x);
  if (st) return st;
  if (y) *y = m->output;
  return SL_OK;
}

int sl_module_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy, const sl_tensor **gx) {
  if (!m || !x || !gy)
    return sl_fail(SL_EINVAL, "backward: %s is NULL", !m ? "module" : !x ? "input" : "gradOutput");
  int st = m->vt->backward(m, x, gy);
  if (st) return st;
  if (gx) *gx = m->grad_input;
  return SL_OK;
}

int sl_module_backward_params(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  if (!m) return sl_fail(SL_EINVAL, "backward: module is NULL");
  m->skip_grad_input = true;
  int st = sl_module_backward(m, x, gy, NULL);
  m->skip_grad_input = false;
  return st;
}

void sl_module_zero_grad(sl_module *m) {
  if (!m) return;
  for (int i = 0; i < m->nparams; i++)
    if (m->grads[i]) memset(m->grads[i]->data, 0, (size_t)m->grads[i]->numel * sizeof(float));
  for (int i = 0; i < m->nchildren; i++) sl_module_zero_grad(m->children[i]);
}

void sl_module_train(sl_module *m, bool training) {
  if (!m) return;
  m->training = training;
  for (int i = 0; i < m->nchildren; i++) sl_module_train(m->children[i], training);
}

sl_module *sl_module_retain(sl_module *m) {
  if (m) m->refcount++;
  return m;
}

void sl_module_release(sl_module *m) {
  if (!m || --m->refcount > 0) return;
  if (m->vt && m->vt->destroy) m->vt->destroy(m);
  for (int i = 0; i < m->nparams; i++) {
    sl_tensor_release(m->params[i]);
    sl_tensor_release(m->grads[i]);
  }
  for (int i = 0; i < m->nchildren; i++) sl_module_release(m->children[i]);
  sl_free(m->children);
  sl_tensor_release(m->output);
  sl_tensor_release(m->grad_input);
  sl_free(m);
}

/* ---- Sequential ------------------------------------------------------- */

/* Points *slot at t (a buffer owned by a child), holding one reference. The
 * child's header pointer is stable (buffers are resized in place), so after
 * the first step this neither retains nor releases anything. */
static void share(sl_tensor **slot, sl_tensor *t) {
  if (*slot == t) return;
  sl_tensor_release(*slot);
  *slot = sl_tensor_retain(t);
}

/* An empty Sequential is the identity: copy into an own buffer. */
static int copy_into(sl_tensor **slot, const sl_tensor *x) {
  int st = sl_tensor_ensure(slot, x->ndim, x->shape);
  if (st) return st;
  return sl_tensor_copy(*slot, x);
}

static int sequential_forward(sl_module *m, const sl_tensor *x) {
  if (m->nchildren == 0) return copy_into(&m->output, x);
  const sl_tensor *cur = x;
  for (int i = 0; i < m->nchildren; i++) {
    int st = sl_module_forward(m->children[i], cur, &cur);
    if (st) return st;
  }
  share(&m->output, m->children[m->nchildren - 1]->output);
  return SL_OK;
}

/* Child i's input was child i-1's output (x for the first child), which is
 * still in place from the matching forward. */
static int sequential_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  if (m->nchildren == 0) return copy_into(&m->grad_input, gy);
  const sl_tensor *g = gy;
  for (int i = m->nchildren - 1; i >= 0; i--) {
    const sl_tensor *in = i == 0 ? x : m->children[i - 1]->output;
    if (!in)
      return sl_fail(SL_EINVAL, "Sequential.backward: child %d (%s) has no output; call forward first",
                     i, sl_module_type(m->children[i - 1]));
    int st = i == 0 && m->skip_grad_input ? sl_module_backward_params(m->children[0], in, g)
                                          : sl_module_backward(m->children[i], in, g, &g);
    if (st) return st;
  }
  if (!m->skip_grad_input) share(&m->grad_input, m->children[0]->grad_input);
  return SL_OK;
}

const sl_layer sl_sequential_layer = {.type = "Sequential", .flags = SL_LAYER_CONTAINER | SL_LAYER_FORWARD_STATE,
                                      .forward = sequential_forward, .backward = sequential_backward};

sl_module *sl_sequential_new(void) { return sl_module_new(&sl_sequential_layer); }

int sl_sequential_add(sl_module *seq, sl_module *child) {
  if (!seq || !child) return sl_fail(SL_EINVAL, "Sequential.add: %s is NULL", seq ? "child" : "container");
  if (seq->vt != &sl_sequential_layer)
    return sl_fail(SL_EINVAL, "Sequential.add: container is a %s, not a Sequential", sl_module_type(seq));
  if (child == seq) return sl_fail(SL_EINVAL, "Sequential.add: a container cannot contain itself");
  /* Each child keeps its own output for backward, so one instance cannot
   * sit at two places in the chain. */
  for (int i = 0; i < seq->nchildren; i++)
    if (seq->children[i] == child)
      return sl_fail(SL_EINVAL, "Sequential.add: this %s is already child %d; create a new module",
                     sl_module_type(child), i + 1);
  if (seq->nchildren == seq->cap_children) {
    int cap = seq->cap_children ? 2 * seq->cap_children : 4;
    sl_module **c = sl_malloc((size_t)cap * sizeof *c);
    if (!c) return sl_last_status();
    if (seq->nchildren) memcpy(c, seq->children, (size_t)seq->nchildren * sizeof *c);
    sl_free(seq->children);
    seq->children = c;
    seq->cap_children = cap;
  }
  seq->children[seq->nchildren++] = sl_module_retain(child);
  return SL_OK;
}
