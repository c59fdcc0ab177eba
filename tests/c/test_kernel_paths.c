/* The fast paths of the tensor kernels give the bits of their plain
 * counterparts: the vectorized contiguous max/min/argmax against the column
 * scan, wide column-block sums against a naive loop in row order, the tiled
 * (and threaded) transpose against a naive gather, and large elementwise
 * outputs (split over the pool) against the same op on single rows, and
 * the one-pass tanh and sigmoid against the scalar compositions they
 * replace (bench/unary_bits_check runs the same check over every float). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selut.h"
#include "tensor/stream.h"
#include "tensor/vmath.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

/* Rows with ties, +0/-0, infinities and (in some rows) NaN. */
static void fill_tricky(float *x, int64_t rows, int64_t cols, unsigned seed) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      seed = seed * 1103515245u + 12345u;
      int v = (int)((seed >> 16) % 9) - 4;
      float f = (float)v;
      if (v == 0) f = (seed >> 8) & 1 ? 0.0f : -0.0f;
      if (v == 4 && (seed >> 9) % 5 == 0) f = INFINITY;
      if (v == -4 && (seed >> 9) % 5 == 0) f = -INFINITY;
      x[r * cols + c] = f;
    }
  for (int64_t r = 0; r < rows; r += 7) x[r * cols + (r * 13) % cols] = NAN; /* first NaN somewhere */
  for (int64_t r = 0; r < rows; r += 11) x[r * cols + cols - 1] = NAN;      /* a NaN in the tail */
}

Test(kernel_paths, contiguous_max_min_match_the_column_scan) {
  int64_t lens[] = {1, 3, 15, 16, 17, 33, 63, 64, 65, 127, 128, 129, 200, 1000, 1003, 4099};
  for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
    int64_t rows = 40, cols = lens[li];
    sl_tensor *x = sl_tensor_empty(2, SHAPE(rows, cols));
    fill_tricky(x->data, rows, cols, (unsigned)cols);
    for (int64_t r = 1; r < rows; r += 4) /* rows below zero (for max) and above it (for min): a zero */
      for (int64_t c = 0; c < cols; c++) {   /* read past the end of a row would win there */
        x->data[r * cols + c] = -fabsf(x->data[r * cols + c]) - 1.0f;
        x->data[(r + 1) * cols + c] = fabsf(x->data[(r + 1) * cols + c]) + 1.0f;
      }
    int perm[2] = {1, 0};
    sl_tensor *xt = sl_tensor_permute(x, perm); /* [cols x rows]: dim 0 reduces by the column scan */
    for (int op = 0; op < 4; op++) {
      sl_reduce_op ops[4] = {SL_RMAX, SL_RMIN, SL_RARGMAX, SL_RARGMIN};
      sl_tensor *y1 = sl_tensor_empty(1, SHAPE(rows)), *i1 = sl_tensor_empty(1, SHAPE(rows));
      sl_tensor *y2 = sl_tensor_empty(1, SHAPE(rows)), *i2 = sl_tensor_empty(1, SHAPE(rows));
      cr_assert_eq(sl_reduce(ops[op], y1, i1, x, 1, NULL), SL_OK);
      cr_assert_eq(sl_reduce(ops[op], y2, i2, xt, 0, NULL), SL_OK);
      cr_assert(same_bits(y1->data, y2->data, rows), "op %d, %lld columns: values differ", op, (long long)cols);
      cr_assert(same_bits(i1->data, i2->data, rows), "op %d, %lld columns: indices differ", op, (long long)cols);
      sl_tensor_release(y1), sl_tensor_release(i1), sl_tensor_release(y2), sl_tensor_release(i2);
    }
    sl_tensor_release(x), sl_tensor_release(xt);
  }
}

