/* tensor/vmath.c: accuracy of the vectorized expm1/exp (sampled here; every
 * float by bench/expm1_check 1), the kernels against scalar references bit
 * for bit, the counter-based dropout masks, and sgemm results that do not
 * depend on the thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selut.h"
#include "tensor/vmath.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define LEAK_CHECK() ((void)0)
#endif

static float fbits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* |y - e| in units of the float spacing at e. */
static double ulp_err(float y, double e) {
  if (isnan(e)) return isnan(y) ? 0.0 : HUGE_VAL;
  if (fabs(e) >= 0x1.ffffffp127) return (double)y == copysign(HUGE_VAL, e) ? 0.0 : HUGE_VAL;
  if (!isfinite(y)) return HUGE_VAL;
  int ex;
  frexp(fabs(e), &ex);
  return fabs((double)y - e) / ldexp(1.0, ex - 24 > -149 ? ex - 24 : -149);
}

#define SAMPLE 4096
Test(vmath, expm1_and_exp_within_2_ulp_over_a_sample_of_every_binade) {
  static float x[SAMPLE], y1[SAMPLE], y2[SAMPLE];
  double worst1 = 0, worst2 = 0;
  float at1 = 0, at2 = 0;
  /* every 1021st bit pattern (~4.2 M floats: all exponents, both signs) */
  for (uint64_t u = 0; u < ((uint64_t)1 << 32);) {
    int m = 0;
    for (; m < SAMPLE && u < ((uint64_t)1 << 32); m++, u += 1021) x[m] = fbits((uint32_t)u);
    sl_vexpm1_f32(y1, x, (size_t)m);
    sl_vexp_f32(y2, x, (size_t)m);
    for (int i = 0; i < m; i++) {
      double e1 = ulp_err(y1[i], expm1((double)x[i])), e2 = ulp_err(y2[i], exp((double)x[i]));
      if (e1 > worst1) worst1 = e1, at1 = x[i];
      if (e2 > worst2) worst2 = e2, at2 = x[i];
      cr_assert(same_bits(y1[i], sl_vm_expm1f(x[i])), "array and scalar expm1 differ at %a", (double)x[i]);
    }
  }
  cr_expect(worst1 <= 2.0, "expm1: %.3f ulp at %a", worst1, (double)at1); /* the bound: 2 ulp */
  cr_expect(worst2 <= 2.0, "exp: %.3f ulp at %a", worst2, (double)at2);
}

Test(vmath, special_values) {
  cr_expect(same_bits(sl_vm_expm1f(-0.0f), -0.0f), "expm1(-0) = -0");
  cr_expect(same_bits(sl_vm_expm1f(0.0f), 0.0f));
  cr_expect_eq(sl_vm_expm1f(-INFINITY), -1.0f);
  cr_expect_eq(sl_vm_expm1f(-20.0f), -1.0f);
  cr_expect_eq(sl_vm_expm1f(INFINITY), INFINITY);
  cr_expect_eq(sl_vm_expm1f(89.0f), INFINITY);
  cr_expect(isfinite(sl_vm_expm1f(88.72f)) && sl_vm_expm1f(88.72f) > 3.3e38f);
  cr_expect(isnan(sl_vm_expm1f(NAN)));
  cr_expect_eq(sl_vm_expm1f(0x1p-30f), 0x1p-30f);
  cr_expect_eq(sl_vm_expf(0.0f), 1.0f);
  cr_expect_eq(sl_vm_expf(-INFINITY), 0.0f);
  cr_expect_eq(sl_vm_expf(-104.0f), 0.0f);
  cr_expect_eq(sl_vm_expf(-100.0f), (float)exp(-100.0), "subnormal result rounds once");
  cr_expect_eq(sl_vm_expf(INFINITY), INFINITY);
  cr_expect(isnan(sl_vm_expf(NAN)));
}

/* The ELU kernels equal the scalar formula on the scalar expm1/exp, bit for
 * bit (including -0, NaN, huge and tiny inputs and the array tails). */
