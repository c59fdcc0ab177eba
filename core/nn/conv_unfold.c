/* im2col, col2im, the layout copies and the bias passes of Conv1d/Conv2d
 * (see conv_unfold.h), split over selut's threads. Built at -O3 (Makefile)
 * so the plain loops vectorize. */
#include "conv_unfold.h"

#include <string.h>

#include "../tensor/parallel.h"

/* col2im's masks (kw x L floats) are used up to this size; larger kernels
 * and images take the row-by-row path. */
#define KEEP_MAX ((int64_t)1 << 20)

/* Valid output columns [*lo, *hi] for kernel offset xo = j*dil - pad: those
 * with 0 <= ox*stride + xo < w. Empty when *lo > *hi. */
static void valid_cols(int64_t xo, int64_t stride, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
  *lo = xo >= 0 ? 0 : (-xo + stride - 1) / stride;
  *hi = w - 1 - xo < 0 ? -1 : (w - 1 - xo) / stride;
  if (*hi > ow - 1) *hi = ow - 1;
}

/* True when im2col/col2im take whole samples at once: stride 1 and an
 * output as wide as the input ('same' width), so for a kernel offset
 * (yo, xo) the valid positions of a sample are one run in col whose sources
 * are one run in x (col position q reads x at q + yo*w + xo); only the
 * padded columns inside that run need care. A few long copies instead of
 * one short one per output row. */
static bool whole_samples(const sl_unfold *u) { return u->stride[0] == 1 && u->stride[1] == 1 && u->ow == u->w; }

static bool col2im_masks(const sl_unfold *u) { return whole_samples(u) && u->k[1] * u->oh * u->ow <= KEEP_MAX; }

int64_t sl_unfold_keep_floats(const sl_unfold *u) { return col2im_masks(u) ? u->k[1] * u->oh * u->ow : 0; }

/* One kernel offset of one sample, whole_samples: d (L floats) from the
 * channel plane xp; [ylo, yhi] x [lo, hi] the valid output positions. */
static void unfold_sample(float *restrict d, const float *restrict xp, const sl_unfold *u, int64_t yo, int64_t xo,
                          int64_t ylo, int64_t yhi, int64_t lo, int64_t hi) {
  const int64_t l = u->oh * u->ow, ow = u->ow;
  if (ylo > yhi || lo > hi) {
    memset(d, 0, (size_t)l * sizeof(float));
    return;
  }
  int64_t q0 = ylo * ow + lo, q1 = yhi * ow + hi; /* the run, inclusive */
  memset(d, 0, (size_t)q0 * sizeof(float));
  memcpy(d + q0, xp + q0 + yo * u->w + xo, (size_t)(q1 - q0 + 1) * sizeof(float));
  memset(d + q1 + 1, 0, (size_t)(l - q1 - 1) * sizeof(float));
  if (lo > 0 || hi < ow - 1) /* the run's padded columns hold a neighbouring row's values */
    for (int64_t oy = ylo; oy <= yhi; oy++) {
      float *r = d + oy * ow;
      for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0.0f;
      for (int64_t ox = hi + 1; ox < ow; ox++) r[ox] = 0.0f;
    }
}

typedef struct unfold_job {
  const sl_unfold *u;
  float *col, *gx, *keep;
  const float *x, *ccol;
  int64_t c0, nb;
} unfold_job;

