/*
 * safetensors checkpoints: atomic writer and hardened reader.
 *
 * The reader never trusts the file: the header length is bounded by the file
 * size and SL_SAFETENSORS_MAX_HEADER, the JSON header is parsed by a small
 * grammar-directed parser that accepts only what the format needs (an object
 * of tensor entries and one "__metadata__" object of strings), and every
 * offset is checked before any tensor memory is allocated: the tensors must
 * tile the data section exactly, as the reference implementation requires.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

#define ST_MAX_TENSORS 1000000

static bool host_is_le(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void swap4(void *p, size_t n) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++, b += 4) {
    unsigned char t = b[0];
    b[0] = b[3];
    b[3] = t;
    t = b[1];
    b[1] = b[2];
    b[2] = t;
  }
}

/* ---- growable string buffer --------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) { b->oom = true; return; }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v) {
  char t[32];
  int k = snprintf(t, sizeof t, "%lld", (long long)v);
  sb_put(b, t, (size_t)k);
}

/* JSON string with the escapes serde_json emits. */
static void sb_json_string(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': sb_put(b, "\\\"", 2); break;
    case '\\': sb_put(b, "\\\\", 2); break;
    case '\n': sb_put(b, "\\n", 2); break;
    case '\r': sb_put(b, "\\r", 2); break;
    case '\t': sb_put(b, "\\t", 2); break;
    case '\b': sb_put(b, "\\b", 2); break;
    case '\f': sb_put(b, "\\f", 2); break;
    default:
      if (*p < 0x20) {
        char t[8];
        snprintf(t, sizeof t, "\\u%04x", *p);
        sb_put(b, t, 6);
      } else {
        sb_put(b, (const char *)p, 1);
      }
    }
  }
  sb_put(b, "\"", 1);
}

/* ---- save --------------------------------------------------------------- */

static int write_all(FILE *f, const void *p, size_t n) {
  return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int write_tensor(FILE *f, const sl_tensor *t) {
  size_t n = (size_t)t->numel;
  if (host_is_le()) return write_all(f, t->data, n * sizeof(float));
  float chunk[1024];
  for (size_t i = 0; i < n; i += 1024) {
    size_t m = n - i < 1024 ? n - i : 1024;
    memcpy(chunk, t->data + i, m * sizeof(float));
    swap4(chunk, m);
    if (write_all(f, chunk, m * sizeof(float))) return -1;
  }
  return 0;
}

/* I64: the float values, already checked integral, as little-endian int64. */
static int write_tensor_i64(FILE *f, const sl_tensor *t) {
  unsigned char chunk[512 * 8];
  size_t n = (size_t)t->numel;
  for (size_t i = 0; i < n; i += 512) {
    size_t m = n - i < 512 ? n - i : 512;
    for (size_t j = 0; j < m; j++) {
      uint64_t u = (uint64_t)(int64_t)t->data[i + j];
      for (int k = 0; k < 8; k++) chunk[8 * j + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    if (write_all(f, chunk, m * 8)) return -1;
  }
  return 0;
}

/* A float holds an int64 value exactly: finite, integral, inside [-2^63, 2^63). */
static bool float_is_i64(float v) {
  return v >= -9.2233720368547758e18f && v < 9.2233720368547758e18f && v == (float)(int64_t)v;
}

/* Opens a new temporary file next to path (O_EXCL, mode 0666 & ~umask, so
 * the checkpoint gets ordinary permissions, unlike mkstemp's 0600). */
static FILE *open_temp(const char *path, char *tmp, size_t tmpn) {
  static _Thread_local unsigned counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned tag = (unsigned)ts.tv_nsec ^ (++counter * 2654435761u);
    int w = snprintf(tmp, tmpn, "%s.tmp-%ld-%08x", path, (long)getpid(), tag);
    if (w < 0 || (size_t)w >= tmpn) {
      errno = ENAMETOOLONG;
      return NULL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return NULL;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
      int e = errno;
      close(fd);
      unlink(tmp);
      errno = e;
    }
    return f;
  }
  errno = EEXIST;
  return NULL;
}

static void fsync_parent_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) {
    strcpy(dir, ".");
  } else {
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/file" */
    if (n >= sizeof dir) return;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd); /* best effort: the rename itself has succeeded */
  close(fd);
}

