/* The one gather kernel behind permute, transpose and expand: a contiguous
 * destination filled from a source read through arbitrary strides. Dims are
 * first merged where the source is contiguous across them, so a permute
 * that keeps the last dim in place becomes a few long memcpys and a
 * transpose becomes one blocked 2-D transpose (tiles of 32 or 64
 * destination rows by 64 or 16 source rows: both stay in L1 while they are
 * read and written, instead of one of the two sides missing on every
 * element; AVX 8 x 8 or SSE 4 x 4 shuffles inside a tile). Large copies are split over
 * the thread pool by strips of destination rows. A transpose reads each
 * source row 256 bytes at a time, a page or more apart: the next band's
 * lines are prefetched by hand, and a destination of 1 MB or more is
 * written with streaming stores (10^7 floats at 2 threads: 2.6-2.9 ms ->
 * 1.7-1.95 ms, a memcpy of the same bytes 0.9-1.0 ms; why from 1 MB: see
 * sl_strided_copy_f32). */
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "parallel.h"
#include "shape.h"
#include "vmath.h"

/* The AVX tile (GCC on x86-64, as the vmath clones) */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(SL_NO_CLONES)
#define SL_TILE_AVX 1
#include <immintrin.h>
#else
#define SL_TILE_AVX 0
#endif

/* A tile is ti destination rows (ti floats of each source row) by tj
 * destination columns (tj source rows). ti is 64 (256-byte runs of each
 * source row, four lines) when the source is bigger than the caches, where
 * longer runs pay: bench/transpose_split built with -DTI=32 and -DTI=64,
 * [10000 x 1000], streamed, 2 threads 1.72-1.80 -> 1.31-1.71 ms, 1 thread
 * 3.34-3.82 -> 3.07-3.19 ms; sl_tensor_permute_into at 2 threads, best of 8
 * alternating runs, 1.37 -> 1.16 ms. In cache 32 is faster: [1000 x 1000] at 2
 * threads 0.065-0.071 ms against 0.073-0.074 ms with 64. */
#define TI_SMALL 32
#define TI_BIG 64
#define TI_BIG_MIN_FLOATS (4 << 20) /* 16 MB */
/* tj is 64, or 16 when the source rows are a multiple of 128 floats apart
 * (512 bytes): such rows share a few L1 sets (all of them one set for
 * rows 4 KB apart), and a tile of 64 of them plus the next band's
 * prefetched lines no longer fits its sets' 12 ways. Best of 300 at 2
 * threads, 1-2 runs each, tj 16 / 32 / 64 (ms): [1000 x 1000] - / 0.072-0.073
 * / 0.060-0.063; [10^4 x 1000] - / 1.14-1.17 / 1.04-1.08; [300 x 1000]
 * - / 0.032-0.034 / 0.022-0.023; [1024 x 1024] 0.103-0.107 / 0.117-0.125 /
 * 0.145-0.16; [1024 x 2048] 0.25-0.26 / 0.26-0.28 / 0.35-0.37. */
#define TJ_WIDE 64
#define TJ_ALIASED 16
#define NT_MIN_FLOATS (1 << 18) /* 1 MB: transposes this big use streaming stores (see sl_strided_copy_f32) */

#if defined(__SSE2__)
/* The four instances of a tile function with constant ti and store kind */
#define TILE_INSTANCES(tile)                                                 \
  do {                                                                       \
    if (ti == TI_BIG) {                                                      \
      if (nt) tile(dst, ldd, src, lds, TI_BIG, tj, 1);                       \
      else tile(dst, ldd, src, lds, TI_BIG, tj, 0);                          \
    } else {                                                                 \
      if (nt) tile(dst, ldd, src, lds, TI_SMALL, tj, 1);                     \
      else tile(dst, ldd, src, lds, TI_SMALL, tj, 0);                        \
    }                                                                        \
  } while (0)

/* A full ti x tj tile as 4 x 4 blocks: four source rows loaded, shuffled
 * (_MM_TRANSPOSE4_PS) and stored as four destination rows. A copy: no bit
 * changes. With nt (a constant in each caller below) the stores are
 * non-temporal: each group of four destination rows is written as whole
 * lines before the next group starts. */
