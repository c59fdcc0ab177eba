/*
 * Histogram sheet: a grid of panels, one per tensor (layer output), each
 * with filled bars, the N(0,1) reference density scaled to the counts, x
 * ticks, the name, mean/std/min/max and the under/overflow counts.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/alloc.h"
#include "tensor/error.h"
#include "viz/viz.h"

#define COL_BG SL_VIZ_BACKGROUND
#define COL_FRAME SL_RGB(200, 200, 200)
#define COL_TEXT SL_VIZ_TEXT
#define COL_DIM SL_RGB(100, 100, 100)
#define COL_AXIS SL_RGB(60, 60, 60)
#define COL_ZERO SL_RGB(170, 170, 170)
#define COL_BAR SL_VIZ_BAR
#define COL_CURVE SL_VIZ_CURVE
#define COL_OUT SL_RGB(190, 30, 30)

#define SQRT_2PI 2.5066282746310002 /* sqrt(2 pi) */

enum { MAX_PANELS = 256, MIN_PANEL_W = 200, MARGIN = 12, GAP = 12, PAD = 8 };

/* "1.234", "-0.002", "1.23e+05"; "n/a" for NaN. */
static void fmt_val(char *buf, size_t n, double v) {
  double a = fabs(v);
  if (isnan(v)) snprintf(buf, n, "n/a");
  else if (a != 0 && (a < 1e-3 || a >= 1e5)) snprintf(buf, n, "%.2e", v);
  else snprintf(buf, n, "%.3f", v);
}

/* Copies s into buf, shortened with ".." to at most maxch characters. */
static void fit_text(char *buf, size_t n, const char *s, int maxch) {
  if (maxch < 3) maxch = 3;
  size_t len = strlen(s);
  if ((int)len <= maxch) snprintf(buf, n, "%s", s);
  else snprintf(buf, n, "%.*s..", maxch - 2, s);
}

typedef struct {
  int name_scale, text_scale; /* font scales */
  int header_h, plot_h, panel_w, panel_h;
} layout;

static layout make_layout(int panel_w) {
  layout L;
  L.panel_w = panel_w;
  L.name_scale = 2;
  L.text_scale = panel_w >= 360 ? 2 : 1;
  int line = SL_FONT_LINE * L.text_scale + 2;
  L.header_h = SL_FONT_LINE * L.name_scale + 4 + 3 * line + 4;
  L.plot_h = (int)(panel_w * 0.55);
  /* pad, header, plot, tick marks (5) + labels, pad */
  L.panel_h = PAD + L.header_h + L.plot_h + 5 + SL_FONT_LINE * L.text_scale + PAD;
  return L;
}

static double count_height(double c, double ymax, int log_counts) {
  if (c <= 0) return 0;
  if (log_counts) return log10(1 + c) / log10(1 + ymax);
  return c / ymax;
}

