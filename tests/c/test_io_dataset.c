/* Dataset: construction, subset, standardization numbers and the batch
 * iterator (coverage, determinism, drop_last, no allocation per batch). */
#include "test_io_util.h"

/* N samples x D features with x[i][j] = 100 i + j and y[i] = i. */
static sl_dataset *make_ds(int64_t n, int64_t d) {
  sl_tensor *x = sl_tensor_empty(2, IO_SHAPE(n, d));
  sl_tensor *y = sl_tensor_empty(1, IO_SHAPE(n));
  cr_assert(x && y);
  for (int64_t i = 0; i < n; i++) {
    y->data[i] = (float)i;
    for (int64_t j = 0; j < d; j++) x->data[i * d + j] = (float)(100 * i + j);
  }
  sl_dataset *ds = sl_dataset_new(x, y);
  cr_assert_not_null(ds, "%s", sl_last_error());
  sl_tensor_release(x);
  sl_tensor_release(y);
  return ds;
}

/* Runs one epoch, checking that every x row matches its label and counting
 * visits; fills order[] with the sample sequence. Returns batches. */
static int run_epoch(sl_batch_iter *it, int64_t d, int *visits, int64_t *order, int64_t *sizes) {
  sl_tensor *xb, *yb;
  int r, nb = 0;
  int64_t k = 0;
  while ((r = sl_batch_iter_next(it, &xb, &yb)) > 0) {
    int64_t m = xb->shape[0];
    cr_assert_eq(yb->shape[0], m);
    cr_assert_eq(xb->shape[1], d);
    int64_t ni;
    const int64_t *idx = sl_batch_iter_indices(it, &ni);
    cr_assert_eq(ni, m);
    for (int64_t i = 0; i < m; i++) {
      int64_t s = (int64_t)yb->data[i];
      cr_assert_eq(s, idx[i]);
      for (int64_t j = 0; j < d; j++) cr_assert_eq(xb->data[i * d + j], (float)(100 * s + j));
      visits[s]++;
      order[k++] = s;
    }
    if (sizes) sizes[nb] = m;
    nb++;
  }
  cr_assert_eq(r, 0, "%s", sl_last_error());
  return nb;
}

