/* Conv1d and Conv2d (PyTorch semantics, see conv.h) as im2col + sgemm.
 * A chunk of nb samples of one group unfolds into col (K, nb*L), K = in/groups
 * * kh * kw and L = oh * ow, so one product (out/groups, K) @ (K, nb*L) does
 * the whole chunk: small images give products wide enough for OpenBLAS
 * instead of one narrow product per sample (which would also change the
 * products' bits: OpenBLAS's results depend on how a product is cut). The
 * data movement around the products (im2col, col2im, layout copies, bias)
 * is conv_unfold.c's. Conv1d is Conv2d with a 1 x k kernel over a height
 * of 1. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "conv.h"
#include "conv_unfold.h"

typedef struct conv_state {
  int nd; /* 1 or 2: the layer's spatial dims (input rank, messages) */
  int64_t cin, cout, groups;
  int64_t k[2], stride[2], pad[2], pad_end[2], dil[2]; /* (h, w); Conv1d: h = 1 */
  bool bias;
  float *col, *tmp, *keep; /* im2col / gathered-output / col2im mask scratch, grown only */
  int64_t col_cap, tmp_cap, keep_cap;
  int64_t col_max; /* SL_CONV_COL_MAX unless set */
} conv_state;

typedef struct conv_geom {
  int64_t n, h, w, oh, ow; /* n = 1 for an unbatched input */
  bool batched;
} conv_geom;

sl_conv_opts sl_conv_defaults(void) {
  return (sl_conv_opts){.stride = {1, 1}, .padding = {0, 0}, .padding_end = {-1, -1}, .dilation = {1, 1},
                        .groups = 1, .bias = true};
}

static const char *conv_name(const conv_state *s) { return s->nd == 1 ? "Conv1d" : "Conv2d"; }

/* "5 x 7" for Conv2d, "7" for Conv1d. */
static const char *pair_str(const conv_state *s, const int64_t v[2], char *buf, size_t n) {
  if (s->nd == 1)
    snprintf(buf, n, "%" PRId64, v[1]);
  else
    snprintf(buf, n, "%" PRId64 " x %" PRId64, v[0], v[1]);
  return buf;
}

static int conv_geometry(const sl_module *m, const sl_tensor *x, const char *what, conv_geom *g) {
  const conv_state *s = m->state;
  char buf[160], a[48], b[48], c[48], d[48];
  const char *name = conv_name(s);
  if (x->ndim != s->nd + 2 && x->ndim != s->nd + 1)
    return sl_fail(SL_ESHAPE, "%s.%s: expected input of shape [N x %" PRId64 " x %s] or [%" PRId64 " x %s], got %s",
                   name, what, s->cin, s->nd == 1 ? "L" : "H x W", s->cin, s->nd == 1 ? "L" : "H x W",
                   sl_shape_str(x, buf, sizeof buf));
  g->batched = x->ndim == s->nd + 2;
  int cd = g->batched ? 1 : 0;
  if (x->shape[cd] != s->cin)
    return sl_fail(SL_ESHAPE, "%s.%s: input %s has %" PRId64 " channels, expected in_channels %" PRId64, name, what,
                   sl_shape_str(x, buf, sizeof buf), x->shape[cd], s->cin);
  g->n = g->batched ? x->shape[0] : 1;
  g->h = s->nd == 2 ? x->shape[cd + 1] : 1;
  g->w = x->shape[x->ndim - 1];
  int64_t padded[2] = {g->h + s->pad[0] + s->pad_end[0], g->w + s->pad[1] + s->pad_end[1]};
  int64_t eff[2] = {s->dil[0] * (s->k[0] - 1) + 1, s->dil[1] * (s->k[1] - 1) + 1};
  if (padded[0] < eff[0] || padded[1] < eff[1])
    return sl_fail(SL_ESHAPE, "%s.%s: input %s padded to %s is smaller than the dilated kernel %s "
                   "(kernel_size %s, dilation %s): the output size would be <= 0", name, what,
                   sl_shape_str(x, buf, sizeof buf), pair_str(s, padded, a, sizeof a), pair_str(s, eff, b, sizeof b),
                   pair_str(s, s->k, c, sizeof c), pair_str(s, s->dil, d, sizeof d));
  g->oh = (padded[0] - eff[0]) / s->stride[0] + 1;
  g->ow = (padded[1] - eff[1]) / s->stride[1] + 1;
  return SL_OK;
}

