/* LayerNorm and GroupNorm (PyTorch semantics, see norm.h). Both normalize
 * rows of the input: LayerNorm's rows are the trailing normalized_shape
 * (affine index = position in the row), GroupNorm's rows are one group of
 * one sample, (C/G) channels of S elements each, contiguous in (N, C, *)
 * (affine index = the channel). Sums in double; the forward keeps each
 * row's mean and 1/std for the backward. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "norm.h"

typedef struct norm_state {
  bool group; /* GroupNorm, else LayerNorm */
  int ndim;   /* LayerNorm: normalized dims */
  int64_t shape[SL_MAX_DIMS], d; /* LayerNorm: normalized_shape, its product */
  int64_t groups, channels;      /* GroupNorm */
  double eps;
  bool affine;
  double *mean, *invstd; /* per row of the last forward, grown only */
  int64_t rows_cap;
} norm_state;

/* Rows, row length, and the affine index rule (base(r) + j / span). */
typedef struct norm_geom {
  int64_t rows, d, span, cpg; /* cpg: channels per group (GroupNorm) */
} norm_geom;

static const char *norm_name(const norm_state *s) { return s->group ? "GroupNorm" : "LayerNorm"; }

static int norm_geometry(const sl_module *m, const sl_tensor *x, const char *what, norm_geom *g) {
  const norm_state *s = m->state;
  char buf[160], want[160];
  if (!s->group) {
    bool ok = x->ndim >= s->ndim;
    for (int i = 0; ok && i < s->ndim; i++) ok = x->shape[x->ndim - s->ndim + i] == s->shape[i];
    if (!ok)
      return sl_fail(SL_ESHAPE, "LayerNorm.%s: input %s does not end with normalized_shape %s", what,
                     sl_shape_str(x, buf, sizeof buf), sl_shape_str_raw(s->ndim, s->shape, want, sizeof want));
    g->d = s->d;
    g->rows = s->d ? x->numel / s->d : 0;
    g->span = 1;
    g->cpg = 0;
    return SL_OK;
  }
  if (x->ndim < 2 || x->shape[1] != s->channels)
    return sl_fail(SL_ESHAPE, "GroupNorm.%s: expected input of shape [N x %" PRId64 " x *], got %s", what,
                   s->channels, sl_shape_str(x, buf, sizeof buf));
  int64_t sp = 1;
  for (int i = 2; i < x->ndim; i++) sp *= x->shape[i];
  g->cpg = s->channels / s->groups;
  g->span = sp;
  g->d = g->cpg * sp;
  g->rows = x->shape[0] * s->groups;
  return SL_OK;
}

/* Affine index of element j of row r. */
static inline int64_t aff(const norm_state *s, const norm_geom *g, int64_t r, int64_t j) {
  return s->group ? (r % s->groups) * g->cpg + j / g->span : j;
}

/* x, y: (rows, d); w, b: affine (NULL: none); mean, invstd: (rows) */
static void norm_forward_f32(float *y, double *mean, double *invstd, const float *x, const float *w, const float *b,
                             const norm_state *s, const norm_geom *g) {
  for (int64_t r = 0; r < g->rows; r++) {
    const float *xr = x + r * g->d;
    float *yr = y + r * g->d;
    double sum = 0.0, ss = 0.0;
    for (int64_t j = 0; j < g->d; j++) sum += (double)xr[j];
    double mu = sum / (double)g->d;
    for (int64_t j = 0; j < g->d; j++) {
      double dv = (double)xr[j] - mu;
      ss += dv * dv;
    }
    double is = 1.0 / sqrt(ss / (double)g->d + s->eps);
    mean[r] = mu;
    invstd[r] = is;
    for (int64_t j = 0; j < g->d; j++) {
      double v = ((double)xr[j] - mu) * is;
      if (w) {
        int64_t a = aff(s, g, r, j);
        v = v * (double)w[a] + (double)b[a];
      }
      yr[j] = (float)v;
    }
  }
}

/* gx = invstd (gg - mean(gg) - xhat mean(gg xhat)) with gg = gy * weight;
 * gw += sum gy xhat, gb += sum gy (per affine index). */
