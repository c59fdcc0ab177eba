/*
 * RGB canvas and its drawing primitives: pixels, rectangles, Bresenham lines.
 * Everything clips to the canvas; only creation can fail.
 */
#include <stdlib.h>
#include <string.h>

#include "tensor/alloc.h"
#include "tensor/error.h"
#include "viz/viz.h"

sl_canvas *sl_canvas_new(int width, int height, uint32_t background) {
  if (width < 1 || height < 1 || width > SL_CANVAS_MAX_SIDE || height > SL_CANVAS_MAX_SIDE)
    return sl_fail_null(SL_EINVAL, "canvas: size %d x %d out of range 1..%d", width, height,
                        SL_CANVAS_MAX_SIDE);
  sl_canvas *c = sl_malloc(sizeof *c);
  if (!c) return NULL;
  c->width = width;
  c->height = height;
  c->rgb = sl_malloc((size_t)width * (size_t)height * 3);
  if (!c->rgb) {
    sl_free(c);
    return NULL;
  }
  sl_canvas_fill_rect(c, 0, 0, width, height, background);
  return c;
}

void sl_canvas_free(sl_canvas *c) {
  if (!c) return;
  sl_free(c->rgb);
  sl_free(c);
}

uint32_t sl_canvas_get(const sl_canvas *c, int x, int y) {
  if (x < 0 || y < 0 || x >= c->width || y >= c->height) return 0;
  const uint8_t *p = c->rgb + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
  return SL_RGB(p[0], p[1], p[2]);
}

void sl_canvas_set(sl_canvas *c, int x, int y, uint32_t color) {
  if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
  uint8_t *p = c->rgb + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
  p[0] = (uint8_t)(color >> 16);
  p[1] = (uint8_t)(color >> 8);
  p[2] = (uint8_t)color;
}

void sl_canvas_fill_rect(sl_canvas *c, int x, int y, int w, int h, uint32_t color) {
  /* clip in 64-bit so x + w cannot overflow */
  int64_t x0 = x, y0 = y, x1 = (int64_t)x + w, y1 = (int64_t)y + h;
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > c->width) x1 = c->width;
  if (y1 > c->height) y1 = c->height;
  if (x0 >= x1 || y0 >= y1) return;
  uint8_t r = (uint8_t)(color >> 16), g = (uint8_t)(color >> 8), b = (uint8_t)color;
  uint8_t *row0 = c->rgb + 3 * ((size_t)y0 * (size_t)c->width + (size_t)x0);
  for (int64_t i = x0; i < x1; i++) {
    uint8_t *p = row0 + 3 * (i - x0);
    p[0] = r, p[1] = g, p[2] = b;
  }
  size_t rowbytes = 3 * (size_t)(x1 - x0);
  for (int64_t j = y0 + 1; j < y1; j++)
    memcpy(c->rgb + 3 * ((size_t)j * (size_t)c->width + (size_t)x0), row0, rowbytes);
}

void sl_canvas_rect(sl_canvas *c, int x, int y, int w, int h, uint32_t color) {
  if (w < 1 || h < 1) return;
  sl_canvas_fill_rect(c, x, y, w, 1, color);
  sl_canvas_fill_rect(c, x, y + h - 1, w, 1, color);
  sl_canvas_fill_rect(c, x, y, 1, h, color);
  sl_canvas_fill_rect(c, x + w - 1, y, 1, h, color);
}

/* Bresenham over all octants; with dash > 0 only the first `dash` of every
 * dash + gap steps are drawn. */
static void line_impl(sl_canvas *c, int x0, int y0, int x1, int y1, int thickness, int dash,
                      int gap, uint32_t color) {
  /* Cull lines entirely outside (so huge coordinates do not loop for ages). */
  int minx = x0 < x1 ? x0 : x1, maxx = x0 < x1 ? x1 : x0;
  int miny = y0 < y1 ? y0 : y1, maxy = y0 < y1 ? y1 : y0;
  if (maxx < -1 || maxy < -1 || minx > c->width || miny > c->height) return;
  int64_t dx = llabs((int64_t)x1 - x0), dy = -llabs((int64_t)y1 - y0);
  int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int64_t err = dx + dy;
  int steep = -dy > dx;
  int64_t step = 0, period = dash > 0 ? (int64_t)dash + (gap > 0 ? gap : 0) : 0;
  for (;;) {
    if (!period || step % period < dash) {
      sl_canvas_set(c, x0, y0, color);
      if (thickness >= 2) {
        if (steep) sl_canvas_set(c, x0 + 1, y0, color);
        else sl_canvas_set(c, x0, y0 + 1, color);
      }
    }
    if (x0 == x1 && y0 == y1) break;
    int64_t e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
    step++;
  }
}

void sl_canvas_line(sl_canvas *c, int x0, int y0, int x1, int y1, int thickness,
                    uint32_t color) {
  line_impl(c, x0, y0, x1, y1, thickness, 0, 0, color);
}

void sl_canvas_dashed_line(sl_canvas *c, int x0, int y0, int x1, int y1, int thickness,
                           int dash, int gap, uint32_t color) {
  line_impl(c, x0, y0, x1, y1, thickness, dash < 1 ? 1 : dash, gap < 0 ? 0 : gap, color);
}
