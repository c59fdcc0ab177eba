/* Vectorizable kernels (see vmath.h). Every loop body is branch-free plain C
 * that GCC vectorizes at -O3 (set for this file in the Makefile); the public
 * loops are cloned for AVX-512, AVX2 and baseline x86-64 and picked at load
 * time; on aarch64 the same loops vectorize for NEON (docs/portability.md).
 * No FMA contraction (-std=c11) and no fast-math: each clone performs the
 * same IEEE operations in the same order, so results are bit-identical
 * across machines, clones and the two architectures.
 *
 * expm1/exp: k = rint(x/ln2), r = x - k ln2 (Cody-Waite, exact high part),
 * p = expm1(r) = r + r^2 q(r) with q a degree-4 polynomial fitted to the
 * relative error on |r| <= ln2/2 (bench/fit_expm1.py: < 0.25 * 2^-24), then
 * expm1(x) = 2^k (p + (1 - 2^-k)) and exp(x) = 2^k (1 + p): expm1 <= 1.66
 * ulp, exp <= 1.01 ulp over all floats. Accuracy against expm1/exp in double is checked over every
^ * float by `bench/expm1_check 1` and over a dense sample by tests/c/test_vmath.c. */
#include "vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "vmath_avx512.h"
#include "vmath_exp.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#ifndef SL_CLONE_LIST
#define SL_CLONE_LIST "avx512f", "avx2", "default"
#endif
#define SL_CLONES __attribute__((target_clones(SL_CLONE_LIST)))
#else
#define SL_CLONES
#endif
#define SL_INLINE static inline __attribute__((always_inline))

typedef union {
  float f;
  uint32_t u;
} fbits;

SL_INLINE float from_bits(uint32_t u) {
  fbits b;
  b.u = u;
  return b.f;
}

SL_INLINE uint32_t to_bits(float f) {
  fbits b;
  b.f = f;
  return b.u;
}

/* ---- streaming (non-temporal) stores for large outputs --------------------
 * An ordinary store to a line that is not in cache first reads the line
 * (read-for-ownership): a kernel writing 40 MB moves 80 MB for its output.
 * The bias fill (write-only) streams outputs of at least SL_VM_STREAM_MIN
 * floats with SSE2 non-temporal stores and fences once at the end: same
 * bytes, 22 -> 27 GB/s. The activation and dropout kernels keep ordinary
 * stores: they are compute-bound on one core, and computing blocks into an
 * L1 buffer then streaming them out measured 15-25 % slower
 * (docs/performance.md). Below the threshold the output stays in cache for
 * the next layer (training buffers are 0.25-2 MB). */

/* y[0..m) = b[0..m) with non-temporal stores (scalar head up to the first
 * 16-byte boundary and scalar tail). */
SL_INLINE void stream_copy(float *y, const float *b, size_t m) {
#if defined(__SSE2__)
  size_t i = 0;
  while (i < m && ((uintptr_t)(y + i) & 15) != 0) y[i] = b[i], i++;
  for (; i + 16 <= m; i += 16) {
    __m128 a0 = _mm_loadu_ps(b + i), a1 = _mm_loadu_ps(b + i + 4), a2 = _mm_loadu_ps(b + i + 8),
           a3 = _mm_loadu_ps(b + i + 12);
    _mm_stream_ps(y + i, a0);
    _mm_stream_ps(y + i + 4, a1);
    _mm_stream_ps(y + i + 8, a2);
    _mm_stream_ps(y + i + 12, a3);
  }
  for (; i + 4 <= m; i += 4) _mm_stream_ps(y + i, _mm_loadu_ps(b + i));
  for (; i < m; i++) y[i] = b[i];
#else
  memcpy(y, b, m * sizeof *y);
#endif
}

SL_INLINE void stream_fence(void) {
#if defined(__SSE2__)
  _mm_sfence(); /* streamed lines visible before any later store (and before the kernel returns) */
#endif
}