Test(kernel_paths, first_dim_sums_match_a_row_order_loop_at_1_and_2_threads) {
  int64_t shapes[][2] = {{5, 3}, {9, 130}, {200, 1000}, {301, 2500}, {70000, 3}};
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    int64_t rows = shapes[k][0], cols = shapes[k][1];
    sl_tensor *x = sl_tensor_empty(2, SHAPE(rows, cols));
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)sin((double)i * 0.37) * 1e3f;
    float *want = malloc((size_t)cols * sizeof *want);
    for (int64_t c = 0; c < cols; c++) {
      double s = 0;
      for (int64_t r = 0; r < rows; r++) s += (double)x->data[r * cols + c];
      want[c] = (float)s;
    }
    for (int t = 1; t <= 2; t++) {
      sl_set_num_threads(t);
      sl_tensor *y = sl_tensor_empty(1, SHAPE(cols));
      cr_assert_eq(sl_reduce(SL_RSUM, y, NULL, x, 0, NULL), SL_OK);
      cr_assert(same_bits(y->data, want, cols), "[%lld x %lld] at %d threads", (long long)rows, (long long)cols, t);
      sl_tensor_release(y);
    }
    sl_set_num_threads(1);
    free(want);
    sl_tensor_release(x);
  }
}

Test(kernel_paths, tiled_permutes_match_a_naive_gather_at_1_and_2_threads) {
  /* {1, 1028, 4100}: over 4M floats with rows of a multiple of 4, the path
   * with streaming stores (and partial tiles at the edge, stored plainly) */
  int64_t shapes[][3] = {{1, 1000, 300}, {3, 37, 45}, {2, 16, 16}, {5, 1, 17}, {64, 70, 3}, {1, 1028, 4100}};
  int perms[][3] = {{0, 2, 1}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}};
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
    for (size_t q = 0; q < sizeof perms / sizeof *perms; q++) {
      const int64_t *s = shapes[k];
      const int *p = perms[q];
      sl_tensor *x = sl_tensor_arange(0, (double)(s[0] * s[1] * s[2]), 1);
      sl_tensor *x3 = sl_tensor_reshape(x, 3, s);
      for (int t = 1; t <= 2; t++) {
        sl_set_num_threads(t);
        sl_tensor *y = sl_tensor_permute(x3, p);
        cr_assert(y);
        int64_t idx[3];
        for (idx[0] = 0; idx[0] < y->shape[0]; idx[0]++)
          for (idx[1] = 0; idx[1] < y->shape[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < y->shape[2]; idx[2]++) {
              int64_t src[3];
              for (int d = 0; d < 3; d++) src[p[d]] = idx[d];
              float want = (float)((src[0] * s[1] + src[1]) * s[2] + src[2]);
              float got = y->data[(idx[0] * y->shape[1] + idx[1]) * y->shape[2] + idx[2]];
              cr_assert_eq(got, want, "shape %zu perm %zu threads %d", k, q, t);
            }
        sl_tensor_release(y);
      }
      sl_set_num_threads(1);
      sl_tensor_release(x3), sl_tensor_release(x);
    }
}

/* Large outputs (split over the pool) against the same op one row at a time. */
Test(kernel_paths, large_outputs_have_the_bits_of_single_rows) {
  int64_t rows = 4100, cols = 1024;
  sl_tensor *a = sl_tensor_empty(2, SHAPE(rows, cols)), *b = sl_tensor_empty(1, SHAPE(cols));
  for (int64_t i = 0; i < a->numel; i++) a->data[i] = (float)cos((double)i * 0.011) * 3.0f;
  for (int64_t i = 0; i < cols; i++) b->data[i] = (float)i * 0.25f - 7.0f;
  sl_binary_op bops[] = {SL_ADD, SL_DIV, SL_MAXIMUM, SL_GT};
  sl_unary_op uops[] = {SL_EXP, SL_SIGMOID, SL_TANH, SL_ABS, SL_SQRT};
  for (int t = 1; t <= 2; t++) {
    sl_set_num_threads(t);
    for (size_t k = 0; k < sizeof bops / sizeof *bops; k++) {
      sl_tensor *y = sl_binary_new(bops[k], a, b);
      cr_assert(y);
      for (int64_t r = 0; r < rows; r += 409) {
        sl_tensor *row = sl_tensor_select(a, r), *yr = sl_binary_new(bops[k], row, b);
        cr_assert(same_bits(y->data + r * cols, yr->data, cols), "binary %d row %lld", (int)bops[k], (long long)r);
        sl_tensor_release(row), sl_tensor_release(yr);
      }
      sl_tensor_release(y);
    }
    for (size_t k = 0; k < sizeof uops / sizeof *uops; k++) {
      sl_tensor *y = sl_unary_new(uops[k], a);
      cr_assert(y);
      for (int64_t r = 0; r < rows; r += 409) {
        sl_tensor *row = sl_tensor_select(a, r), *yr = sl_unary_new(uops[k], row);
        cr_assert(same_bits(y->data + r * cols, yr->data, cols), "unary %d row %lld", (int)uops[k], (long long)r);
        sl_tensor_release(row), sl_tensor_release(yr);
      }
      sl_tensor_release(y);
    }
  }
  sl_set_num_threads(1);
  sl_tensor_release(a), sl_tensor_release(b);
}