/* Grows a scratch array to hold n floats (never shrinks). */
static int scratch(float **p, int64_t *cap, int64_t n) {
  if (n <= *cap) return SL_OK;
  float *q = sl_malloc((size_t)n * sizeof(float));
  if (!q) return sl_last_status();
  sl_free(*p);
  *p = q;
  *cap = n;
  return SL_OK;
}

/* Samples per chunk: the col buffer stays under col_max floats. */
static int64_t chunk_samples(const conv_state *s, const conv_geom *g) {
  int64_t kl = (s->cin / s->groups) * s->k[0] * s->k[1] * g->oh * g->ow;
  int64_t nb = kl > 0 ? s->col_max / kl : g->n;
  if (nb < 1) nb = 1;
  return nb < g->n ? nb : g->n;
}

/* One group's geometry for conv_unfold.c. */
static sl_unfold unfold_of(const conv_state *s, const conv_geom *g) {
  return (sl_unfold){.cin = s->cin, .cg = s->cin / s->groups, .k = {s->k[0], s->k[1]},
                     .stride = {s->stride[0], s->stride[1]}, .pad = {s->pad[0], s->pad[1]},
                     .dil = {s->dil[0], s->dil[1]}, .h = g->h, .w = g->w, .oh = g->oh, .ow = g->ow};
}

static int conv_scratch(conv_state *s, const conv_geom *g, int64_t nb) {
  int64_t l = g->oh * g->ow, k = (s->cin / s->groups) * s->k[0] * s->k[1];
  int st = scratch(&s->col, &s->col_cap, k * nb * l);
  if (!st && nb > 1) st = scratch(&s->tmp, &s->tmp_cap, (s->cout / s->groups) * nb * l);
  sl_unfold u = unfold_of(s, g);
  int64_t keep = sl_unfold_keep_floats(&u);
  if (!st && keep) st = scratch(&s->keep, &s->keep_cap, keep);
  return st;
}

/* x: (N, Cin, H, W), w: (Cout, Cin/G, kh, kw), b: (Cout) or NULL, y: (N, Cout, oh, ow) */
static void conv_forward_f32(float *y, const float *x, const float *w, const float *b, conv_state *s,
                             const conv_geom *g) {
  const int64_t l = g->oh * g->ow, og = s->cout / s->groups, k = (s->cin / s->groups) * s->k[0] * s->k[1];
  const int64_t nb_max = chunk_samples(s, g);
  const sl_unfold u = unfold_of(s, g);
  for (int64_t s0 = 0; s0 < g->n; s0 += nb_max) {
    int64_t nb = g->n - s0 < nb_max ? g->n - s0 : nb_max, width = nb * l;
    for (int64_t gi = 0; gi < s->groups; gi++) {
      sl_im2col(s->col, x + s0 * s->cin * g->h * g->w, &u, gi * u.cg, nb);
      /* one sample: the group's rows of y are contiguous, the product lands there */
      float *out = nb == 1 ? y + (s0 * s->cout + gi * og) * l : s->tmp;
      if (b) sl_conv_bias_fill(out, b + gi * og, og, width);
      sl_sgemm_f32(false, false, og, width, k, 1.0f, w + gi * og * k, s->col, b ? 1.0f : 0.0f, out);
      if (nb > 1) sl_conv_scatter(y + s0 * s->cout * l, out, s->cout, gi * og, og, nb, l);
    }
  }
}