int sl_safetensors_save(const char *path, int n, const char *const *names,
                        sl_tensor *const *tensors, int nmeta, const char *const *meta_keys,
                        const char *const *meta_values) {
  return sl_safetensors_save_ex(path, n, names, tensors, NULL, nmeta, meta_keys, meta_values);
}

int sl_safetensors_save_ex(const char *path, int n, const char *const *names,
                           sl_tensor *const *tensors, const int *formats, int nmeta,
                           const char *const *meta_keys, const char *const *meta_values) {
  if (!path || !*path) return sl_fail(SL_EINVAL, "safetensors.save: empty path");
  if (n < 0 || nmeta < 0)
    return sl_fail(SL_EINVAL, "safetensors.save: negative count (%d tensors, %d metadata)", n,
                   nmeta);
  if ((n > 0 && (!names || !tensors)) || (nmeta > 0 && (!meta_keys || !meta_values)))
    return sl_fail(SL_EINVAL, "safetensors.save: NULL name, tensor or metadata array");
  for (int i = 0; i < n; i++) {
    if (!names[i] || !*names[i])
      return sl_fail(SL_EINVAL, "safetensors.save: tensor %d has an empty name", i);
    if (strcmp(names[i], "__metadata__") == 0)
      return sl_fail(SL_EINVAL, "safetensors.save: \"__metadata__\" is reserved, not a tensor name");
    if (!tensors[i])
      return sl_fail(SL_EINVAL, "safetensors.save: tensor \"%s\" is NULL", names[i]);
    for (int j = 0; j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        return sl_fail(SL_EINVAL, "safetensors.save: duplicate tensor name \"%s\"", names[i]);
    int fmt = formats ? formats[i] : SL_ST_F32;
    if ((fmt & ~SL_ST_SCALAR) != SL_ST_F32 && (fmt & ~SL_ST_SCALAR) != SL_ST_I64)
      return sl_fail(SL_EINVAL, "safetensors.save: tensor \"%s\" has an unknown format %d", names[i], fmt);
    if ((fmt & SL_ST_SCALAR) && tensors[i]->numel != 1)
      return sl_fail(SL_EINVAL, "safetensors.save: tensor \"%s\" is stored as a 0-dim scalar but has %lld "
                     "elements", names[i], (long long)tensors[i]->numel);
    if ((fmt & ~SL_ST_SCALAR) == SL_ST_I64)
      for (int64_t k = 0; k < tensors[i]->numel; k++)
        if (!float_is_i64(tensors[i]->data[k]))
          return sl_fail(SL_EINVAL, "safetensors.save: tensor \"%s\" is stored as I64 but element %lld is %g, "
                         "not an integer", names[i], (long long)k + 1, (double)tensors[i]->data[k]);
  }
  for (int i = 0; i < nmeta; i++) {
    if (!meta_keys[i] || !meta_values[i])
      return sl_fail(SL_EINVAL, "safetensors.save: metadata entry %d is NULL", i);
    for (int j = 0; j < i; j++)
      if (strcmp(meta_keys[i], meta_keys[j]) == 0)
        return sl_fail(SL_EINVAL, "safetensors.save: duplicate metadata key \"%s\"", meta_keys[i]);
  }

  /* Header. */
  sbuf h = {NULL, 0, 0, false};
  sb_str(&h, "{");
  if (nmeta > 0) {
    sb_str(&h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_str(&h, ",");
      sb_json_string(&h, meta_keys[i]);
      sb_str(&h, ":");
      sb_json_string(&h, meta_values[i]);
    }
    sb_str(&h, "}");
  }
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    const sl_tensor *t = tensors[i];
    int fmt = formats ? formats[i] : SL_ST_F32;
    int64_t esize = (fmt & ~SL_ST_SCALAR) == SL_ST_I64 ? 8 : 4;
    if (nmeta > 0 || i > 0) sb_str(&h, ",");
    sb_json_string(&h, names[i]);
    sb_str(&h, esize == 8 ? ":{\"dtype\":\"I64\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < ((fmt & SL_ST_SCALAR) ? 0 : t->ndim); d++) {
      if (d) sb_str(&h, ",");
      sb_int(&h, t->shape[d]);
    }
    sb_str(&h, "],\"data_offsets\":[");
    sb_int(&h, off);
    sb_str(&h, ",");
    if (t->numel > (INT64_MAX - off) / esize) {
      free(h.p);
      return sl_fail(SL_EINVAL, "safetensors.save: total size overflows");
    }
    off += t->numel * esize;
    sb_int(&h, off);
    sb_str(&h, "]}");
  }
  sb_str(&h, "}");
  while (!h.oom && (8 + h.n) % 8 != 0) sb_str(&h, " ");
  if (h.oom) {
    free(h.p);
    return sl_fail(SL_ENOMEM, "safetensors.save: out of memory building the header");
  }

  char tmp[4200];
  FILE *f = open_temp(path, tmp, sizeof tmp);
  if (!f) {
    int e = errno;
    free(h.p);
    return sl_fail(SL_EIO, "safetensors.save: cannot create a temporary file next to %s: %s",
                   path, strerror(e));
  }
  unsigned char len8[8];
  uint64_t hl = (uint64_t)h.n;
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
  const char *what = "write";
  bool ok = write_all(f, len8, 8) == 0 && write_all(f, h.p, h.n) == 0;
  for (int i = 0; ok && i < n; i++)
    ok = (formats && (formats[i] & ~SL_ST_SCALAR) == SL_ST_I64 ? write_tensor_i64(f, tensors[i])
                                                                 : write_tensor(f, tensors[i])) == 0;
  if (ok) { what = "flush"; ok = fflush(f) == 0; }
  if (ok) { what = "fsync"; ok = fsync(fileno(f)) == 0; }
  int e = errno;
  free(h.p);
  if (fclose(f) != 0 && ok) {
    e = errno;
    what = "close";
    ok = false;
  }
  if (!ok) {
    unlink(tmp);
    return sl_fail(SL_EIO, "safetensors.save: %s: %s failed: %s (existing file left untouched)",
                   path, what, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    unlink(tmp);
    return sl_fail(SL_EIO, "safetensors.save: cannot rename the temporary file to %s: %s "
                   "(existing file left untouched)", path, strerror(e));
  }
  fsync_parent_dir(path);
  return SL_OK;
}

/* ---- strict JSON header parser ------------------------------------------ */

typedef struct st_entry {
  char *name;
  char dtype[16];
  int ndim;
  int64_t shape[SL_MAX_DIMS];
  int64_t begin, end;
} st_entry;

struct sl_safetensors {
  int n;
  char **names;
  sl_tensor **tensors;
  int *dtypes; /* SL_ST_F32 or SL_ST_I64 (the dtype in the file) | SL_ST_SCALAR for shape [] */
  int nmeta;
  char **mkeys, **mvals;
};

typedef struct jp {
  const char *s;
  size_t n, i;
  const char *path;
  int status;
} jp;

/* Records a parse error once (the first one wins). */
static int jfail(jp *p, const char *fmt, const char *arg) {
  if (p->status == SL_OK) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    p->status = sl_fail(SL_EFORMAT, "safetensors: %s: bad header at byte %zu: %s", p->path,
                        p->i, msg);
  }
  return p->status;
}