Test(vmath, elu_kernels_match_the_scalar_formula) {
  enum { N = 10007 };
  static float x[N], gy[N], y[N], gx[N];
  sl_rng r;
  sl_rng_seed(&r, 3);
  for (int i = 0; i < N; i++) {
    x[i] = (float)(sl_rng_normal(&r) * (i % 3 == 0 ? 10.0 : 1.0));
    gy[i] = (float)sl_rng_normal(&r);
  }
  x[0] = -0.0f, x[1] = NAN, x[2] = -INFINITY, x[3] = INFINITY, x[4] = -1e-30f, x[5] = -100.0f;
  const float alpha = (float)SL_SELU_ALPHA, scale = (float)SL_SELU_SCALE, negcoef = alpha * scale;
  sl_selu_forward_f32(y, x, N);
  sl_selu_backward_f32(gx, x, gy, N);
  for (int i = 0; i < N; i++) {
    float xm = x[i] <= 0.0f ? x[i] : 0.0f;
    float ry = x[i] <= 0.0f ? sl_vm_expm1f(xm) * negcoef : x[i] * scale;
    float rg = x[i] <= 0.0f ? gy[i] * negcoef * sl_vm_expf(xm) : gy[i] * scale;
    cr_assert(same_bits(y[i], ry) || (isnan(y[i]) && isnan(ry)), "forward at x = %a: %a vs %a", (double)x[i],
              (double)y[i], (double)ry);
    cr_assert(same_bits(gx[i], rg) || (isnan(gx[i]) && isnan(rg)), "backward at x = %a", (double)x[i]);
  }
  cr_expect(same_bits(y[0], -0.0f), "SELU(-0) = -0 as in PyTorch");
}

Test(vmath, dropout_threshold_is_exactly_u_ge_p) {
  cr_expect_eq(sl_dropout_threshold(0.0), 0u);
  cr_expect_eq(sl_dropout_threshold(0.05), 838861u); /* ceil(0.05f * 2^24) */
  cr_expect_eq(sl_dropout_threshold(0.5), 8388608u);
  for (uint32_t u = 838855; u < 838870; u++) /* u * 2^-24 >= 0.05f  <=>  u >= threshold */
    cr_expect_eq((float)u * 0x1.0p-24f >= 0.05f, u >= sl_dropout_threshold(0.05), "u = %u", u);
}