/* Outputs of at least SL_VM_STREAM_MIN floats of the simple ops are written
 * with streaming stores (stream.h): against a scalar loop, bit for bit (NaN
 * on either side of maximum/minimum), with the output and inputs at offsets
 * that are not 64-byte aligned, rows and a length that are not multiples of
 * 16, in place, at 1 and 2 threads; the floats around the output stay
 * untouched. */
static float ref_binary(sl_binary_op op, float a, float b) {
  switch (op) {
  case SL_ADD: return a + b;
  case SL_SUB: return a - b;
  case SL_MUL: return a * b;
  case SL_DIV: return a / b;
  case SL_MAXIMUM: return a != a ? a : b != b ? b : a > b ? a : b;
  case SL_MINIMUM: return a != a ? a : b != b ? b : a < b ? a : b;
  case SL_LT: return a < b ? 1.0f : 0.0f;
  default: return 0.0f;
  }
}

static float ref_unary(sl_unary_op op, float x) {
  switch (op) {
  case SL_ABS: return fabsf(x);
  case SL_NEG: return -x;
  case SL_SQRT: return sqrtf(x);
  default: return 0.0f;
  }
}

static void expect_bits(const float *got, const float *want, int64_t n, const char *what, int t) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(got + i, want + i, sizeof *got) != 0 && !(got[i] != got[i] && want[i] != want[i]))
      cr_assert_fail("%s at %d threads: element %lld is %a, expected %a", what, t, (long long)i, (double)got[i],
                     (double)want[i]);
}

