/*
 * IDX reader (MNIST / Fashion-MNIST), plain or gzip through zlib's gzread
 * (which passes uncompressed files through unchanged), and the
 * Fashion-MNIST loader on top of it.
 *
 * The data section is read into a buffer that grows only as bytes actually
 * arrive, so a header that lies about its size cannot make us allocate more
 * than the file holds; the float tensor is allocated after the length has
 * been verified.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

static const char *idx_type_name(int dtype) {
  switch (dtype) {
  case 0x08: return "ubyte";
  case 0x09: return "byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return NULL;
  }
}

static int idx_type_size(int dtype) {
  switch (dtype) {
  case 0x08: case 0x09: return 1;
  case 0x0B: return 2;
  case 0x0C: case 0x0D: return 4;
  case 0x0E: return 8;
  default: return 0;
  }
}

/* Reads exactly n bytes unless the stream ends; returns bytes read or -1. */
static int64_t gz_read_full(gzFile f, unsigned char *buf, int64_t n) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got;
    if (want > (1 << 30)) want = 1 << 30;
    int r = gzread(f, buf + got, (unsigned)want);
    if (r < 0) return -1;
    if (r == 0) break;
    got += r;
  }
  return got;
}

static int gz_fail(gzFile f, const char *path) {
  int zerr = 0;
  const char *msg = gzerror(f, &zerr);
  if (zerr == Z_ERRNO)
    return sl_fail(SL_EIO, "idx: %s: read error: %s", path, strerror(errno));
  return sl_fail(SL_EFORMAT, "idx: %s: corrupt gzip stream: %s", path,
                 msg && *msg ? msg : "unknown error");
}

/* After a short read or EOF, distinguishes a clean end from a gzip error. */
static bool gz_has_error(gzFile f) {
  int zerr = Z_OK;
  gzerror(f, &zerr);
  return zerr != Z_OK && zerr != Z_STREAM_END;
}

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static double idx_value(const unsigned char *p, int dtype) {
  switch (dtype) {
  case 0x08: return (double)p[0];
  case 0x09: return (double)(int8_t)p[0];
  case 0x0B: return (double)(int16_t)(uint16_t)(((unsigned)p[0] << 8) | p[1]);
  case 0x0C: return (double)(int32_t)be32(p);
  case 0x0D: {
    uint32_t u = be32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return (double)f;
  }
  default: { /* 0x0E */
    uint64_t u = ((uint64_t)be32(p) << 32) | be32(p + 4);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
  }
  }
}

sl_tensor *sl_idx_read(const char *path, double scale) {
  if (!path) return sl_fail_null(SL_EINVAL, "idx: path is NULL");
  gzFile f = gzopen(path, "rb");
  if (!f) return sl_fail_null(SL_EIO, "idx: cannot open %s: %s", path, strerror(errno));

  sl_tensor *t = NULL;
  unsigned char *buf = NULL;
  unsigned char head[4 + 4 * 255];
  int64_t got = gz_read_full(f, head, 4);
  if (got < 0) { gz_fail(f, path); goto done; }
  if (got < 4) {
    if (gz_has_error(f)) { gz_fail(f, path); goto done; }
    sl_fail(SL_EFORMAT, "idx: %s: file too short for an IDX header (%lld bytes)", path,
            (long long)got);
    goto done;
  }
  if (head[0] != 0 || head[1] != 0) {
    sl_fail(SL_EFORMAT, "idx: %s: bad magic 0x%02x%02x%02x%02x (expected 0x0000<dtype><ndim>)",
            path, head[0], head[1], head[2], head[3]);
    goto done;
  }
  int dtype = head[2], ndim = head[3];
  int esize = idx_type_size(dtype);
  if (esize == 0) {
    sl_fail(SL_EFORMAT, "idx: %s: unknown data type 0x%02x (expected 0x08, 0x09, 0x0b, 0x0c, "
            "0x0d or 0x0e)", path, dtype);
    goto done;
  }
  if (ndim < 1 || ndim > SL_MAX_DIMS) {
    sl_fail(SL_EFORMAT, "idx: %s: %d dimensions (supported: 1 to %d)", path, ndim, SL_MAX_DIMS);
    goto done;
  }
  got = gz_read_full(f, head + 4, 4 * (int64_t)ndim);
  if (got < 0) { gz_fail(f, path); goto done; }
  if (got < 4 * ndim) {
    if (gz_has_error(f)) { gz_fail(f, path); goto done; }
    sl_fail(SL_EFORMAT, "idx: %s: truncated header: %d dimensions need %d bytes, file has %lld",
            path, ndim, 4 + 4 * ndim, (long long)(4 + got));
    goto done;
  }
  int64_t shape[SL_MAX_DIMS];
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    shape[i] = (int64_t)be32(head + 4 + 4 * i);
    if (shape[i] != 0 && numel > SL_IDX_MAX_BYTES / esize / shape[i]) {
      char sbuf[160];
      for (int j = i + 1; j < ndim; j++) shape[j] = (int64_t)be32(head + 4 + 4 * j);
      sl_shape_str_raw(ndim, shape, sbuf, sizeof sbuf);
      sl_fail(SL_EFORMAT, "idx: %s: header shape %s exceeds the %lld-byte limit", path, sbuf,
              (long long)SL_IDX_MAX_BYTES);
      goto done;
    }
    numel *= shape[i];
  }
  int64_t nbytes = numel * esize;
  char shp[160];
  sl_shape_str_raw(ndim, shape, shp, sizeof shp);

  /* Read the data into a buffer that grows as data arrives (capped at
   * nbytes + 1 so that one extra byte detects trailing garbage). */
  int64_t cap = nbytes + 1 < (1 << 20) ? nbytes + 1 : (1 << 20);
  buf = malloc((size_t)cap);
  if (!buf) { sl_fail(SL_ENOMEM, "idx: %s: out of memory", path); goto done; }
  int64_t have = 0;
  for (;;) {
    int64_t r = gz_read_full(f, buf + have, cap - have);
    if (r < 0) { gz_fail(f, path); goto done; }
    have += r;
    if (have < cap) break; /* end of stream */
    if (cap == nbytes + 1) break;
    int64_t ncap = cap * 2 < nbytes + 1 ? cap * 2 : nbytes + 1;
    unsigned char *nb = realloc(buf, (size_t)ncap);
    if (!nb) { sl_fail(SL_ENOMEM, "idx: %s: out of memory", path); goto done; }
    buf = nb;
    cap = ncap;
  }
  if (gz_has_error(f)) { gz_fail(f, path); goto done; }
  if (have < nbytes) {
    sl_fail(SL_EFORMAT, "idx: %s: truncated: header %s of %s needs %lld data bytes, file has %lld",
            path, shp, idx_type_name(dtype), (long long)nbytes, (long long)have);
    goto done;
  }
  if (have > nbytes) {
    /* Count the rest for an exact message. */
    int64_t extra = have - nbytes;
    unsigned char tmp[4096];
    for (;;) {
      int64_t r = gz_read_full(f, tmp, (int64_t)sizeof tmp);
      if (r <= 0) break;
      extra += r;
    }
    sl_fail(SL_EFORMAT, "idx: %s: trailing data: header %s of %s needs %lld data bytes, file has "
            "%lld", path, shp, idx_type_name(dtype), (long long)nbytes, (long long)(nbytes + extra));
    goto done;
  }

  t = sl_tensor_empty(ndim, shape);
  if (!t) goto done;
  float *out = t->data;
  if (dtype == 0x08) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)((double)v * scale);
    for (int64_t i = 0; i < numel; i++) out[i] = lut[buf[i]];
  } else {
    for (int64_t i = 0; i < numel; i++)
      out[i] = (float)(idx_value(buf + i * esize, dtype) * scale);
  }

