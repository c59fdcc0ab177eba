/* MaxPool2d, AvgPool2d and AdaptiveAvgPool2d over (N, C, H, W) or (C, H, W),
 * window by window in PyTorch's order (see conv.h): the first maximum of a
 * window wins (a NaN always does), average windows are clipped to the padded
 * input for the divisor. MaxPool2d keeps its argmax per output for the
 * backward, in a buffer grown only. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "../tensor/parallel.h"
#include "conv.h"

enum pool_kind { POOL_MAX, POOL_AVG, POOL_ADAPTIVE };

typedef struct pool_state {
  enum pool_kind kind;
  int64_t k[2]; /* adaptive: the output size */
  sl_pool_opts o;
  int64_t *argmax; /* max: flat h*w index within the plane, per output */
  int64_t argmax_cap;
} pool_state;

typedef struct pool_geom {
  int64_t planes, h, w, oh, ow; /* planes = N*C */
  bool batched;
} pool_geom;

static const char *const pool_names[] = {"MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"};

sl_pool_opts sl_pool_defaults(void) {
  return (sl_pool_opts){.stride = {0, 0}, .padding = {0, 0}, .dilation = {1, 1}, .ceil_mode = false,
                        .count_include_pad = true};
}

/* PyTorch's pooling_output_shape; < 1 when the window does not fit. */
static int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t o = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
  if (ceil_mode && o > 0 && (o - 1) * stride >= in + pad) o--;
  return o;
}

static int pool_geometry(const sl_module *m, const sl_tensor *x, const char *what, pool_geom *g) {
  const pool_state *s = m->state;
  const char *name = pool_names[s->kind];
  char buf[160];
  if (x->ndim != 4 && x->ndim != 3)
    return sl_fail(SL_ESHAPE, "%s.%s: expected input of shape [N x C x H x W] or [C x H x W], got %s", name, what,
                   sl_shape_str(x, buf, sizeof buf));
  g->batched = x->ndim == 4;
  g->planes = g->batched ? x->shape[0] * x->shape[1] : x->shape[0];
  g->h = x->shape[x->ndim - 2];
  g->w = x->shape[x->ndim - 1];
  if (s->kind == POOL_ADAPTIVE) {
    if (g->h < 1 || g->w < 1)
      return sl_fail(SL_ESHAPE, "%s.%s: input %s has an empty spatial dim", name, what,
                     sl_shape_str(x, buf, sizeof buf));
    g->oh = s->k[0];
    g->ow = s->k[1];
    return SL_OK;
  }
  const int64_t *dil = s->o.dilation;
  g->oh = pool_out(g->h, s->k[0], s->o.padding[0], s->o.stride[0], dil[0], s->o.ceil_mode);
  g->ow = pool_out(g->w, s->k[1], s->o.padding[1], s->o.stride[1], dil[1], s->o.ceil_mode);
  if (g->oh < 1 || g->ow < 1)
    return sl_fail(SL_ESHAPE, "%s.%s: input %s padded to %" PRId64 " x %" PRId64 " is smaller than the %s"
                   "kernel %" PRId64 " x %" PRId64 ": the output size would be %" PRId64 " x %" PRId64, name, what,
                   sl_shape_str(x, buf, sizeof buf), g->h + 2 * s->o.padding[0], g->w + 2 * s->o.padding[1],
                   dil[0] > 1 || dil[1] > 1 ? "dilated " : "", dil[0] * (s->k[0] - 1) + 1, dil[1] * (s->k[1] - 1) + 1,
                   g->oh, g->ow);
  return SL_OK;
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_POOL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SL_POOL_CLONES
#endif

/* MaxPool2d(2) without padding or dilation, a block of at most 64 outputs of
 * one row from two input rows: the four candidates in window order with the
 * scan's rule (a later value wins only if greater, a NaN always does) as
 * selects on the value and a 32-bit offset in the window, which GCC
 * vectorizes (pool.o is built with -O3); then argmax = window start +
 * offset. Same values and argmax as the general loop: starting from the
 * first candidate equals starting from -inf (-inf > -inf is false, so the
 * index stays the first one either way). */
SL_POOL_CLONES static void maxpool2x2_block(float *y, int64_t *arg, const float *restrict r0,
                                            const float *restrict r1, int64_t base, int32_t w, int64_t n) {
  int32_t off[64];
  for (int64_t ox = 0; ox < n; ox++) {
    float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1], mx = a;
    int32_t o = 0;
    bool t = (b > mx) | (b != b);
    mx = t ? b : mx;
    o = t ? 1 : o;
    t = (c > mx) | (c != c);
    mx = t ? c : mx;
    o = t ? w : o;
    t = (d > mx) | (d != d);
    mx = t ? d : mx;
    o = t ? w + 1 : o;
    y[ox] = mx;
    off[ox] = o;
  }
  for (int64_t ox = 0; ox < n; ox++) arg[ox] = base + 2 * ox + off[ox];
}

