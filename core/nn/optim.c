/* SGD (momentum, dampening, Nesterov, weight decay) and Adam / AdamW with
 * PyTorch 1.13's single-tensor update rules, in the same operation order
 * and float32 arithmetic. All state is allocated by the constructor; step()
 * allocates nothing. The optimizer holds a reference to every tensor. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"

#define NAME_LEN 40

enum optim_kind { OPT_SGD, OPT_ADAM };

struct sl_optim {
  enum optim_kind kind;
  int n;
  sl_tensor **params, **grads;
  int nstate;               /* SGD: n momentum buffers (or 0); Adam: 2n */
  sl_tensor **state;        /* SGD: buf[i]; Adam: exp_avg[i], exp_avg_sq[i] interleaved */
  char (*names)[NAME_LEN];  /* "0.momentum_buffer", "0.exp_avg", ... */
  sl_sgd_opts sgd;
  sl_adam_opts adam;
  double lr;
  int64_t step;
  const char *external; /* non-NULL: stepped only through sl_optim_step_flat by this owner (a static name) */
};

sl_sgd_opts sl_sgd_defaults(double lr) {
  sl_sgd_opts o = {lr, 0.0, 0.0, 0.0, false};
  return o;
}

sl_adam_opts sl_adam_defaults(void) {
  sl_adam_opts o = {1e-3, 0.9, 0.999, 1e-8, 0.0, false, false};
  return o;
}

sl_adam_opts sl_adamw_defaults(void) {
  sl_adam_opts o = {1e-3, 0.9, 0.999, 1e-8, 1e-2, false, true};
  return o;
}

void sl_optim_free(sl_optim *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++) {
    if (o->params) sl_tensor_release(o->params[i]);
    if (o->grads) sl_tensor_release(o->grads[i]);
  }
  for (int i = 0; i < o->nstate; i++)
    if (o->state) sl_tensor_release(o->state[i]);
  sl_free(o->params);
  sl_free(o->grads);
  sl_free(o->state);
  sl_free(o->names);
  sl_free(o);
}

/* Common part: checks the pairs, takes references, allocates per_param
 * zero state tensors per parameter named i.<suffix>. */
static sl_optim *optim_new(enum optim_kind kind, sl_tensor **params, sl_tensor **grads, int n, int per_param,
                           const char *const *suffixes, const char *what) {
  char a[160], b[160];
  if (n < 0 || (n > 0 && (!params || !grads)))
    return sl_fail_null(SL_EINVAL, "%s: invalid parameter list (%d parameters)", what, n);
  for (int i = 0; i < n; i++) {
    if (!params[i] || !grads[i])
      return sl_fail_null(SL_EINVAL, "%s: parameter %d has no %s", what, i, params[i] ? "gradient" : "tensor");
    if (params[i]->numel != grads[i]->numel)
      return sl_fail_null(SL_ESHAPE, "%s: parameter %d has shape %s but its gradient has shape %s", what, i,
                          sl_shape_str(params[i], a, sizeof a), sl_shape_str(grads[i], b, sizeof b));
  }
  sl_optim *o = sl_calloc(1, sizeof *o);
  if (!o) return NULL;
  o->kind = kind;
  size_t cnt = n > 0 ? (size_t)n : 1, scnt = (size_t)n * (size_t)per_param + 1;
  o->params = sl_calloc(cnt, sizeof *o->params);
  o->grads = sl_calloc(cnt, sizeof *o->grads);
  o->state = sl_calloc(scnt, sizeof *o->state);
  o->names = sl_calloc(scnt, sizeof *o->names);
  if (!o->params || !o->grads || !o->state || !o->names) {
    sl_optim_free(o);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    o->params[i] = sl_tensor_retain(params[i]);
    o->grads[i] = sl_tensor_retain(grads[i]);
    o->n = i + 1;
  }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < per_param; k++) {
      sl_tensor *s = sl_tensor_zeros(params[i]->ndim, params[i]->shape);
      if (!s) {
        sl_optim_free(o);
        return NULL;
      }
      o->state[o->nstate] = s;
      snprintf(o->names[o->nstate], NAME_LEN, "%d.%s", i, suffixes[k]);
      o->nstate++;
    }
  return o;
}

