/*
 * libFuzzer target: the broadcasting, reduction, shape and index ops of the
 * C API on shapes, dims and indices taken from the input bytes. Tensors are
 * small (at most 8 dims, each 0..7, at most 4096 elements) so ASan sees any
 * read or write past an end; results are checked against naive loops where
 * a naive loop is short (binary broadcasting, permute, cat, reductions by
 * sum), and every failure must leave a message.
 *
 * Input: a sequence of records, each
 *   op byte, shape A (ndim byte, then one byte per dim), shape B (same),
 *   then up to 8 argument bytes (dims, indices, values)
 * read with a cursor that yields 0 past the end.
 */
#include <math.h>

#include "fuzz_util.h"

typedef struct cursor {
  const uint8_t *p;
  size_t n, i;
} cursor;

static uint8_t next(cursor *c) { return c->i < c->n ? c->p[c->i++] : 0; }

#define MAX_NUMEL 4096

/* A shape from the bytes: ndim 1..8, dims 0..7 (some larger when the
 * tensor stays small). Returns the element count or -1 when too big. */
static int64_t read_shape(cursor *c, int *nd, int64_t *shape) {
  *nd = 1 + next(c) % SL_MAX_DIMS;
  int64_t n = 1;
  for (int i = 0; i < *nd; i++) {
    uint8_t b = next(c);
    shape[i] = b & 0x80 ? (b & 0x7f) : b % 8; /* mostly small, sometimes up to 127 */
    n *= shape[i] ? shape[i] : 1;
    if (n > MAX_NUMEL) return -1;
  }
  return n;
}

/* Values that exercise ties, signs, NaN and integers (for index ops). */
static sl_tensor *make(cursor *c, int nd, const int64_t *shape) {
  sl_tensor *t = sl_tensor_empty(nd, shape);
  if (!t) return NULL;
  uint8_t seed = next(c);
  for (int64_t i = 0; i < t->numel; i++) {
    uint8_t v = (uint8_t)(seed + i * 37);
    t->data[i] = (v % 17 == 0) ? NAN : (float)((int)(v % 11) - 3);
  }
  return t;
}

static void expect_message(void) {
  const char *m = sl_last_error();
  if (!m || !*m) {
    fprintf(stderr, "fuzz_shapes: a failure left no message\n");
    abort();
  }
}

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_shapes: %s\n", what);
    abort();
  }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

/* Flat index of position idx (in shape of y, nd dims) into t broadcast to it. */
static int64_t bcast_offset(const sl_tensor *t, int nd, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) {
    int64_t s = t->shape[i], k = idx[nd - t->ndim + i];
    off = off * s + (s == 1 ? 0 : k);
  }
  return off;
}

