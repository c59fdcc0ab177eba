/* Streaming-store loops (see stream.h). */
#include "stream.h"

#include <math.h>

#include "binary_apply.h"
#include "vmath.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define SL_STREAM_X86 1
#endif

bool sl_stream_ok(const float *y, size_t n) {
#ifdef SL_STREAM_X86
  return n >= SL_VM_STREAM_MIN && ((uintptr_t)y & 3) == 0 && sl_vm_has_avx512();
#else
  (void)y, (void)n;
  return false;
#endif
}

bool sl_stream_binary_op(sl_binary_op op) {
  return op == SL_ADD || op == SL_SUB || op == SL_MUL || op == SL_DIV || op == SL_MAXIMUM || op == SL_MINIMUM;
}

bool sl_stream_unary_op(sl_unary_op op) { return op == SL_ABS || op == SL_NEG; }

/* The scalar forms, for the partial lines: elementwise.c's (binary_apply.h). */
static float scalar_unary(sl_unary_op op, float x) { return op == SL_ABS ? fabsf(x) : -x; }

/* Floats before y's first 64-byte boundary (at most n). */
static int64_t head_of(const float *y, int64_t n) {
  int64_t h = (int64_t)((64 - ((uintptr_t)y & 63)) & 63) / (int64_t)sizeof *y;
  return h < n ? h : n;
}

#ifdef SL_STREAM_X86
#define T512 __attribute__((target("avx512f")))

/* maximum / minimum: a where a is NaN or a > b (a < b), else b: the select
 * of the scalar form (b wins ties and a NaN b). */
T512 static inline __m512 vmax(__m512 a, __m512 b) {
  __mmask16 k = _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(k, b, a);
}
T512 static inline __m512 vmin(__m512 a, __m512 b) {
  __mmask16 k = _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(k, b, a);
}

/* One loop per op and stride case: the op and the loads are constants. */
#define LOOP(EXPR, LA, LB)                                                                                          \
  for (; i + 16 <= n; i += 16) {                                                                                    \
    __m512 va = LA, vb = LB;                                                                                        \
    _mm512_stream_ps(y + i, EXPR);                                                                                  \
  }
#define CASES(EXPR)                                                                                                 \
  if (sa && sb) {                                                                                                   \
    LOOP(EXPR, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))                                                      \
  } else if (sa) {                                                                                                  \
    __m512 s = _mm512_set1_ps(b[0]);                                                                                \
    LOOP(EXPR, _mm512_loadu_ps(a + i), s)                                                                           \
  } else if (sb) {                                                                                                  \
    __m512 s = _mm512_set1_ps(a[0]);                                                                                \
    LOOP(EXPR, s, _mm512_loadu_ps(b + i))                                                                           \
  } else {                                                                                                          \
    __m512 s = _mm512_set1_ps(a[0]), t = _mm512_set1_ps(b[0]);                                                      \
    LOOP(EXPR, s, t)                                                                                                \
  }

T512 static int64_t binary_lines(sl_binary_op op, float *y, const float *a, int64_t sa, const float *b, int64_t sb,
                                 int64_t i, int64_t n) {
  switch (op) {
  case SL_ADD: CASES(_mm512_add_ps(va, vb)) break;
  case SL_SUB: CASES(_mm512_sub_ps(va, vb)) break;
  case SL_MUL: CASES(_mm512_mul_ps(va, vb)) break;
  case SL_DIV: CASES(_mm512_div_ps(va, vb)) break;
  case SL_MAXIMUM: CASES(vmax(va, vb)) break;
  case SL_MINIMUM: CASES(vmin(va, vb)) break;
  default: break;
  }
  return i;
}

/* A block of rows seen as one flat run of rows * n outputs (n >= 16): each
 * operand is full (its rows follow each other), a row repeated on every row,
 * or one value per row (a column, or a scalar when its row step is 0). */
enum { FLAT_FULL, FLAT_ROW, FLAT_COL };

/* The 16 values of an operand for outputs f .. f + 15, where f = r * n + j. A
 * vector that crosses into row r + 1 (j + 16 > n) takes its upper lanes from
 * that row: a repeated row's first values (an expanding load), a column's
 * next value. */
