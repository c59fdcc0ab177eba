/* selut's own two-core split of the products (core/tensor/blas.c,
 * core/tensor/parallel.c): every transpose case, cut along M and along N,
 * matches a double-precision reference (the pieces land in the right place)
 * and gives the same bits with 1 and 2 threads; small products and the task
 * pool's serial fallback too. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selut.h"
#include "tensor/parallel.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define LEAK_CHECK() ((void)0)
#endif

static float elem(const float *x, bool trans, int64_t rows, int64_t cols, int64_t i, int64_t j) {
  (void)rows;
  return trans ? x[j * rows + i] : x[i * cols + j]; /* op(X)[i][j], X stored (cols x rows) when trans */
}

static void check_product(int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  sl_rng r;
  sl_rng_seed(&r, (uint64_t)(m * 131 + n * 7 + k + ta * 2 + tb));
  float *a = malloc((size_t)(m * k) * sizeof *a), *b = malloc((size_t)(k * n) * sizeof *b);
  float *c1 = malloc((size_t)(m * n) * sizeof *c1), *c2 = malloc((size_t)(m * n) * sizeof *c2);
  cr_assert(a && b && c1 && c2);
  sl_rng_fill_normal_f32(&r, a, (size_t)(m * k), 0, 1);
  sl_rng_fill_normal_f32(&r, b, (size_t)(k * n), 0, 1);
  sl_rng_fill_normal_f32(&r, c1, (size_t)(m * n), 0, 1);
  memcpy(c2, c1, (size_t)(m * n) * sizeof *c1);
  int before = sl_get_num_threads();
  sl_set_num_threads(1);
  sl_sgemm_f32(ta, tb, m, n, k, 0.5f, a, b, 1.0f, c1); /* accumulate: beta = 1 */
  float *c3 = malloc((size_t)(m * n) * sizeof *c3);
  cr_assert(c3);
  memcpy(c3, c2, (size_t)(m * n) * sizeof *c2);
  sl_set_num_threads(2);
  sl_sgemm_f32(ta, tb, m, n, k, 0.5f, a, b, 1.0f, c2);
  sl_sgemm_f32(ta, tb, m, n, k, 0.5f, a, b, 1.0f, c3); /* the helper is running now */
  cr_expect_eq(memcmp(c2, c3, (size_t)(m * n) * sizeof *c2), 0, "2 threads: two runs differ");
  free(c3);
  sl_set_num_threads(before);
  cr_expect_eq(memcmp(c1, c2, (size_t)(m * n) * sizeof *c1), 0, "%lldx%lldx%lld ta=%d tb=%d: 1 and 2 threads differ",
               (long long)m, (long long)n, (long long)k, ta, tb);
  /* reference: c1 = c0 + 0.5 op(a) op(b) with c0 regenerated from the seed */
  sl_rng_seed(&r, (uint64_t)(m * 131 + n * 7 + k + ta * 2 + tb));
  sl_rng_fill_normal_f32(&r, a, (size_t)(m * k), 0, 1);
  sl_rng_fill_normal_f32(&r, b, (size_t)(k * n), 0, 1);
  sl_rng_fill_normal_f32(&r, c2, (size_t)(m * n), 0, 1);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0, mag = 0;
      for (int64_t l = 0; l < k; l++) {
        double p = (double)elem(a, ta, m, k, i, l) * (double)elem(b, tb, k, n, l, j);
        s += p, mag += fabs(p);
      }
      double want = (double)c2[i * n + j] + 0.5 * s;
      cr_assert(fabs((double)c1[i * n + j] - want) <= 1e-5 * (mag + 1.0), "%lldx%lldx%lld ta=%d tb=%d: C[%lld][%lld] = %g, expected %g",
                (long long)m, (long long)n, (long long)k, ta, tb, (long long)i, (long long)j, (double)c1[i * n + j], want);
    }
  free(a), free(b), free(c1), free(c2);
}

/* m >= n: cut along M; n > m: cut along N; k = 300 also crosses a K chunk. */
Test(parallel, split_products_match_the_reference_and_the_one_thread_bits) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      check_product(203, 77, 300, ta, tb); /* 4.7M multiply-adds: split along M (203 -> 112 + 91) */
      check_product(70, 333, 130, ta, tb); /* 3.0M: split along N */
      check_product(9, 20, 31, ta, tb);    /* small: one piece */
    }
  LEAK_CHECK();
}

static void count_task(const void *ctx, unsigned i) {
  int *hits = (int *)(uintptr_t)ctx;
  hits[i]++;
}

Test(parallel, every_task_runs_once) {
  int before = sl_get_num_threads();
  for (int t = 1; t <= 2; t++) {
    sl_set_num_threads(t);
    for (unsigned n = 0; n <= 64; n += 7) {
      int hits[64] = {0};
      sl_par_tasks(n, count_task, hits);
      for (unsigned i = 0; i < 64; i++) cr_assert_eq(hits[i], i < n ? 1 : 0, "%d threads, %u tasks: task %u ran %d times", t, n, i, hits[i]);
    }
  }
  sl_set_num_threads(before);
  LEAK_CHECK();
}