/* 2 AVX-512F, 1 AVX, 0 neither (x86-64 with GCC), for the kernels that
 * have hand-written forms. Threads may race to the first call: each finds
 * the same value, and relaxed atomics make the race defined. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
static int vm_isa(void) {
  static int isa_cached = -1;
  int isa = __atomic_load_n(&isa_cached, __ATOMIC_RELAXED);
  if (isa < 0) {
    __builtin_cpu_init();
    isa = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx") ? 1 : 0;
    __atomic_store_n(&isa_cached, isa, __ATOMIC_RELAXED);
  }
  return isa;
}

bool sl_vm_has_avx512(void) { return vm_isa() == 2; }
bool sl_vm_has_avx(void) { return vm_isa() >= 1; }
#else
bool sl_vm_has_avx512(void) { return false; }
bool sl_vm_has_avx(void) { return false; }
#endif

void sl_vstream_copy_f32(float *y, const float *x, size_t n) { stream_copy(y, x, n); }
void sl_vstream_fence(void) { stream_fence(); }

SL_INLINE bool stream_ok(const float *y, size_t n) {
#if defined(__SSE2__)
  return n >= SL_VM_STREAM_MIN && ((uintptr_t)y & 3) == 0;
#else
  (void)y, (void)n;
  return false;
#endif
}


/* k = rint(x / ln2) as float and int, r = x - k ln2, p = expm1(r). */
SL_INLINE float reduce_expm1(float x, int32_t *k) {
  float t = x * INV_LN2 + ROUND_MAGIC;
  *k = (int32_t)(to_bits(t) - to_bits(ROUND_MAGIC));
  float kf = t - ROUND_MAGIC;
  float r = (x - kf * LN2_HI) - kf * LN2_LO;
  /* expm1(r) = r + r^2 q(r), q of degree 4 fitted (weighted minimax, Lawson
   * iterations, bench/fit_expm1.py) to the relative error of expm1 on
   * |r| <= ln2/2 + 2e-4: < 0.25 * 2^-24 with these float coefficients
   * (Taylor to r^8 before: two more multiply-adds, 17 % of the SELU time) */
  float q = EXPM1_Q4;
  q = q * r + EXPM1_Q3;
  q = q * r + EXPM1_Q2;
  q = q * r + EXPM1_Q1;
  q = q * r + EXPM1_Q0;
  return r + (r * r) * q;
}

SL_INLINE float expm1_body(float x) {
  /* expm1 is -1 in float below ln(2^-25) and +inf above ln(FLT_MAX);
   * clamping keeps k in [-26, 128]. NaN passes the clamps and propagates. */
  float xc = x < -18.0f ? -18.0f : x;
  xc = xc > 88.8f ? 88.8f : xc;
  int32_t k;
  float p = reduce_expm1(xc, &k);
  int32_t kc = k > 30 ? 30 : k;                          /* 1 - 2^-k rounds to 1 from k = 25 on */
  float c = 1.0f - from_bits((uint32_t)(127 - kc) << 23); /* 1 - 2^-k */
  float v = p + c;
  float scale = from_bits((uint32_t)(k + 126) << 23); /* 2^(k-1): k = 128 stays finite */
  float y = (v * 2.0f) * scale;
  /* tiny x: expm1(x) = x (keeps the sign of -0); NaN: x itself */
  return (fabsf(x) < 0x1p-25f || x != x) ? x : y;
}

/* expm1_body for x in [-inf, 0] (no NaN): the same bits with fewer
 * operations, since k <= 0 needs neither the upper clamp nor the k cap. */
SL_INLINE float expm1_nonpos_body(float x) {
  float xc = x < -18.0f ? -18.0f : x;
  int32_t k;
  float p = reduce_expm1(xc, &k);
  float c = 1.0f - from_bits((uint32_t)(127 - k) << 23);
  float v = p + c;
  float y = v * from_bits((uint32_t)(k + 127) << 23); /* = (v * 2) * 2^(k-1): both exact, k in [-26, 0] */
  return x > -0x1p-25f ? x : y;
}

SL_INLINE float exp_body(float x) {
  /* exp underflows to 0 below -103.97 and overflows above 88.72 */
  float xc = x < -104.0f ? -104.0f : x;
  xc = xc > 88.8f ? 88.8f : xc;
  int32_t k;
  float p = reduce_expm1(xc, &k);
  float v = 1.0f + p;
  int32_t k1 = k / 2, k2 = k - k1; /* two normal scales: subnormal results round once */
  float y = (v * from_bits((uint32_t)(k1 + 127) << 23)) * from_bits((uint32_t)(k2 + 127) << 23);
  return x != x ? x : y;
}

/* exp_body for x in [-inf, 0] (no NaN): the same bits without the upper
 * clamp and the NaN test (ELU backward). */
SL_INLINE float exp_nonpos_body(float x) {
  float xc = x < -104.0f ? -104.0f : x;
  int32_t k;
  float p = reduce_expm1(xc, &k);
  float v = 1.0f + p;
  int32_t k1 = k / 2, k2 = k - k1;
  return (v * from_bits((uint32_t)(k1 + 127) << 23)) * from_bits((uint32_t)(k2 + 127) << 23);
}

float sl_vm_expm1f(float x) { return expm1_body(x); }
float sl_vm_expf(float x) { return exp_body(x); }

SL_CLONES void sl_vexpm1_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = expm1_body(x[i]);
}

