/* The built-in bitmap font: bounding boxes and where the ink lands. */
#include <criterion/criterion.h>
#include <string.h>

#include "selut.h"

/* Ink bounding box of everything that is not background 0. Returns 0 if none. */
static int ink_box(const sl_canvas *c, int *x0, int *y0, int *x1, int *y1) {
  *x0 = *y0 = 1 << 30;
  *x1 = *y1 = -1;
  for (int y = 0; y < c->height; y++)
    for (int x = 0; x < c->width; x++)
      if (sl_canvas_get(c, x, y)) {
        if (x < *x0) *x0 = x;
        if (y < *y0) *y0 = y;
        if (x > *x1) *x1 = x;
        if (y > *y1) *y1 = y;
      }
  return *x1 >= 0;
}

Test(viz_font, bounding_box_is_one_advance_per_glyph) {
  int w = -1, h = -1;
  sl_font_measure("abc", 1, &w, &h);
  cr_assert_eq(w, 3 * SL_FONT_ADVANCE);
  cr_assert_eq(w, 18);
  cr_assert_eq(h, SL_FONT_HEIGHT);
  sl_font_measure("abc", 2, &w, &h);
  cr_assert_eq(w, 36);
  cr_assert_eq(h, 18);
  sl_font_measure("", 1, &w, &h);
  cr_assert_eq(w, 0);
  cr_assert_eq(h, 0);
  sl_font_measure("x", 0, &w, &h); /* scale < 1 is 1 */
  cr_assert_eq(w, 6);
  cr_assert_eq(h, 9);
}

Test(viz_font, ink_stays_inside_the_measured_box) {
  const char *s = "Hg-0.5e+3%()[]:,=/_<>";
  for (int scale = 1; scale <= 2; scale++) {
    sl_canvas *c = sl_canvas_new(400, 60, 0);
    int w, h;
    sl_font_measure(s, scale, &w, &h);
    cr_assert_eq(sl_canvas_text(c, 10, 20, s, scale, 0xFFFFFF), w);
    int x0, y0, x1, y1;
    cr_assert(ink_box(c, &x0, &y0, &x1, &y1));
    cr_assert_eq(x0, 10, "'H' starts at the left edge");
    cr_assert_eq(y0, 20, "'H' reaches the top row");
    cr_assert_eq(y1, 20 + h - 1, "'g' and '_' reach the bottom (descender) row");
    cr_assert_lt(x1, 10 + w);
    sl_canvas_free(c);
  }
}

Test(viz_font, every_printable_glyph_has_ink_and_they_differ) {
  uint8_t seen[95][SL_FONT_HEIGHT];
  for (int ch = 33; ch <= 126; ch++) {
    sl_canvas *c = sl_canvas_new(SL_FONT_ADVANCE, SL_FONT_HEIGHT, 0);
    char s[2] = {(char)ch, 0};
    sl_canvas_text(c, 0, 0, s, 1, 0xFFFFFF);
    int x0, y0, x1, y1;
    cr_assert(ink_box(c, &x0, &y0, &x1, &y1), "'%c' has no ink", ch);
    cr_assert_lt(x1, SL_FONT_GLYPH_W, "'%c' uses the spacing column", ch);
    for (int y = 0; y < SL_FONT_HEIGHT; y++) {
      uint8_t row = 0;
      for (int x = 0; x < SL_FONT_GLYPH_W; x++) row = (uint8_t)(row << 1 | (sl_canvas_get(c, x, y) != 0));
      seen[ch - 32][y] = row;
    }
    for (int other = 33; other < ch; other++)
      cr_assert(memcmp(seen[other - 32], seen[ch - 32], SL_FONT_HEIGHT) != 0,
                "'%c' and '%c' look the same", other, ch);
    sl_canvas_free(c);
  }
}

Test(viz_font, unknown_bytes_draw_as_question_mark) {
  sl_canvas *a = sl_canvas_new(6, 9, 0), *b = sl_canvas_new(6, 9, 0);
  sl_canvas_text(a, 0, 0, "\x01", 1, 0xFFFFFF);
  sl_canvas_text(b, 0, 0, "?", 1, 0xFFFFFF);
  cr_assert_eq(memcmp(a->rgb, b->rgb, 6 * 9 * 3), 0);
  sl_canvas_free(a);
  sl_canvas_free(b);
}

Test(viz_font, rotated_text_has_the_transposed_box) {
  sl_canvas *c = sl_canvas_new(40, 60, 0);
  int w = sl_canvas_text_up(c, 5, 5, "Hgp", 1, 0xFFFFFF);
  cr_assert_eq(w, 18);
  int x0, y0, x1, y1;
  cr_assert(ink_box(c, &x0, &y0, &x1, &y1));
  cr_assert_geq(x0, 5);
  cr_assert_leq(x1, 5 + SL_FONT_HEIGHT - 1);
  cr_assert_geq(y0, 5);
  cr_assert_leq(y1, 5 + 18 - 1);
  cr_assert_eq(x0, 5, "tops of the letters face left");
  sl_canvas_free(c);
}

Test(viz_font, text_is_clipped_not_rejected) {
  sl_canvas *c = sl_canvas_new(10, 5, 0);
  cr_assert_eq(sl_canvas_text(c, -20, -3, "clipped text", 2, 0xFFFFFF), 12 * 12);
  sl_canvas_free(c);
}