static inline __attribute__((always_inline)) void tile_4x4_blocks(float *restrict dst, int64_t ldd,
                                                                  const float *restrict src, int64_t lds,
                                                                  const int ti, const int tj, const int nt) {
#define STORE_ROWS(store)                    \
  do {                                       \
    store(dst + (i + 0) * ldd + j, r0);      \
    store(dst + (i + 1) * ldd + j, r1);      \
    store(dst + (i + 2) * ldd + j, r2);      \
    store(dst + (i + 3) * ldd + j, r3);      \
  } while (0)
  for (int i = 0; i < ti; i += 4)
    for (int j = 0; j < tj; j += 4) {
      __m128 r0 = _mm_loadu_ps(src + i + (j + 0) * lds), r1 = _mm_loadu_ps(src + i + (j + 1) * lds),
             r2 = _mm_loadu_ps(src + i + (j + 2) * lds), r3 = _mm_loadu_ps(src + i + (j + 3) * lds);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      if (nt) STORE_ROWS(_mm_stream_ps);
      else STORE_ROWS(_mm_storeu_ps);
    }
#undef STORE_ROWS
}

#if SL_TILE_AVX
/* A full ti x tj tile as 8 x 8 blocks with AVX: each register holds four
 * floats of source row j + k in its low half and of row j + k + 4 in its
 * high half (a 16-byte load and an insert), so one unpack and one shuffle
 * per register transpose both 4 x 4 halves at once: 16 shuffles per 64
 * floats against 32 in the 4 x 4 blocks, the work that bounds a transpose
 * in cache ([1000 x 1000] at 1 thread, warm: 0.122 -> 0.097 ms). A copy:
 * no bit changes. With nt the stores are non-temporal (32-byte aligned
 * then: see sl_strided_copy_f32). */
#define STORE8(store)                                                                    \
  do {                                                                                   \
    store(d, o0), store(d + ldd, o1), store(d + 2 * ldd, o2), store(d + 3 * ldd, o3);     \
    store(d + 4 * ldd, o4), store(d + 5 * ldd, o5), store(d + 6 * ldd, o6), store(d + 7 * ldd, o7); \
  } while (0)
#define LOAD2(k) \
  _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + (k)*lds)), _mm_loadu_ps(s + ((k) + 4) * lds), 1)
static inline __attribute__((always_inline, target("avx"))) void tile_8x8_blocks(float *restrict dst, int64_t ldd,
                                                                                const float *restrict src,
                                                                                int64_t lds, const int ti,
                                                                                const int tj, const int nt) {
  for (int i = 0; i < ti; i += 8)
    for (int j = 0; j < tj; j += 8) {
      const float *s = src + i + j * lds;
      __m256 r0 = LOAD2(0), r1 = LOAD2(1), r2 = LOAD2(2), r3 = LOAD2(3);
      s += 4; /* source columns i + 4 .. i + 7: destination rows 4..7 */
      __m256 r4 = LOAD2(0), r5 = LOAD2(1), r6 = LOAD2(2), r7 = LOAD2(3);
      __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      __m256 o0 = _mm256_shuffle_ps(t0, t2, 0x44), o1 = _mm256_shuffle_ps(t0, t2, 0xee);
      __m256 o2 = _mm256_shuffle_ps(t1, t3, 0x44), o3 = _mm256_shuffle_ps(t1, t3, 0xee);
      __m256 o4 = _mm256_shuffle_ps(t4, t6, 0x44), o5 = _mm256_shuffle_ps(t4, t6, 0xee);
      __m256 o6 = _mm256_shuffle_ps(t5, t7, 0x44), o7 = _mm256_shuffle_ps(t5, t7, 0xee);
      float *d = dst + i * ldd + j;
      if (nt) STORE8(_mm256_stream_ps);
      else STORE8(_mm256_storeu_ps);
    }
}
#undef STORE8
#undef LOAD2

__attribute__((target("avx"))) static void transpose_tile_avx(float *restrict dst, int64_t ldd,
                                                              const float *restrict src, int64_t lds, int ti,
                                                              int tj, int nt) {
  TILE_INSTANCES(tile_8x8_blocks);
}
#endif

/* A full tile: AVX blocks where they apply, else SSE blocks. */
static void transpose_tile(float *restrict dst, int64_t ldd, const float *restrict src, int64_t lds, int ti,
                           int tj, int nt) {
#if SL_TILE_AVX
  if (nt != 1 && sl_vm_has_avx()) { /* nt 2: streamed, 32-byte aligned */
    transpose_tile_avx(dst, ldd, src, lds, ti, tj, nt != 0);
    return;
  }
#endif
  TILE_INSTANCES(tile_4x4_blocks);
}
#endif

