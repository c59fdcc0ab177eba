/* permute and cat against naive element-by-element references on every
 * path of their kernels: fresh results and results written into `out`,
 * small and above each streaming-store threshold (a transpose from 1 MB; a
 * cat from 1 MB when fresh, from 16 MB into `out`), rows whose length is or is not a multiple of 4,
 * zero-size dims, sources and outputs that are views at an odd offset into
 * a bigger storage (unaligned loads, an output not 16-byte aligned), at 1
 * and 2 threads. Every element is compared: the kernels only move data, so
 * each result must hold exactly the source's bits. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "selut.h"

/* A distinct float per index, including -0 and a NaN payload, so a misplaced
 * element or a changed bit is seen. */
static float value(int64_t i, unsigned salt) {
  uint32_t u = (uint32_t)(i * 2654435761u) ^ (salt * 0x9e3779b9u);
  if (i % 97 == 5) return -0.0f;
  if (i % 101 == 7) u = 0x7fc00000u | (u & 0x3fffffu); /* a quiet NaN with a payload */
  else u = (u & 0x807fffffu) | 0x3f800000u;            /* sign and mantissa vary, exponent 0 */
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* A contiguous tensor of `shape` that is a view `offset` floats into a
 * bigger storage (offset 0: a tensor of its own), filled with value(). */
static sl_tensor *source(int ndim, const int64_t *shape, int64_t offset, unsigned salt) {
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) numel *= shape[d];
  sl_tensor *flat = sl_tensor_empty(1, (const int64_t[]){numel + offset});
  cr_assert(flat);
  for (int64_t i = 0; i < numel + offset; i++) flat->data[i] = value(i - offset, salt);
  sl_tensor *v = sl_tensor_narrow(flat, 0, offset, numel);
  cr_assert(v);
  sl_tensor *t = sl_tensor_reshape(v, ndim, shape);
  cr_assert(t);
  sl_tensor_release(v), sl_tensor_release(flat);
  return t;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* y must be t permuted by perm, element for element. */
static void check_permute(const sl_tensor *y, const sl_tensor *t, const int *perm, const char *what) {
  int nd = t->ndim;
  int64_t in_stride[SL_MAX_DIMS], idx[SL_MAX_DIMS] = {0};
  in_stride[nd - 1] = 1;
  for (int d = nd - 2; d >= 0; d--) in_stride[d] = in_stride[d + 1] * t->shape[d + 1];
  cr_assert_eq(y->numel, t->numel, "%s", what);
  for (int d = 0; d < nd; d++) cr_assert_eq(y->shape[d], t->shape[perm[d]], "%s: dim %d", what, d);
  for (int64_t i = 0; i < y->numel; i++) {
    int64_t s = 0;
    for (int d = 0; d < nd; d++) s += idx[d] * in_stride[perm[d]];
    cr_assert(same_bits(y->data[i], t->data[s]), "%s: element %lld", what, (long long)i);
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
}

Test(shape_paths, permutes_match_a_naive_gather_fresh_and_into_at_every_size) {
  struct {
    int nd;
    int64_t shape[4];
    int perm[4];
  } cases[] = {
      {2, {1000, 1000}, {1, 0}},       /* the bench's [1000 x 1000] transpose: 4 MB, streamed */
      {2, {1000, 300}, {1, 0}},        /* 1.2 MB: streamed; rows of 1000 */
      {2, {400, 600}, {1, 0}},         /* 0.9 MB: ordinary stores */
      {2, {515, 1029}, {1, 0}},        /* 2 MB, rows of 515: not a multiple of 4, plain stores */
      {2, {33, 31}, {1, 0}},           /* below every threshold, partial tiles only */
      {3, {3, 517, 700}, {0, 2, 1}},   /* a batch of transposes over 1 MB */
      {3, {70, 9, 530}, {2, 1, 0}},    /* the contiguous dim moves to the front */
      {3, {4, 0, 7}, {2, 0, 1}},       /* zero-size dims */
      {2, {0, 300}, {1, 0}},
      {4, {2, 3, 5, 7}, {3, 1, 0, 2}}, /* odd sizes, four dims */
      {3, {5, 1, 17}, {1, 2, 0}},      /* a size-1 dim */
      {2, {1028, 4100}, {1, 0}},       /* 16.9 MB */
      {3, {1000, 3, 264}, {2, 1, 0}},  /* 3.2 MB, rows of 1000 floats 3000 apart (not one run) */
      {2, {1024, 1024}, {1, 0}},       /* 4 MB, source rows 4 KB apart: the narrow tiles, streamed */
      {2, {200, 384}, {1, 0}},         /* source rows 1.5 KB apart: narrow tiles, ordinary stores */
  };
  /* source offsets; out is offset 0, 1, 4 and 8 floats into its storage:
   * 64-, 4-, 16- and 32-byte aligned (the AVX tiles stream to the first and
   * the last, where row 0 starts half way into a line; a 16-byte aligned
   * destination streams through the SSE tiles) */
  int64_t offsets[] = {0, 3, 4, 8}, out_offsets[] = {0, 1, 4, 8};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (size_t o = 0; o < 4; o++) {
      int nd = cases[c].nd;
      const int *perm = cases[c].perm;
      sl_tensor *t = source(nd, cases[c].shape, offsets[o], (unsigned)c);
      int64_t yshape[SL_MAX_DIMS];
      for (int d = 0; d < nd; d++) yshape[d] = t->shape[perm[d]];
      sl_tensor *out = source(nd, yshape, out_offsets[o], 99);
      for (int th = 1; th <= 2; th++) {
        sl_set_num_threads(th);
        char what[96];
        snprintf(what, sizeof what, "case %zu offset %lld threads %d fresh", c, (long long)offsets[o], th);
        sl_tensor *y = sl_tensor_permute(t, perm);
        cr_assert(y, "%s", what);
        check_permute(y, t, perm, what);
        sl_tensor_release(y);
        snprintf(what, sizeof what, "case %zu offset %lld threads %d into", c, (long long)offsets[o], th);
        cr_assert_eq(sl_tensor_permute_into(out, t, perm), SL_OK, "%s", what);
        check_permute(out, t, perm, what);
      }
      sl_set_num_threads(1);
      sl_tensor_release(out), sl_tensor_release(t);
    }
}

/* y must be the concatenation of ts along dim, element for element. */
static void check_cat(const sl_tensor *y, sl_tensor *const *ts, int n, int dim, const char *what) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; d++) outer *= y->shape[d];
  for (int d = dim + 1; d < y->ndim; d++) inner *= y->shape[d];
  const float *p = y->data;
  for (int64_t i = 0; i < outer; i++)
    for (int k = 0; k < n; k++) {
      if (ts[k]->ndim == 1 && ts[k]->shape[0] == 0 && y->ndim != 1) continue; /* a legacy empty tensor */
      int64_t block = ts[k]->shape[dim] * inner;
      for (int64_t e = 0; e < block; e++, p++)
        cr_assert(same_bits(*p, ts[k]->data[i * block + e]), "%s: row %lld tensor %d element %lld", what, (long long)i,
                  k + 1, (long long)e);
    }
  cr_assert_eq(p - y->data, y->numel, "%s", what);
}

