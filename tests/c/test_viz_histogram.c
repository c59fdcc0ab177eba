/* Histogram binning, statistics, and the histogram sheet's pixels. */
#include <criterion/criterion.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selut.h"

Test(viz_histogram, counts_are_exact_with_edges_and_out_of_range) {
  sl_histogram h;
  cr_assert_eq(sl_histogram_init(&h, 4, 0.0, 4.0), SL_OK);
  const float x[] = {0.0f, 0.5f, 1.0f, 1.999f, 2.0f, 3.5f, 4.0f /* == hi: last bin */,
                     -0.001f, 4.0001f, NAN, INFINITY, -INFINITY, 3.9999999f};
  sl_histogram_add(&h, x, sizeof x / sizeof x[0]);
  cr_assert_eq(h.counts[0], 2);
  cr_assert_eq(h.counts[1], 2);
  cr_assert_eq(h.counts[2], 1);
  cr_assert_eq(h.counts[3], 3);
  cr_assert_eq(h.under, 2, "-0.001 and -inf");
  cr_assert_eq(h.over, 2, "4.0001 and +inf");
  cr_assert_eq(h.nan, 1);
  cr_assert_eq(h.total, 13);
  cr_assert_eq(sl_histogram_max(&h), 3);
}

Test(viz_histogram, default_range_bins_and_accumulation) {
  sl_histogram h;
  cr_assert_eq(sl_histogram_init(&h, 60, -4, 4), SL_OK);
  /* bin = floor((x + 4) * 7.5): -4 -> 0, -3.9 -> 0, 0 -> 30, 0.1333 -> 30,
   * 0.134 -> 31, 3.99 -> 59, 4 -> 59 */
  const float a[] = {-4.0f, -3.9f, 0.0f, 0.1333f};
  const float b[] = {0.134f, 3.99f, 4.0f};
  sl_histogram_add(&h, a, 4);
  sl_histogram_add(&h, b, 3);
  cr_assert_eq(h.counts[0], 2);
  cr_assert_eq(h.counts[30], 2);
  cr_assert_eq(h.counts[31], 1);
  cr_assert_eq(h.counts[59], 2);
  int64_t sum = 0;
  for (int i = 0; i < 60; i++) sum += h.counts[i];
  cr_assert_eq(sum, 7);
  cr_assert_eq(h.total, 7);
  cr_assert_eq(h.under + h.over + h.nan, 0);
}

Test(viz_histogram, one_value_per_bin_over_a_long_array) {
  /* 10 bins over [0, 10), value i + 0.5 repeated (i + 1) times, in a long
   * array that exercises the unrolled loop and its tail */
  float x[55];
  int k = 0;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j <= i; j++) x[k++] = (float)i + 0.5f;
  sl_histogram h;
  sl_stats st;
  sl_histogram_init(&h, 10, 0, 10);
  sl_histogram_stats(&h, &st, x, 55);
  for (int i = 0; i < 10; i++) cr_assert_eq(h.counts[i], i + 1, "bin %d", i);
  cr_assert_eq(st.count, 55);
  cr_assert_float_eq(st.mean, 6.5, 1e-12); /* sum (i+1)(i+0.5) = 357.5, / 55 */
}

Test(viz_histogram, init_rejects_bad_bins_and_ranges) {
  sl_histogram h;
  cr_assert_eq(sl_histogram_init(&h, 0, -4, 4), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "bins = 0"), "%s", sl_last_error());
  cr_assert_eq(sl_histogram_init(&h, SL_HIST_MAX_BINS + 1, -4, 4), SL_EINVAL);
  cr_assert_eq(sl_histogram_init(&h, 10, 1, 1), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "[1, 1)"), "%s", sl_last_error());
  cr_assert_eq(sl_histogram_init(&h, 10, NAN, 1), SL_EINVAL);
  cr_assert_eq(sl_histogram_init(&h, 10, 0, INFINITY), SL_EINVAL);
}

Test(viz_stats, mean_std_min_max_over_finite_values) {
  const float x[] = {1, NAN, 2, 3, INFINITY, 4, -INFINITY};
  sl_stats s;
  sl_stats_compute(&s, x, 7);
  cr_assert_eq(s.count, 4);
  cr_assert_eq(s.nonfinite, 3);
  cr_assert_float_eq(s.mean, 2.5, 1e-15);
  cr_assert_float_eq(s.std, 1.2909944487358056, 1e-15); /* torch.tensor([1.,2,3,4]).std() */
  cr_assert_eq(s.min, 1.0);
  cr_assert_eq(s.max, 4.0);
}

Test(viz_stats, large_offset_keeps_precision) {
  /* 10000 + {-1, 0, 1} repeated: std must be exact to ~1e-12 */
  float x[3001];
  for (int i = 0; i < 3000; i++) x[i] = 10000.0f + (float)(i % 3 - 1);
  x[3000] = 10000.0f;
  sl_stats s;
  sl_stats_compute(&s, x, 3001);
  double expect = sqrt(2000.0 / 3000.0); /* sum of squares 2000 over n - 1 = 3000 */
  cr_assert_float_eq(s.mean, 10000.0, 1e-9);
  cr_assert_float_eq(s.std, expect, 1e-12);
}

