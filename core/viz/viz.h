/*
 * Pictures: an RGB canvas, PNG writing (libpng's simplified API), a built-in
 * bitmap font, histograms with statistics, histogram sheets and line plots.
 * Nothing here needs anything but libpng and libc math.
 *
 * Conventions (as in the rest of the core): functions return a status
 * (SL_OK == 0, negative SL_E* codes) or NULL and set sl_last_error(); nothing
 * prints, exits or longjmps. Drawing functions clip to the canvas and cannot
 * fail. Pixel coordinates are 0-based, x to the right, y downwards.
 * Colours are 0xRRGGBB integers (SL_RGB(r, g, b) builds one).
 *
 * Typical use from C:
 *
 *   sl_hist_panel p[2] = {{"fc1", a1, n1}, {"fc2", a2, n2}};
 *   sl_hist_sheet_opts o = {0};              // zero = every default
 *   o.title = "activations, epoch 3";
 *   if (sl_hist_sheet_write("act.png", p, 2, &o) != SL_OK)
 *     fprintf(stderr, "%s\n", sl_last_error());
 */
#ifndef SL_VIZ_H
#define SL_VIZ_H
#include <stddef.h>
#include <stdint.h>

#define SL_RGB(r, g, b) ((uint32_t)(((uint32_t)(r) << 16) | ((uint32_t)(g) << 8) | (uint32_t)(b)))

/* Colours used by the sheet and plots (documented so callers and tests can
 * find them in a picture). */
#define SL_VIZ_BACKGROUND SL_RGB(255, 255, 255)
#define SL_VIZ_BAR SL_RGB(76, 120, 168)    /* histogram bars */
#define SL_VIZ_CURVE SL_RGB(228, 87, 46)   /* N(0,1) reference curve */
#define SL_VIZ_TEXT SL_RGB(20, 20, 20)

/* ---- canvas ------------------------------------------------------------ */

/* An 8-bit RGB image: pixel (x, y) is rgb[3 * (y * width + x) + {0, 1, 2}]. */
typedef struct sl_canvas {
  int width, height; /* 1..SL_CANVAS_MAX_SIDE */
  uint8_t *rgb;      /* width * height * 3 bytes, owned by the canvas */
} sl_canvas;

#define SL_CANVAS_MAX_SIDE 16384

/* New canvas filled with background; NULL on bad size (SL_EINVAL) or
 * allocation failure (SL_ENOMEM). Free with sl_canvas_free (NULL is a no-op). */
sl_canvas *sl_canvas_new(int width, int height, uint32_t background);
void sl_canvas_free(sl_canvas *c);

/* Colour of pixel (x, y); 0 (black) outside the canvas. */
uint32_t sl_canvas_get(const sl_canvas *c, int x, int y);
/* Sets one pixel; outside the canvas does nothing. */
void sl_canvas_set(sl_canvas *c, int x, int y, uint32_t color);
/* Fills the w x h rectangle whose top-left corner is (x, y), clipped. */
void sl_canvas_fill_rect(sl_canvas *c, int x, int y, int w, int h, uint32_t color);
/* One-pixel outline of the w x h rectangle at (x, y). */
void sl_canvas_rect(sl_canvas *c, int x, int y, int w, int h, uint32_t color);
/* Bresenham line from (x0, y0) to (x1, y1), both ends included. thickness 1
 * or 2 (2 also sets the pixel below/right of each point, so a 2-px line
 * stays connected at any slope); values < 1 are taken as 1, > 2 as 2. */
void sl_canvas_line(sl_canvas *c, int x0, int y0, int x1, int y1, int thickness,
                    uint32_t color);
/* Dashed line: dash pixels drawn, gap pixels skipped, counted along the
 * line's major axis (dash >= 1, gap >= 0). */
void sl_canvas_dashed_line(sl_canvas *c, int x0, int y0, int x1, int y1, int thickness,
                           int dash, int gap, uint32_t color);

/* ---- PNG --------------------------------------------------------------- */

/* Writes the canvas as an 8-bit RGB PNG, atomically: the image goes to a
 * temporary file in path's directory (mkstemp), is fsync'ed, then renamed
 * over path, so readers never see a half-written file and a failure leaves
 * any existing file untouched and no temporary behind. The file gets mode
 * 0644. Errors: SL_EINVAL (NULL arguments), SL_EIO with a message naming
 * path and the system/libpng reason (e.g. a missing directory). */
int sl_canvas_write_png(const sl_canvas *c, const char *path);

/* ---- font -------------------------------------------------------------- */

/* Built-in bitmap font covering ASCII 32..126 (other bytes draw as '?').
 * Each glyph is 5 x 7 pixels (capitals and digits) in a 6 x 10 cell: one
 * column of spacing, 2 rows below the baseline for descenders (g j p q y)
 * and one row of line spacing. Scale s multiplies every pixel by s x s. */