/* tanh(x) = -t / (t + 2) with t = expm1(-2|x|) in (-1, 0], sign of x: no
 * cancellation near 0 (expm1 keeps its relative accuracy there) and no
 * overflow for large |x| (t -> -1, so tanh -> 1). A few ulp from glibc's
 * tanhf, and it vectorizes (glibc's does not: ~19 ns per element). */
SL_INLINE float tanh_body(float x) {
  float t = expm1_body(-2.0f * fabsf(x));
  return copysignf(-t / (t + 2.0f), x);
}

/* tanh_body's bits with fewer operations: -2|x| <= 0, where
 * expm1_nonpos_body gives expm1_body's bits; a NaN (which it does not take)
 * comes back quieted with its sign, as through expm1_body. Checked over all
 * 2^32 floats, NaNs included (bench/unary_bits_check). The backward keeps
 * tanh_body: GCC drops its copysign inside t * t, which gives a NaN
 * gradient a sign this body would not. */
SL_INLINE float tanh_fast_body(float x) {
  float a = -2.0f * fabsf(x);
  float t = expm1_nonpos_body(a != a ? 0.0f : a);
  return x != x ? x + x : copysignf(-t / (t + 2.0f), x);
}

SL_CLONES static void vtanh_loop(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = tanh_fast_body(x[i]);
}

void sl_vtanh_f32(float *y, const float *x, size_t n) {
#ifdef SL_VM_AVX512
  if (vm_isa() == 2) return sl_vtanh_f32_avx512(y, x, n);
#endif
  vtanh_loop(y, x, n);
}

SL_CLONES void sl_vtanh_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float t = tanh_body(x[i]);
    gx[i] = gy[i] * (1.0f - t * t);
  }
}

SL_CLONES static void vexp_loop(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = exp_body(x[i]);
}

void sl_vexp_f32(float *y, const float *x, size_t n) {
#ifdef SL_VM_AVX512
  if (vm_isa() == 2) return sl_vexp_f32_avx512(y, x, n);
#endif
  vexp_loop(y, x, n);
}

/* 1 / (1 + exp(-x)) in one pass (it was three: negate, exp, divide) */
SL_CLONES static void vsigmoid_loop(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + exp_body(-x[i]));
}

void sl_vsigmoid_f32(float *y, const float *x, size_t n) {
#ifdef SL_VM_AVX512
  if (vm_isa() == 2) return sl_vsigmoid_f32_avx512(y, x, n);
#endif
  vsigmoid_loop(y, x, n);
}

/* ---- log in double ------------------------------------------------------- */

