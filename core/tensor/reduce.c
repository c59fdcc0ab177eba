/* Reductions along a dim and softmax (see reduce.h). x is viewed as
 * (outer, n, inner) around the reduced dim. inner == 1 reduces contiguous
 * rows; otherwise columns are reduced a block at a time (accumulators on the
 * stack), reading x row by row, so a reduction over the first dim streams
 * memory instead of gathering with a stride. Each result is computed in the
 * same order either way and whatever the thread count:
 *   sum/mean: contiguous rows in four double partial sums, combined
 *   (s0 + s1) + (s2 + s3); columns in one double sum in row order;
 *   var/std: the two-pass form with a compensation term (Chan et al.).
 * (The same bits as the dim reductions of ops.c, which these replace.) */
#include "reduce.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "error.h"
#include "parallel.h"
#include "vmath.h"
#include "vmath_avx512.h"
#ifdef SL_VM_AVX512
#include <immintrin.h>
#endif

static const char *const reduce_names[SL_REDUCE_COUNT] = {"sum", "mean", "prod", "var", "std", "max", "min",
                                                          "argmax", "argmin", "logsumexp", "norm"};
const char *sl_reduce_name(sl_reduce_op op) { return op < SL_REDUCE_COUNT ? reduce_names[op] : "?"; }

int sl_reduce_dim_shape(const char *op, const sl_tensor *x, int dim, bool keepdim, int *nd, int64_t *shape) {
  if (dim < 0 || dim >= x->ndim) {
    char b[160];
    return sl_fail(SL_ERANGE, "%s: dimension %d out of range 1..%d for %s", op, dim + 1, x->ndim,
                   sl_shape_str(x, b, sizeof b));
  }
  int k = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != dim) shape[k++] = x->shape[i];
    else if (keepdim) shape[k++] = 1;
  if (k == 0) shape[k++] = 1;
  *nd = k;
  return SL_OK;
}

/* ---- one lane: n elements at stride s (the contiguous-row case) ---- */


static double finish_var(double ss, double c, int64_t n, bool unbiased) {
  int64_t den = unbiased ? n - 1 : n;
  if (den <= 0) return (double)NAN;
  return (ss - c * c / (double)n) / (double)den;
}

/* A contiguous lane in two vectorized passes: the extreme value and whether
 * a NaN is there (SSE2 max/min lanes: max(v, m) is v > m ? v : m, the
 * sequential test; lanes combine in any order, since without NaN the
 * extreme value does not depend on it, +0 and -0 comparing equal), then
 * the first index holding a NaN, else the first holding a value equal to
 * the extreme. That is the element the sequential scan in lane_extreme
 * keeps (the first NaN, else the first element equal to the extreme), so
 * value bits and index are the same. The second pass reads a row still in
 * cache. (GCC does not vectorize a float max itself: it cannot know that
 * the lane order does not matter here.) */
/* The extreme value of a contiguous lane (the first half of
 * lane_extreme_contig) and whether a NaN is there. */
static float extreme_contig(const float *x, int64_t n, bool want_max, bool *has_nan) {
  float m = x[0];
  bool nan = false;
  int64_t i = 0;
#if defined(__SSE2__)
  if (n >= 16) {
    __m128 m0 = _mm_loadu_ps(x), m1 = m0, m2 = m0, m3 = m0, u = _mm_setzero_ps();
    for (; i + 16 <= n; i += 16) {
      __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4), c = _mm_loadu_ps(x + i + 8),
             d = _mm_loadu_ps(x + i + 12);
      if (want_max) {
        m0 = _mm_max_ps(a, m0), m1 = _mm_max_ps(b, m1), m2 = _mm_max_ps(c, m2), m3 = _mm_max_ps(d, m3);
      } else {
        m0 = _mm_min_ps(a, m0), m1 = _mm_min_ps(b, m1), m2 = _mm_min_ps(c, m2), m3 = _mm_min_ps(d, m3);
      }
      u = _mm_or_ps(u, _mm_or_ps(_mm_or_ps(_mm_cmpunord_ps(a, a), _mm_cmpunord_ps(b, b)),
                                 _mm_or_ps(_mm_cmpunord_ps(c, c), _mm_cmpunord_ps(d, d))));
    }
    float lanes[16];
    _mm_storeu_ps(lanes, m0), _mm_storeu_ps(lanes + 4, m1), _mm_storeu_ps(lanes + 8, m2), _mm_storeu_ps(lanes + 12, m3);
    for (int k = 0; k < 16; k++) m = want_max ? (lanes[k] > m ? lanes[k] : m) : (lanes[k] < m ? lanes[k] : m);
    nan = _mm_movemask_ps(u) != 0;
  }
