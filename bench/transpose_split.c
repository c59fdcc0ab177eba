/* bench/transpose_split: why core/tensor/strided.c streams the stores of
 * transposes from 1 MB on. The transpose kernel's strips (32 destination
 * rows of 32 x 32 SSE tiles, the next band's source lines prefetched by
 * hand), with ordinary or streaming stores, at 1 thread and at 2 threads
 * split three ways: fixed halves, strips claimed one at a time, and 16
 * parts claimed one at a time (what the pool does). With ordinary stores, a
 * dynamic split makes each core write lines the other core wrote in the
 * previous call; the second thread then does not pay (2026-12-05, loaded
 * machine, [992 x 992]: 1 thread 0.12-0.14 ms, 2 threads with 16 parts
 * 0.16-0.22 ms, with fixed halves 0.08 ms; streamed: 0.11-0.12 ms and
 * 0.06 ms whatever the split). The helper thread spins between calls: run
 * it on an otherwise idle core, else the 2-thread times are meaningless.
 *   build/bench/transpose_split [rows cols]   (default 992 x 992: whole tiles) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#define TILE 32
#define ROUNDS 200

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__SSE2__)
static inline __attribute__((always_inline)) void tile(float *restrict dst, int64_t ldd, const float *restrict src,
                                                       int64_t lds, const int nt) {
  for (int i = 0; i < TILE; i += 4)
    for (int j = 0; j < TILE; j += 4) {
      __m128 r0 = _mm_loadu_ps(src + i + (j + 0) * lds), r1 = _mm_loadu_ps(src + i + (j + 1) * lds),
             r2 = _mm_loadu_ps(src + i + (j + 2) * lds), r3 = _mm_loadu_ps(src + i + (j + 3) * lds);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      float *d = dst + i * ldd + j;
      if (nt) {
        _mm_stream_ps(d, r0), _mm_stream_ps(d + ldd, r1), _mm_stream_ps(d + 2 * ldd, r2), _mm_stream_ps(d + 3 * ldd, r3);
      } else {
        _mm_storeu_ps(d, r0), _mm_storeu_ps(d + ldd, r1), _mm_storeu_ps(d + 2 * ldd, r2), _mm_storeu_ps(d + 3 * ldd, r3);
      }
    }
}
#endif

static float *S, *D;
static int64_t ROWS, COLS; /* D is [ROWS x COLS], S is [COLS x ROWS] */
static int NT, MODE;
static atomic_int go, done, next;

/* Destination rows i0..i0+TILE, every column. */
static void strip(int64_t i0) {
  for (int64_t j0 = 0; j0 + TILE <= COLS; j0 += TILE) {
#if defined(__SSE2__)
    if (j0 + 2 * TILE <= COLS)
      for (int64_t j = j0 + TILE; j < j0 + 2 * TILE; j++) {
        _mm_prefetch((const char *)(S + i0 + j * ROWS), _MM_HINT_T0);
        _mm_prefetch((const char *)(S + i0 + j * ROWS + 16), _MM_HINT_T0);
      }
    if (NT) tile(D + i0 * COLS + j0, COLS, S + i0 + j0 * ROWS, ROWS, 1);
    else tile(D + i0 * COLS + j0, COLS, S + i0 + j0 * ROWS, ROWS, 0);
#else
    for (int64_t i = i0; i < i0 + TILE; i++)
      for (int64_t j = j0; j < j0 + TILE; j++) D[i * COLS + j] = S[i + j * ROWS];
#endif
  }
}

static void work(int me, int threads) {
  int64_t ns = ROWS / TILE;
  if (threads == 1 || MODE == 0) {
    int64_t a = threads == 1 ? 0 : me ? ns / 2 : 0, b = threads == 1 ? ns : me ? ns : ns / 2;
    for (int64_t s = a; s < b; s++) strip(s * TILE);
  } else if (MODE == 1) {
    for (int s; (s = atomic_fetch_add(&next, 1)) < ns;) strip(s * TILE);
  } else {
    for (int p; (p = atomic_fetch_add(&next, 1)) < 16;)
      for (int64_t s = ns * p / 16; s < ns * (p + 1) / 16; s++) strip(s * TILE);
  }
#if defined(__SSE2__)
  if (NT) _mm_sfence();
#endif
}

static void *helper(void *arg) {
  (void)arg;
  for (int seen = 0;;) {
    while (atomic_load(&go) == seen) {
    }
    seen = atomic_load(&go);
    work(1, 2);
    atomic_fetch_add(&done, 1);
  }
  return NULL;
}

static double best_of(int threads) {
  double best = 1e9;
  for (int r = 0; r < ROUNDS; r++) {
    atomic_store(&next, 0);
    atomic_store(&done, 0);
    double t0 = now();
    if (threads == 2) atomic_fetch_add(&go, 1);
    work(0, threads);
    if (threads == 2)
      while (atomic_load(&done) == 0) {
      }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

int main(int argc, char **argv) {
  ROWS = argc > 2 ? atoll(argv[1]) / TILE * TILE : 992;
  COLS = argc > 2 ? atoll(argv[2]) / TILE * TILE : 992;
  if (ROWS < TILE || COLS < TILE) {
    fprintf(stderr, "transpose_split: rows and cols must be at least %d\n", TILE);
    return 1;
  }
  size_t bytes = (size_t)(ROWS * COLS) * sizeof(float);
  S = aligned_alloc(64, bytes), D = aligned_alloc(64, bytes);
  float *M = aligned_alloc(64, bytes);
  if (!S || !D || !M) return 1;
  for (int64_t i = 0; i < ROWS * COLS; i++) S[i] = (float)i;
  memset(D, 0, bytes), memset(M, 0, bytes);
  pthread_t t;
  if (pthread_create(&t, NULL, helper, NULL) != 0) return 1;
  double mc = 1e9;
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now();
    memcpy(M, S, bytes);
    double dt = now() - t0;
    if (dt < mc) mc = dt;
  }
  printf("[%lld x %lld] transpose, best of %d; memcpy of the same bytes at 1 thread %.4f ms\n", (long long)ROWS,
         (long long)COLS, ROUNDS, mc * 1e3);
  const char *names[] = {"fixed halves", "strips claimed", "16 parts claimed"};
  for (NT = 0; NT < 2; NT++)
    for (MODE = 0; MODE < 3; MODE++) {
      double b1 = best_of(1), b2 = best_of(2);
      printf("%-9s stores, 2 threads by %-16s: 1 thread %.4f ms, 2 threads %.4f ms\n", NT ? "streaming" : "ordinary",
             names[MODE], b1 * 1e3, b2 * 1e3);
    }
  for (int64_t i = 0; i < ROWS; i++) /* the last call's result is the transpose */
    for (int64_t j = 0; j < COLS; j++)
      if (D[i * COLS + j] != S[i + j * ROWS]) {
        fprintf(stderr, "transpose_split: wrong element [%lld, %lld]\n", (long long)i, (long long)j);
        return 1;
      }
  return 0;
}
