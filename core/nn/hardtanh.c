/* Hardtanh (torch.nn.Hardtanh): y = clamp(x, min_val, max_val); the gradient
 * passes where min_val < x < max_val and is 0 elsewhere, at the bounds
 * included (PyTorch's hardtanh_backward). The whole layer is this file and
 * its line in the registry (core/nn/registry.c): printing, m.min_val,
 * checkpoints, the statistics sheets, snn.check and the Lua constructor
 * nn.Hardtanh(min_val, max_val) all come from the descriptor below. */
#include <math.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "nn.h"

typedef struct hardtanh_state {
  double min_val, max_val;
} hardtanh_state;

/* x, y: n elements. Written as two selects so NaN propagates like torch. */
static void hardtanh_forward_f32(float *y, const float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

static void hardtanh_backward_f32(float *gx, const float *x, const float *gy, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) gx[i] = x[i] > lo && x[i] < hi ? gy[i] : 0.0f;
}

static int hardtanh_forward(sl_module *m, const sl_tensor *x) {
  const hardtanh_state *s = m->state;
  int st = sl_tensor_ensure(&m->output, x->ndim, x->shape);
  if (st) return st;
  hardtanh_forward_f32(m->output->data, x->data, (size_t)x->numel, (float)s->min_val, (float)s->max_val);
  return SL_OK;
}

static int hardtanh_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  const hardtanh_state *s = m->state;
  char a[160], b[160];
  if (!sl_tensor_same_shape(x, gy))
    return sl_fail(SL_ESHAPE, "Hardtanh.backward: gradOutput shape %s does not match input shape %s",
                   sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  int st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape);
  if (st) return st;
  hardtanh_backward_f32(m->grad_input->data, x->data, gy->data, (size_t)x->numel, (float)s->min_val,
                        (float)s->max_val);
  return SL_OK;
}

static void hardtanh_destroy(sl_module *m) { sl_free(m->state); }

static int hardtanh_hparams(const sl_module *m, sl_hparam *out) {
  const hardtanh_state *s = m->state;
  out[0] = (sl_hparam){"min_val", SL_VALUE_FLOAT, s->min_val, 0};
  out[1] = (sl_hparam){"max_val", SL_VALUE_FLOAT, s->max_val, 0};
  return 2;
}

/* Units clamped at min_val pass no gradient: saturated there (as ReLU at 0). */
static sl_saturation hardtanh_saturation(const sl_module *m, double *at) {
  *at = ((const hardtanh_state *)m->state)->min_val;
  return SL_SAT_ATMOST;
}

/* args: min_val, max_val (PyTorch's defaults -1, 1). */
static sl_module *hardtanh_create(const double *args, sl_rng *rng);

static const sl_hparam hardtanh_args[] = {
    {"min_val", SL_VALUE_FLOAT, -1.0, 0}, {"max_val", SL_VALUE_FLOAT, 1.0, 0}, {NULL, SL_VALUE_FLOAT, 0, 0}};

const sl_layer sl_hardtanh_layer = {.type = "Hardtanh", .flags = SL_LAYER_ACTIVATION,
                                    .forward = hardtanh_forward, .backward = hardtanh_backward,
                                    .destroy = hardtanh_destroy, .args = hardtanh_args,
                                    .create = hardtanh_create, .hparams = hardtanh_hparams,
                                    .saturation = hardtanh_saturation};

static sl_module *hardtanh_create(const double *args, sl_rng *rng) {
  (void)rng;
  double lo = args[0], hi = args[1];
  if (!isfinite(lo) || !isfinite(hi))
    return sl_fail_null(SL_EINVAL, "Hardtanh: min_val and max_val must be finite, got %g and %g", lo, hi);
  if (!(hi > lo)) /* PyTorch asserts max_val > min_val */
    return sl_fail_null(SL_EINVAL, "Hardtanh: max_val (%g) must be greater than min_val (%g)", hi, lo);
  sl_module *m = sl_module_new(&sl_hardtanh_layer);
  hardtanh_state *s = m ? sl_malloc(sizeof *s) : NULL;
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  s->min_val = lo;
  s->max_val = hi;
  m->state = s;
  return m;
}