Test(kernel_paths, streamed_outputs_match_a_scalar_loop_at_unaligned_offsets) {
  int64_t rows = 4099, cols = 1025, n = rows * cols; /* 4.2e6 floats: above the threshold, not a multiple of 16 */
  cr_assert((size_t)n >= SL_VM_STREAM_MIN);
  float *mem = malloc((size_t)(3 * n + 64) * sizeof *mem), *want = malloc((size_t)n * sizeof *want);
  float *ya = mem + 3, *xa = mem + n + 8 + 1, *xb = mem + 2 * n + 16 + 5; /* 12, 36 and 84 bytes past 64-byte lines */
  float row[1025], col[4099];
  for (int64_t i = 0; i < n; i++) {
    xa[i] = i % 1013 == 5 ? NAN : (float)sin((double)i * 0.37) * 5.5f;
    xb[i] = i % 1009 == 0 ? NAN : (float)cos((double)i * 0.21) * 4.25f;
  }
  for (int64_t j = 0; j < cols; j++) row[j] = (float)j * 0.125f - 60.0f;
  for (int64_t i = 0; i < rows; i++) col[i] = (float)(i % 17) - 8.5f;
  sl_tensor *y = sl_tensor_wrap(2, SHAPE(rows, cols), ya, NULL, NULL);
  sl_tensor *a = sl_tensor_wrap(2, SHAPE(rows, cols), xa, NULL, NULL);
  sl_tensor *b = sl_tensor_wrap(2, SHAPE(rows, cols), xb, NULL, NULL);
  sl_tensor *r = sl_tensor_wrap(1, SHAPE(cols), row, NULL, NULL), *c = sl_tensor_wrap(2, SHAPE(rows, 1), col, NULL, NULL);
  cr_assert(y && a && b && r && c);
  sl_binary_op ops[] = {SL_ADD, SL_SUB, SL_MUL, SL_DIV, SL_MAXIMUM, SL_MINIMUM, SL_LT}; /* lt: not streamed */
  sl_unary_op uops[] = {SL_ABS, SL_NEG, SL_SQRT};                                       /* sqrt: not streamed */
  for (int t = 1; t <= 2; t++) {
    sl_set_num_threads(t);
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
      sl_binary_op op = ops[k];
      for (int form = 0; form < 4; form++) { /* same shape, row, column, scalar on the left */
        ya[-1] = ya[n] = 7.0f;
        int st = form == 0   ? sl_binary(op, y, a, b)
                 : form == 1 ? sl_binary(op, y, a, r)
                 : form == 2 ? sl_binary(op, y, a, c)
                             : sl_binary_scalar(op, y, b, 1.5f, true);
        cr_assert_eq(st, SL_OK);
        for (int64_t i = 0; i < n; i++)
          want[i] = form == 0   ? ref_binary(op, xa[i], xb[i])
                    : form == 1 ? ref_binary(op, xa[i], row[i % cols])
                    : form == 2 ? ref_binary(op, xa[i], col[i / cols])
                                : ref_binary(op, 1.5f, xb[i]);
        char what[64];
        snprintf(what, sizeof what, "%s form %d", sl_binary_name(op), form);
        expect_bits(ya, want, n, what, t);
        cr_assert(ya[-1] == 7.0f && ya[n] == 7.0f, "%s wrote outside its output", what);
      }
    }
    for (size_t k = 0; k < sizeof uops / sizeof *uops; k++) {
      for (int64_t i = 0; i < n; i++) want[i] = ref_unary(uops[k], xa[i]);
      cr_assert_eq(sl_unary(uops[k], y, a), SL_OK);
      expect_bits(ya, want, n, sl_unary_name(uops[k]), t);
      cr_assert(ya[-1] == 7.0f && ya[n] == 7.0f);
    }
    /* in place: y is the input */
    memcpy(ya, xa, (size_t)n * sizeof *ya);
    for (int64_t i = 0; i < n; i++) want[i] = fabsf(xa[i]) + row[i % cols];
    cr_assert_eq(sl_unary(SL_ABS, y, y), SL_OK);
    cr_assert_eq(sl_binary(SL_ADD, y, y, r), SL_OK);
    expect_bits(ya, want, n, "abs then add_row in place", t);
    cr_assert(ya[-1] == 7.0f && ya[n] == 7.0f);
  }
  sl_set_num_threads(1);
  sl_tensor_release(y), sl_tensor_release(a), sl_tensor_release(b), sl_tensor_release(r), sl_tensor_release(c);
  free(mem), free(want);
}

/* A block of rows written as one flat run (sl_stream_binary_rows): every
 * layout of each operand (full rows, a repeated row, one value per row at a
 * row step of 1 or 3, a scalar) on either side, row lengths from 16 (every
 * vector crosses a row) to 1025, one row and several, the output 0-3 floats
 * past a 64-byte line: against a scalar loop, bit for bit, nothing written
 * around the output. Other layouts are refused, untouched. */