SL_INLINE double from_bits64(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

SL_INLINE uint64_t to_bits64(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(z), z = (m-1)/(m+1),
 * |z| <= 0.1716, by its series to z^23 (truncation < 2^-60 relative), and
 * log x = e ln2_hi + (e ln2_lo + log m) (fdlibm's split of ln 2: e ln2_hi is
 * exact). The exponent becomes a double through the 2^52 trick, so every
 * step is a plain 64-bit integer or IEEE double op that each clone
 * vectorizes the same way. */
SL_INLINE double log_body(double x) {
  uint64_t u = to_bits64(x);
  double m = from_bits64((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  double e = from_bits64(0x4330000000000000ULL | (u >> 52)) - 0x1p52 - 1023.0;
  bool big = m > 0x1.6a09e667f3bcdp+0; /* sqrt(2) */
  m = big ? m * 0.5 : m;
  e = big ? e + 1.0 : e;
  double f = m - 1.0, z = f / (m + 1.0), z2 = z * z;
  double q = 1.0 / 23;
  q = q * z2 + 1.0 / 21;
  q = q * z2 + 1.0 / 19;
  q = q * z2 + 1.0 / 17;
  q = q * z2 + 1.0 / 15;
  q = q * z2 + 1.0 / 13;
  q = q * z2 + 1.0 / 11;
  q = q * z2 + 1.0 / 9;
  q = q * z2 + 1.0 / 7;
  q = q * z2 + 1.0 / 5;
  q = q * z2 + 1.0 / 3;
  /* log m = 2z + 2z^3 q = f - (f - 2z) + ...: written as f - z (f - 2 z^2 q)
   * (f = 2z + z f exactly in reals) keeps the leading term f exact */
  double lm = f - z * (f - 2.0 * z2 * q);
  double y = e * 0x1.62e42feep-1 + (e * 0x1.a39ef35793c76p-33 + lm);
  y = x == 0.0 ? -HUGE_VAL : y;
  y = x == HUGE_VAL ? x : y;
  return (x < 0.0 || x != x) ? (x != x ? x : (double)NAN) : y;
}

double sl_vm_log(double x) { return log_body(x); }

SL_CLONES void sl_vlog_f64(double *y, const double *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = log_body(x[i]);
}

/* ---- log-sum-exp of short rows ------------------------------------------ */

/* Shared by the two row kernels below: per row the max m (NaN skipped, like
 * fmaxf; mx may be NULL), e = exp(x - m) into tmp (no shift for an infinite
 * max) and the row sums of e in double. */
SL_INLINE void rows_shifted_exp(const float *x, int64_t rows, int64_t c, float *tmp, float *mx, double *sum) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float m = -INFINITY;
    for (int64_t j = 0; j < c; j++) m = xr[j] > m ? xr[j] : m;
    if (mx) mx[r] = m;
    float shift = m == -INFINITY || m == INFINITY ? 0.0f : m;
    for (int64_t j = 0; j < c; j++) tmp[r * c + j] = xr[j] - shift;
  }
  for (int64_t i = 0; i < rows * c; i++) tmp[i] = exp_body(tmp[i]);
  for (int64_t r = 0; r < rows; r++) {
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) s += (double)tmp[r * c + j];
    sum[r] = s;
  }
}

SL_INLINE void rows_lse_body(double *lse, const float *x, int64_t rows, int64_t c, float *tmp, float *mx,
                             double *sum) {
  rows_shifted_exp(x, rows, c, tmp, mx, sum);
  for (int64_t r = 0; r < rows; r++) sum[r] = log_body(sum[r]);
  for (int64_t r = 0; r < rows; r++)
    lse[r] = mx[r] == -INFINITY || mx[r] == INFINITY ? (double)mx[r] : (double)mx[r] + sum[r];
}

/* g = scale * e / sum(e) from the same pass as rows_lse_body */
SL_INLINE void rows_softmax_body(float *g, const float *x, int64_t rows, int64_t c, double scale, float *tmp,
                                 double *sum) {
  rows_shifted_exp(x, rows, c, tmp, NULL, sum);
  for (int64_t r = 0; r < rows; r++) {
    double k = scale / sum[r];
    for (int64_t j = 0; j < c; j++) g[r * c + j] = (float)((double)tmp[r * c + j] * k);
  }
}

SL_CLONES void sl_vrows_softmax_f32(float *g, const float *x, int64_t rows, int64_t c, double scale, float *tmp,
                                    double *sum) {
  if (c == 10) rows_softmax_body(g, x, rows, 10, scale, tmp, sum);
  else rows_softmax_body(g, x, rows, c, scale, tmp, sum);
}

SL_CLONES void sl_vrows_lse_f32(double *lse, const float *x, int64_t rows, int64_t c, float *tmp, float *mx,
                                double *sum) {
  if (c == 10) rows_lse_body(lse, x, rows, 10, tmp, mx, sum); /* 10 classes (MNIST family): unrolled rows */
  else rows_lse_body(lse, x, rows, c, tmp, mx, sum);
}

/* ---- activations ---------------------------------------------------------- */

/* x <= 0 ? x : 0 keeps -0 (its expm1 is -0, as PyTorch) and maps NaN to 0;
 * a NaN then takes the x * scale branch and stays NaN. */
SL_CLONES void sl_velu_forward_serial_f32(float *y, const float *x, size_t n, float negcoef, float scale) {
  for (size_t i = 0; i < n; i++) {
    float xi = x[i];
    float neg = expm1_nonpos_body(xi <= 0.0f ? xi : 0.0f) * negcoef;
    y[i] = xi <= 0.0f ? neg : xi * scale;
  }
}

SL_CLONES void sl_velu_backward_serial_f32(float *gx, const float *x, const float *gy, size_t n, float negcoef,
                                    float scale) {
  for (size_t i = 0; i < n; i++) {
    float xi = x[i];
    float neg = gy[i] * negcoef * exp_nonpos_body(xi <= 0.0f ? xi : 0.0f);
    gx[i] = xi <= 0.0f ? neg : gy[i] * scale;
  }
}

/* From the forward's result y (in-place modules, PyTorch's is_result
 * branch): gx = y <= 0 ? gy * (y + negcoef) : gy * scale. y <= 0 exactly
 * when x <= 0; a NaN takes the scale branch, as from the input. */
SL_CLONES void sl_velu_backward_result_serial_f32(float *gx, const float *y, const float *gy, size_t n,
                                                  float negcoef, float scale) {
  for (size_t i = 0; i < n; i++) gx[i] = y[i] <= 0.0f ? gy[i] * (y[i] + negcoef) : gy[i] * scale;
}

/* "x <= 0 ? 0 : x" so NaN propagates like torch.relu. */
SL_CLONES void sl_vrelu_forward_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] <= 0.0f ? 0.0f : x[i];
}

