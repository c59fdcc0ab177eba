/* Canvas drawing primitives and atomic PNG writing, checked by decoding the
 * written files with libpng. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selut.h"

/* A fresh directory under /tmp (tests run in parallel). */
static void make_tmpdir(char *dir, size_t n) {
  snprintf(dir, n, "/tmp/selut_viz_png_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

/* Number of entries in dir, besides . and .. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* Decodes path as 8-bit RGB; returns the pixels (free) and the header. */
static uint8_t *read_png(const char *path, png_image *img) {
  memset(img, 0, sizeof *img);
  img->version = PNG_IMAGE_VERSION;
  cr_assert(png_image_begin_read_from_file(img, path), "libpng: %s", img->message);
  cr_assert_eq(img->format, PNG_FORMAT_RGB, "file is not stored as 8-bit RGB");
  img->format = PNG_FORMAT_RGB;
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(*img));
  cr_assert_not_null(buf);
  cr_assert(png_image_finish_read(img, NULL, buf, 0, NULL), "libpng: %s", img->message);
  return buf;
}

static uint32_t px(const uint8_t *rgb, int w, int x, int y) {
  const uint8_t *p = rgb + 3 * (y * w + x);
  return SL_RGB(p[0], p[1], p[2]);
}

Test(viz_canvas, new_fills_background_and_rejects_bad_sizes) {
  sl_canvas *c = sl_canvas_new(3, 2, SL_RGB(1, 2, 3));
  cr_assert_not_null(c);
  cr_assert_eq(c->width, 3);
  cr_assert_eq(c->height, 2);
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(c->rgb[3 * i], 1);
    cr_assert_eq(c->rgb[3 * i + 1], 2);
    cr_assert_eq(c->rgb[3 * i + 2], 3);
  }
  sl_canvas_free(c);
  cr_assert_null(sl_canvas_new(0, 5, 0));
  cr_assert_eq(sl_last_status(), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "0 x 5"), "message: %s", sl_last_error());
  cr_assert_null(sl_canvas_new(10, SL_CANVAS_MAX_SIDE + 1, 0));
  sl_canvas_free(NULL);
}

Test(viz_canvas, fill_rect_clips_to_the_canvas) {
  sl_canvas *c = sl_canvas_new(10, 8, 0);
  sl_canvas_fill_rect(c, -5, 6, 8, 100, 0xFF0000); /* covers x 0..2, y 6..7 */
  for (int y = 0; y < 8; y++)
    for (int x = 0; x < 10; x++)
      cr_assert_eq(sl_canvas_get(c, x, y), (x <= 2 && y >= 6) ? 0xFF0000u : 0u, "at %d,%d", x, y);
  sl_canvas_fill_rect(c, 8, 0, 2147483647, 2147483647, 0x00FF00); /* no overflow */
  cr_assert_eq(sl_canvas_get(c, 9, 7), 0x00FF00u);
  cr_assert_eq(sl_canvas_get(c, 7, 7), 0u);
  sl_canvas_set(c, -1, 3, 0x123456); /* outside: ignored */
  sl_canvas_set(c, 10, 3, 0x123456);
  cr_assert_eq(sl_canvas_get(c, 100, 3), 0u);
  sl_canvas_free(c);
}

Test(viz_canvas, line_includes_both_ends_and_is_connected) {
  sl_canvas *c = sl_canvas_new(20, 20, 0);
  sl_canvas_line(c, 2, 3, 17, 9, 1, 0xFFFFFF);
  cr_assert_eq(sl_canvas_get(c, 2, 3), 0xFFFFFFu);
  cr_assert_eq(sl_canvas_get(c, 17, 9), 0xFFFFFFu);
  /* a shallow 1-px line has exactly one pixel per column */
  int total = 0;
  for (int x = 0; x < 20; x++) {
    int n = 0;
    for (int y = 0; y < 20; y++) n += sl_canvas_get(c, x, y) != 0;
    cr_assert_eq(n, (x >= 2 && x <= 17) ? 1 : 0, "column %d has %d pixels", x, n);
    total += n;
  }
  cr_assert_eq(total, 16);
  /* thickness 2 doubles it */
  sl_canvas_fill_rect(c, 0, 0, 20, 20, 0);
  sl_canvas_line(c, 17, 9, 2, 3, 2, 0xFFFFFF);
  total = 0;
  for (int i = 0; i < 400; i++) total += c->rgb[3 * i] != 0;
  cr_assert_eq(total, 32);
  sl_canvas_free(c);
}