#define SL_FONT_GLYPH_W 5
#define SL_FONT_ADVANCE 6   /* horizontal advance per character at scale 1 */
#define SL_FONT_HEIGHT 9    /* ascent 7 + descent 2, at scale 1 */
#define SL_FONT_LINE 10     /* distance between baselines at scale 1 */

/* Bounding box of s at the given scale (< 1 is taken as 1): width =
 * strlen(s) * SL_FONT_ADVANCE * scale (so "abc" at scale 1 is 18 px: three
 * advances, the last one's spacing column included), height =
 * SL_FONT_HEIGHT * scale; an empty string is 0 x 0. No line breaks: '\n'
 * is an ordinary (unknown) character. */
void sl_font_measure(const char *s, int scale, int *width, int *height);
/* Draws s with its bounding box's top-left corner at (x, y), clipped;
 * returns the width drawn (as sl_font_measure). */
int sl_canvas_text(sl_canvas *c, int x, int y, const char *s, int scale, uint32_t color);
/* As sl_canvas_text, rotated 90 degrees counter-clockwise (reads bottom to
 * top, for a y-axis label); (x, y) is the top-left of the rotated box, whose
 * size is height x width of the unrotated one. */
int sl_canvas_text_up(sl_canvas *c, int x, int y, const char *s, int scale, uint32_t color);

/* ---- histograms and statistics ---------------------------------------- */

#define SL_HIST_MAX_BINS 2048

/* Counts over [lo, hi) in `bins` equal bins. A value x in [lo, hi] goes to
 * bin floor((x - lo) * s) with s = bins / (hi - lo), all in double (this
 * formula is the definition at the edges: no rounding fix-ups, so binning
 * stays branch-free), clamped to the last bin, so x == hi is counted in the
 * last bin. Values below lo (and -inf) are `under`, above hi (and +inf)
 * `over`, NaNs `nan`. Plain struct, no heap: no free needed. */
typedef struct sl_histogram {
  int bins;
  double lo, hi;
  int64_t counts[SL_HIST_MAX_BINS];
  int64_t under, over, nan;
  int64_t total; /* every value added, including NaNs */
} sl_histogram;

/* Resets h to empty with the given bins (1..SL_HIST_MAX_BINS) and range
 * (finite, lo < hi); SL_EINVAL otherwise. */
int sl_histogram_init(sl_histogram *h, int bins, double lo, double hi);
/* Adds n values (one pass, no sorting). May be called repeatedly to
 * accumulate several arrays. */
void sl_histogram_add(sl_histogram *h, const float *x, size_t n);
/* Largest bin count. */
int64_t sl_histogram_max(const sl_histogram *h);

/* Summary of an array in double precision, over the finite values only:
 * `std` is the unbiased (n-1) standard deviation like torch.std (NaN when
 * count < 2); mean/min/max are NaN when count == 0. */
typedef struct sl_stats {
  int64_t count;     /* finite values */
  int64_t nonfinite; /* NaN and +-inf values, excluded from the rest */
  double mean, std, min, max;
} sl_stats;
void sl_stats_compute(sl_stats *s, const float *x, size_t n);

/* Histogram and statistics in one pass over x (what the sheet uses); h must
 * have been initialized (its counts are accumulated, s is overwritten). */
void sl_histogram_stats(sl_histogram *h, sl_stats *s, const float *x, size_t n);

/* ---- histogram sheet --------------------------------------------------- */

/* One panel: a name and either raw data (data, count) or, when hist is not
 * NULL, a precomputed histogram and stats (so a caller can bin each layer's
 * output as it goes and free it). A precomputed histogram must have the
 * sheet's bins and range. */
typedef struct sl_hist_panel {
  const char *name;
  const float *data;
  size_t count;
  const sl_histogram *hist; /* optional */
  const sl_stats *stats;    /* required when hist is set */
} sl_hist_panel;

/* Options; a zero-initialized struct (or NULL) means every default. */
typedef struct sl_hist_sheet_opts {
  int bins;          /* 0 -> 60 */
  double lo, hi;     /* both 0 -> [-4, 4] */
  int columns;       /* 0 -> min(4, panels) */
  int width;         /* image width in px; 0 -> 1600 (minimum 200 per column);
                        panels >= 360 px wide get 2x text, narrower ones 1x */
  const char *title; /* NULL -> no title row */
  int log_counts;    /* nonzero: bar heights are log10(1 + count) */
  int no_normal;     /* nonzero: do not draw the N(0,1) reference curve */
} sl_hist_sheet_opts;

/* Renders K panels (1..256) into a new canvas *out (caller frees), in a grid
 * of `columns`, row by row. Each panel shows filled bars, the N(0,1) density
 * scaled to the panel's counts (N * bin width * phi(x), N = non-NaN values),
 * x ticks and labels at the integers of the range (or a nice step), the name,
 * "mean", "std", "min", "max", and the under/overflow counts ("<: 12  >: 3",
 * plus "nan: k" when there are NaNs). */