Test(viz_stats, empty_and_single_values_give_nan) {
  sl_stats s;
  sl_stats_compute(&s, NULL, 0);
  cr_assert_eq(s.count, 0);
  cr_assert(isnan(s.mean) && isnan(s.std) && isnan(s.min) && isnan(s.max));
  const float one[] = {NAN, 3.0f};
  sl_stats_compute(&s, one, 2);
  cr_assert_eq(s.count, 1);
  cr_assert_eq(s.mean, 3.0);
  cr_assert(isnan(s.std));
}

Test(viz_stats, one_pass_matches_separate_passes) {
  size_t n = 100003;
  float *x = malloc(n * sizeof *x);
  uint32_t r = 12345;
  for (size_t i = 0; i < n; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 12.0f;
  }
  x[7] = NAN;
  x[50001] = INFINITY;
  x[n - 1] = NAN;
  sl_histogram h1, h2;
  sl_stats s1, s2;
  sl_histogram_init(&h1, 37, -3, 3);
  sl_histogram_init(&h2, 37, -3, 3);
  sl_histogram_stats(&h1, &s1, x, n);
  sl_histogram_add(&h2, x, n);
  sl_stats_compute(&s2, x, n);
  cr_assert_eq(memcmp(h1.counts, h2.counts, sizeof h1.counts), 0);
  cr_assert_eq(h1.under, h2.under);
  cr_assert_eq(h1.over, h2.over);
  cr_assert_eq(h1.nan, 2);
  cr_assert_eq(s1.count, (int64_t)n - 3);
  cr_assert_eq(s1.mean, s2.mean);
  cr_assert_eq(s1.std, s2.std);
  /* against a plain two-pass reference */
  double sum = 0, ss = 0, mn = INFINITY, mx = -INFINITY;
  int64_t cnt = 0, under = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) {
      double v = x[i];
      sum += v, cnt++, mn = fmin(mn, v), mx = fmax(mx, v);
    }
  double mean = sum / (double)cnt;
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i])) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
  for (size_t i = 0; i < n; i++) under += x[i] < -3.0f;
  cr_assert_float_eq(s1.mean, mean, 1e-12);
  cr_assert_float_eq(s1.std, sqrt(ss / (double)(cnt - 1)), 1e-12);
  cr_assert_eq(s1.min, mn);
  cr_assert_eq(s1.max, mx);
  cr_assert_eq(h1.under, under);
  free(x);
}

/* ---- the sheet --------------------------------------------------------- */

static uint8_t *read_png(const char *path, png_image *img) {
  memset(img, 0, sizeof *img);
  img->version = PNG_IMAGE_VERSION;
  cr_assert(png_image_begin_read_from_file(img, path), "libpng: %s", img->message);
  cr_assert_eq(img->format, PNG_FORMAT_RGB);
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(*img));
  cr_assert(png_image_finish_read(img, NULL, buf, 0, NULL), "libpng: %s", img->message);
  return buf;
}

static uint32_t px(const uint8_t *rgb, int w, int x, int y) {
  const uint8_t *p = rgb + 3 * (y * w + x);
  return SL_RGB(p[0], p[1], p[2]);
}

static int count_color_in_column(const uint8_t *rgb, int w, int h, int x, uint32_t c) {
  int n = 0;
  for (int y = 0; y < h; y++) n += px(rgb, w, x, y) == c;
  return n;
}

/* One panel of 1000 values at 0.05 (bin 30 of 60 over [-4, 4]), written at
 * width 1600 with one column: the plot spans x = 20 .. 1580 (margin 12 +
 * pad 8), so bin 30 covers x = 800 .. 825 and x = 215 is the value -3. */