static void jws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                         p->s[p->i] == '\r'))
    p->i++;
}

static int jexpect(jp *p, char c) {
  jws(p);
  if (p->i >= p->n || p->s[p->i] != c) {
    char t[2] = {c, 0};
    return jfail(p, "expected '%s'", t);
  }
  p->i++;
  return SL_OK;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(jp *p, unsigned *out) {
  if (p->n - p->i < 4) return jfail(p, "truncated \\u escape", NULL);
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(p->s[p->i + (size_t)k]);
    if (h < 0) return jfail(p, "bad \\u escape", NULL);
    v = v * 16 + (unsigned)h;
  }
  p->i += 4;
  *out = v;
  return SL_OK;
}

static void put_utf8(sbuf *b, unsigned cp) {
  char t[4];
  size_t k;
  if (cp < 0x80) { t[0] = (char)cp; k = 1; }
  else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
  else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
  } else {
    t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
  }
  sb_put(b, t, k);
}

/* Length of a valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t k;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
  else return 0;
  if (n < k) return 0;
  for (size_t j = 1; j < k; j++) {
    if ((s[j] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[j] & 0x3F);
  }
  if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

/* Parses a JSON string into a new malloc'ed UTF-8 string. */
static char *jstring(jp *p) {
  jws(p);
  if (p->i >= p->n || p->s[p->i] != '"') { jfail(p, "expected a string", NULL); return NULL; }
  p->i++;
  sbuf b = {NULL, 0, 0, false};
  sb_put(&b, "", 0);
  for (;;) {
    if (p->i >= p->n) { jfail(p, "unterminated string", NULL); goto bad; }
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') { p->i++; break; }
    if (c < 0x20) { jfail(p, "control character in a string", NULL); goto bad; }
    if (c == '\\') {
      p->i++;
      if (p->i >= p->n) { jfail(p, "unterminated string", NULL); goto bad; }
      char e = p->s[p->i++];
      unsigned cp;
      switch (e) {
      case '"': sb_put(&b, "\"", 1); break;
      case '\\': sb_put(&b, "\\", 1); break;
      case '/': sb_put(&b, "/", 1); break;
      case 'b': sb_put(&b, "\b", 1); break;
      case 'f': sb_put(&b, "\f", 1); break;
      case 'n': sb_put(&b, "\n", 1); break;
      case 'r': sb_put(&b, "\r", 1); break;
      case 't': sb_put(&b, "\t", 1); break;
      case 'u':
        if (read_hex4(p, &cp)) goto bad;
        if (cp >= 0xDC00 && cp <= 0xDFFF) { jfail(p, "lone low surrogate in \\u escape", NULL); goto bad; }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
            jfail(p, "high surrogate not followed by a low surrogate", NULL);
            goto bad;
          }
          p->i += 2;
          if (read_hex4(p, &lo)) goto bad;
          if (lo < 0xDC00 || lo > 0xDFFF) {
            jfail(p, "high surrogate not followed by a low surrogate", NULL);
            goto bad;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) { jfail(p, "NUL character (\\u0000) in a string", NULL); goto bad; }
        put_utf8(&b, cp);
        break;
      default: {
        char t[2] = {e, 0};
        jfail(p, "unknown escape '\\%s'", t);
        goto bad;
      }
      }
      continue;
    }
    size_t k = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
    if (k == 0) { jfail(p, "invalid UTF-8 in a string", NULL); goto bad; }
    sb_put(&b, p->s + p->i, k);
    p->i += k;
  }
  if (b.oom) {
    if (p->status == SL_OK) p->status = sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", p->path);
    goto bad;
  }
  return b.p;
