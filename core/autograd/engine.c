/*
 * The tape: per-tensor autograd state, nodes, and the backward walk.
 * Nodes are refcounted: a tensor's meta holds its grad_fn, and a node holds
 * its input tensors (whose metas hold their own grad_fn), so the graph is a
 * DAG of references that goes away with its last tensor. Nothing here saves
 * a node's own output, so there are no reference cycles.
 */
#include <string.h>

#include "autograd.h"
#include "pool.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/ops.h"

/* ---- tensor state ---- */

static void meta_free(void *p) {
  struct sl_ag_meta *m = p;
  sl_ag_release(m->grad);
  sl_ag_node_release(m->grad_fn);
  sl_ag_pool_meta_put(m);
}

struct sl_ag_meta *sl_ag_meta_of(sl_tensor *t) {
  if (t->ag) return t->ag;
  struct sl_ag_meta *m = sl_ag_pool_meta();
  if (!m) return NULL;
  t->ag = m;
  t->ag_free = meta_free;
  return m;
}

static const struct sl_ag_meta *meta(const sl_tensor *t) { return t->ag; }

bool sl_ag_requires_grad(const sl_tensor *t) { return meta(t) && meta(t)->requires_grad; }
bool sl_ag_is_leaf(const sl_tensor *t) { return !meta(t) || !meta(t)->grad_fn; }
sl_tensor *sl_ag_grad(const sl_tensor *t) { return meta(t) ? meta(t)->grad : NULL; }
sl_ag_node *sl_ag_grad_fn(const sl_tensor *t) { return meta(t) ? meta(t)->grad_fn : NULL; }

int sl_ag_set_requires_grad(sl_tensor *t, bool on) {
  if (!sl_ag_is_leaf(t))
    return sl_fail(SL_EINVAL, "requires_grad_: only leaf tensors can change requires_grad (this one is the result "
                              "of %s); use detach() to get a leaf", meta(t)->grad_fn->name);
  if (!on && !t->ag) return SL_OK;
  struct sl_ag_meta *m = sl_ag_meta_of(t);
  if (!m) return SL_ENOMEM;
  m->requires_grad = on;
  return SL_OK;
}

int sl_ag_set_retain_grad(sl_tensor *t) {
  if (!sl_ag_requires_grad(t))
    return sl_fail(SL_EINVAL, "retain_grad: the tensor does not require grad");
  ((struct sl_ag_meta *)t->ag)->retain_grad = true;
  return SL_OK;
}

int sl_ag_set_grad(sl_tensor *t, sl_tensor *g) {
  char a[160], b[160];
  if (g && !sl_tensor_same_shape(g, t))
    return sl_fail(SL_ESHAPE, "grad: assigned gradient has shape %s, expected the tensor's %s",
                   sl_shape_str(g, a, sizeof a), sl_shape_str(t, b, sizeof b));
  if (!g && !t->ag) return SL_OK;
  struct sl_ag_meta *m = sl_ag_meta_of(t);
  if (!m) return SL_ENOMEM;
  sl_tensor_retain(g);
  sl_tensor_release(m->grad);
  m->grad = g;
  return SL_OK;
}

/* ---- nodes ---- */

sl_ag_node *sl_ag_node_retain(sl_ag_node *n) {
  if (n) n->refcount++;
  return n;
}

/* Drops what the node holds for its backward (after a backward without
 * retain_graph, or when the node goes). */
