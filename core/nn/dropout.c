/* Dropout (inverted scaling 1/(1-p)) and AlphaDropout (SNN paper / PyTorch):
 * a unit is kept with probability 1-p. Each training forward draws one
 * 64-bit key from the borrowed generator; element i is kept when a
 * counter-based hash of (key, i) says so (tensor/vmath.c), so the mask is
 * never stored: backward recomputes it from the key. In evaluation mode, or
 * for p = 0, both are the identity and draw nothing.
 * Data parallelism: with a bound sample offset k (sl_dropout_bind_sample_offset),
 * element i of an input of shape (n, ...) is element k*(numel/n) + i of the
 * draw, so a process holding rows k+1..k+n of a global batch applies exactly
 * those rows of the one-process mask (given the same key). */
#include <math.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"
#include "snn.h"

/* PyTorch's literal for lambda * alpha (torch/nn/functional.py, Dropout.cpp). */
#define SL_ALPHA_DROPOUT_ALPHA 1.7580993408473766

typedef struct dropout_state {
  double p;
  bool alpha;        /* AlphaDropout */
  bool masked;       /* the last forward applied a mask */
  float keep_scale;  /* gradient factor for kept units: 1/(1-p) or a */
  float shift;       /* b (AlphaDropout) */
  float dropped;     /* value of a dropped unit: 0 or a*alpha' + b */
  uint32_t threshold; /* keep when hash >> 8 >= threshold (sl_dropout_threshold(p)) */
  uint64_t key;       /* the last training forward's mask key */
  uint64_t first;     /* the last training forward's first element in the draw */
  const int64_t *sample_offset; /* borrowed, or NULL (0) */
} dropout_state;

/* The kernels count elements from 0: a draw starting at element first is
 * applied in stretches that stay inside one 2^32 block of the counter, each
 * with the key that starts it at its element (sl_dropout_key_at). first = 0
 * is one call with the key itself (the bits of a single process). */
static uint64_t stretch(uint64_t key, uint64_t first, size_t done, size_t n, size_t *m) {
  if (first == 0) {
    *m = n;
    return key;
  }
  uint64_t g = first + done;
  uint64_t room = ((uint64_t)1 << 32) - (uint32_t)g;
  *m = n - done < room ? n - done : (size_t)room;
  return sl_dropout_key_at(key, g);
}

void sl_alpha_dropout_coeffs(double p, double *a, double *b, double *dropped) {
  const double alpha_p = -SL_ALPHA_DROPOUT_ALPHA; /* alpha' = -lambda alpha */
  double av = 1.0 / sqrt((1.0 - p) * (1.0 + p * alpha_p * alpha_p));
  double bv = -av * alpha_p * p;
  if (a) *a = av;
  if (b) *b = bv;
  if (dropped) *dropped = av * alpha_p + bv;
}

static int dropout_forward(sl_module *m, const sl_tensor *x) {
  dropout_state *s = m->state;
  int st = sl_tensor_ensure(&m->output, x->ndim, x->shape);
  if (st) return st;
  s->masked = m->training && s->p > 0.0 && x->numel > 0;
  if (!s->masked) return sl_tensor_copy(m->output, x);
  int64_t k = s->sample_offset ? *s->sample_offset : 0;
  if (k < 0) return sl_fail(SL_EINVAL, "%s.forward: sample offset must be >= 0, got %lld", m->vt->type, (long long)k);
  uint64_t per = x->ndim > 0 && x->shape[0] > 0 ? (uint64_t)(x->numel / x->shape[0]) : 1;
  if (k > 0 && (uint64_t)k > (UINT64_MAX - (uint64_t)x->numel) / per)
    return sl_fail(SL_EINVAL, "%s.forward: sample offset %lld is too large", m->vt->type, (long long)k);
  s->first = (uint64_t)k * per;
  s->key = sl_rng_next(m->rng);
  /* y = keep ? x*scale + shift : dropped */
  size_t n = (size_t)x->numel, len;
  for (size_t done = 0; done < n; done += len) {
    uint64_t key = stretch(s->key, s->first, done, n, &len);
    sl_vdropout_forward_f32(m->output->data + done, x->data + done, len, key, s->threshold, s->keep_scale, s->shift,
                            s->dropped);
  }
  return SL_OK;
}

static int dropout_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  dropout_state *s = m->state;
  char a[160], b[160];
  if (!sl_tensor_same_shape(x, gy))
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match input shape %s", m->vt->type,
                   sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  /* the output buffer still has the last forward's shape */
  if (s->masked && !sl_tensor_same_shape(m->output, x))
    return sl_fail(SL_ESHAPE, "%s.backward: input shape %s differs from the last forward's %s", m->vt->type,
                   sl_shape_str(x, a, sizeof a), sl_shape_str(m->output, b, sizeof b));
  int st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape);
  if (st) return st;
  if (!s->masked) return sl_tensor_copy(m->grad_input, gy);
  /* gx = keep ? gy*scale : 0, the mask recomputed from the forward's key */
  size_t n = (size_t)x->numel, len;
  for (size_t done = 0; done < n; done += len) {
    uint64_t key = stretch(s->key, s->first, done, n, &len);
    sl_vdropout_backward_f32(m->grad_input->data + done, gy->data + done, len, key, s->threshold, s->keep_scale);
  }
  return SL_OK;
}

