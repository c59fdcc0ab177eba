/*
 * The constants of vmath's exp/expm1 (internal to core/tensor): one
 * definition for the portable kernels (vmath.c) and their AVX-512 forms
 * (vmath_avx512.c), which must perform the same operations on the same
 * constants to give the same bits.
 */
#ifndef SL_VMATH_EXP_H
#define SL_VMATH_EXP_H

#define LN2_HI 0x1.62e4p-1f      /* 14 significant bits: k * LN2_HI is exact for |k| <= 1024 */
#define LN2_LO 0x1.7f7d1cf8p-20f /* ln 2 - LN2_HI */
#define INV_LN2 0x1.715476p+0f
#define ROUND_MAGIC 0x1.8p23f /* adding it rounds to an integer (nearest even) */
#define ROUND_MAGIC_BITS 0x4b400000u

/* expm1(r) = r + r^2 q(r) on |r| <= ln2/2, q = ((((Q4 r + Q3) r + Q2) r + Q1) r + Q0):
 * weighted minimax (Lawson iterations, bench/fit_expm1.py), relative error
 * of expm1 < 0.25 * 2^-24 with these float coefficients. */
#define EXPM1_Q4 0x1.6c5578p-10f
#define EXPM1_Q3 0x1.1223bcp-7f
#define EXPM1_Q2 0x1.5555bap-5f
#define EXPM1_Q1 0x1.5554b6p-3f
#define EXPM1_Q0 0.5f

/* Where exp(x) = 2^k (1 + p), k = rint(x / ln2), is a normal float for
 * every x: k in [-125, 127] (1 + p lies in [2^-1/2, 2^1/2]), so 2^k (1 + p)
 * needs no clamp, no NaN test and no split scale. */
#define EXP_NORMAL_LO (-86.5f)
#define EXP_NORMAL_HI 88.0f

#endif