#endif
  for (; i < n; i++) {
    m = want_max ? (x[i] > m ? x[i] : m) : (x[i] < m ? x[i] : m);
    nan |= x[i] != x[i];
  }
  *has_nan = nan;
  return m;
}

#ifdef SL_VM_AVX512
/* lane_extreme_contig in one AVX-512 pass, for rows of 64 floats or more
 * without NaN: 4 x 16 lanes, each keeping its extreme and the index where
 * that first appeared (replaced only by a strictly greater, or smaller,
 * value: the first of equal values stays; the last 63 or fewer go through
 * the first 16 lanes, masked); then the extreme over all lanes and, among
 * the lanes equal to it, the smallest index. That is the first element
 * equal to the extreme, +0 and -0 comparing equal: the element the
 * sequential scan keeps. Returns false when a NaN is in the row (the
 * two-pass form then finds the first NaN). */
static inline __attribute__((always_inline, target("avx512f"))) bool extreme_avx512_as(const float *x, int64_t n,
                                                                                     int64_t *at, const bool mx) {
#define BETTER(v, m) (mx ? _mm512_cmp_ps_mask((v), (m), _CMP_GT_OQ) : _mm512_cmp_ps_mask((v), (m), _CMP_LT_OQ))
  __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 m0 = _mm512_loadu_ps(x), m1 = _mm512_loadu_ps(x + 16), m2 = _mm512_loadu_ps(x + 32),
         m3 = _mm512_loadu_ps(x + 48);
  __m512i i0 = pos, i1 = _mm512_add_epi32(pos, _mm512_set1_epi32(16));
  __m512i i2 = _mm512_add_epi32(pos, _mm512_set1_epi32(32)), i3 = _mm512_add_epi32(pos, _mm512_set1_epi32(48));
  __mmask16 nan = _mm512_cmp_ps_mask(m0, m0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(m1, m1, _CMP_UNORD_Q) |
                  _mm512_cmp_ps_mask(m2, m2, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(m3, m3, _CMP_UNORD_Q);
  int64_t i = 64;
  for (; i + 64 <= n; i += 64) {
    __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16), v2 = _mm512_loadu_ps(x + i + 32),
           v3 = _mm512_loadu_ps(x + i + 48);
    __m512i p0 = _mm512_add_epi32(pos, _mm512_set1_epi32((int)i));
    __mmask16 k0 = BETTER(v0, m0), k1 = BETTER(v1, m1), k2 = BETTER(v2, m2), k3 = BETTER(v3, m3);
    nan |= _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q) |
           _mm512_cmp_ps_mask(v2, v2, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v3, v3, _CMP_UNORD_Q);
    m0 = _mm512_mask_mov_ps(m0, k0, v0), m1 = _mm512_mask_mov_ps(m1, k1, v1);
    m2 = _mm512_mask_mov_ps(m2, k2, v2), m3 = _mm512_mask_mov_ps(m3, k3, v3);
    i0 = _mm512_mask_mov_epi32(i0, k0, p0);
    i1 = _mm512_mask_mov_epi32(i1, k1, _mm512_add_epi32(p0, _mm512_set1_epi32(16)));
    i2 = _mm512_mask_mov_epi32(i2, k2, _mm512_add_epi32(p0, _mm512_set1_epi32(32)));
    i3 = _mm512_mask_mov_epi32(i3, k3, _mm512_add_epi32(p0, _mm512_set1_epi32(48)));
  }
  for (; i < n; i += 16) { /* the rest into the first lanes: their indices still grow */
    __mmask16 t = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(t, x + i);
    __mmask16 k = BETTER(v, m0) & t;
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & t;
    m0 = _mm512_mask_mov_ps(m0, k, v);
    i0 = _mm512_mask_mov_epi32(i0, k, _mm512_add_epi32(pos, _mm512_set1_epi32((int)i)));
  }
  if (nan) return false;
  __m512 all = mx ? _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))
                  : _mm512_min_ps(_mm512_min_ps(m0, m1), _mm512_min_ps(m2, m3));
  float best = mx ? _mm512_reduce_max_ps(all) : _mm512_reduce_min_ps(all);
  __m512 b = _mm512_set1_ps(best);
  __m512i big = _mm512_set1_epi32(INT32_MAX);
  __m512i c = _mm512_min_epi32(
      _mm512_min_epi32(_mm512_mask_mov_epi32(big, _mm512_cmp_ps_mask(m0, b, _CMP_EQ_OQ), i0),
                       _mm512_mask_mov_epi32(big, _mm512_cmp_ps_mask(m1, b, _CMP_EQ_OQ), i1)),
      _mm512_min_epi32(_mm512_mask_mov_epi32(big, _mm512_cmp_ps_mask(m2, b, _CMP_EQ_OQ), i2),
                       _mm512_mask_mov_epi32(big, _mm512_cmp_ps_mask(m3, b, _CMP_EQ_OQ), i3)));
  *at = _mm512_reduce_min_epi32(c);
  return true;
