/*
 * Numeric CSV reader. The whole file is read into memory (through gzread,
 * so .gz works too), then scanned twice: once to find the header, the
 * column count and the number of rows, once to parse the cells straight into
 * the output tensors. Errors name the file, the line and the column.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

typedef struct cell {
  const char *p; /* content (inside the quotes when quoted) */
  size_t n;
  bool quoted;
} cell;

typedef struct cells {
  cell *v;
  size_t n, cap;
} cells;

sl_csv_options sl_csv_defaults(void) {
  sl_csv_options o;
  o.header = -1;
  o.label = NULL;
  o.label_index = -1;
  o.delimiter = ',';
  return o;
}

static int read_all(const char *path, char **out, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return sl_fail(SL_EIO, "csv: cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) { gzclose(f); return sl_fail(SL_ENOMEM, "csv: %s: out of memory", path); }
  for (;;) {
    if (n == cap) {
      char *nb = cap > ((size_t)1 << 40) ? NULL : realloc(buf, cap * 2 + 1);
      if (!nb) { free(buf); gzclose(f); return sl_fail(SL_ENOMEM, "csv: %s: out of memory", path); }
      buf = nb;
      cap *= 2;
    }
    unsigned want = cap - n > (1u << 30) ? (1u << 30) : (unsigned)(cap - n);
    int r = gzread(f, buf + n, want);
    if (r < 0) {
      int zerr;
      const char *m = gzerror(f, &zerr);
      int st = zerr == Z_ERRNO ? sl_fail(SL_EIO, "csv: %s: read error: %s", path, strerror(errno))
                               : sl_fail(SL_EFORMAT, "csv: %s: corrupt gzip stream: %s", path, m);
      free(buf);
      gzclose(f);
      return st;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  int zerr = Z_OK;
  const char *m = gzerror(f, &zerr);
  if (zerr != Z_OK && zerr != Z_STREAM_END) {
    int st = sl_fail(SL_EFORMAT, "csv: %s: corrupt gzip stream: %s", path, m);
    free(buf);
    gzclose(f);
    return st;
  }
  gzclose(f);
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return SL_OK;
}

static bool is_blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t') return false;
  return true;
}

/* Splits one line (without its \r\n) into cells. Returns SL_OK or an error
 * for an unterminated quote. */
static int split_line(cells *cs, const char *p, size_t n, char delim, const char *path,
                      long long lineno) {
  cs->n = 0;
  size_t i = 0;
  for (;;) {
    if (cs->n == cs->cap) {
      size_t ncap = cs->cap ? cs->cap * 2 : 16;
      cell *nv = realloc(cs->v, ncap * sizeof *nv);
      if (!nv) return sl_fail(SL_ENOMEM, "csv: %s: out of memory", path);
      cs->v = nv;
      cs->cap = ncap;
    }
    cell *c = &cs->v[cs->n++];
    while (i < n && (p[i] == ' ' || p[i] == '\t') && p[i] != delim) i++;
    if (i < n && p[i] == '"') {
      size_t s = ++i;
      while (i < n) {
        if (p[i] == '"') {
          if (i + 1 < n && p[i + 1] == '"') { i += 2; continue; }
          break;
        }
        i++;
      }
      if (i >= n)
        return sl_fail(SL_EFORMAT, "csv: %s:%lld: column %zu: unterminated quoted field", path,
                       lineno, cs->n);
      c->p = p + s;
      c->n = i - s;
      c->quoted = true;
      i++; /* closing quote */
      while (i < n && (p[i] == ' ' || p[i] == '\t') && p[i] != delim) i++;
      if (i < n && p[i] != delim)
        return sl_fail(SL_EFORMAT, "csv: %s:%lld: column %zu: unexpected text after a quoted field",
                       path, lineno, cs->n);
    } else {
      size_t s = i;
      while (i < n && p[i] != delim) i++;
      size_t e = i;
      while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
      c->p = p + s;
      c->n = e - s;
      c->quoted = false;
    }
    if (i >= n) break;
    i++; /* delimiter */
  }
  return SL_OK;
}

/* Parses a cell as a number; false if it is not one. */
static bool parse_number(const cell *c, double *out) {
  char tmp[128];
  size_t s = 0, e = c->n;
  if (c->quoted) { /* allow spaces inside quotes: " 1.5 " */
    while (s < e && (c->p[s] == ' ' || c->p[s] == '\t')) s++;
    while (e > s && (c->p[e - 1] == ' ' || c->p[e - 1] == '\t')) e--;
  }
  size_t n = e - s;
  if (n == 0 || n >= sizeof tmp) return false;
  memcpy(tmp, c->p + s, n);
  tmp[n] = '\0';
  if (memchr(tmp, '"', n)) return false;
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (end != tmp + n) return false;
  (void)errno; /* overflow gives +-inf, underflow a denormal/0: accepted */
  *out = v;
  return true;
}

/* Copies a cell's text, undoing "" escapes. */
static char *cell_string(const cell *c) {
  char *s = malloc(c->n + 1);
  if (!s) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++) {
    s[k++] = c->p[i];
    if (c->quoted && c->p[i] == '"' && i + 1 < c->n && c->p[i + 1] == '"') i++;
  }
  s[k] = '\0';
  return s;
}

/* A printable excerpt of a cell for messages. */
static void cell_excerpt(const cell *c, char *buf, size_t n) {
  size_t m = c->n < n - 4 ? c->n : n - 4;
  memcpy(buf, c->p, m);
  buf[m] = '\0';
  if (m < c->n) strcat(buf, "...");
  for (size_t i = 0; i < m; i++)
    if ((unsigned char)buf[i] < 0x20) buf[i] = '?';
}

void sl_csv_free_names(char **names, int64_t n) {
  if (!names) return;
  for (int64_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* Next line [*p, *e) from position pos; returns false at end of text. */
static bool next_line(const char *text, size_t len, size_t *pos, const char **p, size_t *n) {
  if (*pos >= len) return false;
  const char *s = text + *pos;
  const char *nl = memchr(s, '\n', len - *pos);
  size_t m = nl ? (size_t)(nl - s) : len - *pos;
  *pos += m + (nl ? 1 : 0);
  if (m > 0 && s[m - 1] == '\r') m--;
  *p = s;
  *n = m;
  return true;
}

int sl_csv_read(const char *path, const sl_csv_options *opt, sl_tensor **x, sl_tensor **y,
                char ***names, int64_t *ncols_out) {
  if (x) *x = NULL;
  if (y) *y = NULL;
  if (names) *names = NULL;
  if (ncols_out) *ncols_out = 0;
  if (!path || !x) return sl_fail(SL_EINVAL, "csv: path and x must not be NULL");
  sl_csv_options o = opt ? *opt : sl_csv_defaults();
  char delim = o.delimiter ? o.delimiter : ',';
  if (delim == '"' || delim == '\n' || delim == '\r' || delim == ' ')
    return sl_fail(SL_EINVAL, "csv: delimiter '%c' is not allowed", delim);
  if (o.header < -1 || o.header > 1)
    return sl_fail(SL_EINVAL, "csv: header must be -1 (auto), 0 or 1, got %d", o.header);
  if (!o.label && o.label_index < -1)
    return sl_fail(SL_EINVAL, "csv: label_index must be >= 0 or -1 (none), got %d", o.label_index);

  char *text = NULL;
  size_t len = 0;
  int st = read_all(path, &text, &len);
  if (st) return st;

  const char *nul = memchr(text, '\0', len);
  if (nul) {
    long long l = 1;
    for (const char *q = text; q < nul; q++) l += *q == '\n';
    free(text);
    return sl_fail(SL_EFORMAT, "csv: %s:%lld: NUL byte: not a text file", path, l);
  }
  cells cs = {NULL, 0, 0};
  char **hnames = NULL;
  int64_t nh = 0;
  sl_tensor *tx = NULL, *ty = NULL;
  size_t pos = 0;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 BOM */

  /* Pass 1: first line, column count, number of data lines. */
  const char *lp;
  size_t ln;
  long long lineno = 0, last_nonblank = 0, first_line = 0;
  size_t first_pos = pos;
  {
    size_t q = pos;
    long long k = 0;
    while (next_line(text, len, &q, &lp, &ln)) {
      k++;
      if (!is_blank(lp, ln)) {
        last_nonblank = k;
        if (!first_line) first_line = k;
      }
    }
  }
  if (!first_line) {
    st = sl_fail(SL_EFORMAT, "csv: %s: empty file", path);
    goto done;
  }
  if (first_line != 1) {
    st = sl_fail(SL_EFORMAT, "csv: %s:1: empty line", path);
    goto done;
  }
  next_line(text, len, &pos, &lp, &ln);
  lineno = 1;
  if ((st = split_line(&cs, lp, ln, delim, path, lineno))) goto done;
  size_t ncols = cs.n;
  bool header;
  if (o.header == -1) {
    header = false;
    double v;
    for (size_t j = 0; j < cs.n; j++)
      if (!parse_number(&cs.v[j], &v)) header = true;
  } else {
    header = o.header == 1;
  }
  if (header) {
    hnames = calloc(ncols, sizeof *hnames);
    if (!hnames) { st = sl_fail(SL_ENOMEM, "csv: %s: out of memory", path); goto done; }
    nh = (int64_t)ncols;
    for (size_t j = 0; j < ncols; j++)
      if (!(hnames[j] = cell_string(&cs.v[j]))) {
        st = sl_fail(SL_ENOMEM, "csv: %s: out of memory", path);
        goto done;
      }
  } else {
    pos = first_pos; /* the first line is data: rescan it */
    lineno = 0;
  }
  long long data_first = header ? 2 : 1;
  int64_t rows = last_nonblank >= data_first ? last_nonblank - data_first + 1 : 0;

  /* Label column. */
  long long lab = -1;
  if (o.label) {
    if (!header) {
      st = sl_fail(SL_EINVAL, "csv: %s: label column \"%s\" given by name but the file has no "
                   "header", path, o.label);
      goto done;
    }
    for (size_t j = 0; j < ncols; j++)
      if (strcmp(hnames[j], o.label) == 0) { lab = (long long)j; break; }
    if (lab < 0) {
      st = sl_fail(SL_EINVAL, "csv: %s: no column named \"%s\" in the header", path, o.label);
      goto done;
    }
  } else if (o.label_index >= 0) {
    if ((size_t)o.label_index >= ncols) {
      st = sl_fail(SL_EINVAL, "csv: %s: label column index %d out of range (the file has %zu "
                   "columns)", path, o.label_index, ncols);
      goto done;
    }
    lab = o.label_index;
  }
  int64_t nfeat = (int64_t)ncols - (lab >= 0 ? 1 : 0);
  if (nfeat < 1) {
    st = sl_fail(SL_EFORMAT, "csv: %s: no feature columns besides the label", path);
    goto done;
  }
  if (rows == 0) {
    st = sl_fail(SL_EFORMAT, "csv: %s: no data rows (only a header)", path);
    goto done;
  }
  int64_t xs[2] = {rows, nfeat};
  if (!(tx = sl_tensor_empty(2, xs))) { st = sl_last_status(); goto done; }
  if (lab >= 0) {
    int64_t ys[1] = {rows};
    if (!(ty = sl_tensor_empty(1, ys))) { st = sl_last_status(); goto done; }
  }

  /* Pass 2: parse the data lines. */
  int64_t r = 0;
  while (r < rows && next_line(text, len, &pos, &lp, &ln)) {
    lineno++;
    if (is_blank(lp, ln)) {
      st = sl_fail(SL_EFORMAT, "csv: %s:%lld: empty line", path, lineno);
      goto done;
    }
    if ((st = split_line(&cs, lp, ln, delim, path, lineno))) goto done;
    if (cs.n != ncols) {
      st = sl_fail(SL_EFORMAT, "csv: %s:%lld: %zu columns, expected %zu (as in line 1)", path,
                   lineno, cs.n, ncols);
      goto done;
    }
    float *xr = tx->data + r * nfeat;
    for (size_t j = 0, k = 0; j < ncols; j++) {
      double v;
      if (!parse_number(&cs.v[j], &v)) {
        char ex[48], nm[80] = "";
        cell_excerpt(&cs.v[j], ex, sizeof ex);
        if (hnames) snprintf(nm, sizeof nm, " (\"%.60s\")", hnames[j]);
        if (cs.v[j].n == 0)
          st = sl_fail(SL_EFORMAT, "csv: %s:%lld: column %zu%s: empty cell", path, lineno, j + 1,
                       nm);
        else
          st = sl_fail(SL_EFORMAT, "csv: %s:%lld: column %zu%s: cannot parse '%s' as a number",
                       path, lineno, j + 1, nm, ex);
        goto done;
      }
      if ((long long)j == lab) ty->data[r] = (float)v;
      else xr[k++] = (float)v;
    }
    r++;
  }

  *x = tx;
  tx = NULL;
  if (y) { *y = ty; ty = NULL; }
  if (ncols_out) *ncols_out = nfeat;
  if (names && hnames) {
    /* Drop the label's name. */
    if (lab >= 0) {
      free(hnames[lab]);
      memmove(hnames + lab, hnames + lab + 1, (size_t)(nh - lab - 1) * sizeof *hnames);
      nh--;
    }
    *names = hnames;
    hnames = NULL;
  }
  st = SL_OK;
done:
  sl_tensor_release(tx);
  sl_tensor_release(ty);
  sl_csv_free_names(hnames, nh);
  free(cs.v);
  free(text);
  return st;
}