/* x: (planes, h, w), y: (planes, oh, ow), argmax: (planes, oh, ow); planes [p0, p1) */
static void maxpool_forward_f32(float *y, int64_t *argmax, const float *x, const pool_state *s, const pool_geom *g,
                                int64_t p0, int64_t p1) {
  const int64_t kh = s->k[0], kw = s->k[1], sh = s->o.stride[0], sw = s->o.stride[1];
  const int64_t ph = s->o.padding[0], pw = s->o.padding[1], dh = s->o.dilation[0], dw = s->o.dilation[1];
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && g->w < INT32_MAX && ph == 0 && pw == 0 && dh == 1 && dw == 1 && !s->o.ceil_mode) {
    for (int64_t p = p0; p < p1; p++)
      for (int64_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + p * g->h * g->w + 2 * oy * g->w;
        int64_t o = (p * g->oh + oy) * g->ow;
        for (int64_t ox = 0; ox < g->ow; ox += 64)
          maxpool2x2_block(y + o + ox, argmax + o + ox, r0 + 2 * ox, r0 + g->w + 2 * ox, 2 * oy * g->w + 2 * ox,
                           (int32_t)g->w, g->ow - ox < 64 ? g->ow - ox : 64);
      }
    return;
  }
  if (ph == 0 && pw == 0 && dh == 1 && dw == 1 && !s->o.ceil_mode) {
    /* every window lies inside the input: no clipping (the common case) */
    for (int64_t p = p0; p < p1; p++) {
      const float *xp = x + p * g->h * g->w;
      float *yp = y + p * g->oh * g->ow;
      int64_t *ap = argmax + p * g->oh * g->ow;
      for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
          int64_t base = oy * sh * g->w + ox * sw, best = base;
          float mx = -INFINITY;
          for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
              /* masks, not branches: on real data the comparison is a coin toss the predictor loses */
              float v = xp[base + i * g->w + j];
              int64_t take = -(int64_t)((v > mx) | (v != v));
              uint32_t vb, mb;
              memcpy(&vb, &v, sizeof vb);
              memcpy(&mb, &mx, sizeof mb);
              mb = (mb & ~(uint32_t)take) | (vb & (uint32_t)take);
              memcpy(&mx, &mb, sizeof mx);
              best = (best & ~take) | ((base + i * g->w + j) & take);
            }
          yp[oy * g->ow + ox] = mx;
          ap[oy * g->ow + ox] = best;
        }
    }
    return;
  }
  for (int64_t p = p0; p < p1; p++) {
    const float *xp = x + p * g->h * g->w;
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t y0 = oy * sh - ph, x0 = ox * sw - pw;
        int64_t y1 = y0 + (kh - 1) * dh + 1 < g->h ? y0 + (kh - 1) * dh + 1 : g->h;
        int64_t x1 = x0 + (kw - 1) * dw + 1 < g->w ? x0 + (kw - 1) * dw + 1 : g->w;
        while (y0 < 0) y0 += dh;
        while (x0 < 0) x0 += dw;
        int64_t best = y0 * g->w + x0;
        float mx = -INFINITY;
        for (int64_t iy = y0; iy < y1; iy += dh)
          for (int64_t ix = x0; ix < x1; ix += dw) {
            float v = xp[iy * g->w + ix];
            if (v > mx || isnan(v)) {
              mx = v;
              best = iy * g->w + ix;
            }
          }
        int64_t o = (p * g->oh + oy) * g->ow + ox;
        y[o] = mx;
        argmax[o] = best;
      }
  }
}