#undef BETTER
}

__attribute__((target("avx512f"))) static bool extreme_avx512(const float *x, int64_t n, bool want_max, int64_t *at) {
  return want_max ? extreme_avx512_as(x, n, at, true) : extreme_avx512_as(x, n, at, false);
}
#endif

static double lane_extreme_contig(const float *x, int64_t n, bool want_max, int64_t *at) {
#ifdef SL_VM_AVX512
  if (n >= 64 && n <= INT32_MAX && sl_vm_has_avx512() && extreme_avx512(x, n, want_max, at)) return (double)x[*at];
#endif
  bool nan;
  float m = extreme_contig(x, n, want_max, &nan);
  int64_t i = 0;
#if defined(__SSE2__)
  __m128 mv = _mm_set1_ps(m);
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(x + i);
    int k = _mm_movemask_ps(nan ? _mm_cmpunord_ps(v, v) : _mm_cmpeq_ps(v, mv));
    if (k) {
      i += __builtin_ctz((unsigned)k);
      break;
    }
  }
#endif
  if (nan)
    while (x[i] == x[i]) i++;
  else
    while (x[i] != m) i++;
  *at = i;
  return (double)x[i];
}

/* extreme of a lane: value and first index; NaN wins and stops the scan */
static double lane_extreme(const float *x, int64_t n, int64_t s, bool want_max, int64_t *at) {
  if (s == 1 && n > 0) return lane_extreme_contig(x, n, want_max, at);
  int64_t best = 0;
  float m = x[0];
  for (int64_t i = 1; i < n && m == m; i++) {
    float v = x[i * s];
    if (v != v || (want_max ? v > m : v < m)) {
      m = v;
      best = i;
    }
  }
  *at = best;
  return (double)m;
}

static double lane_norm(const float *x, int64_t n, int64_t s, double p) {
  if (p == 2) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a += (double)x[i * s] * (double)x[i * s];
    return sqrt(a);
  }
  if (isinf(p)) {
    double m = n ? fabs((double)x[0]) : 0;
    for (int64_t i = 1; i < n; i++) {
      double v = fabs((double)x[i * s]);
      if (v != v || (p > 0 ? v > m : v < m)) m = v;
      if (m != m) break;
    }
    return m;
  }
  double a = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = fabs((double)x[i * s]);
    a += p == 0 ? (v != 0) : p == 1 ? v : pow(v, p);
  }
  return p == 0 || p == 1 ? a : pow(a, 1.0 / p);
}

static double lane_logsumexp(const float *x, int64_t n, int64_t s) {
  if (n == 0) return -INFINITY;
  int64_t at;
  double m = lane_extreme(x, n, s, true, &at);
  if (m != m || isinf(m)) return m;
  double a = 0;
  for (int64_t i = 0; i < n; i++) a += exp((double)x[i * s] - m);
  return m + log(a);
}