Test(viz_canvas, dashed_line_skips_the_gaps) {
  sl_canvas *c = sl_canvas_new(20, 3, 0);
  sl_canvas_dashed_line(c, 0, 1, 19, 1, 1, 3, 2, 0xFFFFFF); /* on 0-2, off 3-4, ... */
  for (int x = 0; x < 20; x++)
    cr_assert_eq(sl_canvas_get(c, x, 1), (x % 5) < 3 ? 0xFFFFFFu : 0u, "x = %d", x);
  sl_canvas_free(c);
}

Test(viz_png, written_file_decodes_to_the_same_pixels) {
  char dir[64], path[128];
  make_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/small.png", dir);
  sl_canvas *c = sl_canvas_new(7, 5, SL_RGB(255, 255, 255));
  sl_canvas_set(c, 0, 0, SL_RGB(255, 0, 0));
  sl_canvas_set(c, 6, 4, SL_RGB(0, 0, 255));
  sl_canvas_fill_rect(c, 2, 1, 3, 2, SL_RGB(10, 200, 30));
  cr_assert_eq(sl_canvas_write_png(c, path), SL_OK, "%s", sl_last_error());
  png_image img;
  uint8_t *rgb = read_png(path, &img);
  cr_assert_eq(img.width, 7);
  cr_assert_eq(img.height, 5);
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 7; x++)
      cr_assert_eq(px(rgb, 7, x, y), sl_canvas_get(c, x, y), "pixel %d,%d", x, y);
  cr_assert_eq(px(rgb, 7, 3, 2), SL_RGB(10, 200, 30));
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
  cr_assert_eq(count_entries(dir), 1, "a temporary file was left behind");
  free(rgb);
  sl_canvas_free(c);
  unlink(path);
  rmdir(dir);
}

Test(viz_png, rewriting_replaces_the_file) {
  char dir[64], path[128];
  make_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a.png", dir);
  sl_canvas *c = sl_canvas_new(4, 4, SL_RGB(0, 0, 0));
  cr_assert_eq(sl_canvas_write_png(c, path), SL_OK);
  sl_canvas_free(c);
  c = sl_canvas_new(9, 2, SL_RGB(1, 2, 3));
  cr_assert_eq(sl_canvas_write_png(c, path), SL_OK);
  png_image img;
  uint8_t *rgb = read_png(path, &img);
  cr_assert_eq(img.width, 9);
  cr_assert_eq(img.height, 2);
  cr_assert_eq(px(rgb, 9, 8, 1), SL_RGB(1, 2, 3));
  cr_assert_eq(count_entries(dir), 1);
  free(rgb);
  sl_canvas_free(c);
  unlink(path);
  rmdir(dir);
}

Test(viz_png, missing_directory_fails_with_the_path_and_leaves_nothing) {
  char dir[64], path[160];
  make_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/no_such_dir/out.png", dir);
  sl_canvas *c = sl_canvas_new(4, 4, 0);
  sl_clear_error();
  cr_assert_eq(sl_canvas_write_png(c, path), SL_EIO);
  cr_assert(strstr(sl_last_error(), path), "message does not name the path: %s", sl_last_error());
  cr_assert(strstr(sl_last_error(), "No such file or directory"), "message: %s", sl_last_error());
  cr_assert_eq(count_entries(dir), 0);
  sl_canvas_free(c);
  rmdir(dir);
}

Test(viz_png, failed_rename_removes_the_temporary_file) {
  char dir[64], path[128];
  make_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/taken", dir);
  cr_assert_eq(mkdir(path, 0755), 0); /* a directory where the file should go */
  sl_canvas *c = sl_canvas_new(4, 4, 0);
  cr_assert_eq(sl_canvas_write_png(c, path), SL_EIO);
  cr_assert(strstr(sl_last_error(), path), "message: %s", sl_last_error());
  cr_assert_eq(count_entries(dir), 1, "only the directory may remain");
  sl_canvas_free(c);
  rmdir(path);
  rmdir(dir);
}

Test(viz_png, bad_arguments_are_einval_or_eio) {
  sl_canvas *c = sl_canvas_new(2, 2, 0);
  cr_assert_eq(sl_canvas_write_png(NULL, "/tmp/x.png"), SL_EINVAL);
  cr_assert_eq(sl_canvas_write_png(c, NULL), SL_EINVAL);
  cr_assert_eq(sl_canvas_write_png(c, ""), SL_EIO);
  cr_assert_eq(sl_canvas_write_png(c, "/tmp/"), SL_EIO);
  sl_canvas_free(c);
}