static bool nonneg(double v) { return v >= 0.0 && isfinite(v); }

sl_optim *sl_sgd_new(sl_tensor **params, sl_tensor **grads, int n, sl_sgd_opts opts) {
  if (!nonneg(opts.lr)) return sl_fail_null(SL_EINVAL, "SGD: invalid learning rate: %g", opts.lr);
  if (!nonneg(opts.momentum)) return sl_fail_null(SL_EINVAL, "SGD: invalid momentum value: %g", opts.momentum);
  if (!nonneg(opts.weight_decay))
    return sl_fail_null(SL_EINVAL, "SGD: invalid weight_decay value: %g", opts.weight_decay);
  if (!isfinite(opts.dampening)) return sl_fail_null(SL_EINVAL, "SGD: invalid dampening value: %g", opts.dampening);
  if (opts.nesterov && (opts.momentum <= 0.0 || opts.dampening != 0.0))
    return sl_fail_null(SL_EINVAL, "SGD: Nesterov momentum requires a momentum and zero dampening "
                        "(got momentum %g, dampening %g)", opts.momentum, opts.dampening);
  static const char *const suffixes[] = {"momentum_buffer"};
  sl_optim *o = optim_new(OPT_SGD, params, grads, n, opts.momentum != 0.0 ? 1 : 0, suffixes, "SGD");
  if (!o) return NULL;
  o->sgd = opts;
  o->lr = opts.lr;
  return o;
}

sl_optim *sl_adam_new(sl_tensor **params, sl_tensor **grads, int n, sl_adam_opts opts) {
  const char *what = opts.decoupled ? "AdamW" : "Adam";
  if (!nonneg(opts.lr)) return sl_fail_null(SL_EINVAL, "%s: invalid learning rate: %g", what, opts.lr);
  if (!nonneg(opts.eps)) return sl_fail_null(SL_EINVAL, "%s: invalid epsilon value: %g", what, opts.eps);
  if (!(opts.beta1 >= 0.0 && opts.beta1 < 1.0))
    return sl_fail_null(SL_EINVAL, "%s: invalid beta parameter at index 0: %g", what, opts.beta1);
  if (!(opts.beta2 >= 0.0 && opts.beta2 < 1.0))
    return sl_fail_null(SL_EINVAL, "%s: invalid beta parameter at index 1: %g", what, opts.beta2);
  if (!nonneg(opts.weight_decay))
    return sl_fail_null(SL_EINVAL, "%s: invalid weight_decay value: %g", what, opts.weight_decay);
  static const char *const suffixes[] = {"exp_avg", "exp_avg_sq"};
  sl_optim *o = optim_new(OPT_ADAM, params, grads, n, 2, suffixes, what);
  if (!o) return NULL;
  o->adam = opts;
  o->lr = opts.lr;
  return o;
}

/* PyTorch _single_tensor_sgd, elementwise:
 *   d = g + wd*p;  buf = first ? d : buf*mom + (1-damp)*d;
 *   d = nesterov ? d + mom*buf : buf;  p = p - lr*d */
static void sgd_update_f32(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom,
                           float damp1, bool nesterov, bool first) {
  sl_vsgd_f32(p, g, buf, n, lr, wd, mom, damp1, nesterov, first); /* tensor/vmath.c: one loop per case */
}

/* PyTorch _single_tensor_adam / _adamw (1.13), elementwise:
 *   AdamW: p *= 1 - lr*wd;   Adam: g = g + wd*p
 *   m = m*b1 + (1-b1)*g;  v = v*b2 + (1-b2)*g*g
 *   p = p - step_size * m / (sqrt(v)/sqrt(bc2) + eps) */
static void adam_update_f32(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd,
                            float b1, float b2, float one_b1, float one_b2, float bc2_sqrt, float eps,
                            float neg_step) {
  sl_vadam_f32(p, g, m, v, n, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step);
}

/* One step's update of n elements: p, g and the state arrays s0 (SGD
 * momentum; Adam exp_avg) and s1 (Adam exp_avg_sq), where the state exists.
 * o->step has already been advanced. */
