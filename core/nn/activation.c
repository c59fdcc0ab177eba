/* Elementwise activations and the row-wise softmax family. Kernels are plain
 * loops (forward above backward); every backward is computed from the input x,
 * like PyTorch's out-of-place gradients, except in place (SELU/ELU/ReLU with
 * sl_activation_set_inplace), where it works from the result as PyTorch's
 * elu_/relu_ do. ELU/SELU: x <= 0 takes the negative
 * branch (so SELU'(0) = scale*alpha, ELU'(0) = alpha), expm1f on min(x, 0)
 * so no intermediate overflows; ReLU'(0) = 0. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"
#include "snn.h"

/* ---- kernels ----------------------------------------------------------- */

/* y = scale * (x > 0 ? x : alpha * expm1(x)); the negative coefficient is
 * alpha * scale rounded to float, as PyTorch's elu kernel computes it. */
void sl_elu_forward_f32(float *y, const float *x, size_t n, float alpha, float scale) {
  sl_velu_forward_f32(y, x, n, alpha * scale, scale); /* vectorized expm1, <= 2 ulp (tensor/vmath.c) */
}

void sl_elu_backward_f32(float *gx, const float *x, const float *gy, size_t n, float alpha, float scale) {
  sl_velu_backward_f32(gx, x, gy, n, alpha * scale, scale);
}

void sl_selu_forward_f32(float *y, const float *x, size_t n) {
  sl_elu_forward_f32(y, x, n, (float)SL_SELU_ALPHA, (float)SL_SELU_SCALE);
}

void sl_selu_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  sl_elu_backward_f32(gx, x, gy, n, (float)SL_SELU_ALPHA, (float)SL_SELU_SCALE);
}

/* Written "x <= 0 ? 0 : x" so NaN propagates like torch.relu. */
void sl_relu_forward_f32(float *y, const float *x, size_t n) { sl_vrelu_forward_f32(y, x, n); }

void sl_relu_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  sl_vrelu_backward_f32(gx, x, gy, n);
}

static void leaky_relu_forward_f32(float *y, const float *x, size_t n, float slope) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

static void leaky_relu_backward_f32(float *gx, const float *x, const float *gy, size_t n, float slope) {
  for (size_t i = 0; i < n; i++) gx[i] = x[i] > 0.0f ? gy[i] : gy[i] * slope;
}

/* vmath.c's vectorized tanh (glibc's scalar tanhf took ~19 ns per element:
 * most of a PPO update's time with Stable-Baselines3's tanh nets). */
static void tanh_forward_f32(float *y, const float *x, size_t n) { sl_vtanh_f32(y, x, n); }

static void tanh_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  sl_vtanh_backward_f32(gx, x, gy, n);
}

/* Both branches stay finite: exp of a non-positive argument only. */
static inline float sigmoidf(float x) {
  float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static void sigmoid_forward_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = sigmoidf(x[i]);
}

static void sigmoid_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float s = sigmoidf(x[i]);
    gx[i] = gy[i] * (1.0f - s) * s;
  }
}

/* Exact GELU (PyTorch's approximate='none'): x * Phi(x). */
#define SL_SQRT1_2 0.70710678118654752440f
#define SL_GELU_BETA 0.39894228040143267794f /* 1/sqrt(2 pi) */

static void gelu_forward_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SL_SQRT1_2));
}

static void gelu_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float cdf = 0.5f * (1.0f + erff(x[i] * SL_SQRT1_2));
    float pdf = SL_GELU_BETA * expf(-0.5f * x[i] * x[i]);
    gx[i] = gy[i] * (cdf + x[i] * pdf);
  }
}

/* Row-wise softmax / log-softmax over the last dim: x, y: (rows, c).
 * Max-shifted; sums accumulated in double. */
static void softmax_rows_f32(float *y, const float *x, int64_t rows, int64_t c, bool take_log) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *yr = y + r * c;
    float mx = -INFINITY;
    for (int64_t j = 0; j < c; j++) mx = fmaxf(mx, xr[j]);
    if (mx == -INFINITY) mx = 0.0f; /* an all -inf row gives NaN, as in PyTorch */
    double sum = 0.0;
    for (int64_t j = 0; j < c; j++) sum += (double)expf(xr[j] - mx);
    if (take_log) {
      double lse = (double)mx + log(sum);
      for (int64_t j = 0; j < c; j++) yr[j] = (float)((double)xr[j] - lse);
    } else {
      for (int64_t j = 0; j < c; j++) yr[j] = (float)((double)expf(xr[j] - mx) / sum);
    }
  }
}

