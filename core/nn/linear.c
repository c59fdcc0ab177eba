/* Linear layer y = x W^T + b with PyTorch's layout: weight (out, in), bias
 * (out). Forward is one sgemm over the bias-filled output; backward is two
 * sgemms, the weight gradient accumulated with beta = 1. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "nn.h"

typedef struct linear_state {
  int64_t in, out;
  bool bias;
} linear_state;

/* Inputs are (N, in) or any (*, in): leading dims flatten into N. */
static int check_input(const sl_module *m, const sl_tensor *x, const char *what, int64_t *n) {
  const linear_state *s = m->state;
  char buf[160];
  if (x->shape[x->ndim - 1] != s->in)
    return sl_fail(SL_ESHAPE, "Linear.%s: input shape %s does not match in_features %" PRId64, what,
                   sl_shape_str(x, buf, sizeof buf), s->in);
  *n = s->in ? x->numel / s->in : 0;
  return SL_OK;
}

/* x: (N, in), w: (out, in), b: (out) or NULL, y: (N, out) */
static void linear_forward_f32(float *y, const float *x, const float *w, const float *b, int64_t n,
                               int64_t in, int64_t out) {
  if (b) sl_vrows_fill_f32(y, b, n, out);
  sl_sgemm_f32(false, true, n, out, in, 1.0f, x, w, b ? 1.0f : 0.0f, y);
}

/* gx: (N, in) written; gw: (out, in), gb: (out) accumulated; gy: (N, out) */
static void linear_backward_f32(float *gx, float *gw, float *gb, const float *x, const float *w,
                                const float *gy, int64_t n, int64_t in, int64_t out) {
  if (gx) sl_sgemm_f32(false, false, n, in, out, 1.0f, gy, w, 0.0f, gx); /* NULL: not needed */
  sl_sgemm_f32(true, false, out, in, n, 1.0f, gy, x, 1.0f, gw);
  if (gb) sl_vcolsum_acc_f32(gb, gy, n, out); /* per column: double sum over rows, in row order */
}

static int linear_forward(sl_module *m, const sl_tensor *x) {
  const linear_state *s = m->state;
  int64_t n, shape[SL_MAX_DIMS];
  int st = check_input(m, x, "forward", &n);
  if (st) return st;
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = s->out;
  if ((st = sl_tensor_ensure(&m->output, x->ndim, shape))) return st;
  linear_forward_f32(m->output->data, x->data, m->params[0]->data, s->bias ? m->params[1]->data : NULL,
                     n, s->in, s->out);
  return SL_OK;
}

static int linear_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  const linear_state *s = m->state;
  int64_t n;
  char a[160], b[160];
  int st = check_input(m, x, "backward", &n);
  if (st) return st;
  if (gy->shape[gy->ndim - 1] != s->out || gy->numel != n * s->out)
    return sl_fail(SL_ESHAPE, "Linear.backward: gradOutput shape %s does not match input %s and out_features %" PRId64,
                   sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b), s->out);
  if (!m->skip_grad_input && (st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  linear_backward_f32(m->skip_grad_input ? NULL : m->grad_input->data, m->grads[0]->data, s->bias ? m->grads[1]->data : NULL, x->data,
                      m->params[0]->data, gy->data, n, s->in, s->out);
  return SL_OK;
}

static void linear_destroy(sl_module *m) { sl_free(m->state); }

static int linear_hparams(const sl_module *m, sl_hparam *out) {
  const linear_state *s = m->state;
  out[0] = (sl_hparam){"in_features", SL_VALUE_INT, (double)s->in, 0};
  out[1] = (sl_hparam){"out_features", SL_VALUE_INT, (double)s->out, 0};
  out[2] = (sl_hparam){"bias", SL_VALUE_BOOL, s->bias, 0};
  return 3;
}

static const sl_param_spec linear_params[] = {{"weight", SL_INIT_FAN}, {"bias", SL_INIT_ZERO}, {NULL, SL_INIT_KEEP}};

const sl_layer sl_linear_layer = {.type = "Linear", .forward = linear_forward, .backward = linear_backward,
                                  .destroy = linear_destroy, .params = linear_params, .hparams = linear_hparams};

sl_module *sl_linear_new(int64_t in_features, int64_t out_features, bool bias, sl_rng *rng) {
  if (in_features <= 0 || out_features <= 0)
    return sl_fail_null(SL_EINVAL, "Linear: in_features and out_features must be positive, got %" PRId64
                        " and %" PRId64, in_features, out_features);
  sl_module *m = sl_module_new(&sl_linear_layer);
  if (!m) return NULL;
  linear_state *s = sl_malloc(sizeof *s);
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  s->in = in_features;
  s->out = out_features;
  s->bias = bias;
  m->state = s;
  int64_t wshape[2] = {out_features, in_features};
  if (sl_module_add_param(m, "weight", 2, wshape) || (bias && sl_module_add_param(m, "bias", 1, &out_features))) {
    sl_module_release(m);
    return NULL;
  }
  if (rng) { /* PyTorch's reset_parameters: kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(in)) */
    float bound = (float)(1.0 / sqrt((double)in_features));
    for (int i = 0; i < m->nparams; i++)
      sl_rng_fill_uniform_f32(rng, m->params[i]->data, (size_t)m->params[i]->numel, -bound, bound);
  }
  return m;
}