bad:
  free(b.p);
  return NULL;
}

/* Non-negative JSON integer (no sign, fraction, exponent or leading zero). */
static int jint(jp *p, int64_t *out) {
  jws(p);
  size_t s = p->i;
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
    return jfail(p, "expected a non-negative integer", NULL);
  if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
    return jfail(p, "integer with a leading zero", NULL);
  int64_t v = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    int d = p->s[p->i] - '0';
    if (v > (INT64_MAX - d) / 10) { p->i = s; return jfail(p, "integer too large", NULL); }
    v = v * 10 + d;
    p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
    return jfail(p, "expected an integer, got a fractional number", NULL);
  *out = v;
  return SL_OK;
}

/* [int, int, ...] with at most max entries; returns the count in *k. */
static int jint_array(jp *p, int64_t *v, int max, int *k, const char *what) {
  if (jexpect(p, '[')) return p->status;
  *k = 0;
  jws(p);
  if (p->i < p->n && p->s[p->i] == ']') { p->i++; return SL_OK; }
  for (;;) {
    if (*k >= max) return jfail(p, "too many entries in \"%s\"", what);
    if (jint(p, &v[*k])) return p->status;
    (*k)++;
    jws(p);
    if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
    if (p->i < p->n && p->s[p->i] == ']') { p->i++; return SL_OK; }
    return jfail(p, "expected ',' or ']' in \"%s\"", what);
  }
}

/* Next member separator: returns 1 for ',', 0 for '}', <0 on error. */
static int jnext(jp *p) {
  jws(p);
  if (p->i < p->n && p->s[p->i] == ',') { p->i++; return 1; }
  if (p->i < p->n && p->s[p->i] == '}') { p->i++; return 0; }
  jfail(p, "expected ',' or '}'", NULL);
  return -1;
}