/* softmax: gx = s * (gy - <gy, s>);  log-softmax: gx = gy - s * sum(gy),
 * with s = softmax(x) recomputed into gx first. */
static void softmax_rows_backward_f32(float *gx, const float *x, const float *gy, int64_t rows, int64_t c,
                                      bool take_log) {
  softmax_rows_f32(gx, x, rows, c, false);
  for (int64_t r = 0; r < rows; r++) {
    float *g = gx + r * c;
    const float *gyr = gy + r * c;
    double acc = 0.0;
    if (take_log) {
      for (int64_t j = 0; j < c; j++) acc += (double)gyr[j];
      for (int64_t j = 0; j < c; j++) g[j] = (float)((double)gyr[j] - (double)g[j] * acc);
    } else {
      for (int64_t j = 0; j < c; j++) acc += (double)gyr[j] * (double)g[j];
      for (int64_t j = 0; j < c; j++) g[j] = (float)((double)g[j] * ((double)gyr[j] - acc));
    }
  }
}

/* ---- modules ----------------------------------------------------------- */

enum act_kind { ACT_ELU, ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID, ACT_GELU, ACT_SOFTMAX, ACT_LOG_SOFTMAX };

typedef struct act_state {
  enum act_kind kind;
  float alpha, scale; /* ELU/SELU; LeakyReLU uses alpha as the slope */
  double arg_alpha, arg_scale; /* as given to the constructor (printed, m.alpha) */
  bool inplace;       /* ELU/SELU/ReLU: the output is the input tensor, overwritten */
  uint64_t stamp;     /* in place: the input's write stamp after the last forward */
} act_state;

/* In place (PyTorch's inplace=True): x is overwritten with the result and
 * becomes the output; backward then works from that result, as PyTorch's
 * elu_/relu_ gradients do, and refuses if anything wrote to x in place
 * since (another in-place module on the same buffer). */
static int act_forward_inplace(sl_module *m, sl_tensor *x) {
  act_state *s = m->state;
  float *y = x->data;
  size_t n = (size_t)x->numel;
  if (s->kind == ACT_ELU)
    sl_elu_forward_f32(y, y, n, s->alpha, s->scale);
  else
    sl_relu_forward_f32(y, y, n);
  if (m->output != x) {
    sl_tensor_retain(x);
    sl_tensor_release(m->output);
    m->output = x;
  }
  s->stamp = sl_tensor_bump_version(x);
  return SL_OK;
}

static int act_backward_inplace(sl_module *m, const sl_tensor *gy) {
  const act_state *s = m->state;
  const sl_tensor *y = m->output;
  char a[160], b[160];
  if (!y || sl_tensor_version(y) != s->stamp)
    return sl_fail(SL_EINVAL, "%s(inplace).backward: %s", m->vt->type,
                   !y ? "called before forward"
                      : "its output (the input it overwrote) was overwritten in place since the forward, e.g. by "
                        "another in-place module on the same tensor; use inplace = false for one of them");
  if (!sl_tensor_same_shape(y, gy))
    return sl_fail(SL_ESHAPE, "%s(inplace).backward: gradOutput shape %s does not match the output shape %s",
                   m->vt->type, sl_shape_str(gy, a, sizeof a), sl_shape_str(y, b, sizeof b));
  int st = sl_tensor_ensure(&m->grad_input, y->ndim, y->shape);
  if (st) return st;
  size_t n = (size_t)y->numel;
  if (s->kind == ACT_ELU)
    sl_velu_backward_result_f32(m->grad_input->data, y->data, gy->data, n, s->alpha * s->scale, s->scale);
  else
    sl_relu_backward_f32(m->grad_input->data, y->data, gy->data, n); /* y <= 0 exactly where x <= 0 */
  return SL_OK;
}