/* Reduces lane j of the (n, s)-strided lane at x; contiguous (s == 1) sums
 * use the four partial sums. */
static double reduce_lane(sl_reduce_op op, const float *x, int64_t n, int64_t s, const sl_reduce_opts *o,
                          int64_t *at) {
  switch (op) {
  case SL_RSUM:
  case SL_RMEAN: {
    double a = 0;
    if (s == 1) a = sl_vsum4_f64(x, n);
    else
      for (int64_t i = 0; i < n; i++) a += (double)x[i * s];
    return op == SL_RSUM ? a : n ? a / (double)n : (double)NAN;
  }
  case SL_RPROD: {
    double a = 1;
    for (int64_t i = 0; i < n; i++) a *= (double)x[i * s];
    return a;
  }
  case SL_RVAR:
  case SL_RSTD: {
    if (n == 0) return (double)NAN;
    double sum = 0;
    if (s == 1) sum = sl_vsum4_f64(x, n);
    else
      for (int64_t i = 0; i < n; i++) sum += (double)x[i * s];
    double mean = sum / (double)n, ss = 0, c = 0;
    for (int64_t i = 0; i < n; i++) {
      double d = (double)x[i * s] - mean;
      ss += d * d;
      c += d;
    }
    double v = finish_var(ss, c, n, o->unbiased);
    return op == SL_RVAR ? v : sqrt(v);
  }
  case SL_RMAX:
  case SL_RARGMAX: return lane_extreme(x, n, s, true, at);
  case SL_RMIN:
  case SL_RARGMIN: return lane_extreme(x, n, s, false, at);
  case SL_RLOGSUMEXP: return lane_logsumexp(x, n, s);
  case SL_RNORM: return lane_norm(x, n, s, o->p);
  default: return (double)NAN;
  }
}

/* ---- column blocks: w adjacent columns of an (n, inner) slab ---- */

/* Column blocks are up to BLOCK wide: a reduction over the first dim of a
 * [rows x 1000] tensor then reads whole rows (one stream the prefetcher
 * follows) instead of 1 KB pieces 4 KB apart. Each column's order is the
 * same for any width, so the width changes no bit. */
#define BLOCK 1024

static void reduce_block(sl_reduce_op op, const float *x, int64_t n, int64_t inner, int w, const sl_reduce_opts *o,
                         double *out, int64_t *at) {
  switch (op) {
  case SL_RSUM:
  case SL_RMEAN:
  case SL_RVAR:
  case SL_RSTD: {
    double acc[BLOCK];
    for (int j = 0; j < w; j++) acc[j] = 0;
    sl_vcolsum_f64(acc, x, n, inner, w); /* row order per column */
    if (op == SL_RSUM) {
      memcpy(out, acc, (size_t)w * sizeof *out);
      return;
    }
    if (op == SL_RMEAN) {
      for (int j = 0; j < w; j++) out[j] = n ? acc[j] / (double)n : (double)NAN;
      return;
    }
    double ss[BLOCK], c[BLOCK];
    for (int j = 0; j < w; j++) {
      acc[j] = n ? acc[j] / (double)n : 0; /* the means */
      ss[j] = c[j] = 0;
    }
    for (int64_t i = 0; i < n; i++) {
      const float *r = x + i * inner;
      for (int j = 0; j < w; j++) {
        double d = (double)r[j] - acc[j];
        ss[j] += d * d;
        c[j] += d;
      }
    }
    for (int j = 0; j < w; j++) {
      double v = n ? finish_var(ss[j], c[j], n, o->unbiased) : (double)NAN;
      out[j] = op == SL_RVAR ? v : sqrt(v);
    }
    return;
  }
  case SL_RMAX:
  case SL_RMIN:
  case SL_RARGMAX:
  case SL_RARGMIN: {
    bool want_max = op == SL_RMAX || op == SL_RARGMAX;
    float m[BLOCK];
    for (int j = 0; j < w; j++) {
      m[j] = x[j];
      at[j] = 0;
    }
    for (int64_t i = 1; i < n; i++) {
      const float *r = x + i * inner;
      for (int j = 0; j < w; j++) {
        float v = r[j];
        bool take = m[j] == m[j] && (v != v || (want_max ? v > m[j] : v < m[j]));
        m[j] = take ? v : m[j];
        at[j] = take ? i : at[j];
      }
    }
    for (int j = 0; j < w; j++) out[j] = (double)m[j];
    return;
  }
  default: /* prod, logsumexp, norm: per column */
    for (int j = 0; j < w; j++) out[j] = reduce_lane(op, x + j, n, inner, o, &at[j]);
  }
}