/* The window of output (oy, ox) clipped to the input, and its divisor. */
static void avg_window(const pool_state *s, const pool_geom *g, int64_t oy, int64_t ox, int64_t win[4], int64_t *div) {
  if (s->kind == POOL_ADAPTIVE) {
    win[0] = oy * g->h / g->oh;
    win[1] = ((oy + 1) * g->h + g->oh - 1) / g->oh;
    win[2] = ox * g->w / g->ow;
    win[3] = ((ox + 1) * g->w + g->ow - 1) / g->ow;
    *div = (win[1] - win[0]) * (win[3] - win[2]);
    return;
  }
  int64_t y0 = oy * s->o.stride[0] - s->o.padding[0], x0 = ox * s->o.stride[1] - s->o.padding[1];
  int64_t y1 = y0 + s->k[0] < g->h + s->o.padding[0] ? y0 + s->k[0] : g->h + s->o.padding[0];
  int64_t x1 = x0 + s->k[1] < g->w + s->o.padding[1] ? x0 + s->k[1] : g->w + s->o.padding[1];
  int64_t padded = (y1 - y0) * (x1 - x0);
  win[0] = y0 < 0 ? 0 : y0;
  win[1] = y1 < g->h ? y1 : g->h;
  win[2] = x0 < 0 ? 0 : x0;
  win[3] = x1 < g->w ? x1 : g->w;
  *div = s->o.count_include_pad ? padded : (win[1] - win[0]) * (win[3] - win[2]);
}

/* x: (planes, h, w), y: (planes, oh, ow); sums in double; planes [p0, p1) */
static void avgpool_forward_f32(float *y, const float *x, const pool_state *s, const pool_geom *g, int64_t p0,
                                int64_t p1) {
  for (int64_t p = p0; p < p1; p++) {
    const float *xp = x + p * g->h * g->w;
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t win[4], div;
        avg_window(s, g, oy, ox, win, &div);
        double acc = 0.0;
        for (int64_t iy = win[0]; iy < win[1]; iy++)
          for (int64_t ix = win[2]; ix < win[3]; ix++) acc += (double)xp[iy * g->w + ix];
        y[(p * g->oh + oy) * g->ow + ox] = win[0] >= win[1] || win[2] >= win[3] ? 0.0f : (float)(acc / (double)div);
      }
  }
}

/* gx written from gy (planes, oh, ow); planes [p0, p1) */
static void pool_backward_f32(float *gx, const float *gy, const pool_state *s, const pool_geom *g, int64_t p0,
                              int64_t p1) {
  memset(gx + p0 * g->h * g->w, 0, (size_t)((p1 - p0) * g->h * g->w) * sizeof(float));
  for (int64_t p = p0; p < p1; p++) {
    float *xp = gx + p * g->h * g->w;
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t o = (p * g->oh + oy) * g->ow + ox;
        if (s->kind == POOL_MAX) {
          xp[s->argmax[o]] += gy[o];
          continue;
        }
        int64_t win[4], div;
        avg_window(s, g, oy, ox, win, &div);
        float v = (float)((double)gy[o] / (double)div);
        for (int64_t iy = win[0]; iy < win[1]; iy++)
          for (int64_t ix = win[2]; ix < win[3]; ix++) xp[iy * g->w + ix] += v;
      }
  }
}

/* The planes are independent (a window, its maximum and its gradient stay
 * in one plane), so they split over selut's threads with the same bits. */
typedef struct pool_job {
  const pool_state *s;
  const pool_geom *g;
  float *out;
  const float *in;
  bool backward;
} pool_job;