/* gx: (N, Cin, H, W) written (NULL: not needed); gw, gb accumulated; gy: (N, Cout, oh, ow) */
static void conv_backward_f32(float *gx, float *gw, float *gb, const float *x, const float *w, const float *gy,
                              conv_state *s, const conv_geom *g) {
  const int64_t l = g->oh * g->ow, og = s->cout / s->groups, cg = s->cin / s->groups, k = cg * s->k[0] * s->k[1];
  const int64_t nb_max = chunk_samples(s, g);
  const sl_unfold u = unfold_of(s, g);
  for (int64_t s0 = 0; s0 < g->n; s0 += nb_max) {
    int64_t nb = g->n - s0 < nb_max ? g->n - s0 : nb_max, width = nb * l;
    for (int64_t gi = 0; gi < s->groups; gi++) {
      const float *gyt = gy + (s0 * s->cout + gi * og) * l;
      if (nb > 1) { /* gather the group's rows of nb samples: (og, nb*L) */
        sl_conv_gather(s->tmp, gy + s0 * s->cout * l, s->cout, gi * og, og, nb, l);
        gyt = s->tmp;
      }
      sl_im2col(s->col, x + s0 * s->cin * g->h * g->w, &u, gi * cg, nb);
      sl_sgemm_f32(false, true, og, k, width, 1.0f, gyt, s->col, 1.0f, gw + gi * og * k);
      if (gx) { /* col is free again: it takes dL/dcol = W_g^T gy_g; col2im writes each plane of gx once */
        sl_sgemm_f32(true, false, k, width, og, 1.0f, w + gi * og * k, gyt, 0.0f, s->col);
        sl_col2im(gx + s0 * s->cin * g->h * g->w, s->col, &u, gi * cg, nb, s->keep);
      }
    }
  }
  if (gb) sl_conv_bias_grad(gb, gy, s->cout, g->n, l);
}

static int conv_forward(sl_module *m, const sl_tensor *x) {
  conv_state *s = m->state;
  conv_geom g;
  int st = conv_geometry(m, x, "forward", &g);
  if (st) return st;
  int64_t shape[4];
  int nd = 0;
  if (g.batched) shape[nd++] = g.n;
  shape[nd++] = s->cout;
  if (s->nd == 2) shape[nd++] = g.oh;
  shape[nd++] = g.ow;
  if ((st = sl_tensor_ensure(&m->output, nd, shape))) return st;
  if ((st = conv_scratch(s, &g, chunk_samples(s, &g)))) return st;
  if (g.n == 0 || g.oh * g.ow == 0) return SL_OK;
  conv_forward_f32(m->output->data, x->data, m->params[0]->data, s->bias ? m->params[1]->data : NULL, s, &g);
  return SL_OK;
}

