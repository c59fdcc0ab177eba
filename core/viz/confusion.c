/*
 * Confusion matrices of classifiers: counting (true class x predicted class)
 * and a K x K picture where each cell is shaded by its row-normalized
 * fraction (how a true class spreads over the predictions) with the count
 * printed in it. The layout is a closed formula of K, the class names and
 * the title (see viz.h) so callers and tests know the image size.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/error.h"
#include "viz/viz.h"

#define COL_LINE SL_RGB(200, 200, 200)
#define COL_FRAME SL_RGB(60, 60, 60)
#define COL_LIGHT_TEXT SL_RGB(255, 255, 255)
#define MAX_NAME 20 /* characters of a class name drawn */

/* One class index: an integer in 1..k (NaN, fractions and out-of-range
 * values are refused with the position and value). */
static int check_index(double v, int k, const char *what, size_t i, int *out) {
  if (isnan(v)) /* printf's NaN spelling varies ("-nan") */
    return sl_fail(SL_EINVAL, "confusion: %s[%zu] = nan, expected an integer class index in 1..%d", what, i + 1, k);
  if (!(v >= 1 && v <= (double)k) || v != floor(v))
    return sl_fail(SL_EINVAL, "confusion: %s[%zu] = %g, expected an integer class index in 1..%d", what, i + 1, v,
                   k);
  *out = (int)v;
  return SL_OK;
}

int sl_confusion_count(int64_t *counts, int k, const double *pred, const double *label, size_t n) {
  if (!counts || (n && (!pred || !label))) return sl_fail(SL_EINVAL, "confusion: NULL argument");
  if (k < 1 || k > SL_CONFUSION_MAX_CLASSES)
    return sl_fail(SL_EINVAL, "confusion: %d classes, expected 1..%d", k, SL_CONFUSION_MAX_CLASSES);
  /* validate everything first, so a failure leaves counts untouched */
  for (size_t i = 0; i < n; i++) {
    int p, t;
    if (check_index(pred[i], k, "preds", i, &p) != SL_OK) return sl_last_status();
    if (check_index(label[i], k, "labels", i, &t) != SL_OK) return sl_last_status();
  }
  memset(counts, 0, sizeof *counts * (size_t)k * (size_t)k);
  for (size_t i = 0; i < n; i++) counts[((int)label[i] - 1) * k + ((int)pred[i] - 1)]++;
  return SL_OK;
}

/* Layout shared by render and the size query. */
typedef struct layout {
  int ts, adv, lh, cell, name_w, left, top, grid, width, height, title_w;
} layout;

static const char *class_name(const sl_confusion_opts *o, int i, char *buf, size_t n) {
  if (o && o->classes && o->classes[i]) snprintf(buf, n, "%.*s", MAX_NAME, o->classes[i]);
  else snprintf(buf, n, "%d", i + 1);
  return buf;
}

static const char *title_of(const sl_confusion_opts *o) {
  return o && o->title ? o->title : "confusion matrix";
}

static void make_layout(layout *L, int k, const sl_confusion_opts *o) {
  L->ts = k <= 12 ? 2 : 1;
  L->adv = SL_FONT_ADVANCE * L->ts;
  L->lh = SL_FONT_LINE * L->ts;
  L->cell = k <= 10 ? 64 : (640 / k < 24 ? 24 : 640 / k);
  L->name_w = 0;
  char buf[64];
  for (int i = 0; i < k; i++) {
    int w = (int)strlen(class_name(o, i, buf, sizeof buf)) * L->adv;
    L->name_w = w > L->name_w ? w : L->name_w;
  }
  L->grid = k * L->cell;
  /* "true class" rotated, names, gap */
  L->left = 12 + L->lh + 8 + L->name_w + 8;
  /* title (one size up), the accuracy line, gap */
  L->top = 16 + SL_FONT_LINE * (L->ts + 1) + 4 + L->lh + 12;
  sl_font_measure(title_of(o), L->ts + 1, &L->title_w, NULL);
  int w = L->left + L->grid + 16;
  L->width = w > L->title_w + 32 ? w : L->title_w + 32;
  /* rotated column names, gap, "predicted class", margin */
  L->height = L->top + L->grid + 8 + L->name_w + 8 + L->lh + 12;
}

int sl_confusion_size(int k, const sl_confusion_opts *opts, int *width, int *height) {
  if (k < 1 || k > SL_CONFUSION_MAX_CLASSES)
    return sl_fail(SL_EINVAL, "confusion: %d classes, expected 1..%d", k, SL_CONFUSION_MAX_CLASSES);
  layout L;
  make_layout(&L, k, opts);
  if (width) *width = L.width;
  if (height) *height = L.height;
  return SL_OK;
}