static void norm_backward_f32(float *gx, float *gw, float *gb, const float *x, const float *w, const float *gy,
                              const double *mean, const double *invstd, const norm_state *s, const norm_geom *g) {
  for (int64_t r = 0; r < g->rows; r++) {
    const float *xr = x + r * g->d, *gr = gy + r * g->d;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t j = 0; j < g->d; j++) {
      double xhat = ((double)xr[j] - mean[r]) * invstd[r];
      double gg = (double)gr[j] * (w ? (double)w[aff(s, g, r, j)] : 1.0);
      s1 += gg;
      s2 += gg * xhat;
    }
    if (gx) {
      float *out = gx + r * g->d;
      double m1 = s1 / (double)g->d, m2 = s2 / (double)g->d;
      for (int64_t j = 0; j < g->d; j++) {
        double xhat = ((double)xr[j] - mean[r]) * invstd[r];
        double gg = (double)gr[j] * (w ? (double)w[aff(s, g, r, j)] : 1.0);
        out[j] = (float)(invstd[r] * (gg - m1 - xhat * m2));
      }
    }
  }
  if (!gw) return;
  /* parameter gradients per affine index, in double, rows in order */
  int64_t na = s->group ? s->channels : g->d;
  for (int64_t a = 0; a < na; a++) {
    double sw = 0.0, sb = 0.0;
    for (int64_t r = 0; r < g->rows; r++) {
      int64_t j0, j1;
      if (s->group) {
        if ((r % s->groups) != a / g->cpg) continue;
        j0 = (a % g->cpg) * g->span;
        j1 = j0 + g->span;
      } else {
        j0 = a;
        j1 = a + 1;
      }
      for (int64_t j = j0; j < j1; j++) {
        double dy = (double)gy[r * g->d + j];
        sw += dy * ((double)x[r * g->d + j] - mean[r]) * invstd[r];
        sb += dy;
      }
    }
    gw[a] += (float)sw;
    gb[a] += (float)sb;
  }
}

static int norm_forward(sl_module *m, const sl_tensor *x) {
  norm_state *s = m->state;
  norm_geom g;
  int st = norm_geometry(m, x, "forward", &g);
  if (st) return st;
  if ((st = sl_tensor_ensure(&m->output, x->ndim, x->shape))) return st;
  if (g.rows > s->rows_cap) {
    double *a = sl_malloc((size_t)g.rows * sizeof *a), *b = sl_malloc((size_t)g.rows * sizeof *b);
    if (!a || !b) {
      sl_free(a);
      sl_free(b);
      return sl_last_status();
    }
    sl_free(s->mean);
    sl_free(s->invstd);
    s->mean = a;
    s->invstd = b;
    s->rows_cap = g.rows;
  }
  norm_forward_f32(m->output->data, s->mean, s->invstd, x->data, s->affine ? m->params[0]->data : NULL,
                   s->affine ? m->params[1]->data : NULL, s, &g);
  return SL_OK;
}