/* Rows [rb, re) of col; row r = (c, i, j) in kernel order. */
static void im2col_rows(const void *ctx, size_t rb, size_t re) {
  const unfold_job *jb = ctx;
  const sl_unfold *u = jb->u;
  const int64_t l = u->oh * u->ow, width = jb->nb * l, hw = u->h * u->w, kk = u->k[0] * u->k[1];
  const bool whole = whole_samples(u);
  for (int64_t r = (int64_t)rb; r < (int64_t)re; r++) {
    int64_t c = r / kk, i = r / u->k[1] % u->k[0], j = r % u->k[1];
    float *row = jb->col + r * width;
    const float *x = jb->x + (jb->c0 + c) * hw;
    int64_t xo = j * u->dil[1] - u->pad[1], lo, hi;
    valid_cols(xo, u->stride[1], u->w, u->ow, &lo, &hi);
    if (whole) {
      int64_t yo = i * u->dil[0] - u->pad[0], ylo, yhi;
      valid_cols(yo, 1, u->h, u->oh, &ylo, &yhi);
      for (int64_t sm = 0; sm < jb->nb; sm++) unfold_sample(row + sm * l, x + sm * u->cin * hw, u, yo, xo, ylo, yhi, lo, hi);
      continue;
    }
    for (int64_t sm = 0; sm < jb->nb; sm++) {
      const float *xp = x + sm * u->cin * hw;
      for (int64_t oy = 0; oy < u->oh; oy++) {
        float *d = row + sm * l + oy * u->ow;
        int64_t iy = oy * u->stride[0] - u->pad[0] + i * u->dil[0];
        if (iy < 0 || iy >= u->h || lo > hi) {
          memset(d, 0, (size_t)u->ow * sizeof(float));
          continue;
        }
        const float *xr = xp + iy * u->w + xo;
        for (int64_t ox = 0; ox < lo; ox++) d[ox] = 0.0f;
        if (u->stride[1] == 1)
          memcpy(d + lo, xr + lo, (size_t)(hi - lo + 1) * sizeof(float));
        else
          for (int64_t ox = lo; ox <= hi; ox++) d[ox] = xr[ox * u->stride[1]];
        for (int64_t ox = hi + 1; ox < u->ow; ox++) d[ox] = 0.0f;
      }
    }
  }
}

void sl_im2col(float *col, const float *x, const sl_unfold *u, int64_t c0, int64_t nb) {
  unfold_job jb = {.u = u, .col = col, .x = x, .c0 = c0, .nb = nb};
  size_t rows = (size_t)(u->cg * u->k[0] * u->k[1]);
  sl_par_pieces(rows, rows * (size_t)(nb * u->oh * u->ow), im2col_rows, &jb);
}

/* xp[q + off] += d[q] over the run [q0, q1] where keep[q] is 1 (the valid
 * columns), + 0.0f where it is 0 (the padded ones). Adding +0.0f changes
 * nothing: a plane starts at +0 and a sum of floats from +0 is never -0,
 * so x + 0 == x bit for bit (NaN and inf included). Vectorizes. */
static void fold_run(float *restrict xp, const float *restrict d, const float *restrict keep, int64_t off, int64_t q0,
                     int64_t q1) {
  for (int64_t q = q0; q <= q1; q++) {
    float v = d[q];
    xp[q + off] += keep[q] != 0.0f ? v : 0.0f;
  }
}

/* Channels [cb, ce) of the group: all of a channel's rows, so each element
 * of gx receives its contributions in col's row order. */
static void col2im_channels(const void *ctx, size_t cb, size_t ce) {
  const unfold_job *jb = ctx;
  const sl_unfold *u = jb->u;
  const int64_t l = u->oh * u->ow, width = jb->nb * l, hw = u->h * u->w;
  const bool masks = col2im_masks(u);
  for (int64_t c = (int64_t)cb; c < (int64_t)ce; c++) {
    float *gxc = jb->gx + (jb->c0 + c) * hw;
    for (int64_t sm = 0; sm < jb->nb; sm++) memset(gxc + sm * u->cin * hw, 0, (size_t)hw * sizeof(float));
    for (int64_t i = 0; i < u->k[0]; i++)
      for (int64_t j = 0; j < u->k[1]; j++) {
        const float *row = jb->ccol + ((c * u->k[0] + i) * u->k[1] + j) * width;
        int64_t xo = j * u->dil[1] - u->pad[1], lo, hi;
        valid_cols(xo, u->stride[1], u->w, u->ow, &lo, &hi);
        if (lo > hi) continue;
        if (masks) {
          int64_t yo = i * u->dil[0] - u->pad[0], ylo, yhi;
          valid_cols(yo, 1, u->h, u->oh, &ylo, &yhi);
          if (ylo > yhi) continue;
          int64_t q0 = ylo * u->ow + lo, q1 = yhi * u->ow + hi;
          for (int64_t sm = 0; sm < jb->nb; sm++)
            fold_run(gxc + sm * u->cin * hw, row + sm * l, jb->keep + j * l, yo * u->w + xo, q0, q1);
          continue;
        }
        for (int64_t sm = 0; sm < jb->nb; sm++) {
          float *xp = gxc + sm * u->cin * hw;
          for (int64_t oy = 0; oy < u->oh; oy++) {
            int64_t iy = oy * u->stride[0] - u->pad[0] + i * u->dil[0];
            if (iy < 0 || iy >= u->h) continue;
            const float *d = row + sm * l + oy * u->ow;
            float *xr = xp + iy * u->w + xo;
            if (u->stride[1] == 1) /* contiguous: vectorizes (each element's adds keep their order) */
              for (int64_t ox = lo; ox <= hi; ox++) xr[ox] += d[ox];
            else
              for (int64_t ox = lo; ox <= hi; ox++) xr[ox * u->stride[1]] += d[ox];
          }
        }
      }
  }
}