/* A partial tile (ni below ti or nj below tj, at the right or bottom edge): 4 x 4
 * blocks where both sides have 4 left, element by element for the rest.
 * A [1000 x 1000] transpose has 16,000 elements in partial tiles; copied
 * one by one, reading down 32 source rows, they took as long as a tenth of
 * the full tiles, and the last strip (all partial) was the slowest piece
 * of a split. With nt the blocks are streamed like the full tiles (16-byte
 * aligned then: see sl_strided_copy_f32): ordinary stores to the ends of
 * streamed rows would pull those lines back into the cache, and at 2
 * threads from the other core. */
static void edge_tile(float *restrict dst, int64_t ldd, const float *restrict src, int64_t lds, int64_t ni,
                      int64_t nj, int nt) {
  int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 4 <= ni; i += 4) {
    int64_t j = 0;
    for (; j + 4 <= nj; j += 4) {
      __m128 r0 = _mm_loadu_ps(src + i + (j + 0) * lds), r1 = _mm_loadu_ps(src + i + (j + 1) * lds),
             r2 = _mm_loadu_ps(src + i + (j + 2) * lds), r3 = _mm_loadu_ps(src + i + (j + 3) * lds);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      if (nt) {
        _mm_stream_ps(dst + (i + 0) * ldd + j, r0);
        _mm_stream_ps(dst + (i + 1) * ldd + j, r1);
        _mm_stream_ps(dst + (i + 2) * ldd + j, r2);
        _mm_stream_ps(dst + (i + 3) * ldd + j, r3);
      } else {
        _mm_storeu_ps(dst + (i + 0) * ldd + j, r0);
        _mm_storeu_ps(dst + (i + 1) * ldd + j, r1);
        _mm_storeu_ps(dst + (i + 2) * ldd + j, r2);
        _mm_storeu_ps(dst + (i + 3) * ldd + j, r3);
      }
    }
    for (int64_t ii = i; ii < i + 4; ii++)
      for (int64_t jj = j; jj < nj; jj++) dst[ii * ldd + jj] = src[ii + jj * lds];
  }
#else
  (void)nt;
#endif
  for (; i < ni; i++)
    for (int64_t j = 0; j < nj; j++) dst[i * ldd + j] = src[i + j * lds];
}

/* dst[i * ldd + j] = src[i + j * lds] for i0 <= i < i1, j < cols (rows
 * i0..i1 of the transpose of a cols x rows block read with row stride lds). */
static void transpose_rows(float *restrict dst, int64_t ldd, const float *restrict src, int64_t lds, int64_t i0,
                           int64_t i1, int64_t cols, int ti, int tj, int nt) {
  for (; i0 < i1; i0 += ti) {
    int64_t ie = i0 + ti < i1 ? i0 + ti : i1;
    for (int64_t j0 = 0; j0 < cols; j0 += tj) {
      int64_t je = j0 + tj < cols ? j0 + tj : cols;
      if (ie - i0 == ti && je - j0 == tj) {
#if defined(__SSE2__)
        /* ask for the next band's source lines now: the tj rows are a page
         * apart or more, so no prefetcher sees them coming */
        if (je + tj <= cols) /* (two bands ahead measured no better) */
          for (int64_t j = je; j < je + tj; j++)
            for (int q = 0; q < ti; q += 16) _mm_prefetch((const char *)(src + i0 + j * lds + q), _MM_HINT_T0);
        transpose_tile(dst + i0 * ldd + j0, ldd, src + i0 + j0 * lds, lds, ti, tj, nt);
#else
        (void)nt;
        for (int i = 0; i < ti; i++)
          for (int j = 0; j < tj; j++) dst[(i0 + i) * ldd + j0 + j] = src[(i0 + i) + (j0 + j) * lds];
#endif
      } else {
        edge_tile(dst + i0 * ldd + j0, ldd, src + i0 + j0 * lds, lds, ie - i0, je - j0, nt);
      }
    }
  }
}

/* The copy as pieces for the thread pool: piece p is strip p % nstrip (ti
 * destination rows of the transpose, or the whole inner run) of outer
 * position p / nstrip. Pieces write disjoint parts of dst: any split gives
 * the same bytes. */
typedef struct copy_job {
  float *dst;
  const float *src;
  int nw; /* outer dims (the odometer) */
  int64_t size[SL_MAX_DIMS], ss[SL_MAX_DIMS], ds[SL_MAX_DIMS];
  int64_t last, slast, a_rows, a_ds, nstrip;
  int a, ti, tj, nt;
} copy_job;