static void unravel(int64_t flat, int nd, const int64_t *shape, int64_t *idx) {
  for (int i = nd - 1; i >= 0; i--) {
    idx[i] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
}

static void fuzz_binary(cursor *c, sl_tensor *a, sl_tensor *b) {
  sl_binary_op op = (sl_binary_op)(next(c) % SL_BINARY_COUNT);
  sl_tensor *y = sl_binary_new(op, a, b);
  if (!y) {
    expect_message();
    return;
  }
  if (op == SL_ADD || op == SL_MUL || op == SL_MAXIMUM) { /* exact ops: a naive loop gives the same bits */
    int64_t idx[SL_MAX_DIMS];
    for (int64_t i = 0; i < y->numel; i++) {
      unravel(i, y->ndim, y->shape, idx);
      float u = a->data[bcast_offset(a, y->ndim, idx)], v = b->data[bcast_offset(b, y->ndim, idx)];
      float r = op == SL_ADD ? u + v : op == SL_MUL ? u * v : (u != u ? u : v != v ? v : u > v ? u : v);
      check(same_bits(y->data[i], r), "binary op differs from the naive broadcast loop");
    }
  }
  /* the in-place form: only when the result keeps a's shape */
  if (sl_tensor_same_shape(y, a)) {
    sl_tensor *a2 = sl_tensor_clone(a);
    if (a2) {
      if (sl_binary(op, a2, a2, b) == SL_OK)
        for (int64_t i = 0; i < y->numel; i++) check(same_bits(a2->data[i], y->data[i]), "in-place != out-of-place");
      sl_tensor_release(a2);
    }
  }
  sl_tensor_release(y);
  /* a wrong-sized output must fail, not write past its end */
  int64_t one = 1;
  sl_tensor *small = sl_tensor_empty(1, &one);
  if (small) {
    if (sl_binary(op, small, a, b) != SL_OK) expect_message();
    sl_tensor_release(small);
  }
  float s = (float)((int)next(c) - 128);
  y = sl_binary_scalar_new(op, a, s, next(c) & 1);
  if (!y) expect_message();
  sl_tensor_release(y);
}

static void fuzz_where(cursor *c, sl_tensor *a, sl_tensor *b) {
  sl_tensor *cond = sl_binary_new(SL_GT, a, b);
  if (!cond) {
    expect_message();
    return;
  }
  sl_tensor *y = next(c) & 1 ? sl_where_new(cond, a, b) : sl_where_new(a, cond, b);
  if (!y) expect_message();
  sl_tensor_release(y);
  sl_tensor_release(cond);
}

static void fuzz_reduce(cursor *c, sl_tensor *a) {
  sl_reduce_op op = (sl_reduce_op)(next(c) % SL_REDUCE_COUNT);
  int dim = (int)(next(c) % 10) - 1; /* some out of range */
  bool keepdim = next(c) & 1;
  sl_reduce_opts o = {true, (double)((int)(next(c) % 5) - 1)};
  int nd;
  int64_t shape[SL_MAX_DIMS];
  if (sl_reduce_dim_shape("fuzz", a, dim, keepdim, &nd, shape) != SL_OK) {
    expect_message();
    return;
  }
  sl_tensor *y = sl_tensor_empty(nd, shape), *idx = sl_tensor_empty(nd, shape);
  if (y && idx) {
    if (sl_reduce(op, y, idx, a, dim, &o) != SL_OK) expect_message();
    else if (op == SL_RSUM) { /* sum of each lane, in double, against a naive loop (1e-6 relative) */
      int64_t n = a->shape[dim], inner = 1;
      for (int i = dim + 1; i < a->ndim; i++) inner *= a->shape[i];
      for (int64_t r = 0; r < y->numel; r++) {
        int64_t o0 = r / inner, j = r % inner;
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += (double)a->data[(o0 * n + k) * inner + j];
        float got = y->data[r];
        check(got != got ? s != s : fabs((double)got - s) <= 1e-6 * fabs(s) + 1e-6, "sum differs from a naive loop");
      }
    }
  } else {
    expect_message();
  }
  sl_tensor_release(y);
  sl_tensor_release(idx);
  double v;
  int64_t at;
  if (sl_reduce_all(op, a, &o, &v, &at) != SL_OK) expect_message();
  sl_tensor *s = sl_tensor_empty(a->ndim, a->shape);
  if (s) {
    if (sl_softmax(s, a, dim, next(c) & 1) != SL_OK) expect_message();
    sl_tensor_release(s);
  }
}

static void fuzz_permute(cursor *c, sl_tensor *a) {
  int perm[SL_MAX_DIMS];
  uint8_t mode = next(c);
  for (int i = 0; i < a->ndim; i++) perm[i] = i;
  if (mode & 1) { /* a valid permutation: Fisher-Yates from the bytes */
    for (int i = a->ndim - 1; i > 0; i--) {
      int j = next(c) % (i + 1), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
  } else {
    for (int i = 0; i < a->ndim; i++) perm[i] = (int)(next(c) % 10) - 1;
  }
  sl_tensor *y = sl_tensor_permute(a, perm);
  if (!y) {
    expect_message();
    return;
  }
  int64_t idx[SL_MAX_DIMS], src[SL_MAX_DIMS];
  for (int64_t i = 0; i < y->numel; i++) {
    unravel(i, y->ndim, y->shape, idx);
    for (int k = 0; k < a->ndim; k++) src[perm[k]] = idx[k];
    int64_t off = 0;
    for (int k = 0; k < a->ndim; k++) off = off * a->shape[k] + src[k];
    check(same_bits(y->data[i], a->data[off]), "permute differs from a naive loop");
  }
  sl_tensor_release(y);
  y = sl_tensor_transpose(a, (int)(next(c) % 9), (int)(next(c) % 9));
  if (!y) expect_message();
  sl_tensor_release(y);
}

static void fuzz_views(cursor *c, sl_tensor *a, sl_tensor *b) {
  int d = (int)(next(c) % 10) - 1;
  sl_tensor *r;
  if ((r = sl_tensor_squeeze(a, d)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_tensor_unsqueeze(a, d)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_tensor_flatten(a, d, (int)(next(c) % 9))) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_tensor_select_dim(a, d, (int64_t)next(c) - 2)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_tensor_narrow(a, d, (int64_t)next(c) % 9 - 1, (int64_t)next(c) % 9 - 1)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_tensor_expand(a, b->ndim, b->shape)) == NULL) expect_message();
  else check(r->numel == b->numel, "expand: wrong element count");
  sl_tensor_release(r);
  int64_t shape[SL_MAX_DIMS]; /* reshape to b's shape with some dims replaced by -1 */
  uint8_t m = next(c);
  for (int i = 0; i < b->ndim; i++) shape[i] = (m >> i) & 1 ? -1 : b->shape[i];
  if ((r = sl_tensor_reshape(a, b->ndim, shape)) == NULL) expect_message();
  else check(r->numel == a->numel, "reshape: wrong element count");
  sl_tensor_release(r);
}

static void fuzz_cat(cursor *c, sl_tensor *a, sl_tensor *b) {
  int dim = (int)(next(c) % 10) - 1;
  sl_tensor *ts[3] = {a, b, a};
  int n = 1 + next(c) % 3;
  sl_tensor *y = sl_tensor_cat(ts, n, dim);
  if (!y) expect_message();
  else { /* each input's block sits in each outer row, in order */
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++) outer *= y->shape[i];
    for (int i = dim + 1; i < y->ndim; i++) inner *= y->shape[i];
    const float *o = y->data;
    for (int64_t r = 0; r < outer; r++)
      for (int k = 0; k < n; k++) {
        if (ts[k]->ndim != y->ndim) continue; /* a legacy empty tensor in a higher-dim cat */
        int64_t blk = ts[k]->shape[dim] * inner;
        for (int64_t e = 0; e < blk; e++) check(same_bits(o[e], ts[k]->data[r * blk + e]), "cat differs");
        o += blk;
      }
    check(o == y->data + y->numel, "cat: blocks do not fill the result");
  }
  sl_tensor_release(y);
  y = sl_tensor_stack(ts, n, dim);
  if (!y) expect_message();
  sl_tensor_release(y);
}