int sl_hist_sheet_render(sl_canvas **out, const sl_hist_panel *panels, int k,
                         const sl_hist_sheet_opts *opts);
/* sl_hist_sheet_render + sl_canvas_write_png. */
int sl_hist_sheet_write(const char *path, const sl_hist_panel *panels, int k,
                        const sl_hist_sheet_opts *opts);

/* ---- line plots -------------------------------------------------------- */

/* A named series: y[i] at x[i], or at x = i + 1 (1-based, like epochs) when
 * x is NULL. Points whose x or y is NaN/inf (or y <= 0 with log_y) are
 * skipped and the line breaks there. */
typedef struct sl_series {
  const char *name;
  const double *y;
  const double *x; /* optional */
  size_t n;
} sl_series;

typedef struct sl_plot_opts {
  const char *title, *xlabel, *ylabel; /* optional */
  int width, height;                   /* 0 -> 1000 x 600 (minimum 300 x 200) */
  int log_y;                           /* nonzero: logarithmic y axis */
} sl_plot_opts;

/* Renders 1..16 series into a new canvas *out (caller frees): axes with
 * nice ticks (1, 2, 5 x 10^k; decades for log_y), tick labels, grid, one
 * colour per series, legend, title and axis labels. */
int sl_plot_render(sl_canvas **out, const sl_series *series, int n, const sl_plot_opts *opts);
int sl_plot_write(const char *path, const sl_series *series, int n, const sl_plot_opts *opts);

/* The legend text for a series: its name, plus e.g. " (3 non-finite
 * skipped)" or " (2 non-finite, 1 non-positive skipped)" under log_y.
 * Writes at most n bytes (NUL-terminated); returns the number of skipped
 * points. */
size_t sl_plot_legend_text(char *buf, size_t n, const sl_series *s, int log_y);

/* Colour of series i in plots (a 10-colour palette, repeating). */
uint32_t sl_plot_color(int i);

/* ---- confusion matrices ------------------------------------------------ */

#define SL_CONFUSION_MAX_CLASSES 64

/* Options; a zero-initialized struct (or NULL) means every default. */
typedef struct sl_confusion_opts {
  const char *title;          /* NULL -> "confusion matrix" */
  const char *const *classes; /* k names (first 20 characters drawn), or NULL -> "1".."k" */
} sl_confusion_opts;

/* counts[(t - 1) * k + (p - 1)] = number of i with label[i] == t and
 * pred[i] == p (rows = true class, columns = predicted). Every value must be
 * an integer in 1..k (k in 1..SL_CONFUSION_MAX_CLASSES); otherwise SL_EINVAL
 * naming the position and value, and counts is left untouched. */
int sl_confusion_count(int64_t *counts, int k, const double *pred, const double *label, size_t n);

/* Image size for k classes: text scale ts = 2 for k <= 12 else 1, cell side
 * C = 64 for k <= 10 else max(24, 640 / k), name width N = 6 * ts * the
 * longest class name's length (at most 20 characters), title width
 * T = 6 * (ts + 1) * strlen(title). width = max(12 + 10 ts + 8 + N + 8 + k C
 * + 16, T + 32), height = 16 + 10 (ts + 1) + 4 + 10 ts + 12 + k C + 8 + N + 8
 * + 10 ts + 12. SL_EINVAL for k outside 1..SL_CONFUSION_MAX_CLASSES. */
int sl_confusion_size(int k, const sl_confusion_opts *opts, int *width, int *height);

/* Renders the k x k counts into a new canvas *out (caller frees): each
 * cell shaded from white (0) to deep blue (1) by count / row total, the
 * count printed in it (when it fits), class names left of the rows and
 * (rotated) below the columns, "true class" / "predicted class" axis labels,
 * the title and a line "accuracy 85.10% (851 of 1000)". */
int sl_confusion_render(sl_canvas **out, const int64_t *counts, int k, const sl_confusion_opts *opts);
/* sl_confusion_render + sl_canvas_write_png (atomic). */
int sl_confusion_write(const char *path, const int64_t *counts, int k, const sl_confusion_opts *opts);

/* Nice axis ticks: a step of 1, 2 or 5 x 10^k giving about `target` (>= 2)
 * intervals over [lo, hi], and the multiples of it within [lo, hi] (a tiny
 * tolerance keeps the ends). Writes at most max ticks; returns the number of
 * ticks, or SL_EINVAL for a non-finite or empty range (lo >= hi). */
int sl_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step);
/* Formats a tick value for a given step with just enough decimals
 * ("0.25", "-4", "1e+06" for very large or small magnitudes). */
void sl_format_tick(char *buf, size_t n, double v, double step);

#endif