static void pool_planes(const void *ctx, size_t p0, size_t p1) {
  const pool_job *j = ctx;
  if (j->backward)
    pool_backward_f32(j->out, j->in, j->s, j->g, (int64_t)p0, (int64_t)p1);
  else if (j->s->kind == POOL_MAX)
    maxpool_forward_f32(j->out, j->s->argmax, j->in, j->s, j->g, (int64_t)p0, (int64_t)p1);
  else
    avgpool_forward_f32(j->out, j->in, j->s, j->g, (int64_t)p0, (int64_t)p1);
}

static void pool_run(const pool_state *s, const pool_geom *g, float *out, const float *in, bool backward) {
  pool_job j = {s, g, out, in, backward};
  sl_par_pieces((size_t)g->planes, (size_t)(g->planes * g->h * g->w), pool_planes, &j);
}

static int pool_forward(sl_module *m, const sl_tensor *x) {
  pool_state *s = m->state;
  pool_geom g;
  int st = pool_geometry(m, x, "forward", &g);
  if (st) return st;
  int64_t shape[4];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 2] = g.oh;
  shape[x->ndim - 1] = g.ow;
  if ((st = sl_tensor_ensure(&m->output, x->ndim, shape))) return st;
  int64_t nout = m->output->numel;
  if (s->kind == POOL_MAX) {
    if (nout > s->argmax_cap) {
      int64_t *a = sl_malloc((size_t)nout * sizeof *a);
      if (!a) return sl_last_status();
      sl_free(s->argmax);
      s->argmax = a;
      s->argmax_cap = nout;
    }
  }
  pool_run(s, &g, m->output->data, x->data, false);
  return SL_OK;
}

