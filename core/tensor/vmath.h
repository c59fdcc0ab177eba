/*
 * Vectorizable float32 kernels for the training hot path: expm1/exp with
 * a deterministic polynomial (<= 2 ulp, same bits on every x86-64 ISA, no
 * fast-math), the ELU/SELU and ReLU pairs, counter-based dropout masks,
 * bias rows/column sums and the SGD/Adam updates. Loops are compiled -O3
 * with runtime dispatch (AVX-512 / AVX2 / SSE2 clones); all clones give
 * bit-identical results since every operation is an IEEE float op.
 */
#ifndef SL_VMATH_H
#define SL_VMATH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Outputs of at least this many floats (16 MB, half the L3 of the project's
 * machine) are written with streaming (non-temporal) stores by
 * sl_vrows_fill_f32: same bytes, no read-for-ownership of the destination,
 * no cache pollution (docs/performance.md). Smaller outputs stay in cache
 * for the next layer. */
#ifndef SL_VM_STREAM_MIN
#define SL_VM_STREAM_MIN ((size_t)1 << 22)
#endif

/* True when the CPU has AVX-512F and this build can use it (GCC on
 * x86-64): the hand-written kernels (vmath_avx512.c, stream.c). */
bool sl_vm_has_avx512(void);
/* True when the CPU has AVX and this build can use it (the transpose tile
 * of strided.c). */
bool sl_vm_has_avx(void);

/* y[0..n) = x[0..n) with streaming stores (SSE2; a plain copy elsewhere:
 * the same bytes), and the fence that orders this thread's streamed stores
 * before its later stores (once after a piece of work). */
void sl_vstream_copy_f32(float *y, const float *x, size_t n);
void sl_vstream_fence(void);

/* Scalar forms of the array kernels below (same bits). Valid on the whole
 * float range: NaN propagates, overflow gives +inf, expm1(-inf) = -1,
 * expm1(-0) = -0. */
float sl_vm_expm1f(float x);
float sl_vm_expf(float x);
void sl_vexpm1_f32(float *y, const float *x, size_t n);
void sl_vexp_f32(float *y, const float *x, size_t n);
/* tanh through expm1 (a few ulp from tanhf; vectorized), and its backward from x. */
void sl_vtanh_f32(float *y, const float *x, size_t n);
void sl_vtanh_backward_f32(float *gx, const float *x, const float *gy, size_t n);
/* acc[j] += x[i * stride + j] over rows i in order, j < w (column sums in
 * double, each column's additions in row order). */
void sl_vcolsum_f64(double *acc, const float *x, int64_t rows, int64_t stride, int64_t w);
/* out[r] = the sum of row r (rows of n contiguous floats) in four double
 * partial sums, element i into sum i mod 4, combined (s0 + s1) + (s2 + s3). */
void sl_vrowsum_f64(double *out, const float *x, int64_t rows, int64_t n);
/* The sum of n floats in four double partial sums (element i into sum
 * i mod 4), combined (s0 + s1) + (s2 + s3): one row of sl_vrowsum_f64, and
 * the order every contiguous sum in reduce.c keeps. */
double sl_vsum4_f64(const float *x, int64_t n);
/* y[i] = sl_vm_expf(x[i] - m) for i < n (softmax). */
void sl_vexp_shift_f32(float *y, const float *x, float m, size_t n);
/* sigmoid: 1 / (1 + sl_vm_expf(-x)), the same bits as those three steps. */
void sl_vsigmoid_f32(float *y, const float *x, size_t n);

/* Natural log in double (<= 2 ulp of double against glibc's log on
 * positive normal inputs; 0 -> -inf, +inf -> +inf, x < 0 and NaN -> NaN;
 * subnormal inputs are not supported). For the softmax losses' log-sum-exp. */
double sl_vm_log(double x);
void sl_vlog_f64(double *y, const double *x, size_t n);

/* lse[r] = log sum_j exp(x[r, j]) for the rows of x (rows, c), shifted by
 * each row's max (NaN skipped); a row whose max is +-inf gives that max.
 * Every sum is taken in double in column order. Scratch: tmp (rows * c),
 * mx (rows), sum (rows). */
void sl_vrows_lse_f32(double *lse, const float *x, int64_t rows, int64_t c, float *tmp, float *mx, double *sum);

/* g[r, j] = e[r, j] * (scale / s[r]) (scale/s in double, the product in
 * double rounded once to float) with e = tmp = exp(x - row max) and s = sum
 * = the row sums of e in double, left in tmp and sum for the caller. */
void sl_vrows_softmax_f32(float *g, const float *x, int64_t rows, int64_t c, double scale, float *tmp, double *sum);

