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
