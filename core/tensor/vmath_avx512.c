/* AVX-512 forms of vmath.c's exp, sigmoid and tanh (see vmath_avx512.h).
 *
 * GCC's AVX-512 clone of the portable loops spends about 45 instructions
 * per 16 floats on exp (0.30 ns per float at one thread, in cache): it
 * divides k by 2 with a sign fix-up, clamps through compare masks and
 * selects twice. Written with intrinsics, the same operations take 33
 * (0.25 ns), and a block of 16 inputs that all lie where exp is a normal
 * float (EXP_NORMAL_LO..HI, nearly every input in practice) needs none of
 * the clamps, the NaN select or the split scale: 24 instructions, 0.16 ns.
 * That moves the three ops from compute-bound to memory-bound at 10^7
 * floats on two cores.
 *
 * Same bits as the portable loops, input by input:
 *  - every float operation is the same IEEE operation on the same operands
 *    in the same order (no FMA: -std=c11 keeps -ffp-contract=off, and the
 *    intrinsics are plain vector multiplies and adds);
 *  - clamps: max(lo, x) and min(hi, x) return x when x is NaN (the second
 *    operand), as `x < lo ? lo : x` does;
 *  - the scale: exp_body multiplies by 2^(k/2) then 2^(k - k/2). Both
 *    factors are normal for every clamped k (-150..128) and v 2^k1 is
 *    exact, so only the second product rounds, and it rounds v 2^k whatever
 *    the split: k >> 1 (floor) splits as well as k / 2 (truncation), and
 *    adding k1 to v's exponent field is the exact product v 2^k1;
 *  - in the fast path, v 2^k is normal, so adding k to v's exponent field
 *    is the exact product; k is rounded to an integer by one roundscale
 *    (nearest even), which equals adding and subtracting the magic 1.5 2^23
 *    for |k| < 2^22: a shorter dependency chain, which is what limits these
 *    loops (their inputs wait in the scheduler: removing instructions
 *    elsewhere gained nothing, shortening the chain did);
 *  - tanh's fast path (|x| <= 9) skips the small-argument select: there it
 *    returns what the polynomial gives anyway (see tanh16_mid).
 * bench/unary_bits_check 1 compares every one of the 2^32 floats against
 * the portable loops (a NaN input only has to give a NaN);
 * tests/c/test_vmath.c a dense sample with every tail length. */
#include "vmath_avx512.h"

#ifdef SL_VM_AVX512
#include <immintrin.h>

#include "vmath_exp.h"

#define TARGET __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))
#define S1 _mm512_set1_ps
#define I1 _mm512_set1_epi32

/* |x| and -x: the sign bit cleared or flipped */
TARGET INLINE __m512 abs16(__m512 x) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), I1(0x7fffffff))); }
TARGET INLINE __m512 neg16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), I1((int)0x80000000u)));
}

/* r = x - k ln2 and p = expm1(r), with k = rint(x / ln2) given as a float */
TARGET INLINE __m512 expm1_kf16(__m512 x, __m512 kf) {
  __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(kf, S1(LN2_HI))), _mm512_mul_ps(kf, S1(LN2_LO)));
  __m512 q = S1(EXPM1_Q4);
  q = _mm512_add_ps(_mm512_mul_ps(q, r), S1(EXPM1_Q3));
  q = _mm512_add_ps(_mm512_mul_ps(q, r), S1(EXPM1_Q2));
  q = _mm512_add_ps(_mm512_mul_ps(q, r), S1(EXPM1_Q1));
  q = _mm512_add_ps(_mm512_mul_ps(q, r), S1(EXPM1_Q0));
  return _mm512_add_ps(r, _mm512_mul_ps(_mm512_mul_ps(r, r), q));
}

/* rint(y), nearest even: what adding and subtracting the magic gives for
 * |y| < 2^22, in one instruction (a shorter chain to the polynomial) */
TARGET INLINE __m512 round16(__m512 y) { return _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

/* reduce_expm1 of vmath.c: t = x / ln2 + the magic (k's bits offset by the
 * magic's) into *t_out, p = expm1(r) returned */
TARGET INLINE __m512 reduce16(__m512 x, __m512 *t_out) {
  __m512 t = _mm512_add_ps(_mm512_mul_ps(x, S1(INV_LN2)), S1(ROUND_MAGIC));
  *t_out = t;
  return expm1_kf16(x, _mm512_sub_ps(t, S1(ROUND_MAGIC)));
}

/* exp_body on every float */
TARGET INLINE __m512 exp16(__m512 x) {
  __m512 xc = _mm512_min_ps(S1(88.8f), _mm512_max_ps(S1(-104.0f), x));
  __m512 t;
  __m512 v = _mm512_add_ps(S1(1.0f), reduce16(xc, &t));
  __m512i k = _mm512_sub_epi32(_mm512_castps_si512(t), I1((int)ROUND_MAGIC_BITS));
  __m512i k1 = _mm512_srai_epi32(k, 1), k2 = _mm512_sub_epi32(k, k1);
  __m512 vk1 = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(v), _mm512_slli_epi32(k1, 23)));
  __m512 y = _mm512_mul_ps(vk1, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k2, I1(127)), 23)));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* exp_body where every lane lies in [EXP_NORMAL_LO, EXP_NORMAL_HI] */