Test(dataset, new_checks_sample_counts_and_reports_size) {
  sl_tensor *x = sl_tensor_zeros(2, IO_SHAPE(5, 3)), *y = sl_tensor_zeros(1, IO_SHAPE(4));
  cr_assert_null(sl_dataset_new(x, y));
  cr_assert_eq(sl_last_status(), SL_ESHAPE);
  IO_ASSERT_ERR("x [5 x 3] and y [4] have different numbers of samples");
  sl_dataset *ds = sl_dataset_new(x, NULL);
  cr_assert_eq(sl_dataset_size(ds), 5);
  cr_assert_eq(sl_dataset_x(ds), x);
  cr_assert_null(sl_dataset_y(ds));
  sl_tensor_release(x);
  sl_tensor_release(y);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, in_order_batches_with_a_smaller_last_batch) {
  sl_dataset *ds = make_ds(10, 3);
  sl_batch_iter *it = sl_batch_iter_new(ds, 4, false, false, NULL);
  cr_assert_not_null(it);
  cr_assert_eq(sl_batch_iter_count(it), 3);
  int visits[10] = {0};
  int64_t order[10], sizes[4];
  cr_assert_eq(run_epoch(it, 3, visits, order, sizes), 3);
  cr_assert_eq(sizes[0], 4);
  cr_assert_eq(sizes[1], 4);
  cr_assert_eq(sizes[2], 2);
  for (int i = 0; i < 10; i++) {
    cr_assert_eq(order[i], i);
    cr_assert_eq(visits[i], 1);
  }
  sl_batch_iter_free(it);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, drop_last_drops_the_incomplete_batch) {
  sl_dataset *ds = make_ds(10, 2);
  sl_rng r;
  sl_rng_seed(&r, 3);
  sl_batch_iter *it = sl_batch_iter_new(ds, 4, true, true, &r);
  cr_assert_eq(sl_batch_iter_count(it), 2);
  int visits[10] = {0};
  int64_t order[10], sizes[3];
  cr_assert_eq(run_epoch(it, 2, visits, order, sizes), 2);
  cr_assert_eq(sizes[1], 4);
  int seen = 0;
  for (int i = 0; i < 10; i++) seen += visits[i];
  cr_assert_eq(seen, 8);
  sl_batch_iter_free(it);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, shuffled_epochs_visit_every_sample_once_in_new_orders) {
  enum { N = 1000 };
  sl_dataset *ds = make_ds(N, 5);
  sl_rng r;
  sl_rng_seed(&r, 42);
  sl_batch_iter *it = sl_batch_iter_new(ds, 128, true, false, &r);
  static int64_t order[3][N];
  for (int e = 0; e < 3; e++) {
    if (e) cr_assert_eq(sl_batch_iter_reset(it, &r), SL_OK);
    int visits[N] = {0};
    cr_assert_eq(run_epoch(it, 5, visits, order[e], NULL), 8);
    for (int i = 0; i < N; i++) cr_assert_eq(visits[i], 1, "epoch %d sample %d", e, i);
    int in_place = 0;
    for (int i = 0; i < N; i++) in_place += order[e][i] == i;
    cr_assert_lt(in_place, 20, "epoch %d looks unshuffled", e);
  }
  cr_assert(memcmp(order[0], order[1], sizeof order[0]) != 0);
  cr_assert(memcmp(order[1], order[2], sizeof order[0]) != 0);
  sl_batch_iter_free(it);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, same_seed_same_order_other_seed_other_order) {
  enum { N = 300 };
  sl_dataset *ds = make_ds(N, 1);
  static int64_t o[3][N];
  uint64_t seeds[3] = {7, 7, 8};
  for (int k = 0; k < 3; k++) {
    sl_rng r;
    sl_rng_seed(&r, seeds[k]);
    sl_batch_iter *it = sl_batch_iter_new(ds, 32, true, false, &r);
    int visits[N] = {0};
    run_epoch(it, 1, visits, o[k], NULL);
    sl_batch_iter_free(it);
  }
  cr_assert(memcmp(o[0], o[1], sizeof o[0]) == 0);
  cr_assert(memcmp(o[0], o[2], sizeof o[0]) != 0);
  /* Fisher-Yates with sl_rng_below, by hand */
  sl_rng r;
  sl_rng_seed(&r, 7);
  int64_t p[N];
  for (int i = 0; i < N; i++) p[i] = i;
  for (int i = N - 1; i > 0; i--) {
    int64_t j = (int64_t)sl_rng_below(&r, (uint64_t)i + 1), t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  cr_assert(memcmp(o[0], p, sizeof p) == 0);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, batches_allocate_nothing_after_the_first) {
  sl_dataset *ds = make_ds(1000, 16);
  sl_rng r;
  sl_rng_seed(&r, 1);
  sl_batch_iter *it = sl_batch_iter_new(ds, 64, true, false, &r);
  sl_tensor *xb, *yb;
  cr_assert_eq(sl_batch_iter_next(it, &xb, &yb), 1);
  uint64_t a0 = sl_alloc_count();
  int batches = 1;
  for (int e = 0; e < 3; e++) { /* includes the 40-row last batch and growing back */
    if (e) sl_batch_iter_reset(it, &r);
    while (sl_batch_iter_next(it, &xb, &yb) > 0) batches++;
  }
  cr_assert_eq(batches, 3 * 16);
  cr_assert_eq(sl_alloc_count(), a0, "%llu allocations during batching",
               (unsigned long long)(sl_alloc_count() - a0));
  sl_batch_iter_free(it);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, next_into_fills_caller_buffers) {
  sl_dataset *ds = make_ds(5, 2);
  sl_batch_iter *it = sl_batch_iter_new(ds, 3, false, false, NULL);
  sl_tensor *xb = NULL, *yb = sl_tensor_zeros(1, IO_SHAPE(3));
  sl_tensor *y0 = yb;
  cr_assert_eq(sl_batch_iter_next_into(it, &xb, &yb), 1);
  cr_assert_not_null(xb);
  cr_assert_eq(yb, y0); /* reused, not replaced */
  cr_assert_eq(xb->data[5], 201.0f);
  cr_assert_eq(sl_batch_iter_next_into(it, &xb, &yb), 1);
  cr_assert_eq(xb->shape[0], 2);
  cr_assert_eq(yb->data[1], 4.0f);
  cr_assert_eq(sl_batch_iter_next_into(it, &xb, &yb), 0);
  sl_tensor_release(xb);
  sl_tensor_release(yb);
  sl_batch_iter_free(it);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, iterator_keeps_dataset_alive_and_rejects_bad_arguments) {
  sl_dataset *ds = make_ds(4, 2);
  cr_assert_null(sl_batch_iter_new(ds, 0, false, false, NULL));
  IO_ASSERT_ERR("batch size must be >= 1, got 0");
  cr_assert_null(sl_batch_iter_new(ds, 2, true, false, NULL));
  IO_ASSERT_ERR("shuffling needs a generator");
  sl_batch_iter *it = sl_batch_iter_new(ds, 2, false, false, NULL);
  sl_dataset_free(ds); /* the iterator holds its own reference */
  sl_tensor *xb, *yb;
  cr_assert_eq(sl_batch_iter_next(it, &xb, &yb), 1);
  cr_assert_eq(xb->data[2], 100.0f);
  sl_batch_iter_free(it);
  IO_LEAK_CHECK();
}

Test(dataset, subset_copies_the_first_rows) {
  sl_dataset *ds = make_ds(6, 2);
  sl_dataset *s = sl_dataset_subset(ds, 4);
  cr_assert_not_null(s);
  cr_assert_eq(sl_dataset_size(s), 4);
  cr_assert_eq(sl_dataset_x(s)->data[7], 301.0f);
  cr_assert_eq(sl_dataset_y(s)->data[3], 3.0f);
  sl_dataset_x(s)->data[0] = -1;
  cr_assert_eq(sl_dataset_x(ds)->data[0], 0.0f);
  cr_assert_null(sl_dataset_subset(ds, 7));
  IO_ASSERT_ERR("n = 7 outside 0..6");
  sl_dataset_free(s);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}

Test(dataset, standardize_global_returns_and_reuses_statistics) {
  float v[6] = {1, 2, 3, 4, 5, 9};
  sl_tensor *x = sl_tensor_from_array(2, IO_SHAPE(3, 2), v);
  sl_dataset *tr = sl_dataset_new(x, NULL);
  double m, s;
  cr_assert_eq(sl_dataset_standardize(tr, NULL, NULL, &m, &s), SL_OK);
  /* torch: t.double().mean() = 4.0, t.double().std() = 2.8284271247461903 */
  cr_assert_eq(m, 4.0);
  cr_assert_float_eq(s, 2.8284271247461903, 1e-15);
  for (int i = 0; i < 6; i++)
    cr_assert_eq(x->data[i], (v[i] - 4.0f) / 2.8284271247461903f, "element %d", i);
  /* a "test set" standardized with the training statistics */
  float w[2] = {4, 6.8284271247461903f};
  sl_tensor *xt = sl_tensor_from_array(1, IO_SHAPE(2), w);
  sl_dataset *te = sl_dataset_new(xt, NULL);
  double m2 = 0, s2 = 0;
  cr_assert_eq(sl_dataset_standardize(te, &m, &s, &m2, &s2), SL_OK);
  cr_assert_eq(m2, m);
  cr_assert_eq(s2, s);
  cr_assert_eq(xt->data[0], 0.0f);
  cr_assert_float_eq(xt->data[1], 1.0f, 1e-6);
  double bad = 0;
  cr_assert_eq(sl_dataset_standardize(te, &m, &bad, NULL, NULL), SL_EINVAL);
  IO_ASSERT_ERR("std > 0");
  cr_assert_eq(sl_dataset_standardize(te, &m, NULL, NULL, NULL), SL_EINVAL);
  sl_tensor_release(x);
  sl_tensor_release(xt);
  sl_dataset_free(tr);
  sl_dataset_free(te);
  IO_LEAK_CHECK();
}

Test(dataset, standardize_per_feature) {
  float v[6] = {1, 10, 3, 10, 5, 40};
  sl_tensor *x = sl_tensor_from_array(2, IO_SHAPE(3, 2), v);
  sl_dataset *ds = sl_dataset_new(x, NULL);
  sl_tensor *mt, *st;
  cr_assert_eq(sl_dataset_standardize_features(ds, NULL, NULL, &mt, &st), SL_OK);
  cr_assert_eq(mt->data[0], 3.0f);
  cr_assert_eq(mt->data[1], 20.0f);
  cr_assert_eq(st->data[0], 2.0f);
  cr_assert_float_eq(st->data[1], 17.320508075688775f, 1e-5); /* torch std(0) */
  cr_assert_eq(x->data[0], -1.0f);
  cr_assert_eq(x->data[4], 1.0f);
  /* reuse on another set; a constant column gets std 1 */
  float w[4] = {3, 20, 3, 20};
  sl_tensor *x2 = sl_tensor_from_array(2, IO_SHAPE(2, 2), w);
  sl_dataset *d2 = sl_dataset_new(x2, NULL);
  cr_assert_eq(sl_dataset_standardize_features(d2, mt, st, NULL, NULL), SL_OK);
  for (int i = 0; i < 4; i++) cr_assert_eq(x2->data[i], 0.0f);
  sl_tensor *m3, *s3;
  cr_assert_eq(sl_dataset_standardize_features(d2, NULL, NULL, &m3, &s3), SL_OK);
  cr_assert_eq(s3->data[0], 1.0f);
  sl_tensor_release(m3);
  sl_tensor_release(s3);
  sl_tensor_release(mt);
  sl_tensor_release(st);
  sl_tensor_release(x);
  sl_tensor_release(x2);
  sl_dataset_free(ds);
  sl_dataset_free(d2);
  IO_LEAK_CHECK();
}

Test(dataset, fashion_mnist_statistics_match_torch, .timeout = 120) {
  sl_tensor *x, *y;
  if (sl_fashion_mnist_load(NULL, true, &x, &y) != SL_OK)
    cr_skip_test("Fashion-MNIST not installed: %s", sl_last_error());
  sl_dataset *ds = sl_dataset_new(x, y);
  double m, s;
  cr_assert_eq(sl_dataset_standardize(ds, NULL, NULL, &m, &s), SL_OK);
  /* Exact mean and unbiased std of the 47M float32 values v / 255, computed
   * with Python fractions: 0.28604060219395294, 0.3530242532950078. (torch's
   * x.double().std() gives 0.35302425325367776, 4e-11 off.) */
  cr_assert_float_eq(m, 0.28604060219395294, 1e-14, "mean %.17g", m);
  cr_assert_float_eq(s, 0.3530242532950078, 1e-14, "std %.17g", s);
  double sum = 0;
  for (int64_t i = 0; i < x->numel; i++) sum += (double)x->data[i];
  cr_assert_float_eq(sum / (double)x->numel, 0.0, 1e-6);
  sl_tensor_release(x);
  sl_tensor_release(y);
  sl_dataset_free(ds);
  IO_LEAK_CHECK();
}