/* ELU family: y = x <= 0 ? expm1(x) * negcoef : x * scale (negcoef =
 * alpha * scale); backward from the input: gx = x <= 0 ? gy * negcoef *
 * exp(x) : gy * scale. */
void sl_velu_forward_f32(float *y, const float *x, size_t n, float negcoef, float scale);
void sl_velu_backward_f32(float *gx, const float *x, const float *gy, size_t n, float negcoef, float scale);
/* The same gradient from the forward's result y (in-place modules):
 * gx = y <= 0 ? gy * (y + negcoef) : gy * scale, PyTorch's formula for
 * elu_/selu_ (it cancels for y near -negcoef: only in-place uses it). */
void sl_velu_backward_result_f32(float *gx, const float *y, const float *gy, size_t n, float negcoef, float scale);
void sl_vrelu_forward_f32(float *y, const float *x, size_t n);
void sl_vrelu_backward_f32(float *gx, const float *x, const float *gy, size_t n);

/* Dropout masks from a counter-based hash: element i of a draw keyed by
 * `key` is kept when the top 24 bits of hash(key, i) are >= threshold, with
 * threshold = sl_dropout_threshold(p) (keep probability 1-p, in steps of
 * 2^-24, exactly "u >= p" for u uniform on the 24-bit grid). The mask is
 * never stored: backward recomputes it from the key. */
uint32_t sl_dropout_threshold(double p);
bool sl_dropout_keep(uint64_t key, uint64_t i, uint32_t threshold);
/* The key whose element i is element first + i of the draw keyed by `key`,
 * for every i with first + i in first's block of 2^32 counters (i.e. i <
 * 2^32 - (first mod 2^32)): how a process masks rows that start at element
 * `first` of a larger draw (data parallelism, docs/distributed.md). */
uint64_t sl_dropout_key_at(uint64_t key, uint64_t first);
/* y = keep ? x * scale + shift : dropped */
void sl_vdropout_forward_f32(float *y, const float *x, size_t n, uint64_t key, uint32_t threshold, float scale,
                             float shift, float dropped);
/* gx = keep ? gy * scale : 0 */
void sl_vdropout_backward_f32(float *gx, const float *gy, size_t n, uint64_t key, uint32_t threshold, float scale);

/* y (rows, cols): every row set to b (cols). */
void sl_vrows_fill_f32(float *y, const float *b, int64_t rows, int64_t cols);
/* gb[j] += sum_i gy[i, j], each column summed in double in row order. */
void sl_vcolsum_acc_f32(float *gb, const float *gy, int64_t rows, int64_t cols);

/* PyTorch 1.13 _single_tensor_sgd, elementwise, in its operation order:
 *   d = g + wd*p;  buf = first ? d : buf*mom + damp1*d;
 *   d = nesterov ? d + mom*buf : buf;  p = p + (-lr)*d
 * buf may be NULL (no momentum). */
void sl_vsgd_f32(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom, float damp1,
                 bool nesterov, bool first);
/* PyTorch 1.13 _single_tensor_adam(w):
 *   p *= decay_mul (AdamW);  g = g + wd*p (Adam)
 *   m = m*b1 + one_b1*g;  v = v*b2 + one_b2*g*g
 *   p = p + neg_step * (m / (sqrt(v)/bc2_sqrt + eps)) */
void sl_vadam_f32(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd, float b1,
                  float b2, float one_b1, float one_b2, float bc2_sqrt, float eps, float neg_step);
/* x[0..n) = 0 */
void sl_vzero_f32(float *x, size_t n);

/* The ELU, SGD, Adam and zero kernels above can split large arrays over two
 * cores when the BLAS thread count is >= 2 (same bits: the split is
 * elementwise). Off unless SELUT_SPLIT_MIN=<elements> is set in the
 * environment: it measured no faster on the 2-core VM. These are their
 * one-thread bodies. */
void sl_velu_forward_serial_f32(float *y, const float *x, size_t n, float negcoef, float scale);
void sl_velu_backward_serial_f32(float *gx, const float *x, const float *gy, size_t n, float negcoef, float scale);
void sl_velu_backward_result_serial_f32(float *gx, const float *y, const float *gy, size_t n, float negcoef,
                                        float scale);
void sl_vsgd_serial_f32(float *p, const float *g, float *buf, size_t n, float lr, float wd, float mom, float damp1,
                        bool nesterov, bool first);
void sl_vadam_serial_f32(float *p, const float *g, float *m, float *v, size_t n, float decay_mul, float wd, float b1,
                         float b2, float one_b1, float one_b2, float bc2_sqrt, float eps, float neg_step);

#endif