static void draw_panel(sl_canvas *cv, int px, int py, const layout *L, const char *name,
                       const sl_histogram *h, const sl_stats *st, const sl_hist_sheet_opts *o) {
  char buf[160], a[32], b[32];
  int ts = L->text_scale, line = SL_FONT_LINE * ts + 2;
  int inner_w = L->panel_w - 2 * PAD;
  int maxch = inner_w / (SL_FONT_ADVANCE * ts);
  sl_canvas_rect(cv, px, py, L->panel_w, L->panel_h, COL_FRAME);

  /* header: name, stats, out-of-range counts */
  int x = px + PAD, y = py + PAD;
  int ns = L->name_scale;
  if ((int)strlen(name) * SL_FONT_ADVANCE * ns > inner_w) ns = 1;
  fit_text(buf, sizeof buf, name, inner_w / (SL_FONT_ADVANCE * ns));
  sl_canvas_text(cv, x, y, buf, ns, COL_TEXT);
  sl_canvas_text(cv, x + 1, y, buf, ns, COL_TEXT); /* bold */
  y += SL_FONT_LINE * L->name_scale + 4;
  int col2 = x + inner_w / 2;
  fmt_val(a, sizeof a, st->mean);
  fmt_val(b, sizeof b, st->min);
  snprintf(buf, sizeof buf, "mean %s", a);
  sl_canvas_text(cv, x, y, buf, ts, COL_TEXT);
  snprintf(buf, sizeof buf, "min %s", b);
  sl_canvas_text(cv, col2, y, buf, ts, COL_TEXT);
  y += line;
  fmt_val(a, sizeof a, st->std);
  fmt_val(b, sizeof b, st->max);
  snprintf(buf, sizeof buf, "std  %s", a);
  sl_canvas_text(cv, x, y, buf, ts, COL_TEXT);
  snprintf(buf, sizeof buf, "max %s", b);
  sl_canvas_text(cv, col2, y, buf, ts, COL_TEXT);
  y += line;
  char out[96];
  if (h->nan)
    snprintf(out, sizeof out, "<: %lld  >: %lld  nan: %lld", (long long)h->under,
             (long long)h->over, (long long)h->nan);
  else
    snprintf(out, sizeof out, "<: %lld  >: %lld", (long long)h->under, (long long)h->over);
  fit_text(buf, sizeof buf, out, maxch);
  sl_canvas_text(cv, x, y, buf, ts, (h->under || h->over || h->nan) ? COL_OUT : COL_DIM);
  snprintf(out, sizeof out, "n %lld", (long long)h->total);
  int w;
  sl_font_measure(out, ts, &w, NULL);
  if ((int)strlen(buf) * SL_FONT_ADVANCE * ts + w + 12 <= inner_w)
    sl_canvas_text(cv, x + inner_w - w, y, out, ts, COL_DIM);

  /* plot area */
  int x0 = px + PAD, pw = inner_w;
  int ytop = py + PAD + L->header_h, ph = L->plot_h, ybot = ytop + ph; /* baseline row */
  double lo = h->lo, hi = h->hi, bw = (hi - lo) / h->bins;
  double n_curve = (double)(h->total - h->nan);
  double peak_x = lo > 0 ? lo : hi < 0 ? hi : 0;
  double curve_peak = o->no_normal ? 0 : n_curve * bw * exp(-0.5 * peak_x * peak_x) / SQRT_2PI;
  double ymax = (double)sl_histogram_max(h);
  if (curve_peak > ymax) ymax = curve_peak;
  ymax *= 1.05;
  if (ymax <= 0) ymax = 1;

  if (lo < 0 && hi > 0) { /* dashed zero line under the bars */
    int zx = x0 + (int)lround((0 - lo) / (hi - lo) * pw);
    sl_canvas_dashed_line(cv, zx, ytop, zx, ybot, 1, 3, 3, COL_ZERO);
  }
  for (int i = 0; i < h->bins; i++) {
    int bx0 = x0 + (int)lround((double)i * pw / h->bins);
    int bx1 = x0 + (int)lround((double)(i + 1) * pw / h->bins);
    int bh = (int)lround(count_height((double)h->counts[i], ymax, o->log_counts) * ph);
    if (h->counts[i] > 0 && bh < 1) bh = 1; /* a non-empty bin is always visible */
    sl_canvas_fill_rect(cv, bx0, ybot - bh, bx1 - bx0, bh, COL_BAR);
  }
  if (!o->no_normal && n_curve > 0) {
    int prevx = 0, prevy = 0;
    for (int i = 0; i <= pw; i++) {
      double xv = lo + (hi - lo) * i / pw;
      double e = n_curve * bw * exp(-0.5 * xv * xv) / SQRT_2PI;
      int yy = ybot - (int)lround(count_height(e, ymax, o->log_counts) * ph);
      if (i > 0) sl_canvas_line(cv, prevx, prevy, x0 + i, yy, 2, COL_CURVE);
      prevx = x0 + i, prevy = yy;
    }
  }
  /* x axis, ticks, labels */
  sl_canvas_fill_rect(cv, x0, ybot, pw + 1, 1, COL_AXIS);
  double ticks[32], step;
  int nt = sl_nice_ticks(lo, hi, pw >= 400 ? 10 : 8, ticks, 32, &step);
  for (int i = 0; i < nt; i++) {
    int tx = x0 + (int)lround((ticks[i] - lo) / (hi - lo) * pw);
    sl_canvas_fill_rect(cv, tx, ybot + 1, 1, 4, COL_AXIS);
    sl_format_tick(buf, sizeof buf, ticks[i], step);
    sl_font_measure(buf, ts, &w, NULL);
    w -= ts; /* the last advance's spacing column is not ink */
    int lx = tx - w / 2;
    if (lx < x0 - PAD / 2) lx = x0 - PAD / 2;
    if (lx + w > x0 + pw + PAD / 2) lx = x0 + pw + PAD / 2 - w;
    sl_canvas_text(cv, lx, ybot + 6, buf, ts, COL_TEXT);
  }
  if (o->log_counts) sl_canvas_text(cv, x0 + 2, ytop, "log", ts, COL_DIM);
}