Test(shape_paths, cats_match_a_naive_concatenation_fresh_and_into_at_every_size) {
  struct {
    int n, nd, dim;
    int64_t shapes[4][3];
  } cases[] = {
      {2, 2, 1, {{1000, 500}, {1000, 500}}},                 /* the bench's cat: 4 MB, streamed when fresh */
      {3, 2, 1, {{2001, 7}, {2001, 0}, {2001, 130}}},        /* uneven and empty blocks, 1.1 MB */
      {3, 3, 1, {{3, 333, 301}, {3, 1, 301}, {3, 50, 301}}}, /* blocks at odd offsets: streamed heads and tails */
      {2, 2, 0, {{1500, 301}, {1, 301}}},                    /* along the first dim */
      {2, 2, 1, {{5, 3}, {5, 4}}},                           /* small */
      {2, 2, 1, {{0, 3}, {0, 4}}},                           /* zero rows */
      {4, 2, 1, {{2100, 1000}, {2100, 1}, {2100, 0}, {2100, 1001}}}, /* 16.8 MB: streamed into `out` too */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int64_t off = 0; off <= 1; off++) {
      int n = cases[c].n, nd = cases[c].nd, dim = cases[c].dim;
      sl_tensor *ts[4];
      int64_t yshape[SL_MAX_DIMS];
      for (int k = 0; k < n; k++) ts[k] = source(nd, cases[c].shapes[k], off * (k + 1), (unsigned)(c * 8 + k));
      memcpy(yshape, cases[c].shapes[0], sizeof(int64_t) * (size_t)nd);
      yshape[dim] = 0;
      for (int k = 0; k < n; k++) yshape[dim] += cases[c].shapes[k][dim];
      sl_tensor *out = source(nd, yshape, off, 77); /* offset 1: not 16-byte aligned */
      for (int th = 1; th <= 2; th++) {
        sl_set_num_threads(th);
        char what[96];
        snprintf(what, sizeof what, "case %zu offset %lld threads %d fresh", c, (long long)off, th);
        sl_tensor *y = sl_tensor_cat(ts, n, dim);
        cr_assert(y, "%s", what);
        check_cat(y, ts, n, dim, what);
        sl_tensor_release(y);
        snprintf(what, sizeof what, "case %zu offset %lld threads %d into", c, (long long)off, th);
        cr_assert_eq(sl_tensor_cat_into(out, ts, n, dim), SL_OK, "%s", what);
        check_cat(out, ts, n, dim, what);
      }
      sl_set_num_threads(1);
      sl_tensor_release(out);
      for (int k = 0; k < n; k++) sl_tensor_release(ts[k]);
    }
}