#define INLINE512 T512 static inline __attribute__((always_inline))
INLINE512 __m512 flat_load(const float *p, int kind, int64_t o, int64_t f, int64_t r, int64_t j, int64_t n) {
  if (kind == FLAT_FULL) return _mm512_loadu_ps(p + f);
  if (j + 16 <= n) return kind == FLAT_ROW ? _mm512_loadu_ps(p + j) : _mm512_set1_ps(p[r * o]);
  __mmask16 lo = (__mmask16)((1u << (n - j)) - 1); /* the lanes still in row r */
  if (kind == FLAT_ROW) return _mm512_mask_expandloadu_ps(_mm512_maskz_loadu_ps(lo, p + j), (__mmask16)~lo, p);
  return _mm512_mask_blend_ps(lo, _mm512_set1_ps(p[(r + 1) * o]), _mm512_set1_ps(p[r * o]));
}

INLINE512 __m512 apply16(sl_binary_op op, __m512 va, __m512 vb) {
  switch (op) {
  case SL_ADD: return _mm512_add_ps(va, vb);
  case SL_SUB: return _mm512_sub_ps(va, vb);
  case SL_MUL: return _mm512_mul_ps(va, vb);
  case SL_DIV: return _mm512_div_ps(va, vb);
  case SL_MAXIMUM: return vmax(va, vb);
  default: return vmin(va, vb);
  }
}

/* Full lines of the flat run from f (64-byte aligned in y, f < n) on;
 * returns where they end. op, ka and kb are constants in each copy (see
 * flat_lines): row by row, a tight loop over the vectors inside the row, then
 * the one vector that crosses into the next. */
INLINE512 int64_t flat_run(sl_binary_op op, int ka, int kb, float *y, const float *a, int64_t oa, const float *b,
                           int64_t ob, int64_t n, int64_t f, int64_t end) {
  int64_t r = 0, j = f;
  while (f + 16 <= end) {
    __m512 ca = ka == FLAT_COL ? _mm512_set1_ps(a[r * oa]) : _mm512_setzero_ps();
    __m512 cb = kb == FLAT_COL ? _mm512_set1_ps(b[r * ob]) : _mm512_setzero_ps();
    int64_t lim = end - f < n - j ? j + (end - f) : n;
    for (; j + 16 <= lim; j += 16, f += 16) {
      __m512 va = ka == FLAT_FULL ? _mm512_loadu_ps(a + f) : ka == FLAT_ROW ? _mm512_loadu_ps(a + j) : ca;
      __m512 vb = kb == FLAT_FULL ? _mm512_loadu_ps(b + f) : kb == FLAT_ROW ? _mm512_loadu_ps(b + j) : cb;
      _mm512_stream_ps(y + f, apply16(op, va, vb));
    }
    if (f + 16 > end) break;
    if (j < n) { /* the vector across rows r and r + 1 */
      __m512 va = flat_load(a, ka, oa, f, r, j, n), vb = flat_load(b, kb, ob, f, r, j, n);
      _mm512_stream_ps(y + f, apply16(op, va, vb));
      f += 16, j += 16;
    }
    j -= n, r++;
  }
  return f;
}

#define FLAT_KINDS(OP)                                                                                              \
  switch (ka * 3 + kb) {                                                                                            \
  case 0: return flat_run(OP, FLAT_FULL, FLAT_FULL, y, a, oa, b, ob, n, f, end);                                   \
  case 1: return flat_run(OP, FLAT_FULL, FLAT_ROW, y, a, oa, b, ob, n, f, end);                                    \
  case 2: return flat_run(OP, FLAT_FULL, FLAT_COL, y, a, oa, b, ob, n, f, end);                                    \
  case 3: return flat_run(OP, FLAT_ROW, FLAT_FULL, y, a, oa, b, ob, n, f, end);                                    \
  case 4: return flat_run(OP, FLAT_ROW, FLAT_ROW, y, a, oa, b, ob, n, f, end);                                     \
  case 5: return flat_run(OP, FLAT_ROW, FLAT_COL, y, a, oa, b, ob, n, f, end);                                     \
  case 6: return flat_run(OP, FLAT_COL, FLAT_FULL, y, a, oa, b, ob, n, f, end);                                    \
  case 7: return flat_run(OP, FLAT_COL, FLAT_ROW, y, a, oa, b, ob, n, f, end);                                     \
  default: return flat_run(OP, FLAT_COL, FLAT_COL, y, a, oa, b, ob, n, f, end);                                    \
  }