static void update_range(const sl_optim *o, float *p, const float *g, float *s0, float *s1, size_t n, bool first) {
  if (o->kind == OPT_SGD) {
    const sl_sgd_opts *s = &o->sgd;
    sgd_update_f32(p, g, o->nstate ? s0 : NULL, n, (float)o->lr, (float)s->weight_decay, (float)s->momentum,
                   (float)(1.0 - s->dampening), s->nesterov, first);
    return;
  }
  const sl_adam_opts *a = &o->adam;
  double bc1 = 1.0 - pow(a->beta1, (double)o->step);
  double bc2 = 1.0 - pow(a->beta2, (double)o->step);
  double step_size = o->lr / bc1;
  float decay_mul = a->decoupled ? (float)(1.0 - o->lr * a->weight_decay) : 1.0f;
  float wd = a->decoupled ? 0.0f : (float)a->weight_decay;
  adam_update_f32(p, g, s0, s1, n, decay_mul, wd, (float)a->beta1, (float)a->beta2, (float)(1.0 - a->beta1),
                  (float)(1.0 - a->beta2), (float)sqrt(bc2), (float)a->eps, (float)-step_size);
}

int sl_optim_state_kinds(const sl_optim *o) { return !o || !o->n ? 0 : o->nstate / o->n; }

static float *state_data(const sl_optim *o, int kind, int i) {
  int k = sl_optim_state_kinds(o);
  return kind < k ? o->state[k * i + kind]->data : NULL; /* SGD: buf[i]; Adam: interleaved */
}

int sl_optim_step(sl_optim *o) {
  if (!o) return sl_fail(SL_EINVAL, "optimizer.step: optimizer is NULL");
  if (o->external)
    return sl_fail(SL_EINVAL, "optimizer.step: this optimizer is stepped by %s (call its step(opt) instead: "
                              "its parameters are shared with other processes)", o->external);
  bool first = o->step == 0;
  o->step++;
  for (int i = 0; i < o->n; i++)
    update_range(o, o->params[i]->data, o->grads[i]->data, state_data(o, 0, i), state_data(o, 1, i),
                 (size_t)o->params[i]->numel, first);
  return SL_OK;
}

int sl_optim_step_flat(sl_optim *o, float *p, const float *g, float *s0, float *s1, size_t n) {
  if (!o) return sl_fail(SL_EINVAL, "optimizer.step: optimizer is NULL");
  int k = sl_optim_state_kinds(o);
  if ((k >= 1 && !s0) || (k >= 2 && !s1))
    return sl_fail(SL_EINVAL, "optimizer.step: %s needs %d state array%s", sl_optim_type(o), k, k > 1 ? "s" : "");
  bool first = o->step == 0;
  o->step++;
  update_range(o, p, g, s0, s1, n, first);
  return SL_OK;
}

void sl_optim_set_external(sl_optim *o, const char *owner) {
  if (o) o->external = owner;
}

int sl_optim_param_count(const sl_optim *o) { return o ? o->n : 0; }

sl_tensor *sl_optim_param(const sl_optim *o, int i) { return o && i >= 0 && i < o->n ? o->params[i] : NULL; }

void sl_optim_zero_grad(sl_optim *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++) sl_vzero_f32(o->grads[i]->data, (size_t)o->grads[i]->numel); /* 2 cores if large */
}

double sl_optim_get_lr(const sl_optim *o) { return o ? o->lr : (double)NAN; }
void sl_optim_set_lr(sl_optim *o, double lr) {
  if (o) o->lr = lr;
}

const char *sl_optim_type(const sl_optim *o) {
  if (!o) return "?";
  return o->kind == OPT_SGD ? "SGD" : o->adam.decoupled ? "AdamW" : "Adam";
}

int sl_optim_state_count(const sl_optim *o) { return o ? o->nstate : 0; }

sl_tensor *sl_optim_state_tensor(const sl_optim *o, int i, const char **name) {
  if (!o || i < 0 || i >= o->nstate) {
    if (name) *name = NULL;
    return NULL;
  }
  if (name) *name = o->names[i];
  return o->state[i];
}

int64_t sl_optim_get_step(const sl_optim *o) { return o ? o->step : 0; }
void sl_optim_set_step(sl_optim *o, int64_t step) {
  if (o) o->step = step < 0 ? 0 : step;
}