static void node_drop(sl_ag_node *n) {
  for (int i = 0; i < n->ninputs; i++) {
    sl_ag_release(n->inputs[i]);
    n->inputs[i] = NULL;
  }
  for (int i = 0; i < n->nsaved; i++) {
    sl_ag_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  if (n->ctx_free) n->ctx_free(n->ctx);
  n->ctx_free = NULL;
  n->ctx = NULL;
  n->freed = true;
}

void sl_ag_node_release(sl_ag_node *n) {
  if (!n || --n->refcount > 0) return;
  node_drop(n);
  sl_ag_release(n->gbuf);
  sl_ag_pool_node_put(n);
}

bool sl_ag_any_requires_grad(sl_tensor *const *ts, int n) {
  for (int i = 0; i < n; i++)
    if (ts[i] && sl_ag_requires_grad(ts[i])) return true;
  return false;
}

sl_ag_node *sl_ag_record(const char *name, sl_ag_backward_fn fn, sl_tensor *y, sl_tensor *const *inputs,
                         int ninputs) {
  if (ninputs > SL_AG_MAX_INPUTS)
    return sl_fail_null(SL_EINVAL, "autograd: %s has %d inputs, at most %d", name, ninputs, SL_AG_MAX_INPUTS);
  if (!sl_ag_is_leaf(y))
    return sl_fail_null(SL_EINVAL, "autograd: the output of %s already has a grad_fn", name);
  struct sl_ag_meta *m = sl_ag_meta_of(y);
  if (!m) return NULL;
  sl_ag_node *n = sl_ag_pool_node();
  if (!n) return NULL;
  n->name = name;
  n->backward = fn;
  n->refcount = 1;
  n->ninputs = ninputs;
  for (int i = 0; i < ninputs; i++) n->inputs[i] = sl_tensor_retain(inputs[i]);
  n->out_ndim = y->ndim;
  memcpy(n->out_shape, y->shape, sizeof n->out_shape);
  m->grad_fn = n;
  m->requires_grad = true;
  return n;
}

int sl_ag_save(sl_ag_node *n, sl_tensor *t) {
  if (n->nsaved >= SL_AG_MAX_SAVED)
    return sl_fail(SL_EINVAL, "autograd: %s saves more than %d tensors", n->name, SL_AG_MAX_SAVED);
  n->saved[n->nsaved] = sl_tensor_retain(t);
  n->saved_version[n->nsaved++] = sl_tensor_version(t);
  return SL_OK;
}

static int freed_error(const sl_ag_node *n) {
  return sl_fail(SL_EINVAL, "backward: trying to backward through the graph a second time (%s's saved tensors "
                            "were freed after the first backward); pass retain_graph = true to the first one",
                 n->name);
}

int sl_ag_saved(sl_ag_node *n, int i, sl_tensor **out) {
  if (n->freed) return freed_error(n);
  if (i < 0 || i >= n->nsaved) return sl_fail(SL_EINVAL, "autograd: %s has no saved tensor %d", n->name, i + 1);
  sl_tensor *t = n->saved[i];
  uint64_t v = sl_tensor_version(t);
  if (v != n->saved_version[i]) {
    char s[160];
    return sl_fail(SL_EINVAL, "backward: a tensor %s needed by %s was modified by an in-place operation (its "
                              "version is %llu, expected %llu)", sl_shape_str(t, s, sizeof s), n->name,
                   (unsigned long long)v, (unsigned long long)n->saved_version[i]);
  }
  *out = t;
  return SL_OK;
}

int sl_ag_check_inplace(sl_tensor *t, const char *op, bool grad_mode) {
  if (grad_mode && sl_ag_requires_grad(t) && sl_ag_is_leaf(t))
    return sl_fail(SL_EINVAL, "%s: a leaf tensor that requires grad is used in an in-place operation (wrap it in "
                              "selut.no_grad or use detach())", op);
  if (!t->ag && t->refcount == 1 && sl_tensor_storage_refcount(t) == 1) return SL_OK; /* nothing saved it */
  sl_tensor_bump_version(t);
  return SL_OK;
}

/* ---- the backward walk ---- */

#define WALK_STACK 256 /* nodes a walk holds without allocating: a training step's graph */

typedef struct walk {
  sl_ag_node **nodes; /* reachable, each retained once: stack, then heap when it grows */
  int n, cap;
  sl_ag_node *stack[WALK_STACK];
} walk;

static int walk_push(walk *w, sl_ag_node *n) {
  if (!w->nodes) {
    w->nodes = w->stack;
    w->cap = WALK_STACK;
  }
  if (w->n == w->cap) {
    int cap = 2 * w->cap;
    sl_ag_node **p = sl_malloc((size_t)cap * sizeof *p);
    if (!p) return SL_ENOMEM;
    memcpy(p, w->nodes, (size_t)w->n * sizeof *p);
    if (w->nodes != w->stack) sl_free(w->nodes);
    w->nodes = p;
    w->cap = cap;
  }
  w->nodes[w->n++] = sl_ag_node_retain(n);
  n->mark = 1;
  n->pending = 0;
  n->ran = false;
  return SL_OK;
}

static void walk_end(walk *w) {
  for (int i = 0; i < w->n; i++) {
    sl_ag_node *n = w->nodes[i];
    n->mark = 0;
    sl_ag_release(n->gbuf);
    n->gbuf = NULL;
    sl_ag_node_release(n);
  }
  if (w->nodes != w->stack) sl_free(w->nodes);
}

/* Collects the nodes reachable from root (breadth first: w->nodes doubles
 * as the queue) and counts each node's consumers into pending. */
static int collect(walk *w, sl_ag_node *root) {
  int st = walk_push(w, root);
  for (int k = 0; !st && k < w->n; k++) {
    sl_ag_node *n = w->nodes[k];
    if (n->freed) return freed_error(n);
    for (int i = 0; i < n->ninputs; i++) {
      sl_ag_node *c = sl_ag_grad_fn(n->inputs[i]);
      if (!c || !sl_ag_requires_grad(n->inputs[i])) continue;
      if (!c->mark && (st = walk_push(w, c))) break;
      c->pending++;
    }
  }
  return st;
}

/* *dst += src; a NULL *dst takes src (own: src is handed over) or a copy. */
static int accumulate(sl_tensor **dst, sl_tensor *src, bool own) {
  if (*dst) return sl_axpy(*dst, 1.0f, src);
  if (own) {
    *dst = sl_tensor_retain(src);
    return SL_OK;
  }
  return (*dst = sl_tensor_clone(src)) ? SL_OK : SL_ENOMEM;
}

typedef struct targets { /* sl_ag_grad_of: where gradients go instead of .grad */
  sl_tensor *const *inputs;
  sl_tensor **out;
  int n;
} targets;

/* Hands g, the gradient of tensor t, to t's node and/or t's .grad (or to a
 * target). Returns SL_OK or a failure. */
static int deliver(sl_tensor *t, sl_tensor *g, const targets *tg) {
  struct sl_ag_meta *m = t->ag;
  int st = SL_OK;
  if (tg) {
    for (int k = 0; !st && k < tg->n; k++)
      if (tg->inputs[k] == t) st = accumulate(&tg->out[k], g, false);
  } else if (!m->grad_fn || m->retain_grad) {
    st = accumulate(&m->grad, g, false);
  }
  if (!st && m->grad_fn) {
    st = accumulate(&m->grad_fn->gbuf, g, !m->grad_fn->gbuf);
    m->grad_fn->pending--;
  }
  return st;
}

static int run(sl_tensor *root, const sl_tensor *g, bool retain_graph, const targets *tg) {
  char a[160], b[160];
  if (!sl_ag_requires_grad(root))
    return sl_fail(SL_EINVAL, "backward: the tensor does not require grad and has no grad_fn (no input of the ops "
                              "that made it requires grad, or it was made under no_grad)");
  if (!g && root->numel != 1)
    return sl_fail(SL_EINVAL, "backward: grad can be implicitly created only for a 1-element output, got %s (pass "
                              "a gradient of its shape)", sl_shape_str(root, a, sizeof a));
  if (g && !sl_tensor_same_shape(g, root))
    return sl_fail(SL_ESHAPE, "backward: gradient of shape %s does not match the tensor's shape %s",
                   sl_shape_str(g, a, sizeof a), sl_shape_str(root, b, sizeof b));
  sl_tensor *g0 = sl_ag_tensor_empty(root->ndim, root->shape); /* a copy: Lua keeps g */
  if (!g0) return SL_ENOMEM;
  if (g)
    memcpy(g0->data, g->data, (size_t)g0->numel * sizeof(float));
  else
    g0->data[0] = 1.0f;
  sl_ag_node *rn = sl_ag_grad_fn(root);
  walk w;
  w.nodes = NULL;
  w.n = w.cap = 0;
  int st = rn ? collect(&w, rn) : SL_OK;
  sl_tensor *gx[SL_AG_MAX_INPUTS] = {0};
  if (!st) {
    if (rn) rn->pending++; /* deliver() counts the root's gradient as one consumer */
    st = deliver(root, g0, tg);
  }
  /* Kahn's order: a node runs when all its consumers delivered. w.nodes is
   * in breadth-first order, which is not topological, so scan for ready ones. */
  int done = 0;
  while (!st && done < w.n) {
    int progress = 0;
    for (int k = 0; !st && k < w.n; k++) {
      sl_ag_node *n = w.nodes[k];
      if (n->ran || n->pending > 0) continue;
      n->ran = true;
      done++;
      progress = 1;
      if (!n->gbuf) { /* nothing flowed here: release the inputs' nodes all the same */
        for (int i = 0; i < n->ninputs; i++)
          if (sl_ag_grad_fn(n->inputs[i])) sl_ag_grad_fn(n->inputs[i])->pending--;
        continue;
      }
      for (int i = 0; !st && i < n->ninputs; i++)
        if (sl_ag_requires_grad(n->inputs[i]) &&
            !(gx[i] = sl_ag_tensor_empty(n->inputs[i]->ndim, n->inputs[i]->shape)))
          st = SL_ENOMEM;
      if (!st) st = n->backward(n, n->gbuf, gx);
      for (int i = 0; i < n->ninputs; i++) {
        if (gx[i] && !st) st = deliver(n->inputs[i], gx[i], tg);
        sl_ag_release(gx[i]);
        gx[i] = NULL;
      }
      sl_ag_release(n->gbuf);
      n->gbuf = NULL;
    }
    if (!progress && !st) st = sl_fail(SL_EINVAL, "backward: the graph has a cycle");
  }
  if (!st && !retain_graph)
    for (int k = 0; k < w.n; k++) node_drop(w.nodes[k]);
  walk_end(&w);
  sl_ag_release(g0);
  return st;
}

int sl_ag_backward(sl_tensor *root, const sl_tensor *g, bool retain_graph) {
  return run(root, g, retain_graph, NULL);
}

int sl_ag_grad_of(sl_tensor *root, const sl_tensor *g, sl_tensor *const *inputs, int n, sl_tensor **out,
                  bool retain_graph) {
  for (int k = 0; k < n; k++) out[k] = NULL;
  targets tg = {inputs, out, n};
  int st = run(root, g, retain_graph, &tg);
  if (st)
    for (int k = 0; k < n; k++) {
      sl_tensor_release(out[k]);
      out[k] = NULL;
    }
  return st;
}
