/*
 * Line plots of named series: nice ticks, grid, legend, title, axis labels,
 * optional log-y. Non-finite points (and non-positive ones under log-y) are
 * skipped: the line breaks there and the legend says how many.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/error.h"
#include "viz/viz.h"

#define COL_BG SL_VIZ_BACKGROUND
#define COL_TEXT SL_VIZ_TEXT
#define COL_GRID SL_RGB(228, 228, 228)
#define COL_AXIS SL_RGB(60, 60, 60)
#define COL_GRID_DARK SL_RGB(170, 170, 170)

enum { MAX_SERIES = 16, MAX_TICKS = 64 };

static const uint32_t palette[10] = {
    SL_RGB(31, 119, 180), SL_RGB(255, 127, 14), SL_RGB(44, 160, 44),  SL_RGB(214, 39, 40),
    SL_RGB(148, 103, 189), SL_RGB(140, 86, 75), SL_RGB(227, 119, 194), SL_RGB(127, 127, 127),
    SL_RGB(188, 189, 34),  SL_RGB(23, 190, 207)};

uint32_t sl_plot_color(int i) {
  if (i < 0) i = -i;
  return palette[i % 10];
}

static double xval(const sl_series *s, size_t i) { return s->x ? s->x[i] : (double)(i + 1); }

/* 0 = usable, 1 = non-finite, 2 = non-positive under log-y */
static int point_kind(const sl_series *s, size_t i, int log_y) {
  double x = xval(s, i), y = s->y[i];
  if (!isfinite(x) || !isfinite(y)) return 1;
  if (log_y && y <= 0) return 2;
  return 0;
}

size_t sl_plot_legend_text(char *buf, size_t n, const sl_series *s, int log_y) {
  size_t nonfinite = 0, nonpos = 0;
  for (size_t i = 0; s->y && i < s->n; i++) {
    int k = point_kind(s, i, log_y);
    nonfinite += k == 1;
    nonpos += k == 2;
  }
  const char *name = s->name ? s->name : "";
  if (nonfinite && nonpos)
    snprintf(buf, n, "%s (%zu non-finite, %zu non-positive skipped)", name, nonfinite, nonpos);
  else if (nonfinite)
    snprintf(buf, n, "%s (%zu non-finite skipped)", name, nonfinite);
  else if (nonpos)
    snprintf(buf, n, "%s (%zu non-positive skipped)", name, nonpos);
  else
    snprintf(buf, n, "%s", name);
  return nonfinite + nonpos;
}

typedef struct {
  double lo, hi;           /* axis limits (log10 units for a log axis) */
  double ticks[MAX_TICKS]; /* tick positions in axis units */
  int nt;
  double step; /* tick step in data units (linear) */
  int log;
} axis;

/* Linear axis covering [mn, mx] with nice limits. */
static void linear_axis(axis *a, double mn, double mx, int target) {
  if (!(mn <= mx)) mn = 0, mx = 1;
  if (mn == mx) {
    double d = fabs(mn) > 0 ? fabs(mn) * 0.1 : 1;
    mn -= d, mx += d;
  }
  double t[MAX_TICKS], step;
  int n = sl_nice_ticks(mn, mx, target, t, MAX_TICKS, &step);
  if (n < 0) { /* range too small for doubles: fall back to a unit axis */
    mn = 0, mx = 1;
    n = sl_nice_ticks(mn, mx, target, t, MAX_TICKS, &step);
  }
  a->lo = floor(mn / step + 1e-9) * step;
  a->hi = ceil(mx / step - 1e-9) * step;
  a->log = 0;
  a->step = step;
  a->nt = sl_nice_ticks(a->lo, a->hi, target, a->ticks, MAX_TICKS, &step);
  if (a->nt < 0) a->nt = 0;
}

/* Log axis: whole decades; ticks at every decade (or every k-th), plus 2
 * and 5 when the axis spans a single decade. */
static void log_axis(axis *a, double mn, double mx) {
  a->log = 1;
  a->step = 0;
  if (!(mn > 0 && mn <= mx)) mn = 1, mx = 10;
  double l0 = floor(log10(mn) + 1e-9), l1 = ceil(log10(mx) - 1e-9);
  if (l1 <= l0) l1 = l0 + 1;
  a->lo = l0, a->hi = l1;
  int dec = (int)(l1 - l0), every = dec > 10 ? (dec + 9) / 10 : 1;
  a->nt = 0;
  for (int k = 0; k <= dec && a->nt < MAX_TICKS; k += every) {
    a->ticks[a->nt++] = l0 + k;
    if (dec == 1 && k == 0) {
      a->ticks[a->nt++] = l0 + log10(2.0);
      a->ticks[a->nt++] = l0 + log10(5.0);
    }
  }
}