T512 static int64_t flat_lines(sl_binary_op op, float *y, const float *a, int ka, int64_t oa, const float *b, int kb,
                               int64_t ob, int64_t n, int64_t f, int64_t end) {
  switch (op) {
  case SL_ADD: FLAT_KINDS(SL_ADD)
  case SL_SUB: FLAT_KINDS(SL_SUB)
  case SL_MUL: FLAT_KINDS(SL_MUL)
  case SL_DIV: FLAT_KINDS(SL_DIV)
  case SL_MAXIMUM: FLAT_KINDS(SL_MAXIMUM)
  default: FLAT_KINDS(SL_MINIMUM)
  }
}

T512 static int64_t unary_lines(sl_unary_op op, float *y, const float *x, int64_t i, int64_t n) {
  __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  if (op == SL_ABS)
    for (; i + 16 <= n; i += 16)
      _mm512_stream_ps(y + i, _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(_mm512_loadu_ps(x + i)))));
  else
    for (; i + 16 <= n; i += 16)
      _mm512_stream_ps(y + i, _mm512_castsi512_ps(_mm512_xor_si512(sign, _mm512_castps_si512(_mm512_loadu_ps(x + i)))));
  return i;
}
#endif

void sl_stream_binary(sl_binary_op op, float *y, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
  int64_t i = 0, h = head_of(y, n);
  for (; i < h; i++) y[i] = sl_binary_apply(op, a[i * sa], b[i * sb]);
#ifdef SL_STREAM_X86
  i = binary_lines(op, y, a, sa, b, sb, i, n);
#endif
  for (; i < n; i++) y[i] = sl_binary_apply(op, a[i * sa], b[i * sb]);
}

#ifdef SL_STREAM_X86
static int flat_kind(int64_t s, int64_t o, int64_t n) {
  if (s == 1 && o == n) return FLAT_FULL;
  if (s == 1 && o == 0) return FLAT_ROW;
  return s == 0 ? FLAT_COL : -1;
}

/* Element f = r * n + j of an operand of the flat run. */
static inline float flat_at(const float *p, int kind, int64_t o, int64_t f, int64_t n) {
  return kind == FLAT_FULL ? p[f] : kind == FLAT_ROW ? p[f % n] : p[f / n * o];
}
#endif

bool sl_stream_binary_rows(sl_binary_op op, float *y, const float *a, int64_t sa, int64_t oa, const float *b,
                           int64_t sb, int64_t ob, int64_t n, int64_t rows) {
#ifdef SL_STREAM_X86
  int ka = flat_kind(sa, oa, n), kb = flat_kind(sb, ob, n);
  if (n < 16 || ka < 0 || kb < 0) return false;
  int64_t end = rows * n, f = 0, h = head_of(y, end);
  for (; f < h; f++) y[f] = sl_binary_apply(op, flat_at(a, ka, oa, f, n), flat_at(b, kb, ob, f, n));
  f = flat_lines(op, y, a, ka, oa, b, kb, ob, n, f, end);
  for (; f < end; f++) y[f] = sl_binary_apply(op, flat_at(a, ka, oa, f, n), flat_at(b, kb, ob, f, n));
  return true;
#else
  (void)op, (void)y, (void)a, (void)sa, (void)oa, (void)b, (void)sb, (void)ob, (void)n, (void)rows;
  return false;
#endif
}

void sl_stream_unary(sl_unary_op op, float *y, const float *x, int64_t n) {
  int64_t i = 0, h = head_of(y, n);
  for (; i < h; i++) y[i] = scalar_unary(op, x[i]);
#ifdef SL_STREAM_X86
  i = unary_lines(op, y, x, i, n);
#endif
  for (; i < n; i++) y[i] = scalar_unary(op, x[i]);
}

void sl_stream_fence(void) {
#ifdef SL_STREAM_X86
  _mm_sfence();
#endif
}
