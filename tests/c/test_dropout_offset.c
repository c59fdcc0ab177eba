/* Dropout masks of a process holding rows k+1..k+n of a larger batch
 * (data parallelism, docs/distributed.md): sl_dropout_key_at against the
 * scalar definition sl_dropout_keep, across the 2^32 counter blocks, and the
 * Dropout/AlphaDropout modules with a bound sample offset. */
#include <criterion/criterion.h>
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

Test(dropout_offset, key_at_gives_the_elements_of_the_larger_draw) {
  enum { N = 4096 };
  static float x[N], y[N], g[N];
  for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 5);
  const uint64_t firsts[] = {0, 12345, ((uint64_t)1 << 32) - N, (uint64_t)1 << 32, ((uint64_t)3 << 32) + 77};
  const uint64_t key = 0xd1b54a32d192ed03ull;
  uint32_t thr = sl_dropout_threshold(0.3);
  for (int f = 0; f < 5; f++) {
    uint64_t k2 = sl_dropout_key_at(key, firsts[f]);
    sl_vdropout_forward_f32(y, x, N, k2, thr, 2.0f, 0.5f, -7.0f);
    sl_vdropout_backward_f32(g, x, N, k2, thr, 2.0f);
    long dropped = 0;
    for (int i = 0; i < N; i++) {
      bool keep = sl_dropout_keep(key, firsts[f] + (uint64_t)i, thr);
      cr_assert_eq(y[i], keep ? x[i] * 2.0f + 0.5f : -7.0f, "first %llu, element %d", (unsigned long long)firsts[f], i);
      cr_assert_eq(g[i], keep ? x[i] * 2.0f : 0.0f, "backward, first %llu, element %d",
                   (unsigned long long)firsts[f], i);
      dropped += !keep;
    }
    cr_expect(dropped > N / 5 && dropped < 2 * N / 5, "p = 0.3: dropped %ld of %d", dropped, N);
  }
  cr_assert_eq(sl_dropout_key_at(key, 0), key, "offset 0 is the key itself");
}

/* rows of 4 elements starting at sample k = 2^30 - 1: element 4k = 2^32 - 4,
 * so 3 rows cross into the second counter block after 4 elements */
static void check_module(sl_module *m, bool alpha) {
  sl_rng rng;
  int64_t k = ((int64_t)1 << 30) - 1;
  cr_assert_eq(sl_dropout_bind_sample_offset(m, &k), SL_OK);
  int64_t shape[2] = {3, 4};
  sl_tensor *x = sl_tensor_empty(2, shape), *gy = sl_tensor_empty(2, shape);
  cr_assert(x && gy);
  for (int i = 0; i < 12; i++) x->data[i] = (float)i - 5.5f, gy->data[i] = 1.0f + (float)i;
  double p, a, b, dropped;
  cr_assert_eq(sl_dropout_coeffs_of(m, &p, &a, &b, &dropped), SL_OK);
  sl_rng_seed(m->rng, 99);
  rng = *m->rng;
  uint64_t key = sl_rng_next(&rng); /* the key the forward draws */
  const sl_tensor *y, *gx;
  cr_assert_eq(sl_module_forward(m, x, &y), SL_OK, "%s", sl_last_error());
  cr_assert_eq(sl_module_backward(m, x, gy, &gx), SL_OK, "%s", sl_last_error());
  uint32_t thr = sl_dropout_threshold(p);
  int kept = 0;
  for (int i = 0; i < 12; i++) {
    bool keep = sl_dropout_keep(key, (uint64_t)k * 4 + (uint64_t)i, thr);
    float want = keep ? x->data[i] * (float)a + (alpha ? (float)b : 0.0f) : (alpha ? (float)dropped : 0.0f);
    cr_assert_eq(y->data[i], want, "forward element %d", i);
    cr_assert_eq(gx->data[i], keep ? gy->data[i] * (float)a : 0.0f, "backward element %d", i);
    kept += keep;
  }
  cr_expect(kept > 0 && kept < 12, "p = 0.5 keeps some of 12: %d", kept);
  k = -1;
  cr_assert_eq(sl_module_forward(m, x, &y), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "sample offset must be >= 0, got -1"), "%s", sl_last_error());
  cr_assert_eq(sl_dropout_bind_sample_offset(m, NULL), SL_OK); /* back to 0 */
  sl_tensor_release(x);
  sl_tensor_release(gy);
}

Test(dropout_offset, modules_mask_the_rows_of_a_larger_batch) {
  sl_rng rng;
  sl_rng_seed(&rng, 1);
  sl_module *d = sl_dropout_new(0.5, &rng), *ad = sl_alpha_dropout_new(0.5, &rng), *lin = sl_linear_new(2, 2, 1, NULL);
  cr_assert(d && ad && lin);
  check_module(d, false);
  check_module(ad, true);
  int64_t k = 0;
  cr_assert_eq(sl_dropout_bind_sample_offset(lin, &k), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "module is a Linear, not a Dropout/AlphaDropout"), "%s", sl_last_error());
  sl_module_release(d);
  sl_module_release(ad);
  sl_module_release(lin);
  LEAK_CHECK();
}