SL_CLONES void sl_vrelu_backward_f32(float *gx, const float *x, const float *gy, size_t n) {
  for (size_t i = 0; i < n; i++) gx[i] = x[i] <= 0.0f ? 0.0f : gy[i];
}

/* ---- dropout masks -------------------------------------------------------- */

/* lowbias32 (C. Wellons' hash-prospector): a bijection on 32 bits with low
 * avalanche bias; two rounds keyed by the two halves of the draw's key. */
SL_INLINE uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

SL_INLINE uint32_t mask_hash(uint32_t i, uint32_t k0, uint32_t k1) {
  return mix32(mix32(i * 0x9e3779b9U + k0) ^ k1);
}

/* Counters past 2^32 (huge tensors) use a different second key per block. */
SL_INLINE uint32_t block_key(uint64_t key, uint64_t block) {
  return (uint32_t)(key >> 32) ^ (uint32_t)(block * 0x632be5abU);
}

uint32_t sl_dropout_threshold(double p) {
  float pf = (float)p;
  if (!(pf > 0.0f)) return 0;
  if (pf >= 1.0f) return 1u << 24;
  return (uint32_t)ceil((double)pf * 16777216.0); /* exact: u >= pf <=> u*2^24 >= ceil(pf*2^24) */
}

bool sl_dropout_keep(uint64_t key, uint64_t i, uint32_t threshold) {
  return mask_hash((uint32_t)i, (uint32_t)key, block_key(key, i >> 32)) >> 8 >= threshold;
}

/* mask_hash(i, k0 + first*G, k1) = mask_hash(first + i, k0, k1) (G = the
 * golden-ratio step): the counter enters the hash only through i*G + k0. */
uint64_t sl_dropout_key_at(uint64_t key, uint64_t first) {
  uint32_t k0 = (uint32_t)key + (uint32_t)first * 0x9e3779b9U;
  return (uint64_t)block_key(key, first >> 32) << 32 | k0;
}

SL_CLONES void sl_vdropout_forward_f32(float *y, const float *x, size_t n, uint64_t key, uint32_t threshold,
                                       float scale, float shift, float dropped) {
  const uint32_t k0 = (uint32_t)key;
  for (uint64_t base = 0; base < n; base += (uint64_t)1 << 32) {
    const uint32_t k1 = block_key(key, base >> 32);
    size_t m = n - base < ((uint64_t)1 << 32) ? n - base : (size_t)1 << 32;
    float *yb = y + base;
    const float *xb = x + base;
    for (size_t i = 0; i < m; i++) {
      bool keep = mask_hash((uint32_t)i, k0, k1) >> 8 >= threshold;
      yb[i] = keep ? xb[i] * scale + shift : dropped;
    }
  }
}

SL_CLONES void sl_vdropout_backward_f32(float *gx, const float *gy, size_t n, uint64_t key, uint32_t threshold,
                                        float scale) {
  const uint32_t k0 = (uint32_t)key;
  for (uint64_t base = 0; base < n; base += (uint64_t)1 << 32) {
    const uint32_t k1 = block_key(key, base >> 32);
    size_t m = n - base < ((uint64_t)1 << 32) ? n - base : (size_t)1 << 32;
    float *gb = gx + base;
    const float *yb = gy + base;
    for (size_t i = 0; i < m; i++) {
      bool keep = mask_hash((uint32_t)i, k0, k1) >> 8 >= threshold;
      gb[i] = keep ? yb[i] * scale : 0.0f;
    }
  }
}

/* ---- bias ----------------------------------------------------------------- */

/* Large outputs: each row streamed straight from b (in L1). */
void sl_vrows_fill_f32(float *y, const float *b, int64_t rows, int64_t cols) {
  if (rows > 0 && cols > 0 && stream_ok(y, (size_t)rows * (size_t)cols)) {
    for (int64_t i = 0; i < rows; i++) stream_copy(y + i * cols, b, (size_t)cols);
    stream_fence();
    return;
  }
  for (int64_t i = 0; i < rows; i++) memcpy(y + i * cols, b, (size_t)cols * sizeof(float));
}

#define COLSUM_BLOCK 512

/* Rows are walked contiguously with a block of double accumulators. Eight
 * rows are added per pass over the accumulators, first as a float tree
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) and then once into the
 * double: one conversion and one accumulator load/store per eight elements
 * (this loop was bound by the per-element conversions: 14 -> ~19 GB/s from
 * memory). The grouping is fixed (row 8k..8k+7, remainder one by one), so
 * the bits depend only on the shape, never on threads or the CPU. The float
 * tree adds at most 3 roundings of 2^-24 per group: PyTorch sums in float. */