static int parse_tensor_entry(jp *p, st_entry *e) {
  bool has_dtype = false, has_shape = false, has_off = false;
  if (jexpect(p, '{')) return p->status;
  jws(p);
  if (p->i < p->n && p->s[p->i] == '}') { p->i++; goto check; }
  for (;;) {
    char *key = jstring(p);
    if (!key) return p->status;
    if (jexpect(p, ':')) { free(key); return p->status; }
    if (strcmp(key, "dtype") == 0) {
      if (has_dtype) { jfail(p, "duplicate key \"dtype\" in tensor \"%s\"", e->name); free(key); return p->status; }
      has_dtype = true;
      char *d = jstring(p);
      if (!d) { free(key); return p->status; }
      snprintf(e->dtype, sizeof e->dtype, "%s", d);
      if (strlen(d) >= sizeof e->dtype) strcpy(e->dtype + sizeof e->dtype - 4, "...");
      free(d);
    } else if (strcmp(key, "shape") == 0) {
      if (has_shape) { jfail(p, "duplicate key \"shape\" in tensor \"%s\"", e->name); free(key); return p->status; }
      has_shape = true;
      if (jint_array(p, e->shape, SL_MAX_DIMS, &e->ndim, "shape")) { free(key); return p->status; }
    } else if (strcmp(key, "data_offsets") == 0) {
      if (has_off) { jfail(p, "duplicate key \"data_offsets\" in tensor \"%s\"", e->name); free(key); return p->status; }
      has_off = true;
      int64_t o[2];
      int k;
      if (jint_array(p, o, 2, &k, "data_offsets")) { free(key); return p->status; }
      if (k != 2) { jfail(p, "\"data_offsets\" of tensor \"%s\" must have 2 entries", e->name); free(key); return p->status; }
      e->begin = o[0];
      e->end = o[1];
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "unknown key \"%.60s\" in tensor \"%.60s\"", key, e->name);
      free(key);
      return jfail(p, "%s", msg);
    }
    free(key);
    int r = jnext(p);
    if (r < 0) return p->status;
    if (r == 0) break;
  }
check:
  if (!has_dtype) return jfail(p, "tensor \"%s\" has no \"dtype\"", e->name);
  if (!has_shape) return jfail(p, "tensor \"%s\" has no \"shape\"", e->name);
  if (!has_off) return jfail(p, "tensor \"%s\" has no \"data_offsets\"", e->name);
  return SL_OK;
}

typedef struct st_parse {
  st_entry *v;
  int n, cap;
  char **mk, **mv;
  int nm, mcap;
  bool has_meta;
} st_parse;

static void st_parse_free(st_parse *ps) {
  for (int i = 0; i < ps->n; i++) free(ps->v[i].name);
  for (int i = 0; i < ps->nm; i++) { free(ps->mk[i]); free(ps->mv[i]); }
  free(ps->v);
  free(ps->mk);
  free(ps->mv);
}

static int parse_metadata(jp *p, st_parse *ps) {
  if (ps->has_meta) return jfail(p, "duplicate key \"__metadata__\"", NULL);
  ps->has_meta = true;
  if (jexpect(p, '{')) return p->status;
  jws(p);
  if (p->i < p->n && p->s[p->i] == '}') { p->i++; return SL_OK; }
  for (;;) {
    char *k = jstring(p);
    if (!k) return p->status;
    for (int i = 0; i < ps->nm; i++)
      if (strcmp(ps->mk[i], k) == 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "duplicate metadata key \"%.80s\"", k);
        free(k);
        return jfail(p, "%s", msg);
      }
    if (jexpect(p, ':')) { free(k); return p->status; }
    jws(p);
    if (p->i < p->n && p->s[p->i] != '"') {
      free(k);
      return jfail(p, "metadata values must be strings", NULL);
    }
    char *v = jstring(p);
    if (!v) { free(k); return p->status; }
    if (ps->nm == ps->mcap) {
      int cap = ps->mcap ? ps->mcap * 2 : 8;
      char **a = realloc(ps->mk, (size_t)cap * sizeof *a);
      if (a) ps->mk = a;
      char **b = a ? realloc(ps->mv, (size_t)cap * sizeof *b) : NULL;
      if (b) ps->mv = b;
      if (!a || !b) {
        free(k);
        free(v);
        return p->status = sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", p->path);
      }
      ps->mcap = cap;
    }
    ps->mk[ps->nm] = k;
    ps->mv[ps->nm] = v;
    ps->nm++;
    int r = jnext(p);
    if (r < 0) return p->status;
    if (r == 0) return SL_OK;
  }
}