Test(kernel_paths, flat_row_runs_match_a_scalar_loop_for_every_operand_layout) {
  if (!sl_vm_has_avx512()) cr_skip_test("no AVX-512: the flat runs are not used");
  enum { MAXN = 1025, MAXR = 33 };
  static float mem[MAXN * MAXR + 32], want[MAXN * MAXR], xa[MAXN * MAXR], xb[MAXN * MAXR];
  for (int i = 0; i < MAXN * MAXR; i++) {
    xa[i] = i % 97 == 3 ? NAN : (float)sin(i * 0.37) * 5.5f;
    xb[i] = i % 89 == 1 ? NAN : (float)cos(i * 0.21) * 4.25f;
  }
  /* (step along a row, step between rows as a multiple of n or absolute) */
  const struct { int64_t s, o; int o_is_n; const char *name; } lay[] = {
      {1, 1, 1, "full"}, {1, 0, 0, "row"}, {0, 1, 0, "column"}, {0, 3, 0, "column step 3"}, {0, 0, 0, "scalar"}};
  const int64_t ns[] = {16, 17, 31, 33, 64, 100, 1025}, rowss[] = {1, 2, 7, 33};
  const sl_binary_op ops[] = {SL_ADD, SL_SUB, SL_MUL, SL_DIV, SL_MAXIMUM, SL_MINIMUM};
  for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
    for (size_t ir = 0; ir < sizeof rowss / sizeof *rowss; ir++)
      for (size_t la = 0; la < 5; la++)
        for (size_t lb = 0; lb < 5; lb++) {
          int64_t n = ns[in], rows = rowss[ir], total = n * rows;
          int64_t sa = lay[la].s, oa = lay[la].o_is_n ? n : lay[la].o, sb = lay[lb].s, ob = lay[lb].o_is_n ? n : lay[lb].o;
          sl_binary_op op = ops[(in + ir + la + lb) % 6];
          int off = (int)((in + la + 2 * lb) % 4);
          float *y = mem + 16 + off; /* mem is 64-byte aligned only by chance: off varies the phase anyway */
          for (int64_t f = 0; f < total; f++) {
            int64_t r = f / n, j = f % n;
            want[f] = ref_binary(op, xa[r * oa + j * sa], xb[r * ob + j * sb]);
          }
          y[-1] = y[total] = 7.0f;
          cr_assert(sl_stream_binary_rows(op, y, xa, sa, oa, xb, sb, ob, n, rows));
          sl_stream_fence();
          char what[96];
          snprintf(what, sizeof what, "%s n %lld rows %lld, %s op %s", sl_binary_name(op), (long long)n, (long long)rows,
                   lay[la].name, lay[lb].name);
          expect_bits(y, want, total, what, 1);
          cr_assert(y[-1] == 7.0f && y[total] == 7.0f, "%s wrote outside its output", what);
        }
  /* refused: rows shorter than a vector, a strided operand */
  mem[16] = 7.0f;
  cr_assert_not(sl_stream_binary_rows(SL_ADD, mem + 16, xa, 1, 15, xb, 1, 15, 15, 4));
  cr_assert_not(sl_stream_binary_rows(SL_ADD, mem + 16, xa, 2, 64, xb, 1, 32, 32, 4));
  cr_assert(mem[16] == 7.0f);
}

/* tanh = copysign(-t / (t + 2), x) with t = expm1(-2|x|) and sigmoid =
 * 1 / (1 + exp(-x)) through the scalar sl_vm_expm1f / sl_vm_expf, on a
 * spread of bit patterns (every sign and exponent, subnormals, +-0, +-inf,
 * NaNs), at 1 and 2 threads. A NaN only has to stay a NaN. */
Test(kernel_paths, one_pass_tanh_and_sigmoid_match_their_compositions) {
  int64_t n = 1 << 20;
  sl_tensor *x = sl_tensor_empty(1, SHAPE(n)), *y = sl_tensor_empty(1, SHAPE(n));
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)i * 4093u + (uint32_t)(i >> 9); /* 4093 odd: spreads over all 2^32 patterns */
    memcpy(&x->data[i], &u, sizeof u);
  }
  float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 0x1p-149f, -0x1p-149f, 0x1p-26f, 0x1p-25f, -0x1p-25f,
                   9.0f, -9.0f, 18.0f, 44.4f, -44.4f, 88.8f, -88.8f, 104.0f, -104.0f, 1e30f, -1e30f, 0.5f, -0.5f};
  memcpy(x->data, edges, sizeof edges);
  for (int t = 1; t <= 2; t++) {
    sl_set_num_threads(t);
    for (int op = 0; op < 2; op++) {
      cr_assert_eq(sl_unary(op ? SL_SIGMOID : SL_TANH, y, x), SL_OK);
      for (int64_t i = 0; i < n; i++) {
        float xi = x->data[i], want;
        if (op) {
          want = 1.0f / (1.0f + sl_vm_expf(-xi));
        } else {
          float e = sl_vm_expm1f(-2.0f * fabsf(xi));
          want = copysignf(-e / (e + 2.0f), xi);
        }
        float got = y->data[i];
        uint32_t gb, wb;
        memcpy(&gb, &got, sizeof gb), memcpy(&wb, &want, sizeof wb);
        if (gb != wb && !(got != got && want != want))
          cr_assert_fail("%s(%a) = %a, expected %a (%d threads)", op ? "sigmoid" : "tanh", (double)xi, (double)got,
                         (double)want, t);
      }
    }
  }
  sl_set_num_threads(1);
  sl_tensor_release(x), sl_tensor_release(y);
}