void sl_col2im(float *gx, const float *col, const sl_unfold *u, int64_t c0, int64_t nb, float *keep) {
  const int64_t l = u->oh * u->ow;
  if (col2im_masks(u)) /* keep + j*L: 1 where output column ox is valid for kernel column j */
    for (int64_t j = 0; j < u->k[1]; j++) {
      int64_t lo, hi;
      valid_cols(j * u->dil[1] - u->pad[1], 1, u->w, u->ow, &lo, &hi);
      for (int64_t q = 0; q < l; q++) {
        int64_t ox = q % u->ow;
        keep[j * l + q] = ox >= lo && ox <= hi ? 1.0f : 0.0f;
      }
    }
  unfold_job jb = {.u = u, .gx = gx, .keep = keep, .ccol = col, .c0 = c0, .nb = nb};
  sl_par_pieces((size_t)u->cg, (size_t)(u->cg * u->k[0] * u->k[1] * nb * l), col2im_channels, &jb);
}

typedef struct copy_job {
  float *dst;
  const float *src, *b;
  int64_t cout, o0, nb, l, width;
  double *acc;
} copy_job;

static void scatter_rows(const void *ctx, size_t ob, size_t oe) {
  const copy_job *j = ctx;
  for (int64_t o = (int64_t)ob; o < (int64_t)oe; o++)
    for (int64_t sm = 0; sm < j->nb; sm++)
      memcpy(j->dst + (sm * j->cout + j->o0 + o) * j->l, j->src + (o * j->nb + sm) * j->l, (size_t)j->l * sizeof(float));
}

void sl_conv_scatter(float *y, const float *t, int64_t cout, int64_t o0, int64_t og, int64_t nb, int64_t l) {
  copy_job j = {.dst = y, .src = t, .cout = cout, .o0 = o0, .nb = nb, .l = l};
  sl_par_pieces((size_t)og, (size_t)(og * nb * l), scatter_rows, &j);
}

static void gather_rows(const void *ctx, size_t ob, size_t oe) {
  const copy_job *j = ctx;
  for (int64_t o = (int64_t)ob; o < (int64_t)oe; o++)
    for (int64_t sm = 0; sm < j->nb; sm++)
      memcpy(j->dst + (o * j->nb + sm) * j->l, j->src + (sm * j->cout + j->o0 + o) * j->l, (size_t)j->l * sizeof(float));
}

void sl_conv_gather(float *t, const float *gy, int64_t cout, int64_t o0, int64_t og, int64_t nb, int64_t l) {
  copy_job j = {.dst = t, .src = gy, .cout = cout, .o0 = o0, .nb = nb, .l = l};
  sl_par_pieces((size_t)og, (size_t)(og * nb * l), gather_rows, &j);
}

/* Locals, not j's fields, in the loop: without strict aliasing GCC would
 * reload them after every store and not vectorize. */
static void fill_rows(const void *ctx, size_t ob, size_t oe) {
  const copy_job *j = ctx;
  const int64_t width = j->width;
  for (int64_t o = (int64_t)ob; o < (int64_t)oe; o++) {
    float v = j->b[o], *r = j->dst + o * width;
    for (int64_t q = 0; q < width; q++) r[q] = v;
  }
}

void sl_conv_bias_fill(float *t, const float *b, int64_t og, int64_t width) {
  copy_job j = {.dst = t, .b = b, .width = width};
  sl_par_pieces((size_t)og, (size_t)(og * width), fill_rows, &j);
}

enum { LANES = 8 };

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_UNFOLD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SL_UNFOLD_CLONES
#endif

#if defined(__GNUC__) && !defined(__clang__) /* GCC's vector extensions */
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4i __attribute__((vector_size(32)));

/* Four positions of four channels: lane k of acc (channel k) adds r_k[0],
 * r_k[1], r_k[2], r_k[3] in that order (a 4 x 4 transpose, then four vector
 * adds: the same double adds, in the same order, as one channel at a time). */