TARGET INLINE __m512 exp16_normal(__m512 x) {
  __m512 kf = round16(_mm512_mul_ps(x, S1(INV_LN2)));
  __m512 v = _mm512_add_ps(S1(1.0f), expm1_kf16(x, kf));
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(v), _mm512_slli_epi32(_mm512_cvtps_epi32(kf), 23)));
}

TARGET INLINE __m512 exp16_any(__m512 x) {
  __mmask16 ok = _mm512_cmp_ps_mask(x, S1(EXP_NORMAL_LO), _CMP_GE_OQ) &
                 _mm512_cmp_ps_mask(x, S1(EXP_NORMAL_HI), _CMP_LE_OQ);
  return ok == 0xffff ? exp16_normal(x) : exp16(x);
}

/* 1 / (1 + e), e = exp(-x) */
TARGET INLINE __m512 sigmoid_of_exp16(__m512 e) { return _mm512_div_ps(S1(1.0f), _mm512_add_ps(S1(1.0f), e)); }
TARGET INLINE __m512 sigmoid16(__m512 x) { return sigmoid_of_exp16(exp16_any(neg16(x))); }

/* copysign(q, x) */
TARGET INLINE __m512 copysign16(__m512 q, __m512 x) {
  /* imm 0xd8 = mask ? x : q, bit by bit (the mask is the sign bit); q first:
   * the instruction overwrites its first operand */
  return _mm512_castsi512_ps(
      _mm512_ternarylogic_epi32(_mm512_castps_si512(q), _mm512_castps_si512(x), I1((int)0x80000000u), 0xd8));
}

/* tanh_fast_body on every float: a = -2|x| (NaN -> 0), t = expm1_nonpos_body(a),
 * x NaN ? x + x : copysign(-t / (t + 2), x) */
TARGET INLINE __m512 tanh16(__m512 x) {
  __m512 ax = abs16(x);
  __m512 a = _mm512_mul_ps(S1(-2.0f), ax);
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  a = _mm512_mask_mov_ps(a, nan, _mm512_setzero_ps());
  __m512 xc = _mm512_max_ps(S1(-18.0f), a);
  __m512 t;
  __m512 p = reduce16(xc, &t);
  __m512i k = _mm512_sub_epi32(_mm512_castps_si512(t), I1((int)ROUND_MAGIC_BITS));
  __m512 c = _mm512_sub_ps(S1(1.0f), _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(I1(127), k), 23)));
  __m512 e = _mm512_mul_ps(_mm512_add_ps(p, c), _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, I1(127)), 23)));
  e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(a, S1(-0x1p-25f), _CMP_GT_OQ), a);
  __m512 y = copysign16(_mm512_div_ps(neg16(e), _mm512_add_ps(e, S1(2.0f))), x);
  return _mm512_mask_mov_ps(y, nan, _mm512_add_ps(x, x));
}

/* tanh16 where every |x| <= 9: a = -2|x| in [-18, 0], so the clamp does not
 * apply. Nor is the small-argument select needed: for 0 < |a| <= 2^-25,
 * k = 0, r = a and r + r^2 q rounds to r (|r^2 q| is below half an ulp of
 * r), which is what the select returns; a = -0 gives e = +0 instead of -0,
 * and the final copysign(q, x) gives the sign of x either way (q = e / d
 * is a zero then). */
TARGET INLINE __m512 tanh16_mid(__m512 x, __m512 ax) {
  __m512 a = _mm512_mul_ps(S1(-2.0f), ax);
  /* k from |x| rather than from a (a shorter chain): (-2|x|) / ln2 and
   * |x| (-2 / ln2) are the same real product, rounded once */
  __m512 kf = round16(_mm512_mul_ps(ax, S1(-2.0f * INV_LN2)));
  __m512 p = expm1_kf16(a, kf);
  __m512i ks = _mm512_slli_epi32(_mm512_cvtps_epi32(kf), 23);
  __m512 c = _mm512_sub_ps(S1(1.0f), _mm512_castsi512_ps(_mm512_sub_epi32(I1(127 << 23), ks)));
  /* e = (p + c) 2^k: for k < 0, p + c <= -0.58 and |e| >= 2^-26 are normal,
   * so the product is the exponent field plus k; k = 0 adds nothing */
  __m512 e = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(_mm512_add_ps(p, c)), ks));
  /* -e / (e + 2) = e / d with d = -2 - e = -(e + 2) (negation commutes with
   * rounding): every step is exact but the one division */
  __m512 d = _mm512_sub_ps(S1(-2.0f), e);
  return copysign16(_mm512_div_ps(e, d), x);
}