/* Sums and means of contiguous rows (eight rows at a time in vectors)
 * against one row at a time in four partial sums, element i into sum
 * i mod 4, combined (s0 + s1) + (s2 + s3). */
Test(kernel_paths, last_dim_sums_match_four_partial_sums_at_1_and_2_threads) {
  int64_t shapes[][2] = {{1, 1}, {3, 2}, {9, 3}, {8, 4}, {17, 5}, {70, 1000}, {1000, 1003}, {333, 64}, {1001, 77}, {5, 0}};
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    int64_t rows = shapes[k][0], cols = shapes[k][1];
    sl_tensor *x = sl_tensor_empty(2, SHAPE(rows, cols));
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)sin((double)i * 0.73) * (float)(1 + i % 97) * 1e3f;
    float *want = malloc((size_t)rows * 2 * sizeof *want);
    for (int64_t r = 0; r < rows; r++) {
      double s[4] = {0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 4 <= cols; i += 4)
        for (int l = 0; l < 4; l++) s[l] += (double)x->data[r * cols + i + l];
      for (; i < cols; i++) s[0] += (double)x->data[r * cols + i];
      double sum = (s[0] + s[1]) + (s[2] + s[3]);
      want[r] = (float)sum;
      want[rows + r] = cols ? (float)(sum / (double)cols) : NAN;
    }
    for (int t = 1; t <= 2; t++) {
      sl_set_num_threads(t);
      for (int op = 0; op < 2; op++) {
        sl_tensor *y = sl_tensor_empty(1, SHAPE(rows));
        cr_assert_eq(sl_reduce(op ? SL_RMEAN : SL_RSUM, y, NULL, x, 1, NULL), SL_OK);
        for (int64_t r = 0; r < rows; r++) {
          float w = want[op * rows + r], g = y->data[r];
          cr_assert(memcmp(&w, &g, sizeof w) == 0 || (w != w && g != g), "%s [%lld x %lld] row %lld at %d threads: %a, expected %a",
                    op ? "mean" : "sum", (long long)rows, (long long)cols, (long long)r, t, (double)g, (double)w);
        }
        sl_tensor_release(y);
      }
    }
    sl_set_num_threads(1);
    free(want);
    sl_tensor_release(x);
  }
}

/* softmax and log_softmax of contiguous rows (max in SSE2 lanes, then exp and
 * the four partial sums in one pass) against the three passes they replace:
 * a sequential max, y = x - max, sl_vexp_f32, sl_vsum4_f64, then the scale.
 * Rows with ties, +0/-0, infinities, NaN, and random values; 1 and 2 threads. */
static void softmax_reference(float *y, const float *x, int64_t n, bool lg) {
  float m = -INFINITY;
  bool nan = false;
  for (int64_t i = 0; i < n; i++) {
    m = x[i] > m ? x[i] : m;
    nan |= x[i] != x[i];
  }
  if (nan || m == -INFINITY) {
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
    return;
  }
  for (int64_t i = 0; i < n; i++) y[i] = x[i] - m;
  sl_vexp_f32(y, y, (size_t)n);
  double sum = sl_vsum4_f64(y, n);
  if (lg) {
    float ls = (float)log(sum);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
  } else {
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
  }
}