/* White blended towards the bar colour by f in [0, 1]. */
static uint32_t shade(double f) {
  const int r = 8, g = 69, b = 148; /* a deep blue, readable under white text */
  int cr = (int)lround(255 + (r - 255) * f), cg = (int)lround(255 + (g - 255) * f),
      cb = (int)lround(255 + (b - 255) * f);
  return SL_RGB(cr, cg, cb);
}

int sl_confusion_render(sl_canvas **out, const int64_t *counts, int k, const sl_confusion_opts *opts) {
  if (!out) return sl_fail(SL_EINVAL, "confusion: NULL output");
  *out = NULL;
  if (!counts) return sl_fail(SL_EINVAL, "confusion: NULL counts");
  layout L;
  if (sl_confusion_size(k, opts, NULL, NULL) != SL_OK) return sl_last_status();
  make_layout(&L, k, opts);
  for (int i = 0; i < k * k; i++)
    if (counts[i] < 0) return sl_fail(SL_EINVAL, "confusion: count %d is %lld, expected >= 0", i + 1,
                                      (long long)counts[i]);
  sl_canvas *cv = sl_canvas_new(L.width, L.height, SL_VIZ_BACKGROUND);
  if (!cv) return sl_last_status();
  int64_t total = 0, correct = 0;
  char buf[64];
  for (int t = 0; t < k; t++) {
    int64_t row = 0;
    for (int p = 0; p < k; p++) row += counts[t * k + p];
    total += row;
    correct += counts[t * k + t];
    for (int p = 0; p < k; p++) {
      int64_t c = counts[t * k + p];
      double f = row > 0 ? (double)c / (double)row : 0;
      int x = L.left + p * L.cell, y = L.top + t * L.cell;
      sl_canvas_fill_rect(cv, x, y, L.cell, L.cell, shade(f));
      sl_canvas_rect(cv, x, y, L.cell + 1, L.cell + 1, COL_LINE);
      snprintf(buf, sizeof buf, "%lld", (long long)c);
      /* the count in the cell's middle, at the largest scale that fits */
      int ts = L.ts, w, h;
      sl_font_measure(buf, ts, &w, &h);
      if (w > L.cell - 4 && ts > 1) sl_font_measure(buf, --ts, &w, &h);
      if (w <= L.cell - 2)
        sl_canvas_text(cv, x + (L.cell - w + ts) / 2, y + (L.cell - 7 * ts) / 2, buf, ts,
                       f > 0.5 ? COL_LIGHT_TEXT : SL_VIZ_TEXT);
    }
  }
  sl_canvas_rect(cv, L.left, L.top, L.grid + 1, L.grid + 1, COL_FRAME);
  /* class names: rows right-aligned left of the grid, columns rotated below it */
  for (int i = 0; i < k; i++) {
    class_name(opts, i, buf, sizeof buf);
    int w = (int)strlen(buf) * L.adv;
    int mid = i * L.cell + L.cell / 2;
    sl_canvas_text(cv, L.left - 8 - w, L.top + mid - (7 * L.ts) / 2, buf, L.ts, SL_VIZ_TEXT);
    sl_canvas_text_up(cv, L.left + mid - (7 * L.ts) / 2, L.top + L.grid + 8 + L.name_w - w, buf, L.ts,
                      SL_VIZ_TEXT);
  }
  /* axis labels, title and the accuracy line */
  int w;
  sl_font_measure("predicted class", L.ts, &w, NULL);
  sl_canvas_text(cv, L.left + (L.grid - w) / 2, L.top + L.grid + 8 + L.name_w + 8, "predicted class", L.ts,
                 SL_VIZ_TEXT);
  sl_font_measure("true class", L.ts, &w, NULL);
  sl_canvas_text_up(cv, 12, L.top + (L.grid - w) / 2, "true class", L.ts, SL_VIZ_TEXT);
  int tx = (L.width - L.title_w) / 2;
  sl_canvas_text(cv, tx, 16, title_of(opts), L.ts + 1, SL_VIZ_TEXT);
  if (total > 0)
    snprintf(buf, sizeof buf, "accuracy %.2f%% (%lld of %lld)", 100.0 * (double)correct / (double)total,
             (long long)correct, (long long)total);
  else snprintf(buf, sizeof buf, "no samples");
  sl_font_measure(buf, L.ts, &w, NULL);
  sl_canvas_text(cv, (L.width - w) / 2, 16 + SL_FONT_LINE * (L.ts + 1) + 4, buf, L.ts, SL_VIZ_TEXT);
  *out = cv;
  return SL_OK;
}

int sl_confusion_write(const char *path, const int64_t *counts, int k, const sl_confusion_opts *opts) {
  sl_canvas *cv;
  int st = sl_confusion_render(&cv, counts, k, opts);
  if (st != SL_OK) return st;
  st = sl_canvas_write_png(cv, path);
  sl_canvas_free(cv);
  return st;
}
