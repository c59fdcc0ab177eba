/*
 * Non-temporal (streaming) stores for large outputs of the memory-bound
 * elementwise ops (internal to core/). An ordinary store to a line that is
 * not in cache first reads the line (read-for-ownership), so a kernel
 * writing a 40 MB result moves 80 MB for it; a streaming store writes the
 * line without reading it. The loops here compute 16 floats with AVX-512
 * and store them straight to memory (computing a block into a buffer in L1
 * and copying it out measured slower than ordinary stores: 1.6-2.2 ms
 * against 1.3-1.6 for a 10^7-float abs; docs/performance.md). Each element
 * is the same IEEE operation or select as elementwise.c's loops, so the same
 * bits. Outputs below SL_VM_STREAM_MIN floats (vmath.h) keep ordinary
 * stores, so they stay in cache for the next op.
 */
#ifndef SL_STREAM_H
#define SL_STREAM_H
#include <stdbool.h>
#include <stdint.h>

#include "elementwise.h"

/* True when an output of n floats at y is written by the loops below: n >=
 * SL_VM_STREAM_MIN, y float-aligned, and the CPU has AVX-512. */
bool sl_stream_ok(const float *y, size_t n);
/* The ops the loops below cover (add, sub, mul, div, maximum, minimum; abs,
 * neg). */
bool sl_stream_binary_op(sl_binary_op op);
bool sl_stream_unary_op(sl_unary_op op);
/* y[i] = op(a[i * sa], b[i * sb]) for i < n (sa, sb 0 or 1), full 64-byte
 * lines of y with streaming stores, a partial first or last line with
 * ordinary ones. Only after sl_stream_ok and for a covered op. */
void sl_stream_binary(sl_binary_op op, float *y, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n);
/* The same for `rows` runs of n outputs (broadcast.h's rows kernel: run r
 * reads a from a + r * oa, b from b + r * ob) written as one flat run,
 * when the runs follow each other in y: one stream of full lines instead of
 * a partial line at every row's start and end, and no call per row. Covers
 * n >= 16 and operands that are full (s 1, o n), a repeated row (s 1, o 0)
 * or one value per row (s 0); returns false, having written nothing, for
 * other layouts. */
bool sl_stream_binary_rows(sl_binary_op op, float *y, const float *a, int64_t sa, int64_t oa, const float *b,
                           int64_t sb, int64_t ob, int64_t n, int64_t rows);
void sl_stream_unary(sl_unary_op op, float *y, const float *x, int64_t n);
/* Orders this thread's streaming stores before its later stores (once
 * after a piece of work, before the pool counts it done). */
void sl_stream_fence(void);

#endif
