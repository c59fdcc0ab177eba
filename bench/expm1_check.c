/* bench/expm1_check [N]: the vectorized expm1f / expf of core/tensor/vmath.c
 * against expm1 / exp in double on every N-th float bit pattern (default 61,
 * ~70 M inputs; N = 1 checks all 2^32 floats, a few minutes), reporting the
 * maximum error in ulps of the float result. Exit status 1 above 2 ulp. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/vmath.h"

/* |y - e| in units of the float spacing at e (subnormal spacing below). */
static double ulp_err(float y, double e) {
  if (isnan(e)) return isnan(y) ? 0.0 : HUGE_VAL;
  if (fabs(e) >= 0x1.ffffffp127) return (double)y == copysign(HUGE_VAL, e) ? 0.0 : HUGE_VAL;
  if (isinf(y) || isnan(y)) return HUGE_VAL;
  int ex;
  frexp(fabs(e), &ex); /* |e| = m 2^ex, m in [0.5, 1) */
  double ulp = ldexp(1.0, ex - 24 > -149 ? ex - 24 : -149);
  return fabs((double)y - e) / ulp;
}

#define CHUNK 4096

int main(int argc, char **argv) {
  uint64_t stride = argc > 1 ? strtoull(argv[1], NULL, 10) : 61; /* 1: all 2^32 floats (minutes) */
  if (stride < 1) stride = 1;
  static float x[CHUNK], y1[CHUNK], y2[CHUNK];
  double worst1 = 0, worst2 = 0;
  float wx1 = 0, wx2 = 0;
  uint64_t count = 0;
  for (uint64_t u = 0; u < ((uint64_t)1 << 32);) {
    int m = 0;
    for (; m < CHUNK && u < ((uint64_t)1 << 32); m++, u += stride) {
      uint32_t b = (uint32_t)u;
      memcpy(&x[m], &b, sizeof b);
    }
    sl_vexpm1_f32(y1, x, (size_t)m);
    sl_vexp_f32(y2, x, (size_t)m);
    for (int i = 0; i < m; i++) {
      double e1 = ulp_err(y1[i], expm1((double)x[i])), e2 = ulp_err(y2[i], exp((double)x[i]));
      if (e1 > worst1) worst1 = e1, wx1 = x[i];
      if (e2 > worst2) worst2 = e2, wx2 = x[i];
      if (signbit(y1[i]) != signbit(x[i]) && !isnan(x[i])) worst1 = HUGE_VAL, wx1 = x[i]; /* sign of expm1 */
    }
    count += (uint64_t)m;
  }
  printf("expm1: max error %.3f ulp at x = %a; exp: max error %.3f ulp at x = %a (%llu floats, stride %llu)\n",
         worst1, (double)wx1, worst2, (double)wx2, (unsigned long long)count, (unsigned long long)stride);
  return worst1 <= 2.0 && worst2 <= 2.0 ? 0 : 1;
}