static int pool_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  pool_state *s = m->state;
  pool_geom g;
  char a[160], b[160];
  int st = pool_geometry(m, x, "backward", &g);
  if (st) return st;
  if (gy->ndim != x->ndim || gy->numel != g.planes * g.oh * g.ow || gy->shape[gy->ndim - 1] != g.ow)
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match the output of input %s",
                   pool_names[s->kind], sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b));
  if (s->kind == POOL_MAX && (!m->output || !sl_tensor_same_shape(m->output, gy)))
    return sl_fail(SL_EINVAL, "MaxPool2d.backward: input shape %s differs from the last forward's; call forward first",
                   sl_shape_str(x, a, sizeof a));
  if (m->skip_grad_input) return SL_OK; /* no parameters: nothing else to do */
  if ((st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  pool_run(s, &g, m->grad_input->data, gy->data, true);
  return SL_OK;
}

static void pool_destroy(sl_module *m) {
  pool_state *s = m->state;
  if (!s) return;
  sl_free(s->argmax);
  sl_free(s);
}

/* MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=false) */
static void pool_repr(const sl_module *m, char *buf, size_t n) {
  const pool_state *s = m->state;
  if (s->kind == POOL_ADAPTIVE) {
    snprintf(buf, n, "AdaptiveAvgPool2d(output_size=(%" PRId64 ", %" PRId64 "))", s->k[0], s->k[1]);
    return;
  }
  int len = snprintf(buf, n, "%s(kernel_size=(%" PRId64 ", %" PRId64 "), stride=(%" PRId64 ", %" PRId64
                     "), padding=(%" PRId64 ", %" PRId64 ")", pool_names[s->kind], s->k[0], s->k[1], s->o.stride[0],
                     s->o.stride[1], s->o.padding[0], s->o.padding[1]);
  if (len < 0 || (size_t)len >= n) return;
  if (s->kind == POOL_MAX)
    snprintf(buf + len, n - (size_t)len, ", dilation=(%" PRId64 ", %" PRId64 "), ceil_mode=%s)", s->o.dilation[0],
             s->o.dilation[1], s->o.ceil_mode ? "true" : "false");
  else
    snprintf(buf + len, n - (size_t)len, ", ceil_mode=%s, count_include_pad=%s)", s->o.ceil_mode ? "true" : "false",
             s->o.count_include_pad ? "true" : "false");
}

/* m.ceil_mode, m.count_include_pad (the sizes are pairs: printed only). */
static int pool_hparams(const sl_module *m, sl_hparam *out) {
  const pool_state *s = m->state;
  if (s->kind == POOL_ADAPTIVE) return 0;
  out[0] = (sl_hparam){"ceil_mode", SL_VALUE_BOOL, s->o.ceil_mode ? 1.0 : 0.0, 0};
  if (s->kind == POOL_MAX) return 1;
  out[1] = (sl_hparam){"count_include_pad", SL_VALUE_BOOL, s->o.count_include_pad ? 1.0 : 0.0, 0};
  return 2;
}

/* Indexed by enum pool_kind. */
const sl_layer sl_pool_layers[3] = {
    {.type = "MaxPool2d", .flags = SL_LAYER_FORWARD_STATE, .forward = pool_forward, .backward = pool_backward, .destroy = pool_destroy,
     .hparams = pool_hparams, .repr = pool_repr},
    {.type = "AvgPool2d", .forward = pool_forward, .backward = pool_backward, .destroy = pool_destroy,
     .hparams = pool_hparams, .repr = pool_repr},
    {.type = "AdaptiveAvgPool2d", .forward = pool_forward, .backward = pool_backward, .destroy = pool_destroy,
     .repr = pool_repr}};

static sl_module *pool_new(enum pool_kind kind, const int64_t k[2], sl_pool_opts o) {
  const char *name = pool_names[kind];
  for (int d = 0; d < 2; d++) {
    const char *dim = d == 0 ? "height" : "width";
    if (kind == POOL_ADAPTIVE) {
      if (k[d] < 1 || k[d] > ((int64_t)1 << 30))
        return sl_fail_null(SL_EINVAL, "%s: output_size (%s) must be in 1..2^30, got %" PRId64, name, dim, k[d]);
      continue;
    }
    if (o.stride[d] == 0) o.stride[d] = k[d];
    if (k[d] < 1 || k[d] > ((int64_t)1 << 30))
      return sl_fail_null(SL_EINVAL, "%s: kernel_size (%s) must be in 1..2^30, got %" PRId64, name, dim, k[d]);
    if (o.stride[d] < 1 || o.stride[d] > ((int64_t)1 << 30))
      return sl_fail_null(SL_EINVAL, "%s: stride (%s) must be in 1..2^30, got %" PRId64, name, dim, o.stride[d]);
    if (o.dilation[d] < 1 || o.dilation[d] > ((int64_t)1 << 30) || (kind != POOL_MAX && o.dilation[d] != 1))
      return sl_fail_null(SL_EINVAL, "%s: dilation (%s) must be %s, got %" PRId64, name, dim,
                          kind == POOL_MAX ? "in 1..2^30" : "1", o.dilation[d]);
    if (o.padding[d] < 0 || o.padding[d] > k[d] / 2)
      return sl_fail_null(SL_EINVAL, "%s: padding (%s) must be between 0 and half the kernel size %" PRId64
                          ", got %" PRId64, name, dim, k[d], o.padding[d]);
  }
  sl_module *m = sl_module_new(&sl_pool_layers[kind]);
  if (!m) return NULL;
  pool_state *s = sl_calloc(1, sizeof *s);
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  m->state = s;
  s->kind = kind;
  s->k[0] = k[0];
  s->k[1] = k[1];
  s->o = o;
  return m;
}

sl_module *sl_maxpool2d_new(const int64_t kernel[2], sl_pool_opts o) { return pool_new(POOL_MAX, kernel, o); }
sl_module *sl_avgpool2d_new(const int64_t kernel[2], sl_pool_opts o) { return pool_new(POOL_AVG, kernel, o); }
sl_module *sl_adaptive_avgpool2d_new(const int64_t output_size[2]) {
  return pool_new(POOL_ADAPTIVE, output_size, sl_pool_defaults());
}

int sl_pool_info_of(const sl_module *m, sl_pool_info *info) {
  if (!m || (m->vt != &sl_pool_layers[0] && m->vt != &sl_pool_layers[1] && m->vt != &sl_pool_layers[2]))
    return sl_fail(SL_EINVAL, "pool info: module is a %s, not a pooling layer", sl_module_type(m));
  const pool_state *s = m->state;
  info->kernel[0] = s->k[0];
  info->kernel[1] = s->k[1];
  info->o = s->o;
  return SL_OK;
}