SL_CLONES void sl_vcolsum_acc_f32(float *gb, const float *gy, int64_t rows, int64_t cols) {
  double acc[COLSUM_BLOCK];
  for (int64_t j0 = 0; j0 < cols; j0 += COLSUM_BLOCK) {
    int64_t w = cols - j0 < COLSUM_BLOCK ? cols - j0 : COLSUM_BLOCK;
    for (int64_t j = 0; j < w; j++) acc[j] = 0.0;
    int64_t i = 0;
    for (; i + 8 <= rows; i += 8) {
      const float *r0 = gy + i * cols + j0, *r1 = r0 + cols, *r2 = r1 + cols, *r3 = r2 + cols, *r4 = r3 + cols,
                  *r5 = r4 + cols, *r6 = r5 + cols, *r7 = r6 + cols;
      for (int64_t j = 0; j < w; j++) {
        float s = ((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]));
        acc[j] += (double)s;
      }
    }
    for (; i < rows; i++) {
      const float *r = gy + i * cols + j0;
      for (int64_t j = 0; j < w; j++) acc[j] += (double)r[j];
    }
    for (int64_t j = 0; j < w; j++) gb[j0 + j] += (float)acc[j];
  }
}

/* rows prefetched ahead by sl_vcolsum_f64: [10000 x 1000] over dim 1 at 2
 * threads 0.69-0.75 -> 0.54-0.56 ms (8 rows ahead: no better) */
enum { PF_ROWS = 4 };
/* acc[j] += x[i * stride + j] for rows i = 0..rows-1 in order, four rows
 * per pass over acc (the same additions in the same order per column as
 * one row at a time). Cloned so that AVX-512 converts and adds eight
 * doubles per instruction: the column reductions of reduce.c were bound by
 * SSE2's two. */
SL_CLONES void sl_vcolsum_f64(double *acc, const float *x, int64_t rows, int64_t stride, int64_t w) {
  /* Rows of a slab bigger than the caches come from memory as runs of w
   * floats a page or more apart, too short for the prefetchers: the rows
   * PF_ROWS ahead are asked for by hand. A slab that fits in the caches
   * skips it (the prefetches alone cost 40 % there). */
  const bool pf = rows * stride >= (int64_t)1 << 21;
  int64_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float *r0 = x + i * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
    if (pf && i + 4 + PF_ROWS <= rows)
      for (int64_t k = 4; k < 4 + PF_ROWS; k++)
        for (int64_t j = 0; j < w; j += 16) __builtin_prefetch(r0 + k * stride + j, 0, 3);
    for (int64_t j = 0; j < w; j++) acc[j] = (((acc[j] + (double)r0[j]) + (double)r1[j]) + (double)r2[j]) + (double)r3[j];
  }
  for (; i < rows; i++) {
    const float *r = x + i * stride;
    for (int64_t j = 0; j < w; j++) acc[j] += (double)r[j];
  }
}

/* One row in four double partial sums (element i into sum i mod 4),
 * combined (s0 + s1) + (s2 + s3). */
SL_INLINE double row_sum4(const float *x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += (double)x[i];
    s1 += (double)x[i + 1];
    s2 += (double)x[i + 2];
    s3 += (double)x[i + 3];
  }
  for (; i < n; i++) s0 += (double)x[i];
  return (s0 + s1) + (s2 + s3);
}

double sl_vsum4_f64(const float *x, int64_t n) { return row_sum4(x, n); }

typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

SL_CLONES static void vexp_shift_loop(float *y, const float *x, float m, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = exp_body(x[i] - m);
}

void sl_vexp_shift_f32(float *y, const float *x, float m, size_t n) {
#ifdef SL_VM_AVX512
  if (vm_isa() == 2) return sl_vexp_shift_f32_avx512(y, x, m, n);
#endif
  vexp_shift_loop(y, x, m, n);
}

/* out[r] = row_sum4 of row r (rows of n floats, contiguous). Eight rows
 * advance together, each row's four partial sums one 4-double vector
 * (GCC's vector extension: one ymm in the AVX clones, two xmm in SSE2):
 * every row is one chain of dependent adds, and eight independent chains
 * keep the adders busy. The same additions per row, so the same bits. */
