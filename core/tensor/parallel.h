/*
 * The core's two-core work split (internal to core/). One persistent helper
 * thread, started on first use, shares work with the calling thread when
 * selut's thread count (sl_set_num_threads) is >= 2; at 1 thread everything
 * runs in the caller and no thread is ever created. Work is cut into a fixed
 * number of pieces that depend only on the problem size (never on the
 * thread count or on who runs them), so results are the same bits with 1
 * and 2 threads. The pieces are claimed from a shared job word, the caller
 * from the front and the helper from the back: a helper the OS has not
 * scheduled yet costs nothing (the caller takes its pieces), and a helper on
 * time runs the same pieces call after call (what it wrote last is still in
 * its cache).
 */
#ifndef SL_PARALLEL_H
#define SL_PARALLEL_H
#include <stddef.h>

/* fn(ctx, b, e) over [0, n) cut into pieces of at least SL_PAR_CHUNK_MIN
 * elements (16 at most, 64-byte aligned borders); serial when n is below
 * sl_par_min() or at 1 thread. */
typedef void (*sl_range_fn)(const void *ctx, size_t b, size_t e);
void sl_par_for(size_t n, sl_range_fn fn, const void *ctx);
/* fn(ctx, i) for i in [0, ntasks), ntasks <= 64, over both threads. */
typedef void (*sl_task_fn)(const void *ctx, unsigned i);
void sl_par_tasks(unsigned ntasks, sl_task_fn fn, const void *ctx);
/* True when a job would use the helper now (thread count >= 2, pool usable). */
int sl_par_active(void);
/* Smallest array split by sl_par_for: SELUT_SPLIT_MIN (elements) from the
 * environment, read once, else the default (docs/performance.md). */
size_t sl_par_min(void);

#define SL_PAR_CHUNK_MIN 16384

/* fn(ctx, b, e) over n pieces of work that together touch `work` elements
 * (rows of a reduction, tiles of a transpose): split into up to 16 ranges
 * of whole pieces for the pool when work >= sl_par_min(), else one serial
 * call. For kernels whose pieces are few but large, which sl_par_for (a
 * split by element count) would run serially. */
void sl_par_pieces(size_t n, size_t work, sl_range_fn fn, const void *ctx);

#endif