TARGET INLINE __m512 tanh16_any(__m512 x) {
  __m512 ax = abs16(x);
  __mmask16 ok = _mm512_cmp_ps_mask(ax, S1(9.0f), _CMP_LE_OQ); /* NaN: not ok */
  return ok == 0xffff ? tanh16_mid(x, ax) : tanh16(x);
}

/* y[i] = F(x[i]): 16 at a time, the tail with masked loads and stores */
#define VM_LOOP(F)                                                                                       \
  size_t i = 0;                                                                                          \
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, F(_mm512_loadu_ps(x + i)));                      \
  if (i < n) {                                                                                           \
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);                                                   \
    _mm512_mask_storeu_ps(y + i, tail, F(_mm512_maskz_loadu_ps(tail, x + i)));                           \
  }

/* Eight blocks at a time, stage by stage. A block is one chain of
 * dependent operations (a polynomial, then for tanh and sigmoid a
 * division). Written block by block (VM_LOOP, or the two and four blocks
 * per step of earlier rounds), GCC emits each block's whole chain before
 * the next block's, even from code written stage by stage; the scheduler
 * then holds one or two chains at a time and
 * waits on their latencies: 0.19-0.20 ns per float for tanh in cache at
 * one thread, where the operations alone would allow 0.13. PIN(v), an
 * empty asm that takes and returns v in a register, keeps each stage of
 * all eight blocks ahead of the next stage, so eight independent
 * operations are ready at every step. Every lane still goes through the
 * same IEEE operations in the same order as exp16_normal and tanh16_mid:
 * the same bits (bench/unary_bits_check 1, all 2^32 floats). */
#define SK 8
#define PIN(v) __asm__ volatile("" : "+v"(v))
#define EACH(...) _Pragma("GCC unroll 8") for (int k = 0; k < SK; k++) { __VA_ARGS__; }

/* r = x - k ln2 (as expm1_kf16) and its polynomial, into v: expm1(r) */
TARGET INLINE void expm1_stages(__m512 *v, const __m512 *kf) {
  __m512 r[SK], q[SK];
  EACH(r[k] = _mm512_sub_ps(v[k], _mm512_mul_ps(kf[k], S1(LN2_HI))); PIN(r[k]))
  EACH(r[k] = _mm512_sub_ps(r[k], _mm512_mul_ps(kf[k], S1(LN2_LO))); PIN(r[k]))
  EACH(q[k] = _mm512_add_ps(_mm512_mul_ps(S1(EXPM1_Q4), r[k]), S1(EXPM1_Q3)); PIN(q[k]))
  EACH(q[k] = _mm512_add_ps(_mm512_mul_ps(q[k], r[k]), S1(EXPM1_Q2)); PIN(q[k]))
  EACH(q[k] = _mm512_add_ps(_mm512_mul_ps(q[k], r[k]), S1(EXPM1_Q1)); PIN(q[k]))
  EACH(q[k] = _mm512_add_ps(_mm512_mul_ps(q[k], r[k]), S1(EXPM1_Q0)); PIN(q[k]))
  EACH(v[k] = _mm512_add_ps(r[k], _mm512_mul_ps(_mm512_mul_ps(r[k], r[k]), q[k])); PIN(v[k]))
}

/* v = exp16_normal(v), eight blocks in range */
TARGET INLINE void exp_normal_stages(__m512 *v) {
  __m512 kf[SK];
  __m512i ks[SK];
  EACH(kf[k] = round16(_mm512_mul_ps(v[k], S1(INV_LN2))); PIN(kf[k]))
  EACH(ks[k] = _mm512_slli_epi32(_mm512_cvtps_epi32(kf[k]), 23); PIN(ks[k]))
  expm1_stages(v, kf);
  EACH(v[k] = _mm512_add_ps(S1(1.0f), v[k]); PIN(v[k]))
  EACH(v[k] = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(v[k]), ks[k])); PIN(v[k]))
}

/* y = tanh16_mid(x) on eight blocks with |x| <= 9; x is read twice (its
 * sign at the end, from memory: one register per block fewer) */