Test(vmath, dropout_masks_have_the_right_rate_and_backward_reuses_them) {
  enum { N = 1 << 20 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *g = malloc(N * sizeof *g);
  cr_assert(x && y && g);
  for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
  const double ps[] = {0.05, 0.5, 0.9};
  for (int k = 0; k < 3; k++) {
    uint32_t thr = sl_dropout_threshold(ps[k]);
    uint64_t key = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
    sl_vdropout_forward_f32(y, x, N, key, thr, 2.0f, 0.5f, -7.0f);
    sl_vdropout_backward_f32(g, x, N, key, thr, 2.0f);
    long dropped = 0, both = 0;
    for (int i = 0; i < N; i++) {
      bool keep = sl_dropout_keep(key, (uint64_t)i, thr);
      cr_assert_eq(y[i], keep ? x[i] * 2.0f + 0.5f : -7.0f, "forward, element %d", i);
      cr_assert_eq(g[i], keep ? x[i] * 2.0f : 0.0f, "backward, element %d", i);
      dropped += !keep;
      if (i > 0) both += !keep && !sl_dropout_keep(key, (uint64_t)i - 1, thr);
    }
    double rate = (double)dropped / N, sd = sqrt(ps[k] * (1 - ps[k]) / N);
    cr_expect(fabs(rate - ps[k]) < 5 * sd, "p = %g: dropped %.5f", ps[k], rate);
    /* neighbours are independent: P(both dropped) = p^2 */
    double pair = (double)both / (N - 1), sdp = sqrt(ps[k] * ps[k] * (1 - ps[k] * ps[k]) / N);
    cr_expect(fabs(pair - ps[k] * ps[k]) < 5 * sdp, "p = %g: neighbours both dropped %.5f", ps[k], pair);
  }
  /* another key gives another mask */
  uint32_t thr = sl_dropout_threshold(0.5);
  long differ = 0;
  for (int i = 0; i < 10000; i++) differ += sl_dropout_keep(1, (uint64_t)i, thr) != sl_dropout_keep(2, (uint64_t)i, thr);
  cr_expect(differ > 4500 && differ < 5500, "keys 1 and 2 differ on %ld of 10000", differ);
  free(x), free(y), free(g);
}

/* SGD / Adam kernels against the plain loop they replaced, every flag
 * combination, an odd length (vector tails). */
Test(vmath, sgd_and_adam_match_the_reference_loops_bit_for_bit) {
  enum { N = 1031 };
  static float p0[N], g[N], b0[N], p1[N], b1[N], p2[N], b2[N], m1[N], v1[N], m2[N], v2[N];
  sl_rng r;
  sl_rng_seed(&r, 9);
  sl_rng_fill_normal_f32(&r, p0, N, 0, 1);
  sl_rng_fill_normal_f32(&r, g, N, 0, 1);
  sl_rng_fill_normal_f32(&r, b0, N, 0, 1);
  for (int c = 0; c < 16; c++) {
    bool wdb = c & 1, has_buf = c & 2, nest = c & 4, first = c & 8;
    float lr = 0.01f, wd = wdb ? 1e-3f : 0.0f, mom = 0.9f, damp1 = 0.75f;
    memcpy(p1, p0, sizeof p1), memcpy(b1, b0, sizeof b1), memcpy(p2, p0, sizeof p2), memcpy(b2, b0, sizeof b2);
    sl_vsgd_f32(p1, g, has_buf ? b1 : NULL, N, lr, wd, mom, damp1, nest, first);
    for (int i = 0; i < N; i++) {
      float d = g[i];
      if (wd != 0.0f) d = d + wd * p2[i];
      if (has_buf) {
        float bb = first ? d : b2[i] * mom;
        if (!first) bb = bb + damp1 * d;
        b2[i] = bb;
        d = nest ? d + mom * bb : bb;
      }
      p2[i] = p2[i] + (-lr) * d;
    }
    cr_assert_eq(memcmp(p1, p2, sizeof p1), 0, "SGD case %d: parameters", c);
    cr_assert_eq(memcmp(b1, b2, sizeof b1), 0, "SGD case %d: momentum buffer", c);
  }
  for (int c = 0; c < 4; c++) {
    float decay = c & 1 ? 0.999f : 1.0f, wd = c & 2 ? 0.01f : 0.0f;
    memcpy(p1, p0, sizeof p1), memcpy(p2, p0, sizeof p2);
    for (int i = 0; i < N; i++) m1[i] = m2[i] = 0.1f * b0[i], v1[i] = v2[i] = b0[i] * b0[i];
    sl_vadam_f32(p1, g, m1, v1, N, decay, wd, 0.9f, 0.999f, 0.1f, 0.001f, 0.05f, 1e-8f, -0.001f);
    for (int i = 0; i < N; i++) {
      float gi = g[i];
      if (decay != 1.0f) p2[i] = p2[i] * decay;
      if (wd != 0.0f) gi = gi + wd * p2[i];
      m2[i] = m2[i] * 0.9f + 0.1f * gi;
      v2[i] = v2[i] * 0.999f + 0.001f * gi * gi;
      float denom = sqrtf(v2[i]) / 0.05f + 1e-8f;
      p2[i] = p2[i] + -0.001f * (m2[i] / denom);
    }
    cr_assert_eq(memcmp(p1, p2, sizeof p1), 0, "Adam case %d: parameters", c);
    cr_assert_eq(memcmp(v1, v2, sizeof v1), 0, "Adam case %d: exp_avg_sq", c);
  }
}

/* The order is part of the contract (same bits on every CPU and thread
 * count): per column, rows 8k..8k+7 as a float tree added into a double,
 * the remaining rows one by one; and it stays within a few float ulps of
 * the exact sum. */
Test(vmath, column_sums_match_the_column_loop) {
  enum { R = 37, C = 1100 }; /* more columns than one accumulator block, a remainder of 5 rows */
  static float gy[R * C], gb1[C], gb2[C];
  sl_rng r;
  sl_rng_seed(&r, 5);
  sl_rng_fill_normal_f32(&r, gy, R * C, 0, 1);
  for (int j = 0; j < C; j++) gb1[j] = gb2[j] = 0.5f;
  sl_vcolsum_acc_f32(gb1, gy, R, C);
  for (int j = 0; j < C; j++) {
    double acc = 0.0, exact = 0.0;
    int i = 0;
    for (; i + 8 <= R; i += 8) {
      const float *c = gy + (size_t)i * C + j;
      float s = ((c[0] + c[C]) + (c[2 * C] + c[3 * C])) + ((c[4 * C] + c[5 * C]) + (c[6 * C] + c[7 * C]));
      acc += (double)s;
    }
    for (; i < R; i++) acc += (double)gy[i * C + j];
    for (i = 0; i < R; i++) exact += (double)gy[i * C + j];
    gb2[j] += (float)acc;
    cr_assert_float_eq(gb1[j], 0.5 + exact, 1e-5, "column %d: %.9g vs exact %.9g", j, (double)gb1[j], 0.5 + exact);
  }
  cr_assert_eq(memcmp(gb1, gb2, sizeof gb1), 0);
}

/* OpenBLAS blocks K differently with one and with several threads; sl_gemm
 * chunks K so the bits do not depend on the thread count (K = 784 is the
 * default recipe's first layer). */
Test(vmath, sgemm_bits_do_not_depend_on_the_thread_count) {
  sl_rng r;
  sl_rng_seed(&r, 11);
  int64_t sa[2] = {128, 784}, sb[2] = {512, 784}, sc[2] = {128, 512};
  sl_tensor *a = sl_tensor_randn(2, sa, &r), *b = sl_tensor_randn(2, sb, &r);
  sl_tensor *c1 = sl_tensor_zeros(2, sc), *c2 = sl_tensor_zeros(2, sc);
  cr_assert(a && b && c1 && c2);
  int before = sl_get_num_threads();
  sl_set_num_threads(1);
  cr_assert_eq(sl_gemm(c1, a, false, b, true, 1.0f, 0.0f), SL_OK);
  sl_set_num_threads(2);
  cr_assert_eq(sl_gemm(c2, a, false, b, true, 1.0f, 0.0f), SL_OK);
  sl_set_num_threads(before);
  if (sl_blas_threads_bitwise()) {
    cr_expect_eq(memcmp(c1->data, c2->data, (size_t)c1->numel * sizeof(float)), 0);
  } else { /* AVX2 kernels (Haswell/Zen): the same to float rounding only */
    for (int64_t i = 0; i < c1->numel; i++)
      cr_expect(fabsf(c1->data[i] - c2->data[i]) <= 1e-4f * (1.0f + fabsf(c1->data[i])), "element %lld: %g vs %g",
                (long long)i, (double)c1->data[i], (double)c2->data[i]);
  }
  sl_tensor_release(a), sl_tensor_release(b), sl_tensor_release(c1), sl_tensor_release(c2);
  LEAK_CHECK();
}

/* With 2 BLAS threads, large arrays are split over two cores: the same bits
 * as the one-thread bodies (the split is elementwise). */
Test(vmath, two_core_split_gives_the_serial_bits) {
  setenv("SELUT_SPLIT_MIN", "65536", 1); /* read at the first split call of this test process */
  enum { N = 300007 };
  float *x = malloc(N * sizeof *x), *g = malloc(N * sizeof *g), *y1 = malloc(N * sizeof *y1),
        *y2 = malloc(N * sizeof *y2), *b1 = malloc(N * sizeof *b1), *b2 = malloc(N * sizeof *b2);
  cr_assert(x && g && y1 && y2 && b1 && b2);
  sl_rng r;
  sl_rng_seed(&r, 21);
  sl_rng_fill_normal_f32(&r, x, N, 0, 2);
  sl_rng_fill_normal_f32(&r, g, N, 0, 1);
  int before = sl_get_num_threads();
  sl_set_num_threads(2);
  for (int rep = 0; rep < 3; rep++) { /* the helper thread is reused across jobs */
    sl_velu_forward_f32(y1, x, N, 1.7f, 1.05f);
    sl_velu_forward_serial_f32(y2, x, N, 1.7f, 1.05f);
    cr_assert_eq(memcmp(y1, y2, N * sizeof *y1), 0, "ELU forward");
    sl_velu_backward_f32(y1, x, g, N, 1.7f, 1.05f);
    sl_velu_backward_serial_f32(y2, x, g, N, 1.7f, 1.05f);
    cr_assert_eq(memcmp(y1, y2, N * sizeof *y1), 0, "ELU backward");
    memcpy(y1, x, N * sizeof *x), memcpy(y2, x, N * sizeof *x), memcpy(b1, g, N * sizeof *g), memcpy(b2, g, N * sizeof *g);
    sl_vsgd_f32(y1, g, b1, N, 0.01f, 1e-4f, 0.9f, 1.0f, rep == 1, rep == 0);
    sl_vsgd_serial_f32(y2, g, b2, N, 0.01f, 1e-4f, 0.9f, 1.0f, rep == 1, rep == 0);
    cr_assert_eq(memcmp(y1, y2, N * sizeof *y1), 0, "SGD parameters");
    cr_assert_eq(memcmp(b1, b2, N * sizeof *b1), 0, "SGD momentum");
    sl_vzero_f32(y1, N);
    for (int i = 0; i < N; i++) cr_assert_eq(y1[i], 0.0f);
  }
  sl_set_num_threads(before);
  free(x), free(g), free(y1), free(y2), free(b1), free(b2);
}

/* The double log of the softmax losses: <= 2 ulp of double against glibc's
 * log (itself < 1 ulp) on positive normals of every binade, the special
 * values, and the array and scalar forms agree. */
Test(vmath, log_f64_within_2_ulp_and_special_values) {
  enum { M = 4096 };
  static double x[M], y[M];
  uint64_t s = 88172645463325252ULL;
  double worst = 0, at = 0;
  for (int it = 0; it < 64; it++) {
    for (int i = 0; i < M; i++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      uint64_t e = it % 2 ? 1 + s % 2046 : 1020 + s % 12; /* all binades / near 1 (the loss's sums) */
      uint64_t u = (s >> 12) | e << 52;
      memcpy(&x[i], &u, sizeof u);
    }
    sl_vlog_f64(y, x, M);
    for (int i = 0; i < M; i++) {
      double ref = log(x[i]);
      double err = ref == 0.0 ? fabs(y[i]) : fabs(y[i] - ref) / (nextafter(fabs(ref), INFINITY) - fabs(ref));
      if (err > worst) worst = err, at = x[i];
      cr_assert(y[i] == sl_vm_log(x[i]), "array and scalar log differ at %a", x[i]);
    }
  }
  cr_expect(worst <= 2.0, "log: %.3f ulp at %a", worst, at);
  cr_expect(sl_vm_log(1.0) == 0.0 && sl_vm_log(2.0) == log(2.0) && sl_vm_log(10.0) == log(10.0));
  cr_expect(sl_vm_log(0.0) == -HUGE_VAL && sl_vm_log(HUGE_VAL) == HUGE_VAL);
  cr_expect(isnan(sl_vm_log(-1.0)) && isnan(sl_vm_log(NAN)) && isnan(sl_vm_log(-HUGE_VAL)));
  LEAK_CHECK();
}

/* Large bias fills go through streaming stores: the same bytes as the plain
 * row copies, at any alignment of the output. */
Test(vmath, streamed_rows_fill_gives_the_plain_bytes) {
  const int64_t cols = 37, rows = (int64_t)(SL_VM_STREAM_MIN / 37) + 5;
  size_t n = (size_t)(rows * cols);
  float b[37];
  for (int j = 0; j < 37; j++) b[j] = (float)j * 0.25f - 3.0f;
  float *y = malloc((n + 3) * sizeof *y), *ref = malloc(n * sizeof *ref);
  cr_assert(y && ref);
  for (int64_t i = 0; i < rows; i++) memcpy(ref + i * cols, b, sizeof b);
  for (int off = 0; off < 3; off += 1) { /* 16-byte aligned, then 4 and 8 bytes off */
    memset(y, 0x7f, (n + 3) * sizeof *y);
    sl_vrows_fill_f32(y + off, b, rows, cols);
    cr_assert_eq(memcmp(y + off, ref, n * sizeof *ref), 0, "offset %d", off);
  }
  free(y), free(ref);
  LEAK_CHECK();
}

/* Rows of 10 and of other widths: the blocked log-sum-exp and softmax equal
 * the plain per-row formulas (max shift, exp, double sum, log) bit for bit. */
Test(vmath, rows_lse_and_softmax_match_the_row_loop) {
  static float x[2040], tmp[2040], g[2040], mx[204];
  static double lse[204], sum[204], sum2[204];
  sl_rng r;
  sl_rng_seed(&r, 9);
  sl_rng_fill_normal_f32(&r, x, 2040, 0, 3);
  x[5] = NAN, x[17] = -INFINITY;
  const int64_t widths[] = {10, 7, 1};
  for (int w = 0; w < 3; w++) {
    int64_t c = widths[w], rows = 2040 / c > 204 ? 204 : 2040 / c;
    sl_vrows_lse_f32(lse, x, rows, c, tmp, mx, sum);
    sl_vrows_softmax_f32(g, x, rows, c, 0.5, tmp, sum2);
    for (int64_t i = 0; i < rows; i++) {
      float m = -INFINITY;
      for (int64_t j = 0; j < c; j++) m = x[i * c + j] > m ? x[i * c + j] : m;
      bool inf = m == -INFINITY || m == INFINITY; /* such rows: lse = m, exp of the unshifted x */
      float sh = inf ? 0.0f : m;
      double s = 0.0;
      for (int64_t j = 0; j < c; j++) s += (double)sl_vm_expf(x[i * c + j] - sh);
      double want = inf ? (double)m : (double)m + sl_vm_log(s);
      cr_assert(memcmp(&lse[i], &want, sizeof want) == 0, "c %lld row %lld: %a vs %a", (long long)c, (long long)i,
                lse[i], want);
      for (int64_t j = 0; j < c; j++) {
        float p = (float)((double)sl_vm_expf(x[i * c + j] - sh) * (0.5 / s));
        cr_assert(same_bits(g[i * c + j], p), "softmax c %lld at %lld,%lld", (long long)c, (long long)i, (long long)j);
      }
    }
  }
  LEAK_CHECK();
}

/* The vectorized tanh (nn.Tanh): within 3 ulp of tanh in double over a
 * sample of every binade from 2^-30 to 2^5 (2.5 ulp measured), odd, exact at
 * 0 and +-inf, NaN through; the backward is gy (1 - tanh^2) of the same tanh. */
Test(vmath, tanh_within_3_ulp_and_special_values) {
  enum { M = 4096 };
  float x[M], y[M], gy[M], gx[M];
  double worst = 0;
  for (int e = -30; e < 5; e++) {
    for (int i = 0; i < M; i++) x[i] = ldexpf(1.0f + (float)i / M, e) * (i & 1 ? -1.0f : 1.0f);
    sl_vtanh_f32(y, x, M);
    for (int i = 0; i < M; i++) {
      double ref = tanh((double)x[i]);
      float r = (float)fabs(ref);
      double ulp = fabs((double)y[i] - ref) / (double)(nextafterf(r, INFINITY) - r);
      worst = ulp > worst ? ulp : worst;
      cr_assert(ulp <= 3.0, "tanh(%a) = %a, expected %a (%.2f ulp)", (double)x[i], (double)y[i], ref, ulp);
    }
  }
  float s[6] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 20.0f}, t[6];
  sl_vtanh_f32(t, s, 6);
  cr_assert(t[0] == 0 && !signbit(t[0]) && t[1] == 0 && signbit(t[1]));
  cr_assert(t[2] == 1.0f && t[3] == -1.0f && isnan(t[4]) && t[5] == 1.0f);
  for (int i = 0; i < M; i++) x[i] = (float)(i - M / 2) / 512.0f, gy[i] = 0.5f + (float)(i % 7);
  sl_vtanh_f32(y, x, M);
  sl_vtanh_backward_f32(gx, x, gy, M);
  for (int i = 0; i < M; i++) cr_assert_eq(gx[i], gy[i] * (1.0f - y[i] * y[i]));
  LEAK_CHECK();
}