done:
  free(buf);
  gzclose(f);
  return t;
}

/* ---- Fashion-MNIST ------------------------------------------------------ */

#define FM_INSTALL "install the Debian package dataset-fashion-mnist " \
                   "(apt-get install dataset-fashion-mnist)"

/* Finds dir/base.gz or dir/base; writes the path into out. */
static int fm_find(char *out, size_t n, const char *dir, const char *base) {
  FILE *f;
  int w = snprintf(out, n, "%s/%s.gz", dir, base);
  if (w < 0 || (size_t)w >= n) return sl_fail(SL_EINVAL, "fashion_mnist: path too long: %s", dir);
  if ((f = fopen(out, "rb"))) { fclose(f); return SL_OK; }
  snprintf(out, n, "%s/%s", dir, base);
  if ((f = fopen(out, "rb"))) { fclose(f); return SL_OK; }
  return sl_fail(SL_EIO, "fashion_mnist: cannot open %s/%s.gz: %s; " FM_INSTALL, dir, base,
                 strerror(errno));
}

int sl_fashion_mnist_load(const char *dir, bool train, sl_tensor **x, sl_tensor **y) {
  if (!x || !y) return sl_fail(SL_EINVAL, "fashion_mnist: x and y must not be NULL");
  *x = *y = NULL;
  if (!dir) dir = SL_FASHION_MNIST_DIR;
  const char *split = train ? "train" : "t10k";
  char ipath[4096], lpath[4096], base[64];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
  int st = fm_find(ipath, sizeof ipath, dir, base);
  if (st) return st;
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
  if ((st = fm_find(lpath, sizeof lpath, dir, base))) return st;

  sl_tensor *img = NULL, *lab = NULL, *flat = NULL;
  img = sl_idx_read(ipath, 1.0 / 255.0);
  if (!img) return sl_last_status();
  if (img->ndim != 3 || img->shape[1] != 28 || img->shape[2] != 28) {
    char s[96];
    st = sl_fail(SL_EFORMAT, "fashion_mnist: %s: images have shape %s, expected [N x 28 x 28]",
                 ipath, sl_shape_str(img, s, sizeof s));
    goto fail;
  }
  lab = sl_idx_read(lpath, 1.0);
  if (!lab) { st = sl_last_status(); goto fail; }
  if (lab->ndim != 1 || lab->shape[0] != img->shape[0]) {
    char s[96];
    st = sl_fail(SL_EFORMAT, "fashion_mnist: %s: labels have shape %s, expected [%lld]", lpath,
                 sl_shape_str(lab, s, sizeof s), (long long)img->shape[0]);
    goto fail;
  }
  for (int64_t i = 0; i < lab->numel; i++) {
    if (!(lab->data[i] >= 0.0f && lab->data[i] <= 9.0f)) {
      st = sl_fail(SL_EFORMAT, "fashion_mnist: %s: label %g at index %lld is outside 0..9", lpath,
                   (double)lab->data[i], (long long)i);
      goto fail;
    }
  }
  int64_t shape2[2] = {img->shape[0], 784};
  flat = sl_tensor_reshape(img, 2, shape2);
  if (!flat) { st = sl_last_status(); goto fail; }
  sl_tensor_release(img);
  *x = flat;
  *y = lab;
  return SL_OK;
fail:
  sl_tensor_release(img);
  sl_tensor_release(lab);
  return st ? st : SL_EFORMAT;
}
