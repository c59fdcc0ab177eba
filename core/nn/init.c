/* Weight initializers. Each walks the module tree in order and treats each
 * parameter as its layer's descriptor says (sl_param_spec): SL_INIT_FAN
 * parameters of 2+ dims (fan_in = size of dims 1.., fan_out = dim 0 times
 * the receptive field) are drawn from the explicit generator, SL_INIT_ZERO
 * ones (biases) zeroed: same seed => same bits. */
#include <math.h>
#include <string.h>

#include "../tensor/error.h"
#include "nn.h"

enum init_kind { INIT_LECUN, INIT_HE, INIT_XAVIER };

static void init_tensor(sl_tensor *w, enum init_kind kind, sl_rng *rng) {
  int64_t fan_in = w->shape[0] ? w->numel / w->shape[0] : 0;
  int64_t receptive = w->shape[1] ? fan_in / w->shape[1] : 0;
  int64_t fan_out = w->shape[0] * receptive;
  if (kind == INIT_XAVIER) {
    float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
    sl_rng_fill_uniform_f32(rng, w->data, (size_t)w->numel, -bound, bound);
    return;
  }
  double std = sqrt((kind == INIT_HE ? 2.0 : 1.0) / (double)fan_in);
  for (int64_t i = 0; i < w->numel; i++) w->data[i] = (float)(std * sl_rng_normal(rng));
}

static void init_module(sl_module *m, enum init_kind kind, sl_rng *rng) {
  for (int i = 0; i < m->nparams; i++) {
    sl_tensor *p = m->params[i];
    sl_param_init role = sl_module_param_init(m, i);
    if (role == SL_INIT_FAN && p->ndim >= 2 && p->numel > 0)
      init_tensor(p, kind, rng);
    else if (role == SL_INIT_ZERO)
      memset(p->data, 0, (size_t)p->numel * sizeof(float));
  }
  for (int i = 0; i < m->nchildren; i++) init_module(m->children[i], kind, rng);
}

static int init_checked(sl_module *m, sl_rng *rng, enum init_kind kind, const char *name) {
  if (!m || !rng) return sl_fail(SL_EINVAL, "init.%s: %s is NULL", name, m ? "generator" : "module");
  init_module(m, kind, rng);
  return SL_OK;
}

int sl_init_lecun_normal(sl_module *m, sl_rng *rng) { return init_checked(m, rng, INIT_LECUN, "lecun_normal"); }
int sl_init_he_normal(sl_module *m, sl_rng *rng) { return init_checked(m, rng, INIT_HE, "he_normal"); }
int sl_init_xavier_uniform(sl_module *m, sl_rng *rng) {
  return init_checked(m, rng, INIT_XAVIER, "xavier_uniform");
}