static int norm_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  norm_state *s = m->state;
  norm_geom g;
  char a[160], b[160];
  int st = norm_geometry(m, x, "backward", &g);
  if (st) return st;
  if (!sl_tensor_same_shape(x, gy))
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match input shape %s", norm_name(s),
                   sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  if (!m->output || !sl_tensor_same_shape(m->output, x))
    return sl_fail(SL_EINVAL, "%s.backward: input shape %s differs from the last forward's; call forward first",
                   norm_name(s), sl_shape_str(x, a, sizeof a));
  bool need_gx = !m->skip_grad_input;
  if (need_gx && (st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  norm_backward_f32(need_gx ? m->grad_input->data : NULL, s->affine ? m->grads[0]->data : NULL,
                    s->affine ? m->grads[1]->data : NULL, x->data, s->affine ? m->params[0]->data : NULL, gy->data,
                    s->mean, s->invstd, s, &g);
  return SL_OK;
}

static void norm_destroy(sl_module *m) {
  norm_state *s = m->state;
  if (!s) return;
  sl_free(s->mean);
  sl_free(s->invstd);
  sl_free(s);
}

/* LayerNorm((4, 5), eps=1e-05, elementwise_affine=true) / GroupNorm(2, 6, eps=1e-05, affine=true) */
static void norm_repr(const sl_module *m, char *buf, size_t n) {
  const norm_state *s = m->state;
  if (s->group) {
    snprintf(buf, n, "GroupNorm(%" PRId64 ", %" PRId64 ", eps=%g, affine=%s)", s->groups, s->channels, s->eps,
             s->affine ? "true" : "false");
    return;
  }
  char shp[160];
  size_t len = 0;
  shp[0] = '\0';
  for (int i = 0; i < s->ndim && len < sizeof shp; i++)
    len += (size_t)snprintf(shp + len, sizeof shp - len, i ? ", %" PRId64 : "%" PRId64, s->shape[i]);
  snprintf(buf, n, "LayerNorm((%s%s), eps=%g, elementwise_affine=%s)", shp, s->ndim == 1 ? "," : "", s->eps,
           s->affine ? "true" : "false");
}

static int norm_hparams(const sl_module *m, sl_hparam *out) {
  const norm_state *s = m->state;
  int k = 0;
  if (s->group) {
    out[k++] = (sl_hparam){"num_groups", SL_VALUE_INT, (double)s->groups, SL_HP_POSITIONAL};
    out[k++] = (sl_hparam){"num_channels", SL_VALUE_INT, (double)s->channels, SL_HP_POSITIONAL};
  }
  out[k++] = (sl_hparam){"eps", SL_VALUE_FLOAT, s->eps, 0};
  out[k++] = (sl_hparam){s->group ? "affine" : "elementwise_affine", SL_VALUE_BOOL, s->affine ? 1.0 : 0.0, 0};
  return k;
}

/* weight starts at ones and stays there under nn.init (PyTorch's rule for norms) */
static const sl_param_spec norm_params[] = {{"weight", SL_INIT_KEEP}, {"bias", SL_INIT_KEEP}, {NULL, SL_INIT_KEEP}};

static const sl_hparam groupnorm_args[] = {{"num_groups", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                           {"num_channels", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                           {"eps", SL_VALUE_FLOAT, 1e-5, 0},
                                           {"affine", SL_VALUE_BOOL, 1, 0},
                                           {NULL, SL_VALUE_FLOAT, 0, 0}};

static sl_module *groupnorm_create(const double *args, sl_rng *rng) {
  (void)rng;
  if (!(fabs(args[0]) < 9e15 && fabs(args[1]) < 9e15))
    return sl_fail_null(SL_EINVAL, "GroupNorm: num_groups and num_channels out of range");
  return sl_groupnorm_new((int64_t)args[0], (int64_t)args[1], args[2], args[3] != 0);
}

const sl_layer sl_layernorm_layer = {.type = "LayerNorm", .flags = SL_LAYER_NORMALIZATION | SL_LAYER_FORWARD_STATE, .forward = norm_forward,
                                     .backward = norm_backward, .destroy = norm_destroy, .params = norm_params,
                                     .hparams = norm_hparams, .repr = norm_repr};
const sl_layer sl_groupnorm_layer = {.type = "GroupNorm", .flags = SL_LAYER_NORMALIZATION | SL_LAYER_FORWARD_STATE, .forward = norm_forward,
                                     .backward = norm_backward, .destroy = norm_destroy, .params = norm_params,
                                     .args = groupnorm_args, .create = groupnorm_create, .hparams = norm_hparams,
                                     .repr = norm_repr};

static sl_module *norm_new(const sl_layer *l, norm_state init, int pdim, const int64_t *pshape) {
  sl_module *m = sl_module_new(l);
  if (!m) return NULL;
  norm_state *s = sl_malloc(sizeof *s);
  if (!s) goto fail;
  *s = init;
  m->state = s;
  if (s->affine) {
    if (sl_module_add_param(m, "weight", pdim, pshape) || sl_module_add_param(m, "bias", pdim, pshape)) goto fail;
    for (int64_t i = 0; i < m->params[0]->numel; i++) m->params[0]->data[i] = 1.0f;
  }
  return m;
fail:
  sl_module_release(m);
  return NULL;
}

sl_module *sl_layernorm_new(int ndim, const int64_t *shape, double eps, bool affine) {
  if (ndim < 1 || ndim >= SL_MAX_DIMS)
    return sl_fail_null(SL_EINVAL, "LayerNorm: normalized_shape must have 1..%d dims, got %d", SL_MAX_DIMS - 1, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 1)
      return sl_fail_null(SL_EINVAL, "LayerNorm: normalized_shape[%d] must be >= 1, got %" PRId64, i + 1, shape[i]);
  if (!(eps > 0) || !isfinite(eps)) return sl_fail_null(SL_EINVAL, "LayerNorm: eps must be > 0, got %g", eps);
  int64_t d;
  if (sl_shape_check(ndim, shape, &d)) return NULL;
  norm_state init = {.group = false, .ndim = ndim, .d = d, .eps = eps, .affine = affine};
  memcpy(init.shape, shape, (size_t)ndim * sizeof *shape);
  return norm_new(&sl_layernorm_layer, init, ndim, shape);
}

sl_module *sl_groupnorm_new(int64_t num_groups, int64_t num_channels, double eps, bool affine) {
  if (num_groups < 1 || num_channels < 1)
    return sl_fail_null(SL_EINVAL, "GroupNorm: num_groups and num_channels must be >= 1, got %" PRId64 " and %" PRId64,
                        num_groups, num_channels);
  if (num_channels % num_groups)
    return sl_fail_null(SL_EINVAL, "GroupNorm: num_groups %" PRId64 " must divide num_channels %" PRId64, num_groups,
                        num_channels);
  if (!(eps > 0) || !isfinite(eps)) return sl_fail_null(SL_EINVAL, "GroupNorm: eps must be > 0, got %g", eps);
  norm_state init = {.group = true, .groups = num_groups, .channels = num_channels, .eps = eps, .affine = affine};
  return norm_new(&sl_groupnorm_layer, init, 1, &num_channels);
}