typedef struct job {
  sl_reduce_op op;
  const float *x;
  float *y, *idx;
  int64_t outer, n, inner, bw; /* bw: column block width (inner > 1) */
  const sl_reduce_opts *o;
} job;

/* Rows per piece of a sum or mean of contiguous rows. */
#define ROWSUM_GROUP 8

static bool rowsum_path(const job *j) { return j->inner == 1 && (j->op == SL_RSUM || j->op == SL_RMEAN); }

/* Outputs [b, e) of outer * ceil(inner / bw) pieces (rows when inner == 1,
 * groups of ROWSUM_GROUP rows for a sum or mean of rows). */
static void reduce_range(const void *vj, size_t b, size_t e) {
  const job *j = vj;
  bool arg = j->op == SL_RARGMAX || j->op == SL_RARGMIN;
  if (rowsum_path(j)) {
    /* pieces are groups of ROWSUM_GROUP rows: sl_vrowsum_f64 sums eight
     * rows at a time and any rows left over one by one, 4x slower per row
     * (a split of 1000 rows into 16 pieces of 62-63 left 6-7 of them in
     * each piece: 2 threads took as long as 1) */
    b *= ROWSUM_GROUP;
    e = e * ROWSUM_GROUP < (size_t)j->outer ? e * ROWSUM_GROUP : (size_t)j->outer;
    double sums[64]; /* rows a batch at a time (a multiple of the group) */
    for (size_t r = b; r < e; r += 64) {
      int64_t m = (int64_t)(e - r < 64 ? e - r : 64);
      sl_vrowsum_f64(sums, j->x + (int64_t)r * j->n, m, j->n);
      for (int64_t k = 0; k < m; k++) {
        double v = j->op == SL_RSUM ? sums[k] : j->n ? sums[k] / (double)j->n : (double)NAN;
        j->y[(int64_t)r + k] = (float)v;
      }
    }
    return;
  }
  if (j->inner == 1) {
    for (size_t r = b; r < e; r++) {
      int64_t at = 0;
      double v = reduce_lane(j->op, j->x + (int64_t)r * j->n, j->n, 1, j->o, &at);
      j->y[r] = arg ? (float)at : (float)v;
      if (j->idx) j->idx[r] = (float)at;
    }
    return;
  }
  int64_t nblk = (j->inner + j->bw - 1) / j->bw;
  for (size_t p = b; p < e; p++) {
    int64_t o = (int64_t)p / nblk, j0 = ((int64_t)p % nblk) * j->bw;
    int w = (int)(j->inner - j0 < j->bw ? j->inner - j0 : j->bw);
    double out[BLOCK];
    int64_t at[BLOCK];
    reduce_block(j->op, j->x + o * j->n * j->inner + j0, j->n, j->inner, w, j->o, out, at);
    float *y = j->y + o * j->inner + j0;
    for (int k = 0; k < w; k++) y[k] = arg ? (float)at[k] : (float)out[k];
    if (j->idx)
      for (int k = 0; k < w; k++) j->idx[o * j->inner + j0 + k] = (float)at[k];
  }
}

static const sl_reduce_opts default_opts = {true, 2.0};

static bool needs_elements(sl_reduce_op op) {
  return op == SL_RMAX || op == SL_RMIN || op == SL_RARGMAX || op == SL_RARGMIN;
}

