/* SGD (momentum, dampening, Nesterov, weight decay), Adam / AdamW, RMSprop
 * and Adagrad with PyTorch 1.13's single-tensor update rules, in the same
 * operation order and float32 arithmetic. All state is allocated by the
 * constructor; step() allocates nothing. The optimizer holds a reference to
 * every tensor. Parameters may be split into groups, each with its own
 * hyperparameters (PyTorch's param_groups); a new optimizer has one group. */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"

#define NAME_LEN 40

enum optim_kind { OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD };

/* One group's hyperparameters (the fields its optimizer uses). */
typedef struct hparams {
  double lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha, lr_decay, initial_accumulator_value;
  double nesterov, centered; /* 0 or 1; read-only after construction */
} hparams;

struct sl_optim {
  enum optim_kind kind;
  int n;
  sl_tensor **params, **grads;
  int nstate;               /* SGD: n momentum buffers (or 0); Adam: 2n */
  sl_tensor **state;        /* SGD: buf[i]; Adam: exp_avg[i], exp_avg_sq[i] interleaved */
  char (*names)[NAME_LEN];  /* "0.momentum_buffer", "0.exp_avg", ... */
  bool decoupled;     /* AdamW */
  int ngroups;
  hparams *groups;    /* ngroups entries */
  int *group_of;      /* n entries: the group of parameter i */
  int has_mom, has_gavg; /* RMSprop/SGD state present: momentum buffers, centered grad averages */
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
  sl_free(o->groups);
  sl_free(o->group_of);
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
  o->groups = sl_calloc(1, sizeof *o->groups);
  o->group_of = sl_calloc(cnt, sizeof *o->group_of);
  o->ngroups = 1;
  if (!o->params || !o->grads || !o->state || !o->names || !o->groups || !o->group_of) {
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
  hparams *h = &o->groups[0];
  h->lr = opts.lr;
  h->momentum = opts.momentum;
  h->dampening = opts.dampening;
  h->weight_decay = opts.weight_decay;
  h->nesterov = opts.nesterov;
  o->has_mom = opts.momentum != 0.0;
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
  hparams *h = &o->groups[0];
  h->lr = opts.lr;
  h->beta1 = opts.beta1;
  h->beta2 = opts.beta2;
  h->eps = opts.eps;
  h->weight_decay = opts.weight_decay;
  o->decoupled = opts.decoupled;
  return o;
}

sl_rmsprop_opts sl_rmsprop_defaults(void) {
  sl_rmsprop_opts o = {1e-2, 0.99, 1e-8, 0.0, 0.0, false};
  return o;
}

sl_adagrad_opts sl_adagrad_defaults(void) {
  sl_adagrad_opts o = {1e-2, 0.0, 0.0, 0.0, 1e-10};
  return o;
}

sl_optim *sl_rmsprop_new(sl_tensor **params, sl_tensor **grads, int n, sl_rmsprop_opts opts) {
  if (!nonneg(opts.lr)) return sl_fail_null(SL_EINVAL, "RMSprop: invalid learning rate: %g", opts.lr);
  if (!nonneg(opts.eps)) return sl_fail_null(SL_EINVAL, "RMSprop: invalid epsilon value: %g", opts.eps);
  if (!nonneg(opts.momentum)) return sl_fail_null(SL_EINVAL, "RMSprop: invalid momentum value: %g", opts.momentum);
  if (!nonneg(opts.weight_decay))
    return sl_fail_null(SL_EINVAL, "RMSprop: invalid weight_decay value: %g", opts.weight_decay);
  if (!nonneg(opts.alpha)) return sl_fail_null(SL_EINVAL, "RMSprop: invalid alpha value: %g", opts.alpha);
  /* state per parameter, in this order: square_avg[, momentum_buffer][, grad_avg] */
  const char *suffixes[3] = {"square_avg", NULL, NULL};
  int k = 1;
  if (opts.momentum > 0.0) suffixes[k++] = "momentum_buffer";
  if (opts.centered) suffixes[k++] = "grad_avg";
  sl_optim *o = optim_new(OPT_RMSPROP, params, grads, n, k, suffixes, "RMSprop");
  if (!o) return NULL;
  hparams *h = &o->groups[0];
  h->lr = opts.lr;
  h->alpha = opts.alpha;
  h->eps = opts.eps;
  h->weight_decay = opts.weight_decay;
  h->momentum = opts.momentum;
  h->centered = opts.centered;
  o->has_mom = opts.momentum > 0.0;
  o->has_gavg = opts.centered;
  return o;
}

sl_optim *sl_adagrad_new(sl_tensor **params, sl_tensor **grads, int n, sl_adagrad_opts opts) {
  if (!nonneg(opts.lr)) return sl_fail_null(SL_EINVAL, "Adagrad: invalid learning rate: %g", opts.lr);
  if (!nonneg(opts.lr_decay)) return sl_fail_null(SL_EINVAL, "Adagrad: invalid lr_decay value: %g", opts.lr_decay);
  if (!nonneg(opts.weight_decay))
    return sl_fail_null(SL_EINVAL, "Adagrad: invalid weight_decay value: %g", opts.weight_decay);
  if (!nonneg(opts.initial_accumulator_value))
    return sl_fail_null(SL_EINVAL, "Adagrad: invalid initial_accumulator_value value: %g",
                        opts.initial_accumulator_value);
  if (!nonneg(opts.eps)) return sl_fail_null(SL_EINVAL, "Adagrad: invalid epsilon value: %g", opts.eps);
  static const char *const suffixes[] = {"sum"};
  sl_optim *o = optim_new(OPT_ADAGRAD, params, grads, n, 1, suffixes, "Adagrad");
  if (!o) return NULL;
  hparams *h = &o->groups[0];
  h->lr = opts.lr;
  h->lr_decay = opts.lr_decay;
  h->weight_decay = opts.weight_decay;
  h->initial_accumulator_value = opts.initial_accumulator_value;
  h->eps = opts.eps;
  float v = (float)opts.initial_accumulator_value;
  for (int i = 0; i < o->nstate; i++)
    for (int64_t j = 0; j < o->state[i]->numel; j++) o->state[i]->data[j] = v;
  return o;
}

/* PyTorch _single_tensor_rmsprop, elementwise (addcmul/addcdiv in ATen's
 * vectorized order: a + v*b*c, a + v*(b/c)). gavg/buf may be NULL. */
static void rmsprop_update_f32(float *p, const float *g, float *sq, float *buf, float *gavg, size_t n, float lr,
                               float wd, float alpha, float one_alpha, float eps, float mom) {
  for (size_t j = 0; j < n; j++) {
    float gj = wd != 0.0f ? g[j] + wd * p[j] : g[j];
    float s = sq[j] * alpha;
    s = s + one_alpha * gj * gj;
    sq[j] = s;
    float avg;
    if (gavg) {
      float ga = gavg[j] * alpha;
      ga = ga + one_alpha * gj;
      gavg[j] = ga;
      avg = sqrtf(s + -1.0f * ga * ga);
    } else {
      avg = sqrtf(s);
    }
    avg = avg + eps;
    if (buf) {
      float b = buf[j] * mom;
      b = b + 1.0f * (gj / avg);
      buf[j] = b;
      p[j] = p[j] + -lr * b;
    } else {
      p[j] = p[j] + -lr * (gj / avg);
    }
  }
}

/* PyTorch _single_tensor_adagrad (dense): sum += g*g; p += -clr * g / (sqrt(sum) + eps) */
static void adagrad_update_f32(float *p, const float *g, float *sum, size_t n, float neg_clr, float wd, float eps) {
  for (size_t j = 0; j < n; j++) {
    float gj = wd != 0.0f ? g[j] + wd * p[j] : g[j];
    float s = sum[j] + 1.0f * gj * gj;
    sum[j] = s;
    float std = sqrtf(s) + eps;
    p[j] = p[j] + neg_clr * (gj / std);
  }
}

/* One step's update of n elements of one group: p, g and the state arrays
 * s0, s1, s2 in the parameter's state order, where the state exists.
 * o->step has already been advanced. */
static void update_range(const sl_optim *o, const hparams *h, float *p, const float *g, float *s0, float *s1,
                         float *s2, size_t n, bool first) {
  switch (o->kind) {
  case OPT_SGD:
    sl_vsgd_f32(p, g, o->has_mom && h->momentum != 0.0 ? s0 : NULL, n, (float)h->lr, (float)h->weight_decay, (float)h->momentum,
                (float)(1.0 - h->dampening), h->nesterov != 0.0, first); /* tensor/vmath.c: one loop per case */
    return;
  case OPT_ADAM: {
    double bc1 = 1.0 - pow(h->beta1, (double)o->step);
    double bc2 = 1.0 - pow(h->beta2, (double)o->step);
    double step_size = h->lr / bc1;
    float decay_mul = o->decoupled ? (float)(1.0 - h->lr * h->weight_decay) : 1.0f;
    float wd = o->decoupled ? 0.0f : (float)h->weight_decay;
    sl_vadam_f32(p, g, s0, s1, n, decay_mul, wd, (float)h->beta1, (float)h->beta2, (float)(1.0 - h->beta1),
                 (float)(1.0 - h->beta2), (float)sqrt(bc2), (float)h->eps, (float)-step_size);
    return;
  }
  case OPT_RMSPROP: {
    float *buf = o->has_mom ? s1 : NULL, *gavg = o->has_gavg ? (o->has_mom ? s2 : s1) : NULL;
    /* a group whose momentum was set to 0 skips the buffer, as PyTorch does */
    rmsprop_update_f32(p, g, s0, h->momentum > 0.0 ? buf : NULL, gavg, n, (float)h->lr, (float)h->weight_decay,
                       (float)h->alpha, (float)(1.0 - h->alpha), (float)h->eps, (float)h->momentum);
    return;
  }
  case OPT_ADAGRAD: {
    double clr = h->lr / (1.0 + (double)(o->step - 1) * h->lr_decay);
    adagrad_update_f32(p, g, s0, n, (float)-clr, (float)h->weight_decay, (float)h->eps);
    return;
  }
  }
}

int sl_optim_state_kinds(const sl_optim *o) { return !o || !o->n ? 0 : o->nstate / o->n; }

static float *state_data(const sl_optim *o, int kind, int i) {
  int k = sl_optim_state_kinds(o);
  return kind < k ? o->state[k * i + kind]->data : NULL; /* per parameter, interleaved */
}

int sl_optim_step(sl_optim *o) {
  if (!o) return sl_fail(SL_EINVAL, "optimizer.step: optimizer is NULL");
  if (o->external)
    return sl_fail(SL_EINVAL, "optimizer.step: this optimizer is stepped by %s (call its step(opt) instead: "
                              "its parameters are shared with other processes)", o->external);
  bool first = o->step == 0;
  o->step++;
  for (int i = 0; i < o->n; i++)
    update_range(o, &o->groups[o->group_of[i]], o->params[i]->data, o->grads[i]->data, state_data(o, 0, i),
                 state_data(o, 1, i), state_data(o, 2, i), (size_t)o->params[i]->numel, first);
  return SL_OK;
}

int sl_optim_step_flat(sl_optim *o, float *p, const float *g, float *s0, float *s1, size_t n) {
  if (!o) return sl_fail(SL_EINVAL, "optimizer.step: optimizer is NULL");
  int k = sl_optim_state_kinds(o);
  if (k > 2)
    return sl_fail(SL_EINVAL, "optimizer.step: a flat step supports up to 2 state arrays, %s has %d",
                   sl_optim_type(o), k);
  if (o->ngroups > 1)
    return sl_fail(SL_EINVAL, "optimizer.step: a flat step needs one parameter group, %s has %d", sl_optim_type(o),
                   o->ngroups);
  if ((k >= 1 && !s0) || (k >= 2 && !s1))
    return sl_fail(SL_EINVAL, "optimizer.step: %s needs %d state array%s", sl_optim_type(o), k, k > 1 ? "s" : "");
  bool first = o->step == 0;
  o->step++;
  update_range(o, &o->groups[0], p, g, s0, s1, NULL, n, first);
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

double sl_optim_get_lr(const sl_optim *o) { return o ? o->groups[0].lr : (double)NAN; }
void sl_optim_set_lr(sl_optim *o, double lr) {
  if (o)
    for (int g = 0; g < o->ngroups; g++) o->groups[g].lr = lr;
}

const char *sl_optim_type(const sl_optim *o) {
  if (!o) return "?";
  switch (o->kind) {
  case OPT_SGD: return "SGD";
  case OPT_ADAM: return o->decoupled ? "AdamW" : "Adam";
  case OPT_RMSPROP: return "RMSprop";
  case OPT_ADAGRAD: return "Adagrad";
  }
  return "?";
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

/* ---- parameter groups ---- */

typedef struct hkey { const char *name; size_t off; bool readonly; } hkey;
#define HK(f, ro) {#f, offsetof(hparams, f), ro}
static const hkey sgd_keys[] = {HK(lr, 0), HK(momentum, 0), HK(dampening, 0), HK(weight_decay, 0),
                                HK(nesterov, 1), {NULL, 0, 0}};
static const hkey adam_keys[] = {HK(lr, 0), HK(beta1, 0), HK(beta2, 0), HK(eps, 0), HK(weight_decay, 0),
                                 {NULL, 0, 0}};
static const hkey rmsprop_keys[] = {HK(lr, 0), HK(alpha, 0), HK(eps, 0), HK(weight_decay, 0), HK(momentum, 0),
                                    HK(centered, 1), {NULL, 0, 0}};
static const hkey adagrad_keys[] = {HK(lr, 0), HK(lr_decay, 0), HK(weight_decay, 0),
                                    HK(initial_accumulator_value, 1), HK(eps, 0), {NULL, 0, 0}};
#undef HK

static const hkey *keys_of(const sl_optim *o) {
  switch (o->kind) {
  case OPT_SGD: return sgd_keys;
  case OPT_ADAM: return adam_keys;
  case OPT_RMSPROP: return rmsprop_keys;
  case OPT_ADAGRAD: return adagrad_keys;
  }
  return sgd_keys;
}

static const hkey *find_key(const sl_optim *o, const char *key) {
  for (const hkey *k = keys_of(o); k->name; k++)
    if (strcmp(k->name, key) == 0) return k;
  return NULL;
}

int sl_optim_group_count(const sl_optim *o) { return o ? o->ngroups : 0; }

int sl_optim_param_group(const sl_optim *o, int i) { return o && i >= 0 && i < o->n ? o->group_of[i] : -1; }

const char *sl_optim_group_key(const sl_optim *o, int i) {
  if (!o || i < 0) return NULL;
  const hkey *k = keys_of(o);
  for (int j = 0; j < i; j++)
    if (!k[j].name) return NULL;
  return k[i].name;
}

int sl_optim_set_groups(sl_optim *o, int ngroups, const int *group_of) {
  if (!o) return sl_fail(SL_EINVAL, "optimizer.set_groups: optimizer is NULL");
  if (ngroups < 1 || !group_of)
    return sl_fail(SL_EINVAL, "%s: need at least 1 parameter group, got %d", sl_optim_type(o), ngroups);
  if (o->step != 0)
    return sl_fail(SL_EINVAL, "%s: parameter groups are set before the first step (step is %" PRId64 ")",
                   sl_optim_type(o), o->step);
  for (int i = 0; i < o->n; i++)
    if (group_of[i] < 0 || group_of[i] >= ngroups)
      return sl_fail(SL_ERANGE, "%s: parameter %d is in group %d, expected 0..%d", sl_optim_type(o), i, group_of[i],
                     ngroups - 1);
  hparams *g = sl_calloc((size_t)ngroups, sizeof *g);
  if (!g) return SL_ENOMEM;
  for (int k = 0; k < ngroups; k++) g[k] = o->groups[0]; /* every group starts from the defaults */
  sl_free(o->groups);
  o->groups = g;
  o->ngroups = ngroups;
  memcpy(o->group_of, group_of, (size_t)o->n * sizeof *group_of);
  return SL_OK;
}

int sl_optim_group_get(const sl_optim *o, int group, const char *key, double *v) {
  if (!o || !key || !v) return sl_fail(SL_EINVAL, "optimizer.param_groups: NULL argument");
  if (group < 0 || group >= o->ngroups)
    return sl_fail(SL_ERANGE, "%s.param_groups: group %d out of range [0, %d)", sl_optim_type(o), group, o->ngroups);
  const hkey *k = find_key(o, key);
  if (!k) return sl_fail(SL_EINVAL, "%s.param_groups[%d] has no key '%s'", sl_optim_type(o), group, key);
  *v = *(const double *)(const void *)((const char *)&o->groups[group] + k->off);
  return SL_OK;
}

int sl_optim_group_set(sl_optim *o, int group, const char *key, double v) {
  if (!o || !key) return sl_fail(SL_EINVAL, "optimizer.param_groups: NULL argument");
  const char *t = sl_optim_type(o);
  if (group < 0 || group >= o->ngroups)
    return sl_fail(SL_ERANGE, "%s.param_groups: group %d out of range [0, %d)", t, group, o->ngroups);
  const hkey *k = find_key(o, key);
  if (!k) return sl_fail(SL_EINVAL, "%s.param_groups[%d] has no key '%s'", t, group, key);
  if (k->readonly) return sl_fail(SL_EINVAL, "%s.param_groups[%d].%s is fixed at construction", t, group, key);
  bool ok = strcmp(key, "beta1") == 0 || strcmp(key, "beta2") == 0 ? v >= 0.0 && v < 1.0
            : strcmp(key, "dampening") == 0                        ? isfinite(v)
                                                                   : nonneg(v);
  if (!ok) return sl_fail(SL_EINVAL, "%s.param_groups[%d].%s: invalid value %g", t, group, key, v);
  if (strcmp(key, "momentum") == 0 && v != 0.0 && !o->has_mom)
    return sl_fail(SL_EINVAL, "%s.param_groups[%d].momentum: this optimizer was built without momentum buffers "
                              "(construct it with momentum > 0 to change momentum later)", t, group);
  if (o->kind == OPT_SGD && o->groups[group].nesterov != 0.0 &&
      ((strcmp(key, "momentum") == 0 && v <= 0.0) || (strcmp(key, "dampening") == 0 && v != 0.0)))
    return sl_fail(SL_EINVAL, "%s.param_groups[%d].%s: Nesterov momentum requires a momentum and zero dampening",
                   t, group, key);
  *(double *)(void *)((char *)&o->groups[group] + k->off) = v;
  return SL_OK;
}