static void tick_label(char *buf, size_t n, const axis *a, double t) {
  if (!a->log) {
    sl_format_tick(buf, n, t, a->step);
    return;
  }
  int k = (int)floor(t + 1e-9);
  double mult = round(pow(10.0, t - k)); /* 1, 2 or 5 */
  if (k > -4 && k < 6) sl_format_tick(buf, n, mult * pow(10.0, k), pow(10.0, k));
  else snprintf(buf, n, "%.0fe%d", mult, k);
}

/* Axis value -> pixel offset along a length of `len` pixels. */
static int to_px(const axis *a, double v, int len) {
  double p = (v - a->lo) / (a->hi - a->lo) * len;
  /* only reachable for data beyond double range (fallback axis): keep
   * lines short and the conversion defined */
  if (!(p > -1e5)) p = -1e5;
  if (p > 1e5) p = 1e5;
  return (int)lround(p);
}

int sl_plot_render(sl_canvas **out, const sl_series *series, int n, const sl_plot_opts *opts) {
  if (!out) return sl_fail(SL_EINVAL, "plot: NULL output");
  *out = NULL;
  if (!series || n < 1 || n > MAX_SERIES)
    return sl_fail(SL_EINVAL, "plot: %d series, expected 1..%d", n, MAX_SERIES);
  for (int i = 0; i < n; i++)
    if (!series[i].y && series[i].n > 0)
      return sl_fail(SL_EINVAL, "plot: series %d has no y values", i + 1);
  sl_plot_opts o;
  if (opts) o = *opts;
  else memset(&o, 0, sizeof o);
  if (o.width == 0) o.width = 1000;
  if (o.height == 0) o.height = 600;
  if (o.width < 300) o.width = 300;
  if (o.height < 200) o.height = 200;
  if (o.width > SL_CANVAS_MAX_SIDE || o.height > SL_CANVAS_MAX_SIDE)
    return sl_fail(SL_EINVAL, "plot: image %d x %d too large (max side %d)", o.width, o.height,
                   SL_CANVAS_MAX_SIDE);
  int ts = o.width >= 800 && o.height >= 400 ? 2 : 1; /* text scale */
  int lh = SL_FONT_LINE * ts;                          /* line height */
  int adv = SL_FONT_ADVANCE * ts;

  /* data ranges over the usable points */
  double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
  for (int s = 0; s < n; s++)
    for (size_t i = 0; i < series[s].n; i++) {
      if (point_kind(&series[s], i, o.log_y)) continue;
      double x = xval(&series[s], i), y = series[s].y[i];
      xmn = x < xmn ? x : xmn, xmx = x > xmx ? x : xmx;
      ymn = y < ymn ? y : ymn, ymx = y > ymx ? y : ymx;
    }
  axis ax, ay;
  linear_axis(&ax, xmn, xmx, o.width >= 800 ? 10 : 6);
  if (o.log_y) log_axis(&ay, ymn, ymx);
  else linear_axis(&ay, ymn, ymx, o.height >= 400 ? 8 : 5);

  /* legend texts and margins */
  char legend[MAX_SERIES][128];
  int legend_w = 0;
  for (int s = 0; s < n; s++) {
    char full[256];
    sl_plot_legend_text(full, sizeof full, &series[s], o.log_y);
    snprintf(legend[s], sizeof legend[s], "%.*s", 48, full);
    int w = (int)strlen(legend[s]) * adv;
    legend_w = w > legend_w ? w : legend_w;
  }
  legend_w += 3 * adv + 2 * 8; /* swatch, gap, padding */
  int ylab_w = 0;
  char buf[64];
  for (int i = 0; i < ay.nt; i++) {
    tick_label(buf, sizeof buf, &ay, ay.ticks[i]);
    int w = (int)strlen(buf) * adv;
    ylab_w = w > ylab_w ? w : ylab_w;
  }
  int left = 12 + (o.ylabel ? lh + 8 : 0) + ylab_w + 8;
  int right = 24;
  int top = o.title ? 16 + SL_FONT_LINE * (ts + 1) + 12 : 16;
  int bottom = 8 + lh + (o.xlabel ? lh + 8 : 0) + 12;
  int pw = o.width - left - right, ph = o.height - top - bottom;
  if (pw < 50 || ph < 50)
    return sl_fail(SL_EINVAL, "plot: %d x %d image leaves no room for the axes", o.width,
                   o.height);

  sl_canvas *cv = sl_canvas_new(o.width, o.height, COL_BG);
  if (!cv) return sl_last_status();
  /* grid and tick labels */
  for (int i = 0; i < ax.nt; i++) {
    int x = left + to_px(&ax, ax.ticks[i], pw);
    sl_canvas_fill_rect(cv, x, top, 1, ph, COL_GRID);
    sl_canvas_fill_rect(cv, x, top + ph, 1, 5, COL_AXIS);
    tick_label(buf, sizeof buf, &ax, ax.ticks[i]);
    int w = (int)strlen(buf) * adv - ts;
    sl_canvas_text(cv, x - w / 2, top + ph + 8, buf, ts, COL_TEXT);
  }
  for (int i = 0; i < ay.nt; i++) {
    int y = top + ph - to_px(&ay, ay.ticks[i], ph);
    sl_canvas_fill_rect(cv, left, y, pw, 1, COL_GRID);
    sl_canvas_fill_rect(cv, left - 5, y, 5, 1, COL_AXIS);
    tick_label(buf, sizeof buf, &ay, ay.ticks[i]);
    int w = (int)strlen(buf) * adv - ts;
    sl_canvas_text(cv, left - 8 - w, y - (7 * ts) / 2, buf, ts, COL_TEXT);
  }
  sl_canvas_rect(cv, left, top, pw + 1, ph + 1, COL_AXIS);

  /* series: clip lines to the plot area */
  for (int s = 0; s < n; s++) {
    const sl_series *S = &series[s];
    uint32_t col = sl_plot_color(s);
    int have_prev = 0, prevx = 0, prevy = 0;
    for (size_t i = 0; i < S->n; i++) {
      if (point_kind(S, i, o.log_y)) {
        have_prev = 0;
        continue;
      }
      double yv = o.log_y ? log10(S->y[i]) : S->y[i];
      int x = left + to_px(&ax, xval(S, i), pw), y = top + ph - to_px(&ay, yv, ph);
      if (have_prev) sl_canvas_line(cv, prevx, prevy, x, y, 2, col);
      int next_ok = i + 1 < S->n && !point_kind(S, i + 1, o.log_y);
      if (!have_prev && !next_ok) sl_canvas_fill_rect(cv, x - 1, y - 1, 3, 3, col);
      have_prev = 1, prevx = x, prevy = y;
    }
  }
  /* legend: a framed box inside the plot, in the corner where it hides the
   * fewest pixels of the lines already drawn */
  int row_h = lh + 4, box_w = legend_w, box_h = n * row_h + 12;
  if (box_w > pw - 8) box_w = pw - 8;
  int best = 0;
  long best_hits = -1;
  for (int corner = 0; corner < 4; corner++) { /* TR, TL, BR, BL */
    int bx = corner % 2 ? left + 8 : left + pw - 8 - box_w;
    int by = corner < 2 ? top + 8 : top + ph - 8 - box_h;
    long hits = 0;
    for (int y = by; y < by + box_h; y++)
      for (int x = bx; x < bx + box_w; x++) {
        uint32_t c = sl_canvas_get(cv, x, y);
        hits += c != COL_BG && c != COL_GRID;
      }
    if (best_hits < 0 || hits < best_hits) best_hits = hits, best = corner;
  }
  int bx = best % 2 ? left + 8 : left + pw - 8 - box_w;
  int by = best < 2 ? top + 8 : top + ph - 8 - box_h;
  sl_canvas_fill_rect(cv, bx, by, box_w, box_h, COL_BG);
  sl_canvas_rect(cv, bx, by, box_w, box_h, COL_GRID_DARK);
  for (int s = 0; s < n; s++) {
    int y = by + 6 + s * row_h;
    sl_canvas_fill_rect(cv, bx + 8, y + (7 * ts) / 2 - 1, 2 * adv, 3, sl_plot_color(s));
    sl_canvas_text(cv, bx + 8 + 3 * adv, y, legend[s], ts, COL_TEXT);
  }
  /* title and axis labels */
  if (o.title) {
    int w;
    sl_font_measure(o.title, ts + 1, &w, NULL);
    int tx = left + (pw - w) / 2;
    sl_canvas_text(cv, tx < 8 ? 8 : tx, 16, o.title, ts + 1, COL_TEXT);
  }
  if (o.xlabel) {
    int w;
    sl_font_measure(o.xlabel, ts, &w, NULL);
    sl_canvas_text(cv, left + (pw - w) / 2, top + ph + 8 + lh + 8, o.xlabel, ts, COL_TEXT);
  }
  if (o.ylabel) {
    int w;
    sl_font_measure(o.ylabel, ts, &w, NULL);
    sl_canvas_text_up(cv, 12, top + (ph - w) / 2, o.ylabel, ts, COL_TEXT);
  }
  *out = cv;
  return SL_OK;
}

int sl_plot_write(const char *path, const sl_series *series, int n, const sl_plot_opts *opts) {
  sl_canvas *cv;
  int st = sl_plot_render(&cv, series, n, opts);
  if (st != SL_OK) return st;
  st = sl_canvas_write_png(cv, path);
  sl_canvas_free(cv);
  return st;
}
