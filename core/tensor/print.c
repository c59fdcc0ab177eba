/*
 * Tensor printing (tensor.h: sl_tensor_format), Torch7's layout: rows on
 * lines with aligned columns, "(i,j,.,.) = " headers for slices of 3-D and
 * higher tensors, then "[selut.Tensor of size 2x3]". Above 1000 elements only
 * the first and last 3 entries of each dim are shown, with "..." in between
 * (PyTorch's threshold and edgeitems). Lua's tostring(t) is this text.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor.h"

#define PRINT_THRESHOLD 1000
#define PRINT_EDGE 3
#define PRINT_LINEWIDTH 80

typedef struct printer {
  char *buf; /* output, cap bytes (may be NULL with cap 0) */
  size_t cap;
  size_t len; /* bytes the whole text needs so far (may exceed cap) */
  const sl_tensor *t;
  int summarize;
  int kind; /* 0 integer, 1 fixed, 2 scientific */
  int width;
  int per_line; /* values per output line before wrapping */
} printer;

/* Appends n bytes of s; past the capacity only counts them. */
static void add(printer *p, const char *s, size_t n) {
  if (p->len < p->cap) memcpy(p->buf + p->len, s, p->cap - p->len < n ? p->cap - p->len : n);
  p->len += n;
}

static void adds(printer *p, const char *s) { add(p, s, strlen(s)); }

static int fmt_value(char *buf, size_t n, int kind, float v) {
  if (v != v) return snprintf(buf, n, "nan"); /* either sign (x86's default NaN is negative), as PyTorch prints it */
  switch (kind) {
  case 0: return snprintf(buf, n, "%.0f", (double)v);
  case 1: return snprintf(buf, n, "%.4f", (double)v);
  default: return snprintf(buf, n, "%.4e", (double)v);
  }
}

static int shown(const printer *p, int64_t n, int64_t i) {
  return !p->summarize || n <= 2 * PRINT_EDGE || i < PRINT_EDGE || i >= n - PRINT_EDGE;
}

/* Next index to show after i (jumps the gap); sets *gap when it jumps. */
static int64_t next_index(const printer *p, int64_t n, int64_t i, int *gap) {
  *gap = 0;
  if (p->summarize && n > 2 * PRINT_EDGE && i == PRINT_EDGE - 1) {
    *gap = 1;
    return n - PRINT_EDGE;
  }
  return i + 1;
}

/* Calls f(p, v) for every element that will be printed. */
static void each_shown(printer *p, void (*f)(printer *, float, void *), void *ud) {
  const sl_tensor *t = p->t;
  int64_t last = t->shape[t->ndim - 1];
  int64_t rows = last ? t->numel / last : 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r;
    int ok = 1; /* a row is shown when every leading index is shown */
    for (int d = t->ndim - 2; d >= 0 && ok; d--) {
      ok = shown(p, t->shape[d], rem % t->shape[d]);
      rem /= t->shape[d];
    }
    if (!ok) continue;
    for (int64_t c = 0; c < last; c++)
      if (shown(p, last, c)) f(p, t->data[r * last + c], ud);
  }
}

typedef struct fmt_stats {
  double maxabs, minabs;
  int all_int;
} fmt_stats;

static void collect_stats(printer *p, float v, void *ud) {
  fmt_stats *s = ud;
  (void)p;
  if (!isfinite(v)) return;
  double a = fabs((double)v);
  if (a > s->maxabs) s->maxabs = a;
  if (a > 0 && a < s->minabs) s->minabs = a;
  if (v != floorf(v)) s->all_int = 0;
}

static void collect_width(printer *p, float v, void *ud) {
  char buf[64];
  (void)ud;
  int w = fmt_value(buf, sizeof buf, p->kind, v);
  if (w > p->width) p->width = w;
}

/* PyTorch's rule on the printed elements: integers when all are integral,
 * scientific when the magnitudes span more than 1e3 or leave [1e-4, 1e8). */
static void choose_format(printer *p) {
  fmt_stats s = {0, INFINITY, 1};
  each_shown(p, collect_stats, &s);
  if (s.all_int && s.maxabs < 1e9)
    p->kind = 0;
  else if (s.maxabs > 0 && (s.maxabs >= 1e8 || s.minabs < 1e-4 || s.maxabs / s.minabs > 1e3))
    p->kind = 2;
  else
    p->kind = 1;
  p->width = 1;
  each_shown(p, collect_width, NULL);
  p->per_line = (PRINT_LINEWIDTH - 1) / (p->width + 1);
  if (p->per_line < 1) p->per_line = 1;
  if (p->summarize && p->per_line >= 2 * PRINT_EDGE) p->per_line += 1; /* the "..." column is narrow */
}

static void print_row(printer *p, const float *x, int64_t n) {
  char buf[64];
  int col = 0;
  for (int64_t i = 0; i < n;) {
    if (col == p->per_line) {
      adds(p, "\n");
      col = 0;
    }
    int w = fmt_value(buf, sizeof buf, p->kind, x[i]);
    for (int k = w; k <= p->width; k++) adds(p, " "); /* right-align plus one space */
    adds(p, buf);
    col++;
    int gap;
    i = next_index(p, n, i, &gap);
    if (gap) {
      adds(p, " ...");
      col++;
    }
  }
  adds(p, "\n");
}

static void print_matrix(printer *p, const float *x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows;) {
    print_row(p, x + r * cols, cols);
    int gap;
    r = next_index(p, rows, r, &gap);
    if (gap) adds(p, " ...\n");
  }
}

/* Slices of a >= 3-D tensor: recurse over the leading dims. */
static void print_slices(printer *p, int d, const float *x, int64_t *idx, int *first) {
  const sl_tensor *t = p->t;
  if (d == t->ndim - 2) {
    if (!*first) adds(p, "\n");
    *first = 0;
    adds(p, "(");
    for (int k = 0; k < d; k++) {
      char num[32];
      snprintf(num, sizeof num, "%" PRId64 ",", idx[k] + 1);
      adds(p, num);
    }
    adds(p, ".,.) = \n");
    print_matrix(p, x, t->shape[d], t->shape[d + 1]);
    return;
  }
  int64_t inner = 1;
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  for (int64_t i = 0; i < t->shape[d];) {
    idx[d] = i;
    print_slices(p, d + 1, x + i * inner, idx, first);
    int gap;
    i = next_index(p, t->shape[d], i, &gap);
    if (gap) adds(p, "\n...\n");
  }
}

size_t sl_tensor_format(char *buf, size_t cap, const sl_tensor *t) {
  printer p = {buf, cap, 0, t, t->numel > PRINT_THRESHOLD, 0, 1, 1};
  if (t->numel > 0) {
    choose_format(&p);
    if (t->ndim == 1) {
      print_row(&p, t->data, t->numel);
    } else if (t->ndim == 2) {
      print_matrix(&p, t->data, t->shape[0], t->shape[1]);
    } else {
      int64_t idx[SL_MAX_DIMS] = {0};
      int first = 1;
      print_slices(&p, 0, t->data, idx, &first);
    }
  }
  adds(&p, t->numel > 0 ? "[selut.Tensor of size " : "[selut.Tensor with no elements of size ");
  for (int d = 0; d < t->ndim; d++) {
    char num[32];
    snprintf(num, sizeof num, d ? "x%" PRId64 : "%" PRId64, t->shape[d]);
    adds(&p, num);
  }
  adds(&p, "]");
  return p.len;
}