int sl_hist_sheet_render(sl_canvas **out, const sl_hist_panel *panels, int k,
                         const sl_hist_sheet_opts *opts) {
  if (!out) return sl_fail(SL_EINVAL, "histogram sheet: NULL output");
  *out = NULL;
  if (!panels || k < 1 || k > MAX_PANELS)
    return sl_fail(SL_EINVAL, "histogram sheet: %d panels, expected 1..%d", k, MAX_PANELS);
  sl_hist_sheet_opts o;
  if (opts) o = *opts;
  else memset(&o, 0, sizeof o);
  if (o.bins == 0) o.bins = 60;
  if (o.lo == 0 && o.hi == 0) o.lo = -4, o.hi = 4;
  if (o.columns == 0) o.columns = k < 4 ? k : 4;
  if (o.width == 0) o.width = 1600;
  if (o.columns < 1 || o.columns > 64)
    return sl_fail(SL_EINVAL, "histogram sheet: columns = %d, expected 1..64", o.columns);
  if (o.width < 0) return sl_fail(SL_EINVAL, "histogram sheet: width = %d", o.width);
  if (o.bins < 1 || o.bins > SL_HIST_MAX_BINS)
    return sl_fail(SL_EINVAL, "histogram sheet: bins = %d, expected 1..%d", o.bins,
                   SL_HIST_MAX_BINS);
  if (!isfinite(o.lo) || !isfinite(o.hi) || !(o.lo < o.hi))
    return sl_fail(SL_EINVAL, "histogram sheet: range [%g, %g] is empty or not finite", o.lo,
                   o.hi);
  for (int i = 0; i < k; i++) {
    const sl_hist_panel *p = &panels[i];
    if (p->hist) {
      if (!p->stats)
        return sl_fail(SL_EINVAL, "histogram sheet: panel %d has a histogram but no stats", i + 1);
      if (p->hist->bins != o.bins || p->hist->lo != o.lo || p->hist->hi != o.hi)
        return sl_fail(SL_EINVAL,
                       "histogram sheet: panel %d histogram has %d bins over [%g, %g], "
                       "expected %d over [%g, %g]",
                       i + 1, p->hist->bins, p->hist->lo, p->hist->hi, o.bins, o.lo, o.hi);
    } else if (!p->data && p->count > 0) {
      return sl_fail(SL_EINVAL, "histogram sheet: panel %d has no data", i + 1);
    }
  }
  int cols = o.columns < k ? o.columns : k;
  int rows = (k + cols - 1) / cols;
  int width = o.width;
  if (width < 2 * MARGIN + cols * MIN_PANEL_W + (cols - 1) * GAP)
    width = 2 * MARGIN + cols * MIN_PANEL_W + (cols - 1) * GAP;
  int panel_w = (width - 2 * MARGIN - (cols - 1) * GAP) / cols;
  layout L = make_layout(panel_w);
  int title_scale = width >= 1200 ? 3 : 2;
  int title_h = o.title || o.log_counts ? title_scale * SL_FONT_LINE + 12 : 0;
  int64_t height = 2 * MARGIN + title_h + (int64_t)rows * L.panel_h + (int64_t)(rows - 1) * GAP;
  if (width > SL_CANVAS_MAX_SIDE || height > SL_CANVAS_MAX_SIDE)
    return sl_fail(SL_EINVAL, "histogram sheet: image %d x %lld too large (max side %d)", width,
                   (long long)height, SL_CANVAS_MAX_SIDE);

  sl_histogram *hist = sl_malloc(sizeof *hist);
  if (!hist) return sl_last_status();
  sl_canvas *cv = sl_canvas_new(width, (int)height, COL_BG);
  if (!cv) {
    sl_free(hist);
    return sl_last_status();
  }
  if (title_h) {
    if (o.title) {
      char t[256];
      fit_text(t, sizeof t, o.title, (width - 2 * MARGIN) / (title_scale * SL_FONT_ADVANCE));
      sl_canvas_text(cv, MARGIN, MARGIN, t, title_scale, COL_TEXT);
    }
    if (o.log_counts) {
      const char *note = "bar heights: log10(1 + count)";
      int w;
      sl_font_measure(note, L.text_scale, &w, NULL);
      sl_canvas_text(cv, width - MARGIN - w, MARGIN + title_scale * 7 - L.text_scale * 7, note,
                     L.text_scale, COL_DIM);
    }
  }
  for (int i = 0; i < k; i++) {
    const sl_hist_panel *p = &panels[i];
    const sl_histogram *h = p->hist;
    sl_stats st;
    if (!h) {
      sl_histogram_init(hist, o.bins, o.lo, o.hi); /* arguments checked above */
      sl_histogram_stats(hist, &st, p->data, p->data ? p->count : 0);
      h = hist;
    } else {
      st = *p->stats;
    }
    int px = MARGIN + (i % cols) * (panel_w + GAP);
    int py = MARGIN + title_h + (i / cols) * (L.panel_h + GAP);
    draw_panel(cv, px, py, &L, p->name ? p->name : "", h, &st, &o);
  }
  sl_free(hist);
  *out = cv;
  return SL_OK;
}

int sl_hist_sheet_write(const char *path, const sl_hist_panel *panels, int k,
                        const sl_hist_sheet_opts *opts) {
  sl_canvas *cv;
  int st = sl_hist_sheet_render(&cv, panels, k, opts);
  if (st != SL_OK) return st;
  st = sl_canvas_write_png(cv, path);
  sl_canvas_free(cv);
  return st;
}