static int act_forward(sl_module *m, const sl_tensor *x) {
  const act_state *s = m->state;
  if (s->inplace) return act_forward_inplace(m, (sl_tensor *)x);
  int st = sl_tensor_ensure(&m->output, x->ndim, x->shape);
  if (st) return st;
  float *y = m->output->data;
  size_t n = (size_t)x->numel;
  int64_t c = x->shape[x->ndim - 1], rows = c ? x->numel / c : 0;
  switch (s->kind) {
  case ACT_ELU: sl_elu_forward_f32(y, x->data, n, s->alpha, s->scale); break;
  case ACT_RELU: sl_relu_forward_f32(y, x->data, n); break;
  case ACT_LEAKY: leaky_relu_forward_f32(y, x->data, n, s->alpha); break;
  case ACT_TANH: tanh_forward_f32(y, x->data, n); break;
  case ACT_SIGMOID: sigmoid_forward_f32(y, x->data, n); break;
  case ACT_GELU: gelu_forward_f32(y, x->data, n); break;
  case ACT_SOFTMAX: softmax_rows_f32(y, x->data, rows, c, false); break;
  case ACT_LOG_SOFTMAX: softmax_rows_f32(y, x->data, rows, c, true); break;
  }
  return SL_OK;
}

static int act_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  const act_state *s = m->state;
  if (s->inplace) return act_backward_inplace(m, gy);
  char a[160], b[160];
  if (!sl_tensor_same_shape(x, gy))
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match input shape %s",
                   m->vt->type, sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  int st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape);
  if (st) return st;
  float *gx = m->grad_input->data;
  size_t n = (size_t)x->numel;
  int64_t c = x->shape[x->ndim - 1], rows = c ? x->numel / c : 0;
  switch (s->kind) {
  case ACT_ELU: sl_elu_backward_f32(gx, x->data, gy->data, n, s->alpha, s->scale); break;
  case ACT_RELU: sl_relu_backward_f32(gx, x->data, gy->data, n); break;
  case ACT_LEAKY: leaky_relu_backward_f32(gx, x->data, gy->data, n, s->alpha); break;
  case ACT_TANH: tanh_backward_f32(gx, x->data, gy->data, n); break;
  case ACT_SIGMOID: sigmoid_backward_f32(gx, x->data, gy->data, n); break;
  case ACT_GELU: gelu_backward_f32(gx, x->data, gy->data, n); break;
  case ACT_SOFTMAX: softmax_rows_backward_f32(gx, x->data, gy->data, rows, c, false); break;
  case ACT_LOG_SOFTMAX: softmax_rows_backward_f32(gx, x->data, gy->data, rows, c, true); break;
  }
  return SL_OK;
}

static void act_destroy(sl_module *m) { sl_free(m->state); }

/* ---- descriptors ------------------------------------------------------- */

#define ACT_FLAGS SL_LAYER_ACTIVATION

static bool has_inplace(const sl_module *m);

/* inplace shows only when on (PyTorch prints it only then). */
static int push_inplace(const sl_module *m, sl_hparam *out, int k) {
  if (has_inplace(m))
    out[k++] = (sl_hparam){"inplace", SL_VALUE_BOOL, ((const act_state *)m->state)->inplace,
                           ((const act_state *)m->state)->inplace ? 0 : SL_HP_HIDDEN};
  return k;
}

/* SELU's alpha and scale are the float32 constants of its kernel; they show
 * when they are not PyTorch's. */
static int selu_hparams(const sl_module *m, sl_hparam *out) {
  const act_state *s = m->state;
  unsigned hide = s->alpha == (float)SL_SELU_ALPHA && s->scale == (float)SL_SELU_SCALE ? SL_HP_HIDDEN : 0;
  out[0] = (sl_hparam){"alpha", SL_VALUE_FLOAT, s->alpha, hide};
  out[1] = (sl_hparam){"scale", SL_VALUE_FLOAT, s->scale, hide};
  return push_inplace(m, out, 2);
}

static int elu_hparams(const sl_module *m, sl_hparam *out) {
  out[0] = (sl_hparam){"alpha", SL_VALUE_FLOAT, ((const act_state *)m->state)->arg_alpha, 0};
  return push_inplace(m, out, 1);
}

static int relu_hparams(const sl_module *m, sl_hparam *out) { return push_inplace(m, out, 0); }

static int leaky_hparams(const sl_module *m, sl_hparam *out) {
  out[0] = (sl_hparam){"negative_slope", SL_VALUE_FLOAT, ((const act_state *)m->state)->arg_alpha, 0};
  return 1;
}

