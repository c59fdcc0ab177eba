/*
 * AVX-512 forms of four vmath kernels (internal to core/tensor): the same
 * bits as the portable loops of vmath.c for every input, faster
 * (vmath_avx512.c says how and why). vmath.c calls them when the CPU has
 * AVX-512F; SL_VM_AVX512 is defined where they are compiled (GCC on
 * x86-64, clones enabled).
 */
#ifndef SL_VMATH_AVX512_H
#define SL_VMATH_AVX512_H
#include <stddef.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_VM_AVX512 1
void sl_vexp_f32_avx512(float *y, const float *x, size_t n);
void sl_vsigmoid_f32_avx512(float *y, const float *x, size_t n);
void sl_vtanh_f32_avx512(float *y, const float *x, size_t n);
void sl_vexp_shift_f32_avx512(float *y, const float *x, float m, size_t n);
#endif

#endif