int sl_reduce(sl_reduce_op op, sl_tensor *y, sl_tensor *idx, const sl_tensor *x, int dim, const sl_reduce_opts *o) {
  if ((int)op < 0 || op >= SL_REDUCE_COUNT) return sl_fail(SL_EINVAL, "reduce: unknown op %d", (int)op);
  const char *name = reduce_names[op];
  int nd;
  int64_t shape[SL_MAX_DIMS];
  int st = sl_reduce_dim_shape(name, x, dim, false, &nd, shape);
  if (st) return st;
  int64_t n = x->shape[dim], outer = 1, inner = 1;
  for (int i = 0; i < dim; i++) outer *= x->shape[i];
  for (int i = dim + 1; i < x->ndim; i++) inner *= x->shape[i];
  char a[160], b[160];
  if (y->numel != outer * inner)
    return sl_fail(SL_ESHAPE, "%s: output %s should have %" PRId64 " elements (%s)", name,
                   sl_shape_str(y, a, sizeof a), outer * inner, sl_shape_str_raw(nd, shape, b, sizeof b));
  if (idx && idx->numel != y->numel)
    return sl_fail(SL_ESHAPE, "%s: index output %s does not match %s", name, sl_shape_str(idx, a, sizeof a),
                   sl_shape_str(y, b, sizeof b));
  if (n == 0 && needs_elements(op) && outer * inner > 0)
    return sl_fail(SL_EINVAL, "%s: dimension %d of %s is empty (nothing to reduce)", name, dim + 1,
                   sl_shape_str(x, a, sizeof a));
  if (y->data == x->data && x->numel) return sl_fail(SL_EINVAL, "%s: output may not alias the input", name);
  if (outer * inner == 0) return SL_OK;
  /* column blocks as wide as BLOCK, but at least two pieces when there is
   * one outer slab (one per thread for a reduction over the first dim) */
  int64_t nblk = (inner + BLOCK - 1) / BLOCK;
  if (outer == 1 && nblk == 1 && inner >= 128) nblk = 2;
  int64_t bw = ((inner + nblk - 1) / nblk + 15) & ~(int64_t)15;
  job j = {op, x->data, y->data, idx ? idx->data : NULL, outer, n, inner, bw, o ? o : &default_opts};
  size_t pieces = rowsum_path(&j) ? (size_t)((outer + ROWSUM_GROUP - 1) / ROWSUM_GROUP)
                 : inner == 1    ? (size_t)outer
                                 : (size_t)(outer * ((inner + bw - 1) / bw));
  /* pieces are whole outputs: the split changes no bit */
  sl_par_pieces(pieces, (size_t)x->numel, reduce_range, &j);
  return SL_OK;
}

int sl_reduce_all(sl_reduce_op op, const sl_tensor *x, const sl_reduce_opts *o, double *out, int64_t *index) {
  if ((int)op < 0 || op >= SL_REDUCE_COUNT) return sl_fail(SL_EINVAL, "reduce: unknown op %d", (int)op);
  if (x->numel == 0 && needs_elements(op))
    return sl_fail(SL_EINVAL, "%s: tensor is empty (nothing to reduce)", reduce_names[op]);
  int64_t at = 0;
  *out = reduce_lane(op, x->data, x->numel, 1, o ? o : &default_opts, &at);
  if (op == SL_RARGMAX || op == SL_RARGMIN) *out = (double)at;
  if (index) *index = at;
  return SL_OK;
}

/* ---- softmax ---- */

typedef struct smjob {
  const float *x;
  float *y;
  int64_t n, inner;
  bool log;
} smjob;

/* softmax: y = exp(x - max) / sum, or x - max - log(sum), along a lane.
 * exp is vmath's (<= 2 ulp); the sum is in double. */
/* Contiguous rows (s == 1) in groups of eight: per row the max without
 * early exit (a NaN anywhere makes the sum NaN, hence every output, as the
 * strided path does), then y = exp(x - max) (the bits of sl_vm_expf); then
 * the group's sums in double by sl_vrowsum_f64, which advances the eight
 * rows together (the sum of one row is a chain of dependent adds: alone it
 * left the adders idle) with the additions of sl_vsum4_f64; then the scale.
 * Each row's bits are those of the three steps done row by row. */