/* Lower bounds: SELU -scale*alpha (PyTorch's literal lambda*alpha for the
 * standard constants), ELU -alpha, Tanh -1, Sigmoid 0; ReLU is saturated at 0. */
static sl_saturation selu_saturation(const sl_module *m, double *at) {
  const act_state *s = m->state;
  double lim = 1.7580993408473766, own = (double)s->alpha * (double)s->scale;
  if (fabs(own - lim) > 1e-6) lim = own;
  *at = -SL_SATURATION * lim;
  return SL_SAT_BELOW;
}

static sl_saturation elu_saturation(const sl_module *m, double *at) {
  double alpha = ((const act_state *)m->state)->arg_alpha;
  *at = -SL_SATURATION * (alpha > 0 ? alpha : 1);
  return SL_SAT_BELOW;
}

static sl_saturation relu_saturation(const sl_module *m, double *at) {
  (void)m;
  *at = 0;
  return SL_SAT_ATMOST;
}

static sl_saturation tanh_saturation(const sl_module *m, double *at) {
  (void)m;
  *at = -SL_SATURATION;
  return SL_SAT_BELOW;
}

static sl_saturation sigmoid_saturation(const sl_module *m, double *at) {
  (void)m;
  *at = 1 - SL_SATURATION;
  return SL_SAT_BELOW;
}

static sl_module *tanh_create(const double *args, sl_rng *rng);
static sl_module *sigmoid_create(const double *args, sl_rng *rng);
static sl_module *gelu_create(const double *args, sl_rng *rng);
static sl_module *softmax_create(const double *args, sl_rng *rng);
static sl_module *log_softmax_create(const double *args, sl_rng *rng);
static const sl_hparam no_args[] = {{NULL, SL_VALUE_FLOAT, 0, 0}};

const sl_layer sl_selu_layer = {.type = "SELU", .flags = ACT_FLAGS | SL_LAYER_SELF_NORMALIZING,
                                .forward = act_forward, .backward = act_backward, .destroy = act_destroy,
                                .hparams = selu_hparams, .saturation = selu_saturation};
const sl_layer sl_elu_layer = {.type = "ELU", .flags = ACT_FLAGS, .forward = act_forward, .backward = act_backward,
                               .destroy = act_destroy, .hparams = elu_hparams, .saturation = elu_saturation};
const sl_layer sl_relu_layer = {.type = "ReLU", .flags = ACT_FLAGS, .forward = act_forward,
                                .backward = act_backward, .destroy = act_destroy, .hparams = relu_hparams,
                                .saturation = relu_saturation};
const sl_layer sl_leaky_relu_layer = {.type = "LeakyReLU", .flags = ACT_FLAGS, .forward = act_forward,
                                      .backward = act_backward, .destroy = act_destroy, .hparams = leaky_hparams};
const sl_layer sl_tanh_layer = {.type = "Tanh", .flags = ACT_FLAGS, .forward = act_forward,
                                .backward = act_backward, .destroy = act_destroy, .args = no_args,
                                .create = tanh_create, .saturation = tanh_saturation};
const sl_layer sl_sigmoid_layer = {.type = "Sigmoid", .flags = ACT_FLAGS, .forward = act_forward,
                                   .backward = act_backward, .destroy = act_destroy, .args = no_args,
                                   .create = sigmoid_create, .saturation = sigmoid_saturation};
const sl_layer sl_gelu_layer = {.type = "GELU", .flags = ACT_FLAGS, .forward = act_forward,
                                .backward = act_backward, .destroy = act_destroy, .args = no_args,
                                .create = gelu_create};
const sl_layer sl_softmax_layer = {.type = "Softmax", .flags = SL_LAYER_OUTPUT, .forward = act_forward,
                                   .backward = act_backward, .destroy = act_destroy, .args = no_args,
                                   .create = softmax_create};
const sl_layer sl_log_softmax_layer = {.type = "LogSoftmax", .flags = SL_LAYER_OUTPUT, .forward = act_forward,
                                       .backward = act_backward, .destroy = act_destroy, .args = no_args,
                                       .create = log_softmax_create};


