/* The layer registry: every C layer type, once, and the generic functions
 * that read a module's descriptor (core/nn/nn.h). This file holds the only
 * comparison of layer type names in selut (sl_layer_find). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/error.h"
#include "nn.h"

extern const sl_layer sl_linear_layer, sl_selu_layer, sl_elu_layer, sl_relu_layer, sl_leaky_relu_layer,
    sl_tanh_layer, sl_sigmoid_layer, sl_gelu_layer, sl_softmax_layer, sl_log_softmax_layer, sl_dropout_layer,
    sl_alpha_dropout_layer, sl_batchnorm1d_layer, sl_hardtanh_layer, sl_sequential_layer, sl_conv1d_layer,
    sl_conv2d_layer, sl_flatten_layer, sl_pool_layers[3], sl_batchnorm2d_layer, sl_layernorm_layer,
    sl_groupnorm_layer, sl_embedding_layer, sl_rnn_layers[4], sl_mha_layer;

/* Adding a layer: its file in core/nn/ defines `const sl_layer sl_<name>_layer`;
 * name it in the extern line above and in this table. */
static const sl_layer *const registry[] = {
    &sl_linear_layer, &sl_selu_layer, &sl_elu_layer, &sl_relu_layer, &sl_leaky_relu_layer, &sl_tanh_layer,
    &sl_sigmoid_layer, &sl_gelu_layer, &sl_softmax_layer, &sl_log_softmax_layer, &sl_dropout_layer,
    &sl_alpha_dropout_layer, &sl_batchnorm1d_layer, &sl_hardtanh_layer, &sl_sequential_layer, &sl_conv1d_layer,
    &sl_conv2d_layer, &sl_flatten_layer, &sl_pool_layers[0], &sl_pool_layers[1], &sl_pool_layers[2], &sl_batchnorm2d_layer,
    &sl_layernorm_layer, &sl_groupnorm_layer, &sl_embedding_layer, &sl_rnn_layers[0], &sl_rnn_layers[1],
    &sl_rnn_layers[2], &sl_rnn_layers[3], &sl_mha_layer, NULL};

const sl_layer *const *sl_layers(void) { return registry; }

const sl_layer *sl_layer_find(const char *type) {
  for (int i = 0; type && registry[i]; i++)
    if (strcmp(registry[i]->type, type) == 0) return registry[i];
  return NULL;
}

sl_module *sl_layer_create(const sl_layer *l, const double *args, sl_rng *rng) {
  if (!l || !l->create)
    return sl_fail_null(SL_EINVAL, "layer %s: no generic constructor", l ? l->type : "(NULL)");
  return l->create(args, rng);
}

int sl_module_hparams(const sl_module *m, sl_hparam *out) {
  return m && m->vt->hparams ? m->vt->hparams(m, out) : 0;
}

int sl_module_buffers(const sl_module *m, sl_buffer *out) {
  return m && m->vt->buffers ? m->vt->buffers(m, out) : 0;
}

sl_param_init sl_module_param_init(const sl_module *m, int i) {
  const sl_param_spec *p = m->vt->params;
  for (; p && p->name; p++)
    if (strcmp(p->name, m->param_names[i]) == 0) return p->init;
  return SL_INIT_KEEP;
}

sl_saturation sl_module_saturation(const sl_module *m, double *at) {
  *at = 0;
  return m && m->vt->saturation ? m->vt->saturation(m, at) : SL_SAT_NONE;
}

double sl_saturated_fraction(sl_saturation rule, double at, const float *y, int64_t n) {
  if (rule == SL_SAT_NONE || n == 0) return 0;
  int64_t k = 0;
  float t = (float)at;
  if (rule == SL_SAT_BELOW)
    for (int64_t i = 0; i < n; i++) k += y[i] < t;
  else
    for (int64_t i = 0; i < n; i++) k += y[i] <= t;
  return (double)k / (double)n;
}

int sl_module_set_reducer(sl_module *m, sl_reduce_fn reduce, void *ctx) {
  if (!m || !m->vt->set_reducer)
    return sl_fail(SL_EINVAL, "synchronized statistics: a %s has no batch statistics", sl_module_type(m));
  return m->vt->set_reducer(m, reduce, ctx);
}

/* A number as Lua's tostring prints it: "%.14g", with ".0" when it would
 * read as an integer ("1.0", "0.5", "1e-05", "inf"). */
static void number_str(char *buf, size_t n, double v, sl_value_kind kind) {
  if (kind == SL_VALUE_BOOL) {
    snprintf(buf, n, "%s", v != 0 ? "true" : "false");
  } else if (kind == SL_VALUE_INT) {
    snprintf(buf, n, "%lld", (long long)v);
  } else {
    snprintf(buf, n, "%.14g", v);
    if (buf[strspn(buf, "-0123456789")] == '\0' && strlen(buf) + 3 <= n) strcat(buf, ".0");
  }
}

const char *sl_module_repr(const sl_module *m, char *buf, size_t n) {
  if (!n) return buf;
  if (m && m->vt->repr) {
    buf[0] = '\0';
    m->vt->repr(m, buf, n);
    return buf;
  }
  sl_hparam hp[SL_MAX_HPARAMS];
  int k = sl_module_hparams(m, hp);
  size_t len = (size_t)snprintf(buf, n, "%s(", sl_module_type(m));
  int shown = 0;
  for (int i = 0; i < k && len < n; i++) {
    if (hp[i].flags & SL_HP_HIDDEN) continue;
    char v[64];
    number_str(v, sizeof v, hp[i].value, hp[i].kind);
    len += (size_t)snprintf(buf + len, n - len, "%s%s%s%s", shown++ ? ", " : "",
                            hp[i].flags & SL_HP_POSITIONAL ? "" : hp[i].name,
                            hp[i].flags & SL_HP_POSITIONAL ? "" : "=", v);
  }
  if (len < n) snprintf(buf + len, n - len, ")");
  return buf;
}