static void fuzz_index(cursor *c, sl_tensor *a, sl_tensor *b) {
  int dim = (int)(next(c) % 10) - 1;
  /* an index tensor with b's shape and values around the valid range */
  sl_tensor *idx = sl_tensor_empty(b->ndim, b->shape);
  if (!idx) return;
  uint8_t s = next(c), frac = next(c);
  for (int64_t i = 0; i < idx->numel; i++) {
    int v = (int)((uint8_t)(s + i * 13) % 10) - 1;
    idx->data[i] = (float)v + ((frac & 7) == 0 && i == 0 ? 0.5f : 0.0f);
  }
  if ((frac & 15) == 1 && idx->numel) idx->data[0] = NAN;
  int base = next(c) & 1;
  sl_tensor *r;
  sl_tensor *flat = sl_tensor_reshape(idx, 1, (int64_t[]){idx->numel});
  if (flat) {
    if ((r = sl_index_select(a, dim, flat, base)) == NULL) expect_message();
    sl_tensor_release(r);
    if ((r = sl_one_hot(flat, (int64_t)(next(c) % 12) - 1, base)) == NULL) expect_message();
    sl_tensor_release(r);
    sl_tensor_release(flat);
  }
  if ((r = sl_gather(a, dim, idx, base)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_scatter_add(a, dim, idx, b, base)) == NULL) expect_message();
  sl_tensor_release(r);
  if ((r = sl_masked_fill(a, b, 7.0f)) == NULL) expect_message();
  sl_tensor_release(r);
  sl_tensor *a2 = sl_tensor_clone(a);
  if (a2) {
    if (sl_masked_fill_(a2, b, 7.0f) != SL_OK) expect_message();
    if (sl_scatter_add_(a2, dim, idx, b, base) != SL_OK) expect_message();
    sl_tensor_release(a2);
  }
  if ((r = sl_matmul_nd(a, b)) == NULL) expect_message();
  sl_tensor_release(r);
  sl_tensor_release(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  cursor c = {data, size, 0};
  for (int rec = 0; rec < 16 && c.i < c.n; rec++) {
    uint8_t op = next(&c);
    int na, nb;
    int64_t sa[SL_MAX_DIMS], sb[SL_MAX_DIMS];
    if (read_shape(&c, &na, sa) < 0 || read_shape(&c, &nb, sb) < 0) continue;
    sl_tensor *a = make(&c, na, sa), *b = make(&c, nb, sb);
    if (a && b) {
      switch (op % 8) {
      case 0: fuzz_binary(&c, a, b); break;
      case 1: fuzz_where(&c, a, b); break;
      case 2: fuzz_reduce(&c, a); break;
      case 3: fuzz_permute(&c, a); break;
      case 4: fuzz_views(&c, a, b); break;
      case 5: fuzz_cat(&c, a, b); break;
      case 6: fuzz_index(&c, a, b); break;
      default: { /* unary ops on a and clamp with bounds from the bytes (NaN too) */
        sl_tensor *y = sl_unary_new((sl_unary_op)(next(&c) % SL_UNARY_COUNT), a);
        if (!y) expect_message();
        else {
          float lo = next(&c) == 0 ? NAN : -1.0f;
          if (sl_clamp(y, a, true, lo, next(&c) & 1, 2.0f) != SL_OK) expect_message();
        }
        sl_tensor_release(y);
      }
      }
    }
    sl_tensor_release(a);
    sl_tensor_release(b);
  }
  return 0;
}
