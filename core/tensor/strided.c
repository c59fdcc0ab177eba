/* The one gather kernel behind permute, transpose and expand: a contiguous
 * destination filled from a source read through arbitrary strides. Dims are
 * first merged where the source is contiguous across them, so a permute
 * that keeps the last dim in place becomes a few long memcpys and a
 * transpose becomes one blocked 2-D transpose (16 x 16 tiles: the 16 source
 * rows of a tile and the 16 destination rows stay in L1 while they are
 * read and written, instead of one of the two sides missing on every
 * element). */
#include <string.h>

#include "shape.h"

#define TILE 16

/* Odometer over the "outer" dims: advances idx and returns the source and
 * destination offsets of the next position. */
typedef struct walker {
  int n;
  int64_t size[SL_MAX_DIMS], ss[SL_MAX_DIMS], ds[SL_MAX_DIMS], idx[SL_MAX_DIMS];
  int64_t so, dof;
} walker;

static void walker_next(walker *w) {
  for (int k = w->n - 1; k >= 0; k--) {
    w->so += w->ss[k];
    w->dof += w->ds[k];
    if (++w->idx[k] < w->size[k]) return;
    w->so -= w->ss[k] * w->size[k];
    w->dof -= w->ds[k] * w->size[k];
    w->idx[k] = 0;
  }
}

/* dst[i * ldd + j] = src[i + j * lds] for i < rows, j < cols (a transpose
 * of a cols x rows block read with row stride lds). */
static void transpose_block(float *restrict dst, int64_t ldd, const float *restrict src, int64_t lds, int64_t rows,
                            int64_t cols) {
  for (int64_t i0 = 0; i0 < rows; i0 += TILE) {
    int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
    for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
      int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
      if (i1 - i0 == TILE && j1 - j0 == TILE) { /* full tile: constant trip counts GCC unrolls */
        for (int i = 0; i < TILE; i++)
          for (int j = 0; j < TILE; j++) dst[(i0 + i) * ldd + j0 + j] = src[(i0 + i) + (j0 + j) * lds];
      } else {
        for (int64_t i = i0; i < i1; i++)
          for (int64_t j = j0; j < j1; j++) dst[i * ldd + j] = src[i + j * lds];
      }
    }
  }
}

void sl_strided_copy_f32(float *dst, const float *src, int ndim, const int64_t *shape, const int64_t *sstride) {
  int64_t sz[SL_MAX_DIMS], ss[SL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    if (n > 0 && ss[n - 1] == sstride[d] * shape[d]) { /* source contiguous across both: merge */
      sz[n - 1] *= shape[d];
      ss[n - 1] = sstride[d];
      continue;
    }
    sz[n] = shape[d];
    ss[n] = sstride[d];
    n++;
  }
  if (n == 0) {
    dst[0] = src[0];
    return;
  }
  int64_t ds[SL_MAX_DIMS]; /* destination strides: contiguous */
  ds[n - 1] = 1;
  for (int d = n - 2; d >= 0; d--) ds[d] = ds[d + 1] * sz[d + 1];
  int64_t last = sz[n - 1], slast = ss[n - 1];
  int a = -1; /* the dim the source walks contiguously, when it is not the last */
  if (slast != 1)
    for (int d = 0; d < n - 1; d++)
      if (ss[d] == 1) a = d;
  walker w = {0};
  for (int d = 0; d < n - 1; d++)
    if (d != a) {
      w.size[w.n] = sz[d];
      w.ss[w.n] = ss[d];
      w.ds[w.n] = ds[d];
      w.n++;
    }
  int64_t outer = 1;
  for (int k = 0; k < w.n; k++) outer *= w.size[k];
  for (int64_t o = 0; o < outer; o++, walker_next(&w)) {
    float *d0 = dst + w.dof;
    const float *s0 = src + w.so;
    if (slast == 1) {
      memcpy(d0, s0, (size_t)last * sizeof(float));
    } else if (a >= 0) {
      transpose_block(d0, ds[a], s0, slast, sz[a], last);
    } else if (slast == 0) {
      for (int64_t j = 0; j < last; j++) d0[j] = s0[0];
    } else {
      for (int64_t j = 0; j < last; j++) d0[j] = s0[j * slast];
    }
  }
}