static inline __attribute__((always_inline)) void add_4x4(v4d *accp, const float *r0, const float *r1, const float *r2, const float *r3) {
  v4f f0, f1, f2, f3;
  memcpy(&f0, r0, sizeof f0);
  memcpy(&f1, r1, sizeof f1);
  memcpy(&f2, r2, sizeof f2);
  memcpy(&f3, r3, sizeof f3);
  v4d d0 = __builtin_convertvector(f0, v4d), d1 = __builtin_convertvector(f1, v4d);
  v4d d2 = __builtin_convertvector(f2, v4d), d3 = __builtin_convertvector(f3, v4d);
  v4d e01 = __builtin_shuffle(d0, d1, (v4i){0, 4, 2, 6}), o01 = __builtin_shuffle(d0, d1, (v4i){1, 5, 3, 7});
  v4d e23 = __builtin_shuffle(d2, d3, (v4i){0, 4, 2, 6}), o23 = __builtin_shuffle(d2, d3, (v4i){1, 5, 3, 7});
  v4d acc = *accp;
  acc += __builtin_shuffle(e01, e23, (v4i){0, 1, 4, 5});
  acc += __builtin_shuffle(o01, o23, (v4i){0, 1, 4, 5});
  acc += __builtin_shuffle(e01, e23, (v4i){2, 3, 6, 7});
  acc += __builtin_shuffle(o01, o23, (v4i){2, 3, 6, 7});
  *accp = acc;
}

/* LANES channels from o, each summed over samples then positions in order. */
SL_UNFOLD_CLONES static void bias_grad_lanes(float *gb, const float *gy, int64_t cout, int64_t n, int64_t l,
                                             int64_t o) {
  v4d a = {0}, b = {0};
  for (int64_t sm = 0; sm < n; sm++) {
    const float *r = gy + (sm * cout + o) * l;
    int64_t q = 0;
    for (; q + 4 <= l; q += 4) {
      add_4x4(&a, r + q, r + l + q, r + 2 * l + q, r + 3 * l + q);
      add_4x4(&b, r + 4 * l + q, r + 5 * l + q, r + 6 * l + q, r + 7 * l + q);
    }
    for (; q < l; q++)
      for (int k = 0; k < 4; k++) {
        a[k] += (double)r[k * l + q];
        b[k] += (double)r[(k + 4) * l + q];
      }
  }
  for (int k = 0; k < 4; k++) {
    gb[o + k] += (float)a[k];
    gb[o + 4 + k] += (float)b[k];
  }
}
#else
/* Other compilers: the same sums, one lane at a time. */
static void bias_grad_lanes(float *gb, const float *gy, int64_t cout, int64_t n, int64_t l, int64_t o) {
  double acc[LANES] = {0};
  for (int64_t sm = 0; sm < n; sm++) {
    const float *r = gy + (sm * cout + o) * l;
    for (int64_t q = 0; q < l; q++)
      for (int k = 0; k < LANES; k++) acc[k] += (double)r[k * l + q];
  }
  for (int k = 0; k < LANES; k++) gb[o + k] += (float)acc[k];
}
#endif

/* Blocks [bb, be) of LANES channels (the last one may be shorter). A
 * channel's sum is one chain of dependent adds, so a block's eight channels
 * run side by side, four to a vector (their chains interleave, each keeps
 * its order: same bits as one channel at a time, without waiting on each
 * add). */
static void bias_grad_blocks(const void *ctx, size_t bb, size_t be) {
  const copy_job *j = ctx;
  float *gb = j->dst;
  const float *gy = j->src;
  const int64_t cout = j->cout, n = j->nb, l = j->l;
  for (int64_t o = (int64_t)bb * LANES; o < (int64_t)be * LANES && o < cout; o += LANES) {
    if (o + LANES <= cout) {
      bias_grad_lanes(gb, gy, cout, n, l, o);
      continue;
    }
    for (int64_t oc = o; oc < cout; oc++) {
      double acc = 0.0;
      for (int64_t sm = 0; sm < n; sm++) {
        const float *r = gy + (sm * cout + oc) * l;
        for (int64_t q = 0; q < l; q++) acc += (double)r[q];
      }
      gb[oc] += (float)acc;
    }
  }
}

void sl_conv_bias_grad(float *gb, const float *gy, int64_t cout, int64_t n, int64_t l) {
  copy_job j = {.dst = gb, .src = gy, .cout = cout, .nb = n, .l = l};
  sl_par_pieces((size_t)((cout + LANES - 1) / LANES), (size_t)(cout * n * l), bias_grad_blocks, &j);
}