Test(kernel_paths, softmax_rows_match_the_three_pass_composition_at_1_and_2_threads) {
  int64_t lens[] = {1, 2, 3, 4, 5, 15, 16, 17, 20, 30, 33, 44, 47, 64, 1000, 1003};
  unsigned seed = 7;
  for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
    for (int kind = 0; kind < 2; kind++) {
      int64_t rows = 300, cols = lens[li];
      sl_tensor *x = sl_tensor_empty(2, SHAPE(rows, cols)), *y = sl_tensor_empty(2, SHAPE(rows, cols));
      float *ref = malloc((size_t)(rows * cols) * sizeof *ref);
      if (kind == 0) {
        fill_tricky(x->data, rows, cols, (unsigned)cols);
      } else {
        for (int64_t i = 0; i < rows * cols; i++) {
          seed = seed * 1103515245u + 12345u;
          x->data[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (i % 3 ? 30.0f : 300.0f);
        }
      }
      for (int lg = 0; lg < 2; lg++) {
        for (int64_t r = 0; r < rows; r++) softmax_reference(ref + r * cols, x->data + r * cols, cols, lg);
        for (int t = 1; t <= 2; t++) {
          sl_set_num_threads(t);
          cr_assert_eq(sl_softmax(y, x, 1, lg), SL_OK);
          for (int64_t i = 0; i < rows * cols; i++)
            cr_assert(same_bits(y->data + i, ref + i, 1) || (y->data[i] != y->data[i] && ref[i] != ref[i]),
                      "%s, %lld columns, kind %d, %d threads: element %lld is %a, expected %a",
                      lg ? "log_softmax" : "softmax", (long long)cols, kind, t, (long long)i, (double)y->data[i],
                      (double)ref[i]);
        }
        sl_set_num_threads(1);
      }
      free(ref);
      sl_tensor_release(x), sl_tensor_release(y);
    }
}

/* Big disjoint copies are split over the pool: every byte arrives, at 1 and
 * 2 threads, for sizes around the split threshold and piece borders. */
Test(kernel_paths, split_copies_match_the_source_at_1_and_2_threads) {
  int64_t sizes[] = {1, 65535, 65536, 65537, 1000003};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int64_t n = sizes[k];
    sl_tensor *a = sl_tensor_empty(1, SHAPE(n)), *b = sl_tensor_empty(1, SHAPE(n));
    for (int64_t i = 0; i < n; i++) a->data[i] = (float)i * 0.5f - 3.0f;
    for (int t = 1; t <= 2; t++) {
      sl_set_num_threads(t);
      memset(b->data, 0xff, (size_t)n * sizeof(float));
      cr_assert_eq(sl_tensor_copy(b, a), SL_OK);
      cr_assert(same_bits(a->data, b->data, n), "%lld floats, %d threads", (long long)n, t);
    }
    sl_set_num_threads(1);
    sl_tensor_release(a), sl_tensor_release(b);
  }
}

/* cat copies ranges of its output on both threads: every element lands, for
 * blocks of uneven and zero width, along the last and the first dim. */
Test(kernel_paths, split_cat_matches_a_naive_concatenation_at_1_and_2_threads) {
  const int64_t rows = 2000, w[3] = {7, 0, 130};
  sl_tensor *p[3];
  for (int k = 0; k < 3; k++) {
    p[k] = sl_tensor_empty(2, SHAPE(rows, w[k]));
    for (int64_t i = 0; i < rows * w[k]; i++) p[k]->data[i] = (float)(k * 1000000 + i);
  }
  for (int t = 1; t <= 2; t++) {
    sl_set_num_threads(t);
    sl_tensor *y = sl_tensor_cat(p, 3, 1); /* [2000 x 137]: 274,000 floats */
    cr_assert(y);
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < 137; c++) {
        int k = c < 7 ? 0 : 2;
        int64_t cc = c < 7 ? c : c - 7;
        cr_assert_eq(y->data[r * 137 + c], (float)(k * 1000000 + r * w[k] + cc), "row %lld col %lld, %d threads",
                     (long long)r, (long long)c, t);
      }
    sl_tensor_release(y);
    sl_tensor *q[2] = {p[2], p[2]};
    sl_tensor *z = sl_tensor_cat(q, 2, 0); /* [4000 x 130]: two contiguous halves */
    cr_assert(z);
    cr_assert(same_bits(z->data, p[2]->data, rows * 130) && same_bits(z->data + rows * 130, p[2]->data, rows * 130),
              "%d threads", t);
    sl_tensor_release(z);
  }
  sl_set_num_threads(1);
  for (int k = 0; k < 3; k++) sl_tensor_release(p[k]);
}