static int parse_header(jp *p, st_parse *ps) {
  jws(p);
  if (jexpect(p, '{')) return p->status;
  jws(p);
  if (p->i < p->n && p->s[p->i] == '}') {
    p->i++;
  } else {
    for (;;) {
      char *key = jstring(p);
      if (!key) return p->status;
      if (jexpect(p, ':')) { free(key); return p->status; }
      if (strcmp(key, "__metadata__") == 0) {
        free(key);
        if (parse_metadata(p, ps)) return p->status;
      } else {
        if (!*key) { free(key); return jfail(p, "empty tensor name", NULL); }
        for (int i = 0; i < ps->n; i++)
          if (strcmp(ps->v[i].name, key) == 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "duplicate tensor name \"%.80s\"", key);
            free(key);
            return jfail(p, "%s", msg);
          }
        if (ps->n == ps->cap) {
          if (ps->n >= ST_MAX_TENSORS) { free(key); return jfail(p, "too many tensors", NULL); }
          int cap = ps->cap ? ps->cap * 2 : 16;
          st_entry *nv = realloc(ps->v, (size_t)cap * sizeof *nv);
          if (!nv) {
            free(key);
            return p->status = sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", p->path);
          }
          ps->v = nv;
          ps->cap = cap;
        }
        st_entry *e = &ps->v[ps->n++];
        memset(e, 0, sizeof *e);
        e->name = key;
        if (parse_tensor_entry(p, e)) return p->status;
      }
      int r = jnext(p);
      if (r < 0) return p->status;
      if (r == 0) break;
    }
  }
  jws(p);
  if (p->i != p->n) return jfail(p, "trailing characters after the JSON object", NULL);
  return SL_OK;
}

/* ---- load --------------------------------------------------------------- */

static const char *const known_dtypes[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16",
                                           "U16", "F16", "BF16", "I32", "U32", "F64", "I64",
                                           "U64", NULL};

static int cmp_entry(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Reads t->numel little-endian int64 values into t's floats; SL_EFORMAT for a
 * value float32 cannot hold exactly (selut tensors are float32: an I64 that
 * would round is refused rather than changed). */
static int read_i64(FILE *f, sl_tensor *t, const char *path, const char *name) {
  unsigned char chunk[512 * 8];
  size_t n = (size_t)t->numel;
  for (size_t i = 0; i < n; i += 512) {
    size_t m = n - i < 512 ? n - i : 512;
    if (fread(chunk, 1, m * 8, f) != m * 8)
      return sl_fail(SL_EIO, "safetensors: %s: read error in tensor \"%s\"", path, name);
    for (size_t j = 0; j < m; j++) {
      uint64_t u = 0;
      for (int k = 7; k >= 0; k--) u = (u << 8) | chunk[8 * j + (size_t)k];
      int64_t v = u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
      float x = (float)v;
      if (!float_is_i64(x) || (int64_t)x != v)
        return sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\" (I64) element %lld is %lld, which float32 "
                       "cannot represent exactly", path, name, (long long)(i + j + 1), (long long)v);
      t->data[i + j] = x;
    }
  }
  return SL_OK;
}

void sl_safetensors_free(sl_safetensors *st) {
  if (!st) return;
  for (int i = 0; i < st->n; i++) {
    free(st->names[i]);
    sl_tensor_release(st->tensors[i]);
  }
  for (int i = 0; i < st->nmeta; i++) {
    free(st->mkeys[i]);
    free(st->mvals[i]);
  }
  free(st->names);
  free(st->tensors);
  free(st->dtypes);
  free(st->mkeys);
  free(st->mvals);
  free(st);
}

