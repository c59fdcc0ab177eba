/* Vectorizable kernels (see vmath.h). Every loop body is branch-free plain C
 * that GCC vectorizes at -O3 (set for this file in the Makefile); the public
 * loops are cloned for AVX-512, AVX2 and baseline x86-64 and picked at load
 * time. No FMA contraction (-std=c11) and no fast-math: each clone performs
 * the same IEEE operations in the same order, so results are bit-identical
 * across machines and clones.
 *
 * expm1/exp: k = rint(x/ln2), r = x - k ln2 (Cody-Waite, exact high part),
 * p = expm1(r) by its Taylor series to r^8 on |r| <= ln2/2 (truncation
 * < 2^-30 relative), then expm1(x) = 2^k (p + (1 - 2^-k)) and exp(x) =
 * 2^k (1 + p). Accuracy against expm1/exp in double is checked over every
^ * float by `bench/expm1_check 1` and over a dense sample by tests/c/test_vmath.c. */
#include "vmath.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"

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

#define LN2_HI 0x1.62e4p-1f      /* 14 significant bits: k * LN2_HI is exact for |k| <= 1024 */
#define LN2_LO 0x1.7f7d1cf8p-20f /* ln 2 - LN2_HI */
#define INV_LN2 0x1.715476p+0f
#define ROUND_MAGIC 0x1.8p23f /* adding it rounds to an integer (nearest even) */

/* k = rint(x / ln2) as float and int, r = x - k ln2, p = expm1(r). */
SL_INLINE float reduce_expm1(float x, int32_t *k) {
  float t = x * INV_LN2 + ROUND_MAGIC;
  *k = (int32_t)(to_bits(t) - to_bits(ROUND_MAGIC));
  float kf = t - ROUND_MAGIC;
  float r = (x - kf * LN2_HI) - kf * LN2_LO;
  /* Taylor coefficients 1/2! .. 1/8! */
  float q = 0x1.a01a02p-16f;            /* 1/8! */
  q = q * r + 0x1.a01a02p-13f;          /* 1/7! */
  q = q * r + 0x1.6c16c2p-10f;          /* 1/6! */
  q = q * r + 0x1.111112p-7f;           /* 1/5! */
  q = q * r + 0x1.555556p-5f;           /* 1/4! */
  q = q * r + 0x1.555556p-3f;           /* 1/3! */
  q = q * r + 0.5f;
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
  float y = (v * 2.0f) * from_bits((uint32_t)(k + 126) << 23);
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

float sl_vm_expm1f(float x) { return expm1_body(x); }
float sl_vm_expf(float x) { return exp_body(x); }

SL_CLONES void sl_vexpm1_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = expm1_body(x[i]);
}

SL_CLONES void sl_vexp_f32(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = exp_body(x[i]);
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
    float neg = gy[i] * negcoef * exp_body(xi <= 0.0f ? xi : 0.0f);
    gx[i] = xi <= 0.0f ? neg : gy[i] * scale;
  }
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

void sl_vrows_fill_f32(float *y, const float *b, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++) memcpy(y + i * cols, b, (size_t)cols * sizeof(float));
}

#define COLSUM_BLOCK 512

/* Rows are walked contiguously with a block of double accumulators; each
 * column is still summed from row 0 to row rows-1. */