static void dropout_destroy(sl_module *m) {
  dropout_state *s = m->state;
  sl_free(s);
}

static int dropout_hparams(const sl_module *m, sl_hparam *out) {
  out[0] = (sl_hparam){"p", SL_VALUE_FLOAT, ((const dropout_state *)m->state)->p, 0};
  return 1;
}

const sl_layer sl_dropout_layer = {.type = "Dropout", .flags = SL_LAYER_STOCHASTIC | SL_LAYER_FORWARD_STATE, .forward = dropout_forward,
                                   .backward = dropout_backward, .destroy = dropout_destroy,
                                   .hparams = dropout_hparams};
const sl_layer sl_alpha_dropout_layer = {.type = "AlphaDropout",
                                         .flags = SL_LAYER_STOCHASTIC | SL_LAYER_SELF_NORMALIZING | SL_LAYER_FORWARD_STATE,
                                         .forward = dropout_forward, .backward = dropout_backward,
                                         .destroy = dropout_destroy, .hparams = dropout_hparams};

static sl_module *dropout_new(const sl_layer *vt, double p, sl_rng *rng) {
  if (!(p >= 0.0 && p < 1.0)) /* also rejects NaN */
    return sl_fail_null(SL_EINVAL, "%s: probability p has to be in [0, 1), got %g", vt->type, p);
  if (!rng) return sl_fail_null(SL_EINVAL, "%s: a random generator is required", vt->type);
  sl_module *m = sl_module_new(vt);
  if (!m) return NULL;
  dropout_state *s = sl_calloc(1, sizeof *s);
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  m->state = s;
  m->rng = rng;
  s->p = p;
  s->threshold = sl_dropout_threshold(p);
  s->alpha = vt == &sl_alpha_dropout_layer;
  if (s->alpha) {
    double a, b, dropped;
    sl_alpha_dropout_coeffs(p, &a, &b, &dropped);
    s->keep_scale = (float)a;
    s->shift = (float)b;
    s->dropped = (float)dropped;
  } else {
    s->keep_scale = (float)(1.0 / (1.0 - p));
  }
  return m;
}

sl_module *sl_dropout_new(double p, sl_rng *rng) { return dropout_new(&sl_dropout_layer, p, rng); }
sl_module *sl_alpha_dropout_new(double p, sl_rng *rng) { return dropout_new(&sl_alpha_dropout_layer, p, rng); }

/* ---- AlphaDropout for any fixed point (snn.h) ---- */

sl_module *sl_alpha_dropout_new_ex(double p, double mean, double var, double alpha_prime, sl_rng *rng) {
  if (isnan(alpha_prime)) {
    if (mean == 0.0 && var == 1.0) {
      alpha_prime = -SL_ALPHA_DROPOUT_ALPHA;
    } else {
      double alpha, scale;
      if (sl_snn_params(mean, var, &alpha, &scale)) return NULL;
      alpha_prime = -scale * alpha;
    }
  }
  double a, b, dropped;
  if (sl_snn_alpha_dropout_coeffs(p, mean, var, alpha_prime, &a, &b, &dropped)) return NULL;
  sl_module *m = dropout_new(&sl_alpha_dropout_layer, p, rng);
  if (!m) return NULL;
  dropout_state *s = m->state;
  s->keep_scale = (float)a;
  s->shift = (float)b;
  s->dropped = (float)dropped;
  return m;
}

int sl_dropout_bind_sample_offset(sl_module *m, const int64_t *sample_offset) {
  if (!m || (m->vt != &sl_dropout_layer && m->vt != &sl_alpha_dropout_layer))
    return sl_fail(SL_EINVAL, "dropout sample offset: module is a %s, not a Dropout/AlphaDropout",
                   sl_module_type(m));
  dropout_state *s = m->state;
  s->sample_offset = sample_offset;
  return SL_OK;
}

int sl_dropout_coeffs_of(const sl_module *m, double *p, double *a, double *b, double *dropped) {
  if (!m || (m->vt != &sl_dropout_layer && m->vt != &sl_alpha_dropout_layer))
    return sl_fail(SL_EINVAL, "dropout coefficients: module is a %s, not a Dropout/AlphaDropout",
                   sl_module_type(m));
  const dropout_state *s = m->state;
  if (p) *p = s->p;
  if (a) *a = s->keep_scale;
  if (b) *b = s->shift;
  if (dropped) *dropped = s->dropped;
  return SL_OK;
}