/* The scalar forms the array kernels must reproduce bit for bit (a NaN only
 * has to stay a NaN). */
static float tanh_composed(float x) {
  float e = sl_vm_expm1f(-2.0f * fabsf(x));
  return copysignf(-e / (e + 2.0f), x);
}
static float sigmoid_composed(float x) { return 1.0f / (1.0f + sl_vm_expf(-x)); }

static void expect_kernels_match(const float *x, size_t n, const char *what) {
  float *y = malloc((n + 1) * sizeof *y);
  cr_assert(y);
  for (int op = 0; op < 3; op++) {
    y[n] = 12345.0f; /* the kernel must not write past n */
    if (op == 0) sl_vexp_f32(y, x, n);
    if (op == 1) sl_vtanh_f32(y, x, n);
    if (op == 2) sl_vsigmoid_f32(y, x, n);
    cr_assert(same_bits(y[n], 12345.0f), "%s: wrote past %zu", what, n);
    for (size_t i = 0; i < n; i++) {
      float want = op == 0 ? sl_vm_expf(x[i]) : op == 1 ? tanh_composed(x[i]) : sigmoid_composed(x[i]);
      if (!same_bits(y[i], want) && !(y[i] != y[i] && want != want))
        cr_assert_fail("%s: %s(%a) = %a at %zu of %zu, expected %a", what, op == 0 ? "exp" : op == 1 ? "tanh" : "sigmoid",
                       (double)x[i], (double)y[i], i, n, (double)want);
    }
  }
  free(y);
}