sl_safetensors *sl_safetensors_load(const char *path) {
  if (!path) return sl_fail_null(SL_EINVAL, "safetensors: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return sl_fail_null(SL_EIO, "safetensors: cannot open %s: %s", path, strerror(errno));
  sl_safetensors *out = NULL;
  char *hdr = NULL;
  st_parse ps;
  memset(&ps, 0, sizeof ps);
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    sl_fail(SL_EIO, "safetensors: cannot stat %s: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    sl_fail(SL_EIO, "safetensors: %s is not a regular file", path);
    goto done;
  }
  uint64_t fsize = (uint64_t)sb.st_size;
  unsigned char len8[8];
  if (fsize < 8 || fread(len8, 1, 8, f) != 8) {
    sl_fail(SL_EFORMAT, "safetensors: %s: file too short (%llu bytes) for the 8-byte header "
            "length", path, (unsigned long long)fsize);
    goto done;
  }
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | len8[i];
  if (hl > SL_SAFETENSORS_MAX_HEADER) {
    sl_fail(SL_EFORMAT, "safetensors: %s: header length %llu exceeds the %llu-byte limit", path,
            (unsigned long long)hl, (unsigned long long)SL_SAFETENSORS_MAX_HEADER);
    goto done;
  }
  if (hl > fsize - 8) {
    sl_fail(SL_EFORMAT, "safetensors: %s: header length %llu exceeds the file size (%llu bytes)",
            path, (unsigned long long)hl, (unsigned long long)fsize);
    goto done;
  }
  if (hl < 2) {
    sl_fail(SL_EFORMAT, "safetensors: %s: header length %llu is too small for a JSON object",
            path, (unsigned long long)hl);
    goto done;
  }
  hdr = malloc((size_t)hl + 1);
  if (!hdr) { sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", path); goto done; }
  if (fread(hdr, 1, (size_t)hl, f) != (size_t)hl) {
    sl_fail(SL_EIO, "safetensors: %s: cannot read the header", path);
    goto done;
  }
  hdr[hl] = '\0';
  if (hdr[0] != '{') {
    sl_fail(SL_EFORMAT, "safetensors: %s: header does not start with '{'", path);
    goto done;
  }
  jp p = {hdr, (size_t)hl, 0, path, SL_OK};
  if (parse_header(&p, &ps)) goto done;

  /* Validate every entry before allocating anything. */
  int64_t dlen = (int64_t)(fsize - 8 - hl);
  for (int i = 0; i < ps.n; i++) {
    st_entry *e = &ps.v[i];
    const int64_t esize = strcmp(e->dtype, "I64") == 0 ? 8 : 4;
    if (strcmp(e->dtype, "F32") != 0 && esize != 8) {
      bool known = false;
      for (int k = 0; known_dtypes[k]; k++) known |= strcmp(known_dtypes[k], e->dtype) == 0;
      if (known)
        sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\" has dtype %s; only F32 and I64 are "
                "supported", path, e->name, e->dtype);
      else
        sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\" has unknown dtype \"%s\"", path,
                e->name, e->dtype);
      goto done;
    }
    int64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] != 0 && numel > INT64_MAX / esize / e->shape[d]) {
        sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\": shape too large", path, e->name);
        goto done;
      }
      numel *= e->shape[d];
    }
    if (e->begin > e->end) {
      sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\": data_offsets [%lld, %lld] end "
              "before they begin", path, e->name, (long long)e->begin, (long long)e->end);
      goto done;
    }
    if (e->end > dlen) {
      sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\": data_offsets [%lld, %lld] lie "
              "outside the %lld-byte data section", path, e->name, (long long)e->begin,
              (long long)e->end, (long long)dlen);
      goto done;
    }
    if (e->end - e->begin != numel * esize) {
      char s[160];
      sl_shape_str_raw(e->ndim ? e->ndim : 1, e->ndim ? e->shape : (const int64_t[]){1}, s,
                       sizeof s);
      sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\": data_offsets [%lld, %lld] span %lld "
              "bytes, shape %s of %s needs %lld", path, e->name, (long long)e->begin,
              (long long)e->end, (long long)(e->end - e->begin), s, e->dtype, (long long)(numel * esize));
      goto done;
    }
  }
  if (ps.n > 1) qsort(ps.v, (size_t)ps.n, sizeof *ps.v, cmp_entry);
  int64_t pos = 0;
  for (int i = 0; i < ps.n; i++) {
    st_entry *e = &ps.v[i];
    if (e->begin != pos) {
      if (e->begin < pos)
        sl_fail(SL_EFORMAT, "safetensors: %s: tensor \"%s\" (bytes %lld..%lld) overlaps tensor "
                "\"%s\" (ending at %lld)", path, e->name, (long long)e->begin, (long long)e->end,
                ps.v[i - 1].name, (long long)pos);
      else
        sl_fail(SL_EFORMAT, "safetensors: %s: gap in the data section: bytes %lld..%lld belong "
                "to no tensor", path, (long long)pos, (long long)e->begin);
      goto done;
    }
    pos = e->end;
  }
  if (pos != dlen) {
    sl_fail(SL_EFORMAT, "safetensors: %s: the data section has %lld bytes but the tensors cover "
            "%lld (trailing or missing data)", path, (long long)dlen, (long long)pos);
    goto done;
  }

  /* Build the result. */
  out = calloc(1, sizeof *out);
  if (!out) { sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", path); goto done; }
  out->names = calloc((size_t)(ps.n ? ps.n : 1), sizeof *out->names);
  out->tensors = calloc((size_t)(ps.n ? ps.n : 1), sizeof *out->tensors);
  out->dtypes = calloc((size_t)(ps.n ? ps.n : 1), sizeof *out->dtypes);
  if (!out->names || !out->tensors || !out->dtypes) {
    sl_fail(SL_ENOMEM, "safetensors: %s: out of memory", path);
    goto fail;
  }
  for (int i = 0; i < ps.n; i++) {
    st_entry *e = &ps.v[i];
    int64_t one = 1;
    sl_tensor *t = e->ndim ? sl_tensor_empty(e->ndim, e->shape) : sl_tensor_empty(1, &one);
    if (!t) goto fail;
    out->tensors[i] = t;
    out->names[i] = e->name;
    e->name = NULL;
    out->n = i + 1;
    out->dtypes[i] = e->ndim ? 0 : SL_ST_SCALAR;
    if (strcmp(e->dtype, "I64") == 0) {
      out->dtypes[i] |= SL_ST_I64;
      if (read_i64(f, t, path, out->names[i])) goto fail;
      continue;
    }
    size_t nb = (size_t)t->numel * sizeof(float);
    if (nb && fread(t->data, 1, nb, f) != nb) {
      sl_fail(SL_EIO, "safetensors: %s: read error in tensor \"%s\"", path, out->names[i]);
      goto fail;
    }
    if (!host_is_le()) swap4(t->data, (size_t)t->numel);
  }
  out->nmeta = ps.nm;
  out->mkeys = ps.mk;
  out->mvals = ps.mv;
  ps.mk = ps.mv = NULL;
  ps.nm = 0;
  goto done;
fail:
  sl_safetensors_free(out);
  out = NULL;
done:
  st_parse_free(&ps);
  free(hdr);
  fclose(f);
  return out;
}