static int conv_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  conv_state *s = m->state;
  conv_geom g;
  char a[160], b[160];
  int st = conv_geometry(m, x, "backward", &g);
  if (st) return st;
  int64_t want = g.n * s->cout * g.oh * g.ow;
  if (gy->ndim != x->ndim || gy->numel != want || gy->shape[g.batched ? 1 : 0] != s->cout ||
      gy->shape[gy->ndim - 1] != g.ow)
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match the output of input %s", conv_name(s),
                   sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  bool need_gx = !m->skip_grad_input;
  if (need_gx && (st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  if ((st = conv_scratch(s, &g, chunk_samples(s, &g)))) return st;
  if (g.n == 0) return SL_OK;
  conv_backward_f32(need_gx ? m->grad_input->data : NULL, m->grads[0]->data, s->bias ? m->grads[1]->data : NULL,
                    x->data, m->params[0]->data, gy->data, s, &g);
  return SL_OK;
}

static void conv_destroy(sl_module *m) {
  conv_state *s = m->state;
  if (!s) return;
  sl_free(s->col);
  sl_free(s->tmp);
  sl_free(s->keep);
  sl_free(s);
}

/* Appends to buf (PyTorch's repr pieces). */
static void appendf(char *buf, size_t n, const char *fmt, int64_t a, int64_t b, int nd) {
  size_t len = strlen(buf);
  if (len + 1 >= n) return;
  if (nd == 1)
    snprintf(buf + len, n - len, fmt, a);
  else
    snprintf(buf + len, n - len, fmt, a, b);
}

/* Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2):
 * PyTorch's repr (defaults left out), Lua's booleans. */
static void conv_repr(const sl_module *m, char *buf, size_t n) {
  const conv_state *s = m->state;
  int d = s->nd == 1 ? 1 : 0, nd = s->nd; /* Conv1d: its one dim is [1] */
  const char *two = nd == 1 ? "(%" PRId64 ",)" : "(%" PRId64 ", %" PRId64 ")";
  char fmt[64];
  snprintf(buf, n, "%s(%" PRId64 ", %" PRId64 ", ", conv_name(s), s->cin, s->cout);
  snprintf(fmt, sizeof fmt, "kernel_size=%s", two);
  appendf(buf, n, fmt, s->k[d], s->k[1], nd);
  snprintf(fmt, sizeof fmt, ", stride=%s", two);
  appendf(buf, n, fmt, s->stride[d], s->stride[1], nd);
  if (s->pad[d] != s->pad_end[d] || s->pad[1] != s->pad_end[1]) {
    appendf(buf, n, ", padding=same", 0, 0, 1);
  } else if (s->pad[d] || s->pad[1]) {
    snprintf(fmt, sizeof fmt, ", padding=%s", two);
    appendf(buf, n, fmt, s->pad[d], s->pad[1], nd);
  }
  if (s->dil[d] != 1 || s->dil[1] != 1) {
    snprintf(fmt, sizeof fmt, ", dilation=%s", two);
    appendf(buf, n, fmt, s->dil[d], s->dil[1], nd);
  }
  if (s->groups != 1) appendf(buf, n, ", groups=%" PRId64, s->groups, 0, 1);
  appendf(buf, n, s->bias ? ")" : ", bias=false)", 0, 0, 1);
}

/* m.in_channels, m.out_channels, m.groups (the sizes are lists: printed
 * only; m.bias is the parameter, nil without one, as PyTorch's None). */
static int conv_hparams(const sl_module *m, sl_hparam *out) {
  const conv_state *s = m->state;
  out[0] = (sl_hparam){"in_channels", SL_VALUE_INT, (double)s->cin, SL_HP_POSITIONAL};
  out[1] = (sl_hparam){"out_channels", SL_VALUE_INT, (double)s->cout, SL_HP_POSITIONAL};
  out[2] = (sl_hparam){"groups", SL_VALUE_INT, (double)s->groups, 0};
  return 3;
}

/* nn.init draws the weight from its fan-in and zeroes the bias. */
static const sl_param_spec conv_params[] = {{"weight", SL_INIT_FAN}, {"bias", SL_INIT_ZERO}, {NULL, SL_INIT_KEEP}};

const sl_layer sl_conv1d_layer = {.type = "Conv1d", .forward = conv_forward, .backward = conv_backward,
                                  .destroy = conv_destroy, .params = conv_params, .hparams = conv_hparams,
                                  .repr = conv_repr};
const sl_layer sl_conv2d_layer = {.type = "Conv2d", .forward = conv_forward, .backward = conv_backward,
                                  .destroy = conv_destroy, .params = conv_params, .hparams = conv_hparams,
                                  .repr = conv_repr};

/* kernel, stride, padding, dilation as (h, w); Conv1d passes h = 1. */
static sl_module *conv_new(int nd, int64_t in, int64_t out, const int64_t k[2], const int64_t stride[2],
                           const int64_t pad[2], const int64_t pad_end_in[2], const int64_t dil[2], int64_t groups,
                           bool bias, sl_rng *rng) {
  const char *name = nd == 1 ? "Conv1d" : "Conv2d";
  if (in < 1 || out < 1)
    return sl_fail_null(SL_EINVAL, "%s: in_channels and out_channels must be >= 1, got %" PRId64 " and %" PRId64,
                        name, in, out);
  if (groups < 1)
    return sl_fail_null(SL_EINVAL, "%s: groups must be >= 1, got %" PRId64, name, groups);
  if (in % groups || out % groups)
    return sl_fail_null(SL_EINVAL, "%s: groups %" PRId64 " must divide in_channels %" PRId64
                        " and out_channels %" PRId64, name, groups, in, out);
  int64_t pad_end[2] = {pad_end_in[0] < 0 ? pad[0] : pad_end_in[0], pad_end_in[1] < 0 ? pad[1] : pad_end_in[1]};
  for (int d = 2 - nd; d < 2; d++) {
    const char *dim = nd == 1 ? "" : d == 0 ? " (height)" : " (width)";
    if (k[d] < 1) return sl_fail_null(SL_EINVAL, "%s: kernel_size%s must be >= 1, got %" PRId64, name, dim, k[d]);
    if (stride[d] < 1) return sl_fail_null(SL_EINVAL, "%s: stride%s must be >= 1, got %" PRId64, name, dim, stride[d]);
    if (dil[d] < 1) return sl_fail_null(SL_EINVAL, "%s: dilation%s must be >= 1, got %" PRId64, name, dim, dil[d]);
    if (pad[d] < 0)
      return sl_fail_null(SL_EINVAL, "%s: padding%s must be >= 0, got %" PRId64, name, dim, pad[d]);
    if (k[d] > ((int64_t)1 << 30) || dil[d] > ((int64_t)1 << 30) || pad[d] > ((int64_t)1 << 40) ||
        pad_end[d] > ((int64_t)1 << 40) || stride[d] > ((int64_t)1 << 40))
      return sl_fail_null(SL_EINVAL, "%s: kernel_size, dilation, padding or stride%s too large", name, dim);
  }
  int64_t cg = in / groups, wshape[4] = {out, cg, k[0], k[1]};
  if (nd == 1) wshape[2] = k[1];
  int64_t numel;
  if (sl_shape_check(nd + 2, wshape, &numel)) return NULL;
  sl_module *m = sl_module_new(nd == 1 ? &sl_conv1d_layer : &sl_conv2d_layer);
  if (!m) return NULL;
  conv_state *s = sl_calloc(1, sizeof *s);
  if (!s) goto fail;
  m->state = s;
  s->nd = nd;
  s->cin = in;
  s->cout = out;
  s->groups = groups;
  s->bias = bias;
  s->col_max = SL_CONV_COL_MAX;
  for (int d = 0; d < 2; d++) {
    s->k[d] = k[d];
    s->stride[d] = stride[d];
    s->pad[d] = pad[d];
    s->pad_end[d] = pad_end[d];
    s->dil[d] = dil[d];
  }
  if (sl_module_add_param(m, "weight", nd + 2, wshape) || (bias && sl_module_add_param(m, "bias", 1, &out))) goto fail;
  if (rng) { /* PyTorch's reset_parameters: kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(fan_in)), bias alike */
    float bound = (float)(1.0 / sqrt((double)(cg * k[0] * k[1])));
    for (int i = 0; i < m->nparams; i++)
      sl_rng_fill_uniform_f32(rng, m->params[i]->data, (size_t)m->params[i]->numel, -bound, bound);
  }
  return m;
fail:
  sl_module_release(m);
  return NULL;
}

sl_module *sl_conv2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2], sl_conv_opts o,
                         sl_rng *rng) {
  return conv_new(2, in_channels, out_channels, kernel, o.stride, o.padding, o.padding_end, o.dilation, o.groups,
                  o.bias, rng);
}

