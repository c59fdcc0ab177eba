/* bench/unary_bits_check [N]: the vectorized exp, tanh and sigmoid of
 * core/tensor/vmath.c (and tanh's backward; on AVX-512 machines their
 * hand-written forms, core/tensor/vmath_avx512.c) against the plain
 * compositions they replaced, on every N-th float bit pattern (default 61, ~70 M inputs;
 * N = 1 checks all 2^32 floats, a few minutes). The fast kernels must return
 * the same bits: tanh(x) = copysign(-t / (t + 2), x) with t = expm1(-2|x|),
 * sigmoid(x) = 1 / (1 + exp(-x)), expm1 and exp being the scalar
 * sl_vm_expm1f and sl_vm_expf (exp against sl_vm_expf itself; softmax's
 * exp(x - shift) against sl_vm_expf(x - shift), for nine shifts, outside the
 * hash so that hashes of older builds stay comparable). A NaN result only has to be a NaN (its sign
 * and payload depend on the instructions the compiler picked, in the
 * reference as in the kernels). It also prints a hash of every output bit,
 * NaNs included, to compare two builds of the library exactly (bench it
 * against the tree before a kernel change). Exit status 1 at the first
 * difference. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/vmath.h"

#define CHUNK 4096

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float tanh_ref(float x) {
  float t = sl_vm_expm1f(-2.0f * fabsf(x));
  return copysignf(-t / (t + 2.0f), x);
}

static float sigmoid_ref(float x) { return 1.0f / (1.0f + sl_vm_expf(-x)); }

static int same(float a, float b) { return bits(a) == bits(b) || (a != a && b != b); }

/* FNV-1a over the 32-bit outputs */
static uint64_t hash_add(uint64_t h, const float *y, int m) {
  for (int i = 0; i < m; i++) {
    uint32_t b = bits(y[i]);
    for (int k = 0; k < 4; k++) h = (h ^ ((b >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
  }
  return h;
}

static int report(const char *what, float x, float got, float want) {
  printf("%s differs at x = %a (0x%08x): 0x%08x, expected 0x%08x\n", what, (double)x, (unsigned)bits(x),
         (unsigned)bits(got), (unsigned)bits(want));
  return 1;
}

int main(int argc, char **argv) {
  uint64_t stride = argc > 1 ? strtoull(argv[1], NULL, 10) : 61; /* 1: all 2^32 floats (minutes) */
  if (stride < 1) stride = 1;
  static float x[CHUNK], th[CHUNK], sg[CHUNK], gy[CHUNK], gx[CHUNK], ex[CHUNK], es[CHUNK];
  for (int i = 0; i < CHUNK; i++) gy[i] = 1.0f - (float)i / CHUNK;
  uint64_t count = 0, h = 0xcbf29ce484222325ULL;
  for (uint64_t u = 0; u < ((uint64_t)1 << 32);) {
    int m = 0;
    for (; m < CHUNK && u < ((uint64_t)1 << 32); m++, u += stride) {
      uint32_t b = (uint32_t)u;
      memcpy(&x[m], &b, sizeof b);
    }
    /* each chunk in two calls, split where the kernels' steps leave a tail
     * of every length in turn (the outputs, and so the hash, are the same) */
    int cut = m - (int)(count / CHUNK % 131);
    if (cut < 0) cut = 0;
    float shift = (float)(count / CHUNK % 9) - 4.0f; /* softmax's exp(x - max): a few shifts, not hashed */
    for (int part = 0; part < 2; part++) {
      int b = part ? cut : 0, e = part ? m : cut;
      sl_vtanh_f32(th + b, x + b, (size_t)(e - b));
      sl_vsigmoid_f32(sg + b, x + b, (size_t)(e - b));
      sl_vtanh_backward_f32(gx + b, x + b, gy + b, (size_t)(e - b));
      sl_vexp_f32(ex + b, x + b, (size_t)(e - b));
      sl_vexp_shift_f32(es + b, x + b, shift, (size_t)(e - b));
    }
    for (int i = 0; i < m; i++) {
      float t = tanh_ref(x[i]), s = sigmoid_ref(x[i]), g = gy[i] * (1.0f - t * t);
      if (!same(th[i], t)) return report("tanh", x[i], th[i], t);
      if (!same(sg[i], s)) return report("sigmoid", x[i], sg[i], s);
      if (!same(gx[i], g)) return report("tanh backward", x[i], gx[i], g);
      if (!same(ex[i], sl_vm_expf(x[i]))) return report("exp", x[i], ex[i], sl_vm_expf(x[i]));
      float e = sl_vm_expf(x[i] - shift);
      if (!same(es[i], e)) return report("exp of x - shift", x[i], es[i], e);
    }
    h = hash_add(hash_add(hash_add(hash_add(h, th, m), sg, m), gx, m), ex, m);
    count += (uint64_t)m;
  }
  printf("exp, tanh, tanh backward and sigmoid (and exp(x - shift), not hashed): the same bits as the plain "
         "compositions on %llu floats (stride %llu); hash of the outputs %016llx\n",
         (unsigned long long)count, (unsigned long long)stride, (unsigned long long)h);
  return 0;
}