/* PyTorch's legacy empty 1-D tensor joins a big cat without moving its blocks. */
Test(shape_paths, a_legacy_empty_tensor_in_a_big_cat_is_skipped) {
  sl_tensor *a = source(2, (const int64_t[]){600, 500}, 1, 1), *b = source(2, (const int64_t[]){600, 501}, 0, 2);
  sl_tensor *e = sl_tensor_empty(1, (const int64_t[]){0});
  sl_tensor *ts[4] = {e, a, e, b};
  for (int th = 1; th <= 2; th++) {
    sl_set_num_threads(th);
    sl_tensor *y = sl_tensor_cat(ts, 4, 1);
    cr_assert(y);
    cr_assert(y->shape[0] == 600 && y->shape[1] == 1001);
    check_cat(y, ts, 4, 1, "legacy empty");
    sl_tensor_release(y);
  }
  sl_set_num_threads(1);
  sl_tensor_release(a), sl_tensor_release(b), sl_tensor_release(e);
}

/* expand goes through the same strided copy: a size-1 dim before the last
 * one becomes a transpose with a zero source stride, streamed from 1 MB on. */
Test(shape_paths, expands_match_a_naive_broadcast_above_and_below_the_threshold) {
  struct {
    int nd;
    int64_t from[3], to[3];
  } cases[] = {
      {2, {1000, 1}, {1000, 1000}},        /* 4 MB: the transpose path, streamed */
      {3, {3, 517, 1}, {3, 517, 700}},     /* 4.3 MB, rows of 700 */
      {2, {1, 700}, {2000, 700}},          /* a repeated first dim: whole-row copies */
      {3, {7, 1, 5}, {7, 9, 5}},           /* small */
      {2, {515, 1}, {515, 1029}},          /* 2 MB, rows of 1029: ordinary stores */
      {2, {0, 1}, {0, 5}},                 /* zero-size */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int64_t off = 0; off <= 1; off++) {
      int nd = cases[c].nd;
      sl_tensor *t = source(nd, cases[c].from, off * 3, (unsigned)c);
      for (int th = 1; th <= 2; th++) {
        sl_set_num_threads(th);
        sl_tensor *y = sl_tensor_expand(t, nd, cases[c].to);
        cr_assert(y, "case %zu", c);
        int64_t idx[3] = {0}, in_stride[3];
        in_stride[nd - 1] = 1;
        for (int d = nd - 2; d >= 0; d--) in_stride[d] = in_stride[d + 1] * t->shape[d + 1];
        for (int64_t i = 0; i < y->numel; i++) {
          int64_t s = 0;
          for (int d = 0; d < nd; d++) s += (t->shape[d] == 1 ? 0 : idx[d]) * in_stride[d];
          cr_assert(same_bits(y->data[i], t->data[s]), "case %zu offset %lld threads %d element %lld", c,
                    (long long)off * 3, th, (long long)i);
          for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < y->shape[d]) break;
            idx[d] = 0;
          }
        }
        sl_tensor_release(y);
      }
      sl_set_num_threads(1);
      sl_tensor_release(t);
    }
}