TARGET INLINE void tanh_mid_stages(float *y, const float *x) {
  __m512 v[SK], kf[SK];
  __m512i ks[SK];
  EACH(v[k] = abs16(_mm512_loadu_ps(x + 16 * k)); PIN(v[k]))
  EACH(kf[k] = round16(_mm512_mul_ps(v[k], S1(-2.0f * INV_LN2))); PIN(kf[k]))
  EACH(v[k] = _mm512_mul_ps(S1(-2.0f), v[k]); PIN(v[k]))
  EACH(ks[k] = _mm512_slli_epi32(_mm512_cvtps_epi32(kf[k]), 23); PIN(ks[k]))
  expm1_stages(v, kf);
  EACH(__m512 c = _mm512_sub_ps(S1(1.0f), _mm512_castsi512_ps(_mm512_sub_epi32(I1(127 << 23), ks[k])));
       v[k] = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(_mm512_add_ps(v[k], c)), ks[k])); PIN(v[k]))
  const float *xs = x;
  __asm__("" : "+r"(xs)); /* a fresh load of x, not the first one kept in a register */
  EACH(_mm512_storeu_ps(y + 16 * k,
                        copysign16(_mm512_div_ps(v[k], _mm512_sub_ps(S1(-2.0f), v[k])), _mm512_loadu_ps(xs + 16 * k))))
}

/* SK blocks at a time through the staged fast path when all are in range
 * (OK of each LOAD), else each block through ANY; the caller's VM_LOOP
 * does the rest. */
#define VM_LOOP_STAGED(OK, LOAD, STAGED, ANY)                                                            \
  for (; n >= 16 * SK; x += 16 * SK, y += 16 * SK, n -= 16 * SK) {                                       \
    __mmask16 all = 0xffff;                                                                              \
    EACH(all &= OK(LOAD(x + 16 * k)))                                                                    \
    if (all == 0xffff) {                                                                                 \
      STAGED;                                                                                            \
    } else {                                                                                             \
      EACH(_mm512_storeu_ps(y + 16 * k, ANY(LOAD(x + 16 * k))))                                          \
    }                                                                                                    \
  }

TARGET INLINE __mmask16 exp_ok16(__m512 x) {
  return _mm512_cmp_ps_mask(x, S1(EXP_NORMAL_LO), _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, S1(EXP_NORMAL_HI), _CMP_LE_OQ);
}
TARGET INLINE __mmask16 tanh_ok16(__m512 x) { return _mm512_cmp_ps_mask(abs16(x), S1(9.0f), _CMP_LE_OQ); }
TARGET INLINE __mmask16 sigmoid_ok16(__m512 x) { return exp_ok16(neg16(x)); }

TARGET INLINE void exp_staged(float *y, const float *x) {
  __m512 v[SK];
  EACH(v[k] = _mm512_loadu_ps(x + 16 * k))
  exp_normal_stages(v);
  EACH(_mm512_storeu_ps(y + 16 * k, v[k]))
}
TARGET INLINE void sigmoid_staged(float *y, const float *x) {
  __m512 v[SK];
  EACH(v[k] = neg16(_mm512_loadu_ps(x + 16 * k)))
  exp_normal_stages(v);
  EACH(_mm512_storeu_ps(y + 16 * k, sigmoid_of_exp16(v[k])))
}
TARGET INLINE void exp_shift_staged(float *y, const float *x, __m512 mv) {
  __m512 v[SK];
  EACH(v[k] = _mm512_sub_ps(_mm512_loadu_ps(x + 16 * k), mv))
  exp_normal_stages(v);
  EACH(_mm512_storeu_ps(y + 16 * k, v[k]))
}
#define LOAD_PLAIN(p) _mm512_loadu_ps(p)

TARGET void sl_vexp_f32_avx512(float *y, const float *x, size_t n) {
  VM_LOOP_STAGED(exp_ok16, LOAD_PLAIN, exp_staged(y, x), exp16_any)
  VM_LOOP(exp16_any)
}
TARGET void sl_vsigmoid_f32_avx512(float *y, const float *x, size_t n) {
  VM_LOOP_STAGED(sigmoid_ok16, LOAD_PLAIN, sigmoid_staged(y, x), sigmoid16)
  VM_LOOP(sigmoid16)
}
TARGET void sl_vtanh_f32_avx512(float *y, const float *x, size_t n) {
  VM_LOOP_STAGED(tanh_ok16, LOAD_PLAIN, tanh_mid_stages(y, x), tanh16_any)
  VM_LOOP(tanh16_any)
}

/* y = exp(x - m), x - m one float subtraction as in vmath.c */
TARGET void sl_vexp_shift_f32_avx512(float *y, const float *x, float m, size_t n) {
  __m512 mv = S1(m);
#define LOAD_SHIFTED(p) _mm512_sub_ps(_mm512_loadu_ps(p), mv)
#define EXP_SHIFTED(v) exp16_any(_mm512_sub_ps((v), mv))
  VM_LOOP_STAGED(exp_ok16, LOAD_SHIFTED, exp_shift_staged(y, x, mv), exp16_any)
  VM_LOOP(EXP_SHIFTED)
#undef LOAD_SHIFTED
#undef EXP_SHIFTED
}

#endif