enum { SOFTMAX_GROUP = 8 };
static void softmax_rows(float *y, const float *x, int64_t rows, int64_t n, bool lg) {
  for (int64_t r0 = 0; r0 < rows; r0 += SOFTMAX_GROUP) {
    int64_t g = rows - r0 < SOFTMAX_GROUP ? rows - r0 : SOFTMAX_GROUP;
    float m[SOFTMAX_GROUP];
    bool bad[SOFTMAX_GROUP];
    double sum[SOFTMAX_GROUP];
    for (int64_t k = 0; k < g; k++) {
      const float *xr = x + (r0 + k) * n;
      float *yr = y + (r0 + k) * n;
      /* the max in SSE2 lanes (their order changes at most the sign of a
       * zero max, which x - m then maps to the same exp; with two zeros in
       * the row the sum is >= 2, so log(sum) != 0 and log_softmax's bits are
       * the same) */
      bool nan;
      m[k] = extreme_contig(xr, n, true, &nan);
      bad[k] = nan || m[k] == -INFINITY; /* NaN, or every entry -inf: PyTorch gives NaN */
      if (bad[k])
        for (int64_t i = 0; i < n; i++) yr[i] = NAN;
      else
        sl_vexp_shift_f32(yr, xr, m[k], (size_t)n);
    }
    sl_vrowsum_f64(sum, y + r0 * n, g, n);
    for (int64_t k = 0; k < g; k++) {
      if (bad[k]) continue;
      const float *xr = x + (r0 + k) * n;
      float *yr = y + (r0 + k) * n;
      if (lg) {
        float ls = (float)log(sum[k]);
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - m[k]) - ls;
      } else {
        float inv = (float)(1.0 / sum[k]);
        for (int64_t i = 0; i < n; i++) yr[i] *= inv;
      }
    }
  }
}

/* One lane of n elements at stride s > 1 */
static void softmax_lane(float *y, const float *x, int64_t n, int64_t s, bool lg) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i * s];
    m = v != v ? v : v > m ? v : m;
    if (m != m) break;
  }
  if (m != m || m == -INFINITY) { /* NaN, or every entry -inf: PyTorch gives NaN */
    for (int64_t i = 0; i < n; i++) y[i * s] = NAN;
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float e = sl_vm_expf(x[i * s] - m);
    sum += (double)e;
    if (!lg) y[i * s] = e;
  }
  if (lg) {
    float ls = (float)log(sum);
    for (int64_t i = 0; i < n; i++) y[i * s] = (x[i * s] - m) - ls;
  } else {
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i * s] *= inv;
  }
}

static void softmax_range(const void *vj, size_t b, size_t e) {
  const smjob *j = vj;
  if (j->inner == 1) { /* lanes are the contiguous rows b..e */
    softmax_rows(j->y + (int64_t)b * j->n, j->x + (int64_t)b * j->n, (int64_t)(e - b), j->n, j->log);
    return;
  }
  for (size_t l = b; l < e; l++) {
    int64_t o = (int64_t)l / j->inner, c = (int64_t)l % j->inner;
    int64_t off = o * j->n * j->inner + c;
    softmax_lane(j->y + off, j->x + off, j->n, j->inner, j->log);
  }
}

int sl_softmax(sl_tensor *y, const sl_tensor *x, int dim, bool log) {
  const char *name = log ? "log_softmax" : "softmax";
  char a[160], b[160];
  if (dim < 0 || dim >= x->ndim)
    return sl_fail(SL_ERANGE, "%s: dimension %d out of range 1..%d for %s", name, dim + 1, x->ndim,
                   sl_shape_str(x, a, sizeof a));
  if (y->numel != x->numel)
    return sl_fail(SL_ESHAPE, "%s: output %s does not match input %s", name, sl_shape_str(y, a, sizeof a),
                   sl_shape_str(x, b, sizeof b));
  int64_t n = x->shape[dim], outer = 1, inner = 1;
  for (int i = 0; i < dim; i++) outer *= x->shape[i];
  for (int i = dim + 1; i < x->ndim; i++) inner *= x->shape[i];
  if (x->numel == 0) return SL_OK;
  smjob j = {x->data, y->data, n, inner, log};
  size_t lanes = (size_t)(outer * inner);
  sl_par_pieces(lanes, (size_t)x->numel, softmax_range, &j); /* lanes are whole outputs */
  return SL_OK;
}