int sl_safetensors_count(const sl_safetensors *st) { return st ? st->n : 0; }

const char *sl_safetensors_name(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->n ? st->names[i] : NULL;
}

sl_tensor *sl_safetensors_tensor(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->n ? st->tensors[i] : NULL;
}

int sl_safetensors_dtype(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->n ? st->dtypes[i] & ~SL_ST_SCALAR : -1;
}

int sl_safetensors_format(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->n ? st->dtypes[i] : -1;
}

int sl_safetensors_find(const sl_safetensors *st, const char *name) {
  if (!st || !name) return -1;
  for (int i = 0; i < st->n; i++)
    if (strcmp(st->names[i], name) == 0) return i;
  return -1;
}

int sl_safetensors_meta_count(const sl_safetensors *st) { return st ? st->nmeta : 0; }

const char *sl_safetensors_meta_key(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->nmeta ? st->mkeys[i] : NULL;
}

const char *sl_safetensors_meta_value(const sl_safetensors *st, int i) {
  return st && i >= 0 && i < st->nmeta ? st->mvals[i] : NULL;
}

const char *sl_safetensors_meta_get(const sl_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (int i = 0; i < st->nmeta; i++)
    if (strcmp(st->mkeys[i], key) == 0) return st->mvals[i];
  return NULL;
}