/* On AVX-512 machines exp, tanh and sigmoid run hand-written kernels with a
 * fast path for blocks of 16 inputs where the result needs no clamp, select
 * or split scale (vmath_avx512.c); elsewhere the portable loops. Either way
 * the bits of the scalar forms: typical inputs (every block fast), the same
 * with one edge value moved through every lane of a block, every length
 * 0..40 at unaligned starts (masked tails), and dense runs across each
 * fast-path border. */
Test(vmath, exp_tanh_sigmoid_kernels_match_the_scalar_forms_on_every_path) {
  enum { N = 4096 };
  static float x[N + 8];
  unsigned seed = 7;
  for (int i = 0; i < N + 8; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 16.0f; /* [-8, 8): fast for all three */
  }
  expect_kernels_match(x, N, "typical");
  const float edges[] = {NAN,   -NAN,        INFINITY,   -INFINITY,   0.0f,        -0.0f,  0x1p-149f, 0x1p-27f,
                         -86.6f, 88.1f,      -88.1f,     86.6f,       9.001f,      -9.5f,  1e30f,     -1e30f,
                         0x1p-26f, -0x1p-26f, 0x1.fffffep-27f, -104.5f, 88.8f, 0x1p-30f,
                         -87.4f, -87.9f, 88.5f, 88.7f, 87.4f, 87.9f, -88.5f, -88.7f, 9.5f, 17.9f, -18.1f};
  float blk[48];
  for (size_t e = 0; e < sizeof edges / sizeof *edges; e++)
    for (int lane = 0; lane < 16; lane++) {
      memcpy(blk, x, sizeof blk);
      blk[16 + lane] = edges[e];
      expect_kernels_match(blk, 48, "one edge in a block");
    }
  for (size_t n = 0; n <= 40; n++)
    for (int off = 0; off < 4; off++) expect_kernels_match(x + off, n, "short and unaligned");
  /* dense runs of consecutive floats across each border of the fast paths:
   * exp at -86.5 and 88 (sigmoid at -88 and 86.5), tanh at |x| = 2^-26 and 9 */
  const float borders[] = {-86.5f, 88.0f, -88.0f, 86.5f, 0x1p-26f, -0x1p-26f, 9.0f, -9.0f};
  static float run[2 * N];
  for (size_t b = 0; b < sizeof borders / sizeof *borders; b++) {
    uint32_t u;
    memcpy(&u, &borders[b], sizeof u);
    for (int i = 0; i < 2 * N; i++) run[i] = fbits(u - N + (uint32_t)i);
    expect_kernels_match(run, 2 * N, "across a border");
  }
}