SL_CLONES static void rowsum_vec(double *out, const float *x, int64_t rows, int64_t n) {
  enum { R = 8 };
  int64_t r = 0;
  for (; r + R <= rows && n >= 4; r += R) {
    const float *xr = x + r * n;
    v4d a[R];
    for (int k = 0; k < R; k++) a[k] = (v4d){0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < R; k++) {
        v4f t;
        memcpy(&t, xr + k * n + i, sizeof t);
        a[k] += __builtin_convertvector(t, v4d);
      }
    for (int k = 0; k < R; k++) {
      double s0 = a[k][0];
      for (int64_t t = i; t < n; t++) s0 += (double)xr[k * n + t];
      out[r + k] = (s0 + a[k][1]) + (a[k][2] + a[k][3]);
    }
  }
  for (; r < rows; r++) out[r] = row_sum4(x + r * n, n);
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_ROWSUM_X86 1
/* The same sums with intrinsics: GCC 12 lowers __builtin_convertvector of 4
 * floats to 4 doubles as two 2-wide conversions through the stack (0.12 ms
 * for [1000 x 1000] at one thread, whatever the clone). vcvtps2pd does it in
 * one instruction: AVX 4 doubles per row (0.082 ms), AVX-512 two rows per
 * 8-double vector (0.068 ms). Lanes 0-3 (4-7) are the four partial sums of
 * one row, each taking its elements i = lane mod 4 in increasing order: the
 * additions of row_sum4, so its bits. */
__attribute__((target("avx512f"))) static void rowsum_avx512(double *out, const float *x, int64_t rows, int64_t n) {
  enum { R = 8 };
  int64_t r = 0;
  for (; r + R <= rows; r += R) {
    const float *xr = x + r * n;
    __m512d a[R / 2];
    for (int k = 0; k < R / 2; k++) a[k] = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < R / 2; k++) {
        __m256 t = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(xr + 2 * k * n + i)),
                                        _mm_loadu_ps(xr + (2 * k + 1) * n + i), 1);
        a[k] = _mm512_add_pd(a[k], _mm512_cvtps_pd(t));
      }
    for (int k = 0; k < R; k++) {
      double l8[8];
      _mm512_storeu_pd(l8, a[k / 2]);
      const double *l = l8 + 4 * (k % 2);
      double s0 = l[0];
      for (int64_t t = i; t < n; t++) s0 += (double)xr[k * n + t];
      out[r + k] = (s0 + l[1]) + (l[2] + l[3]);
    }
  }
  for (; r < rows; r++) out[r] = row_sum4(x + r * n, n);
}

__attribute__((target("avx"))) static void rowsum_avx(double *out, const float *x, int64_t rows, int64_t n) {
  enum { R = 8 };
  int64_t r = 0;
  for (; r + R <= rows; r += R) {
    const float *xr = x + r * n;
    __m256d a[R];
    for (int k = 0; k < R; k++) a[k] = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < R; k++) a[k] = _mm256_add_pd(a[k], _mm256_cvtps_pd(_mm_loadu_ps(xr + k * n + i)));
    for (int k = 0; k < R; k++) {
      double l[4];
      _mm256_storeu_pd(l, a[k]);
      double s0 = l[0];
      for (int64_t t = i; t < n; t++) s0 += (double)xr[k * n + t];
      out[r + k] = (s0 + l[1]) + (l[2] + l[3]);
    }
  }
  for (; r < rows; r++) out[r] = row_sum4(x + r * n, n);
}
#endif

void sl_vrowsum_f64(double *out, const float *x, int64_t rows, int64_t n) {
#ifdef SL_ROWSUM_X86
  int isa = vm_isa();
  if (isa == 2) return rowsum_avx512(out, x, rows, n);
  if (isa == 1) return rowsum_avx(out, x, rows, n);
#endif
  rowsum_vec(out, x, rows, n);
}

/* ---- optimizers ----------------------------------------------------------- */

/* The flags are constants at every call site below, so each variant
 * compiles to its own branch-free loop. */
SL_INLINE void sgd_loop(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom, float damp1,
                        bool has_wd, bool has_buf, bool nesterov, bool first) {
  for (size_t i = 0; i < n; i++) {
    float d = g[i];
    if (has_wd) d = d + wd * p[i];
    if (has_buf) {
      float b = first ? d : buf[i] * mom;
      if (!first) b = b + damp1 * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    p[i] = p[i] + (-lr) * d;
  }
}

SL_CLONES void sl_vsgd_serial_f32(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom,
                           float damp1, bool nesterov, bool first) {
  bool w = wd != 0.0f;
  if (!buf) {
    if (w) sgd_loop(p, g, NULL, n, lr, wd, mom, damp1, true, false, false, false);
    else sgd_loop(p, g, NULL, n, lr, wd, mom, damp1, false, false, false, false);
  } else if (first) {
    if (w && nesterov) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, true, true, true, true);
    else if (w) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, true, true, false, true);
    else if (nesterov) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, false, true, true, true);
    else sgd_loop(p, g, buf, n, lr, wd, mom, damp1, false, true, false, true);
  } else {
    if (w && nesterov) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, true, true, true, false);
    else if (w) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, true, true, false, false);
    else if (nesterov) sgd_loop(p, g, buf, n, lr, wd, mom, damp1, false, true, true, false);
    else sgd_loop(p, g, buf, n, lr, wd, mom, damp1, false, true, false, false);
  }
}