static void copy_range(const void *vj, size_t b, size_t e) {
  const copy_job *j = vj;
  int64_t o = (int64_t)b / j->nstrip, strip = (int64_t)b % j->nstrip, so = 0, dof = 0, idx[SL_MAX_DIMS];
  for (int k = j->nw - 1; k >= 0; k--) { /* offsets of outer position o */
    idx[k] = o % j->size[k];
    o /= j->size[k];
    so += idx[k] * j->ss[k];
    dof += idx[k] * j->ds[k];
  }
  int64_t last = j->last, slast = j->slast;
  for (size_t p = b; p < e; p++) {
    float *d0 = j->dst + dof;
    const float *s0 = j->src + so;
    if (slast == 1) {
      memcpy(d0, s0, (size_t)last * sizeof(float));
    } else if (j->a >= 0) {
      int64_t i0 = strip * j->ti, i1 = i0 + j->ti < j->a_rows ? i0 + j->ti : j->a_rows;
      transpose_rows(d0, j->a_ds, s0, slast, i0, i1, last, j->ti, j->tj, j->nt);
    } else if (slast == 0) {
      for (int64_t k = 0; k < last; k++) d0[k] = s0[0];
    } else {
      for (int64_t k = 0; k < last; k++) d0[k] = s0[k * slast];
    }
    if (++strip < j->nstrip) continue;
    strip = 0;
    for (int k = j->nw - 1; k >= 0; k--) { /* the odometer: next outer position */
      so += j->ss[k];
      dof += j->ds[k];
      if (++idx[k] < j->size[k]) break;
      so -= j->ss[k] * j->size[k];
      dof -= j->ds[k] * j->size[k];
      idx[k] = 0;
    }
  }
#if defined(__SSE2__)
  if (j->nt) _mm_sfence(); /* the streamed stores are visible before the pool reports the piece done */
#endif
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
  copy_job j = {0};
  j.dst = dst, j.src = src, j.last = sz[n - 1], j.slast = ss[n - 1], j.a = -1;
  if (j.slast != 1) /* the dim the source walks contiguously, when it is not the last */
    for (int d = 0; d < n - 1; d++)
      if (ss[d] == 1) j.a = d;
  for (int d = 0; d < n - 1; d++)
    if (d != j.a) {
      j.size[j.nw] = sz[d];
      j.ss[j.nw] = ss[d];
      j.ds[j.nw] = ds[d];
      j.nw++;
    }
  int64_t outer = 1, total = j.last;
  for (int k = 0; k < j.nw; k++) outer *= j.size[k];
  j.nstrip = 1;
  if (j.a >= 0) total *= sz[j.a];
  total *= outer;
  if (j.a >= 0) {
    j.ti = total >= TI_BIG_MIN_FLOATS ? TI_BIG : TI_SMALL;
    j.tj = j.slast % 128 == 0 ? TJ_ALIASED : TJ_WIDE;
    j.a_rows = sz[j.a], j.a_ds = ds[j.a];
    j.nstrip = (j.a_rows + j.ti - 1) / j.ti;
  }
#if defined(__SSE2__)
  /* Streaming stores for transposes of 1 MB and more whose full tiles are
   * 16-byte aligned (every destination offset is a multiple of `last`).
   * Ordinary stores read each destination line first, and a tile's stores
   * go to 64 rows at once, too scattered for the prefetchers: a cache miss
   * per line when the destination is cold (a fresh result: Lua frees
   * results at its next collection, so each call gets another block), and
   * at 2 threads a transfer from the other core for each line it wrote in
   * the previous call (the pool hands pieces to whichever thread claims
   * them first). [1000 x 1000], best of 40: fresh in Lua 0.26-0.35 ms at 1
   * thread with ordinary stores, 0.13 ms streamed; into a reused `out=` at
   * 2 threads 0.16-0.37 ms (slower than 1 thread) against 0.06-0.09 ms
   * streamed; at 1 thread the same or better (bench/transpose_split.c). */
  /* nt 2: the AVX tile may stream too (its 32-byte stores stay aligned) */
  if (j.a >= 0 && total >= NT_MIN_FLOATS && (uintptr_t)dst % 16 == 0 && j.last % 4 == 0)
    j.nt = (uintptr_t)dst % 32 == 0 && j.last % 8 == 0 ? 2 : 1;
#endif
  sl_par_pieces((size_t)(outer * j.nstrip), (size_t)total, copy_range, &j);
}