SL_CLONES void sl_vcolsum_acc_f32(float *gb, const float *gy, int64_t rows, int64_t cols) {
  double acc[COLSUM_BLOCK];
  for (int64_t j0 = 0; j0 < cols; j0 += COLSUM_BLOCK) {
    int64_t w = cols - j0 < COLSUM_BLOCK ? cols - j0 : COLSUM_BLOCK;
    for (int64_t j = 0; j < w; j++) acc[j] = 0.0;
    for (int64_t i = 0; i < rows; i++) {
      const float *r = gy + i * cols + j0;
      for (int64_t j = 0; j < w; j++) acc[j] += (double)r[j];
    }
    for (int64_t j = 0; j < w; j++) gb[j0 + j] += (float)acc[j];
  }
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

/* Off by default: on the 2-core VM these loops are memory-bound and the
 * split measured no faster (docs/performance.md). SELUT_SPLIT_MIN=<elements>
 * in the environment turns it on (e.g. 65536), read once at first use.
 * With 2+ BLAS threads, loops over >= that many elements are cut into chunks
 * (16 at most, >= 16384 elements, 64-byte aligned) that this thread and one
 * helper thread claim from a shared counter, so a helper that the OS has not
 * scheduled yet (a busy machine) costs nothing: the caller just takes the
 * chunks itself. Elementwise kernels give the same bits however the array is
 * cut. The helper is the library's only global state besides OpenBLAS's
 * pool: started on first use, it spins briefly after a job (the next one
 * follows within microseconds during training), then sleeps on a condition
 * variable. One job at a time: a caller finding the pool busy runs serially. */
#define PAR_CHUNK_MIN 16384
#define PAR_MAX_CHUNKS 16
#define SPIN_ROUNDS 2000

typedef void (*range_fn)(const void *ctx, size_t b, size_t e);

/* job word: generation (24 bits) | chunk count (20 bits) | next chunk (20 bits) */
#define JOB(gen, nch, next) (((uint64_t)(gen) << 40) | ((uint64_t)(nch) << 20) | (uint64_t)(next))
#define JOB_GEN(w) ((unsigned)((w) >> 40))
#define JOB_NCH(w) ((unsigned)(((w) >> 20) & 0xfffff))
#define JOB_NEXT(w) ((unsigned)((w)&0xfffff))

static pthread_mutex_t par_busy = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_cv = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t par_job;
static atomic_uint par_done; /* chunks finished in the current job */
static atomic_int par_sleeping;
static range_fn par_fn; /* written before the job word is published, stable until it is done */
static const void *par_ctx;
static size_t par_n, par_chunk;
static int par_state; /* 0 not started, 1 running, -1 could not start */
static _Atomic size_t par_min; /* 0: SELUT_SPLIT_MIN not read yet */

static size_t split_min(void) {
  size_t m = atomic_load_explicit(&par_min, memory_order_relaxed);
  if (m) return m;
  const char *e = getenv("SELUT_SPLIT_MIN");
  char *end = NULL;
  unsigned long long v = e ? strtoull(e, &end, 10) : 0;
  m = e && end != e && v >= 1024 ? (size_t)v : SIZE_MAX;
  atomic_store_explicit(&par_min, m, memory_order_relaxed);
  return m;
}

/* Claims the next chunk of job `gen`; 0 when the job is over or replaced. */
static int par_claim(unsigned gen, unsigned *idx) {
  uint64_t w = atomic_load_explicit(&par_job, memory_order_acquire);
  for (;;) {
    if (JOB_GEN(w) != gen || JOB_NEXT(w) >= JOB_NCH(w)) return 0;
    if (atomic_compare_exchange_weak_explicit(&par_job, &w, w + 1, memory_order_acq_rel, memory_order_acquire)) {
      *idx = JOB_NEXT(w);
      return 1;
    }
  }
}

static void par_run_chunks(unsigned gen) {
  unsigned i;
  while (par_claim(gen, &i)) {
    size_t b = (size_t)i * par_chunk, e = b + par_chunk < par_n ? b + par_chunk : par_n;
    par_fn(par_ctx, b, e);
    atomic_fetch_add_explicit(&par_done, 1, memory_order_release);
  }
}

static void *par_worker(void *arg) {
  (void)arg;
  unsigned seen = 0;
  for (;;) {
    int spins = 0;
    while (JOB_GEN(atomic_load(&par_job)) == seen) {
      if (++spins < SPIN_ROUNDS) {
        sched_yield();
        continue;
      }
      pthread_mutex_lock(&par_mu);
      atomic_store(&par_sleeping, 1);
      while (JOB_GEN(atomic_load(&par_job)) == seen) pthread_cond_wait(&par_cv, &par_mu);
      atomic_store(&par_sleeping, 0);
      pthread_mutex_unlock(&par_mu);
    }
    seen = JOB_GEN(atomic_load(&par_job));
    par_run_chunks(seen);
  }
  return NULL;
}

static void parallel_for(size_t n, range_fn fn, const void *ctx) {
  if (n < split_min() || par_state < 0 || sl_get_num_threads() < 2 || pthread_mutex_trylock(&par_busy) != 0) {
    fn(ctx, 0, n);
    return;
  }
  if (par_state == 0) {
    pthread_t t;
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_create(&t, &attr, par_worker, NULL) == 0;
    par_state = ok ? 1 : -1;
    if (!ok) {
      pthread_mutex_unlock(&par_busy);
      fn(ctx, 0, n);
      return;
    }
  }
  size_t chunk = (n + PAR_MAX_CHUNKS - 1) / PAR_MAX_CHUNKS;
  if (chunk < PAR_CHUNK_MIN) chunk = PAR_CHUNK_MIN;
  chunk = (chunk + 15) & ~(size_t)15; /* chunk borders on 64-byte boundaries */
  unsigned nch = (unsigned)((n + chunk - 1) / chunk);
  par_fn = fn, par_ctx = ctx, par_n = n, par_chunk = chunk;
  atomic_store_explicit(&par_done, 0, memory_order_relaxed);
  unsigned gen = (JOB_GEN(atomic_load(&par_job)) + 1) & 0xffffff;
  atomic_store(&par_job, JOB(gen, nch, 0)); /* publishes the fields above */
  if (atomic_load(&par_sleeping)) {
    pthread_mutex_lock(&par_mu);
    pthread_cond_signal(&par_cv);
    pthread_mutex_unlock(&par_mu);
  }
  par_run_chunks(gen);
  while (atomic_load_explicit(&par_done, memory_order_acquire) != nch) sched_yield(); /* a chunk in the helper */
  pthread_mutex_unlock(&par_busy);
}

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
  parallel_for(n, elu_fwd_range, &a);
}

void sl_velu_backward_f32(float *gx, const float *x, const float *gy, size_t n, float negcoef, float scale) {
  elu_args a = {gx, x, gy, negcoef, scale};
  parallel_for(n, elu_bwd_range, &a);
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
  parallel_for(n, sgd_range, &a);
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
  parallel_for(n, adam_range, &a);
}

static void zero_range(const void *c, size_t b, size_t e) {
  float *x = (float *)(uintptr_t)c;
  memset(x + b, 0, (e - b) * sizeof(float));
}

void sl_vzero_f32(float *x, size_t n) { parallel_for(n, zero_range, (const void *)x); }