SL_INLINE void adam_loop(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd, float b1,
                         float b2, float one_b1, float one_b2, float bc2_sqrt, float eps, float neg_step,
                         bool decay, bool has_wd) {
  for (size_t i = 0; i < n; i++) {
    float gi = g[i];
    float pi = p[i];
    if (decay) pi = pi * decay_mul;
    if (has_wd) gi = gi + wd * pi;
    float mi = m[i] * b1 + one_b1 * gi;
    float vi = v[i] * b2 + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps; /* -fno-math-errno for this file: a plain vsqrtps */
    p[i] = pi + neg_step * (mi / denom);
  }
}

SL_CLONES void sl_vadam_serial_f32(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd,
                            float b1, float b2, float one_b1, float one_b2, float bc2_sqrt, float eps,
                            float neg_step) {
  bool d = decay_mul != 1.0f, w = wd != 0.0f;
  if (d && w) adam_loop(p, g, m, v, n, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step, true, true);
  else if (d) adam_loop(p, g, m, v, n, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step, true, false);
  else if (w) adam_loop(p, g, m, v, n, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step, false, true);
  else adam_loop(p, g, m, v, n, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step, false, false);
}

/* ---- two-core split of the memory-bound loops ------------------------------ */

/* Large arrays are cut into pieces that this thread and the pool's helper
 * claim (parallel.h); elementwise kernels give the same bits however the
 * array is cut. */
typedef struct elu_args {
  float *out;
  const float *x, *gy;
  float negcoef, scale;
} elu_args;

static void elu_fwd_range(const void *c, size_t b, size_t e) {
  const elu_args *a = c;
  sl_velu_forward_serial_f32(a->out + b, a->x + b, e - b, a->negcoef, a->scale);
}

static void elu_bwd_range(const void *c, size_t b, size_t e) {
  const elu_args *a = c;
  sl_velu_backward_serial_f32(a->out + b, a->x + b, a->gy + b, e - b, a->negcoef, a->scale);
}

void sl_velu_forward_f32(float *y, const float *x, size_t n, float negcoef, float scale) {
  elu_args a = {y, x, NULL, negcoef, scale};
  sl_par_for(n, elu_fwd_range, &a);
}

void sl_velu_backward_f32(float *gx, const float *x, const float *gy, size_t n, float negcoef, float scale) {
  elu_args a = {gx, x, gy, negcoef, scale};
  sl_par_for(n, elu_bwd_range, &a);
}

static void elu_bwd_result_range(const void *c, size_t b, size_t e) {
  const elu_args *a = c;
  sl_velu_backward_result_serial_f32(a->out + b, a->x + b, a->gy + b, e - b, a->negcoef, a->scale);
}

void sl_velu_backward_result_f32(float *gx, const float *y, const float *gy, size_t n, float negcoef, float scale) {
  elu_args a = {gx, y, gy, negcoef, scale};
  sl_par_for(n, elu_bwd_result_range, &a);
}

typedef struct sgd_args {
  float *p, *buf;
  const float *g;
  float lr, wd, mom, damp1;
  bool nesterov, first;
} sgd_args;

static void sgd_range(const void *c, size_t b, size_t e) {
  const sgd_args *a = c;
  sl_vsgd_serial_f32(a->p + b, a->g + b, a->buf ? a->buf + b : NULL, e - b, a->lr, a->wd, a->mom, a->damp1,
                     a->nesterov, a->first);
}

void sl_vsgd_f32(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom, float damp1,
                 bool nesterov, bool first) {
  sgd_args a = {p, buf, g, lr, wd, mom, damp1, nesterov, first};
  sl_par_for(n, sgd_range, &a);
}

typedef struct adam_args {
  float *p, *m, *v;
  const float *g;
  float decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step;
} adam_args;

static void adam_range(const void *c, size_t b, size_t e) {
  const adam_args *a = c;
  sl_vadam_serial_f32(a->p + b, a->g + b, a->m + b, a->v + b, e - b, a->decay_mul, a->wd, a->b1, a->b2, a->one_b1,
                      a->one_b2, a->bc2_sqrt, a->eps, a->neg_step);
}

void sl_vadam_f32(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd, float b1,
                  float b2, float one_b1, float one_b2, float bc2_sqrt, float eps, float neg_step) {
  adam_args a = {p, m, v, g, decay_mul, wd, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step};
  sl_par_for(n, adam_range, &a);
}

static void zero_range(const void *c, size_t b, size_t e) {
  float *x = (float *)(uintptr_t)c;
  memset(x + b, 0, (e - b) * sizeof(float));
}

void sl_vzero_f32(float *x, size_t n) { sl_par_for(n, zero_range, (const void *)x); }
