/* Line plots: nice ticks, tick labels, legend text, non-finite points. */
#include <criterion/criterion.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selut.h"

Test(viz_ticks, nice_steps_are_1_2_5_times_a_power_of_ten) {
  double t[64], step;
  int n = sl_nice_ticks(-4, 4, 8, t, 64, &step);
  cr_assert_eq(n, 9);
  cr_assert_eq(step, 1.0);
  for (int i = 0; i < 9; i++) cr_assert_eq(t[i], i - 4.0);
  n = sl_nice_ticks(0, 1, 5, t, 64, &step);
  cr_assert_eq(step, 0.2);
  cr_assert_eq(n, 6);
  cr_assert_float_eq(t[5], 1.0, 1e-12);
  n = sl_nice_ticks(0.013, 0.0871, 5, t, 64, &step); /* raw 0.0148 -> 0.01 */
  cr_assert_float_eq(step, 0.01, 1e-15);
  cr_assert_float_eq(t[0], 0.02, 1e-12);
  cr_assert_eq(n, 7);
  n = sl_nice_ticks(1, 1000, 4, t, 64, &step); /* raw 250 -> 200 */
  cr_assert_eq(step, 200.0);
  cr_assert_eq(t[0], 200.0);
  cr_assert_eq(n, 5);
  n = sl_nice_ticks(-1e-3, 1e-3, 4, t, 3, &step); /* max bounds the output */
  cr_assert_eq(n, 3);
  cr_assert_eq(sl_nice_ticks(1, 1, 5, t, 64, &step), SL_EINVAL);
  cr_assert_eq(sl_nice_ticks(0, INFINITY, 5, t, 64, &step), SL_EINVAL);
}

Test(viz_ticks, labels_have_just_enough_decimals) {
  char b[32];
  sl_format_tick(b, sizeof b, -4, 1);
  cr_assert_str_eq(b, "-4");
  sl_format_tick(b, sizeof b, 0.2, 0.2);
  cr_assert_str_eq(b, "0.2");
  sl_format_tick(b, sizeof b, 0.25, 0.05);
  cr_assert_str_eq(b, "0.25");
  sl_format_tick(b, sizeof b, 1.0, 0.2);
  cr_assert_str_eq(b, "1.0");
  sl_format_tick(b, sizeof b, 0, 0.5);
  cr_assert_str_eq(b, "0");
  sl_format_tick(b, sizeof b, 2e6, 1e6);
  cr_assert_str_eq(b, "2e+06");
  sl_format_tick(b, sizeof b, 1500, 500);
  cr_assert_str_eq(b, "1500");
}

Test(viz_plot, legend_counts_skipped_points) {
  double y[6] = {1, NAN, 2, INFINITY, -INFINITY, 0};
  sl_series s = {"loss", y, NULL, 6};
  char buf[128];
  cr_assert_eq(sl_plot_legend_text(buf, sizeof buf, &s, 0), 3);
  cr_assert_str_eq(buf, "loss (3 non-finite skipped)");
  cr_assert_eq(sl_plot_legend_text(buf, sizeof buf, &s, 1), 4);
  cr_assert_str_eq(buf, "loss (3 non-finite, 1 non-positive skipped)");
  double x[6] = {0, 1, 2, 3, 4, NAN}; /* a bad x also skips the point */
  s.x = x;
  y[5] = 1;
  cr_assert_eq(sl_plot_legend_text(buf, sizeof buf, &s, 0), 4);
  cr_assert_str_eq(buf, "loss (4 non-finite skipped)");
  s.x = NULL;
  s.y = (const double[]){1, 2, 3};
  s.n = 3;
  cr_assert_eq(sl_plot_legend_text(buf, sizeof buf, &s, 0), 0);
  cr_assert_str_eq(buf, "loss");
}

static uint8_t *read_png(const char *path, png_image *img) {
  memset(img, 0, sizeof *img);
  img->version = PNG_IMAGE_VERSION;
  cr_assert(png_image_begin_read_from_file(img, path), "libpng: %s", img->message);
  cr_assert_eq(img->format, PNG_FORMAT_RGB);
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(*img));
  cr_assert(png_image_finish_read(img, NULL, buf, 0, NULL), "libpng: %s", img->message);
  return buf;
}

static int count_color(const uint8_t *rgb, size_t npx, uint32_t c) {
  int n = 0;
  for (size_t i = 0; i < npx; i++)
    n += SL_RGB(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) == c;
  return n;
}