static sl_module *act_new(const sl_layer *vt, enum act_kind kind, double alpha, double scale) {
  sl_module *m = sl_module_new(vt);
  if (!m) return NULL;
  act_state *s = sl_malloc(sizeof *s);
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->alpha = (float)alpha;
  s->scale = (float)scale;
  s->arg_alpha = alpha;
  s->arg_scale = scale;
  m->state = s;
  return m;
}

sl_module *sl_selu_new(void) { return act_new(&sl_selu_layer, ACT_ELU, SL_SELU_ALPHA, SL_SELU_SCALE); }

sl_module *sl_selu_new_custom(double alpha, double scale) {
  if (!isfinite(alpha) || !isfinite(scale))
    return sl_fail_null(SL_EINVAL, "SELU: alpha and scale must be finite, got %g and %g", alpha, scale);
  return act_new(&sl_selu_layer, ACT_ELU, alpha, scale);
}

sl_module *sl_elu_new(double alpha) {
  if (!isfinite(alpha)) return sl_fail_null(SL_EINVAL, "ELU: alpha must be finite, got %g", alpha);
  return act_new(&sl_elu_layer, ACT_ELU, alpha, 1.0);
}

sl_module *sl_relu_new(void) { return act_new(&sl_relu_layer, ACT_RELU, 0.0, 1.0); }

sl_module *sl_leaky_relu_new(double negative_slope) {
  if (!isfinite(negative_slope))
    return sl_fail_null(SL_EINVAL, "LeakyReLU: negative_slope must be finite, got %g", negative_slope);
  return act_new(&sl_leaky_relu_layer, ACT_LEAKY, negative_slope, 1.0);
}

sl_module *sl_tanh_new(void) { return act_new(&sl_tanh_layer, ACT_TANH, 0.0, 1.0); }
sl_module *sl_sigmoid_new(void) { return act_new(&sl_sigmoid_layer, ACT_SIGMOID, 0.0, 1.0); }
sl_module *sl_gelu_new(void) { return act_new(&sl_gelu_layer, ACT_GELU, 0.0, 1.0); }
sl_module *sl_softmax_new(void) { return act_new(&sl_softmax_layer, ACT_SOFTMAX, 0.0, 1.0); }
sl_module *sl_log_softmax_new(void) { return act_new(&sl_log_softmax_layer, ACT_LOG_SOFTMAX, 0.0, 1.0); }

static sl_module *tanh_create(const double *args, sl_rng *rng) { return (void)args, (void)rng, sl_tanh_new(); }
static sl_module *sigmoid_create(const double *args, sl_rng *rng) { return (void)args, (void)rng, sl_sigmoid_new(); }
static sl_module *gelu_create(const double *args, sl_rng *rng) { return (void)args, (void)rng, sl_gelu_new(); }
static sl_module *softmax_create(const double *args, sl_rng *rng) { return (void)args, (void)rng, sl_softmax_new(); }
static sl_module *log_softmax_create(const double *args, sl_rng *rng) {
  return (void)args, (void)rng, sl_log_softmax_new();
}

static bool has_inplace(const sl_module *m) {
  return m->vt == &sl_selu_layer || m->vt == &sl_elu_layer || m->vt == &sl_relu_layer;
}

int sl_activation_set_inplace(sl_module *m, bool inplace) {
  if (!m || !has_inplace(m))
    return sl_fail(SL_EINVAL, "inplace: only SELU, ELU and ReLU can run in place, not a %s", sl_module_type(m));
  act_state *s = m->state;
  if (s->inplace != inplace) { /* the output buffer changes hands: drop it */
    sl_tensor_release(m->output);
    m->output = NULL;
  }
  s->inplace = inplace;
  return SL_OK;
}

bool sl_activation_inplace(const sl_module *m) {
  return m && has_inplace(m) && ((const act_state *)m->state)->inplace;
}

/* ---- constants of ELU-family modules (snn.h) ---- */

int sl_activation_constants(const sl_module *m, double *alpha, double *scale) {
  if (!m || (m->vt != &sl_selu_layer && m->vt != &sl_elu_layer && m->vt != &sl_leaky_relu_layer))
    return sl_fail(SL_EINVAL, "activation constants: module is a %s, not a SELU/ELU/LeakyReLU",
                   sl_module_type(m));
  const act_state *s = m->state;
  if (alpha) *alpha = s->alpha;
  if (scale) *scale = s->scale;
  return SL_OK;
}