Test(viz_sheet, tall_bar_where_the_data_is_and_background_elsewhere) {
  float *x = malloc(1000 * sizeof *x);
  for (int i = 0; i < 1000; i++) x[i] = 0.05f;
  x[0] = -9, x[1] = 7, x[2] = 8; /* one under, two over */
  sl_hist_panel p = {"layer 1", x, 1000, NULL, NULL};
  sl_hist_sheet_opts o = {0};
  o.title = "Sheet title";
  o.no_normal = 1;
  char path[64];
  snprintf(path, sizeof path, "/tmp/selut_viz_sheet_%d.png", (int)getpid());
  cr_assert_eq(sl_hist_sheet_write(path, &p, 1, &o), SL_OK, "%s", sl_last_error());
  png_image img;
  uint8_t *rgb = read_png(path, &img);
  int w = (int)img.width, h = (int)img.height;
  cr_assert_eq(w, 1600);
  cr_assert_gt(h, 600);
  int bar = count_color_in_column(rgb, w, h, 812, SL_VIZ_BAR);
  cr_assert_gt(bar, 500, "the full bin's bar is tall (%d px)", bar);
  cr_assert_eq(count_color_in_column(rgb, w, h, 215, SL_VIZ_BAR), 0);
  cr_assert_eq(count_color_in_column(rgb, w, h, 790, SL_VIZ_BAR), 0, "bin 29 is empty");
  cr_assert_eq(count_color_in_column(rgb, w, h, 836, SL_VIZ_BAR), 0, "bin 31 is empty");
  /* the middle of the empty side of the plot is background */
  int top = -1;
  for (int y = 0; y < h && top < 0; y++)
    if (px(rgb, w, 812, y) == SL_VIZ_BAR) top = y;
  cr_assert_eq(px(rgb, w, 400, top + 50), SL_VIZ_BACKGROUND);
  cr_assert_eq(px(rgb, w, 1200, top + 50), SL_VIZ_BACKGROUND);
  /* the title row (12 .. 12 + 27) has ink, the margin above it none */
  int ink = 0;
  for (int y = 12; y < 12 + 27; y++)
    for (int xx = 12; xx < 400; xx++) ink += px(rgb, w, xx, y) == SL_VIZ_TEXT;
  cr_assert_gt(ink, 100, "title row has %d text pixels", ink);
  for (int xx = 0; xx < w; xx++) cr_assert_eq(px(rgb, w, xx, 5), SL_VIZ_BACKGROUND);
  free(rgb);
  free(x);
  unlink(path);
}

Test(viz_sheet, normal_curve_is_drawn_over_normal_data) {
  size_t n = 20000;
  float *x = malloc(n * sizeof *x);
  uint32_t r = 7;
  for (size_t i = 0; i < n; i += 2) { /* Box-Muller */
    r = r * 1664525u + 1013904223u;
    double u1 = ((r >> 8) + 0.5) / 16777216.0;
    r = r * 1664525u + 1013904223u;
    double u2 = ((r >> 8) + 0.5) / 16777216.0;
    x[i] = (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    x[i + 1] = (float)(sqrt(-2 * log(u1)) * sin(6.283185307179586 * u2));
  }
  sl_hist_panel p[2] = {{"a", x, n, NULL, NULL}, {"b", x, n / 2, NULL, NULL}};
  sl_canvas *c;
  cr_assert_eq(sl_hist_sheet_render(&c, p, 2, NULL), SL_OK, "%s", sl_last_error());
  /* two columns: panel width (1600 - 24 - 12) / 2 = 782; panel 1 plot spans
   * 20 .. 786; x = 0 at 403: the curve's peak is there, above bars */
  int curve = 0, bar = 0;
  for (int y = 0; y < c->height; y++) {
    curve += sl_canvas_get(c, 403, y) == SL_VIZ_CURVE;
    bar += sl_canvas_get(c, 403, y) == SL_VIZ_BAR;
  }
  cr_assert_gt(curve, 0);
  cr_assert_gt(bar, 100);
  sl_canvas_free(c);
  free(x);
}

Test(viz_sheet, precomputed_histograms_must_match_the_options) {
  float x[4] = {0, 1, 2, 3};
  sl_histogram h;
  sl_stats st;
  sl_histogram_init(&h, 30, -4, 4);
  sl_histogram_stats(&h, &st, x, 4);
  sl_hist_panel p = {"pre", NULL, 0, &h, &st};
  sl_canvas *c = (sl_canvas *)1;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, NULL), SL_EINVAL);
  cr_assert_null(c);
  cr_assert(strstr(sl_last_error(), "30 bins"), "%s", sl_last_error());
  sl_hist_sheet_opts o = {0};
  o.bins = 30;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, &o), SL_OK, "%s", sl_last_error());
  sl_canvas_free(c);
  p.stats = NULL;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, &o), SL_EINVAL);
}

Test(viz_sheet, bad_options_are_rejected) {
  float x[1] = {0};
  sl_hist_panel p = {"a", x, 1, NULL, NULL};
  sl_canvas *c;
  sl_hist_sheet_opts o = {0};
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 0, &o), SL_EINVAL);
  o.lo = 3, o.hi = 2;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, &o), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "[3, 2]"), "%s", sl_last_error());
  memset(&o, 0, sizeof o);
  o.columns = -1;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, &o), SL_EINVAL);
  memset(&o, 0, sizeof o);
  o.bins = SL_HIST_MAX_BINS + 1;
  cr_assert_eq(sl_hist_sheet_render(&c, &p, 1, &o), SL_EINVAL);
}

Test(viz_sheet, empty_panels_and_log_counts_render) {
  float x[3] = {NAN, NAN, 1};
  sl_hist_panel p[3] = {{"empty", NULL, 0, NULL, NULL}, {NULL, x, 3, NULL, NULL},
                        {"a name much too long to fit in a panel of two hundred pixels", x, 3, NULL, NULL}};
  sl_hist_sheet_opts o = {0};
  o.log_counts = 1;
  o.width = 100; /* raised to the 200 px per panel minimum */
  sl_canvas *c;
  cr_assert_eq(sl_hist_sheet_render(&c, p, 3, &o), SL_OK, "%s", sl_last_error());
  cr_assert_geq(c->width, 3 * 200);
  sl_canvas_free(c);
}