Test(viz_plot, series_with_nan_points_write_a_png) {
  double loss[50], acc[50];
  for (int i = 0; i < 50; i++) loss[i] = 2.0 * exp(-i / 10.0), acc[i] = 1 - loss[i] / 2;
  loss[10] = NAN, loss[20] = INFINITY, loss[21] = NAN;
  sl_series s[2] = {{"loss", loss, NULL, 50}, {"accuracy", acc, NULL, 50}};
  sl_plot_opts o = {0};
  o.title = "curves";
  o.xlabel = "epoch";
  o.ylabel = "value";
  char path[64];
  snprintf(path, sizeof path, "/tmp/selut_viz_plot_%d.png", (int)getpid());
  cr_assert_eq(sl_plot_write(path, s, 2, &o), SL_OK, "%s", sl_last_error());
  png_image img;
  uint8_t *rgb = read_png(path, &img);
  cr_assert_eq(img.width, 1000);
  cr_assert_eq(img.height, 600);
  size_t npx = (size_t)img.width * img.height;
  cr_assert_gt(count_color(rgb, npx, sl_plot_color(0)), 200, "the loss line is drawn");
  cr_assert_gt(count_color(rgb, npx, sl_plot_color(1)), 200, "the accuracy line is drawn");
  cr_assert_neq(sl_plot_color(0), sl_plot_color(1));
  cr_assert_gt(count_color(rgb, npx, SL_VIZ_TEXT), 500, "labels are drawn");
  char legend[128];
  cr_assert_eq(sl_plot_legend_text(legend, sizeof legend, &s[0], 0), 3);
  cr_assert_str_eq(legend, "loss (3 non-finite skipped)");
  free(rgb);
  unlink(path);
}

Test(viz_plot, log_y_and_explicit_x_render) {
  double x[4] = {0.5, 1, 4, 8}, y[4] = {1e-3, 0, 2e-2, 5};
  sl_series s = {"lr", y, x, 4};
  sl_plot_opts o = {0};
  o.log_y = 1;
  o.width = 400;
  o.height = 300;
  sl_canvas *c;
  cr_assert_eq(sl_plot_render(&c, &s, 1, &o), SL_OK, "%s", sl_last_error());
  cr_assert_eq(c->width, 400);
  cr_assert_eq(c->height, 300);
  int n = 0;
  for (size_t i = 0; i < (size_t)c->width * c->height; i++)
    n += SL_RGB(c->rgb[3 * i], c->rgb[3 * i + 1], c->rgb[3 * i + 2]) == sl_plot_color(0);
  cr_assert_gt(n, 20);
  sl_canvas_free(c);
}

Test(viz_plot, degenerate_series_still_render) {
  double nan3[3] = {NAN, NAN, NAN}, flat[2] = {5, 5};
  sl_series s[3] = {{"all nan", nan3, NULL, 3}, {"flat", flat, NULL, 2}, {"empty", NULL, NULL, 0}};
  sl_canvas *c;
  cr_assert_eq(sl_plot_render(&c, s, 3, NULL), SL_OK, "%s", sl_last_error());
  sl_canvas_free(c);
  cr_assert_eq(sl_plot_render(&c, s, 1, NULL), SL_OK, "%s", sl_last_error());
  sl_canvas_free(c);
}

Test(viz_plot, bad_arguments_fail_cleanly) {
  double y[1] = {1};
  sl_series s = {"a", y, NULL, 1};
  sl_canvas *c;
  cr_assert_eq(sl_plot_render(&c, &s, 0, NULL), SL_EINVAL);
  cr_assert_null(c);
  cr_assert_eq(sl_plot_render(&c, &s, 17, NULL), SL_EINVAL);
  s.y = NULL;
  cr_assert_eq(sl_plot_render(&c, &s, 1, NULL), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "series 1"), "%s", sl_last_error());
  s.y = y;
  cr_assert_eq(sl_plot_write("/nonexistent_dir_selut/p.png", &s, 1, NULL), SL_EIO);
  cr_assert(strstr(sl_last_error(), "/nonexistent_dir_selut/p.png"), "%s", sl_last_error());
}

Test(viz_plot, values_at_the_edge_of_double_range_do_not_hang) {
  double y[3] = {-1e308, 1e308, 0};
  sl_series s = {"huge", y, NULL, 3};
  sl_canvas *c;
  cr_assert_eq(sl_plot_render(&c, &s, 1, NULL), SL_OK, "%s", sl_last_error());
  sl_canvas_free(c);
}