sl_module *sl_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel, sl_conv_opts o, sl_rng *rng) {
  const int64_t k[2] = {1, kernel}, stride[2] = {1, o.stride[0]}, pad[2] = {0, o.padding[0]},
                pad_end[2] = {0, o.padding_end[0]}, dil[2] = {1, o.dilation[0]};
  return conv_new(1, in_channels, out_channels, k, stride, pad, pad_end, dil, o.groups, o.bias, rng);
}

int sl_conv_info_of(const sl_module *m, sl_conv_info *info) {
  if (!m || (m->vt != &sl_conv1d_layer && m->vt != &sl_conv2d_layer))
    return sl_fail(SL_EINVAL, "conv info: module is a %s, not a Conv1d or Conv2d", sl_module_type(m));
  const conv_state *s = m->state;
  int d0 = s->nd == 1 ? 1 : 0; /* Conv1d reports its one dim in [0] */
  memset(info, 0, sizeof *info);
  info->nd = s->nd;
  info->in_channels = s->cin;
  info->out_channels = s->cout;
  info->o.groups = s->groups;
  info->o.bias = s->bias;
  for (int d = d0; d < 2; d++) {
    info->kernel[d - d0] = s->k[d];
    info->o.stride[d - d0] = s->stride[d];
    info->o.padding[d - d0] = s->pad[d];
    info->o.padding_end[d - d0] = s->pad_end[d];
    info->o.dilation[d - d0] = s->dil[d];
  }
  return SL_OK;
}

int sl_conv_set_col_max(sl_module *m, int64_t max_floats) {
  if (!m || (m->vt != &sl_conv1d_layer && m->vt != &sl_conv2d_layer))
    return sl_fail(SL_EINVAL, "conv col_max: module is a %s, not a Conv1d or Conv2d", sl_module_type(m));
  if (max_floats < 1) return sl_fail(SL_EINVAL, "conv col_max: must be >= 1, got %" PRId64, max_floats);
  ((conv_state *)m->state)->col_max = max_floats;
  return SL_OK;
}
