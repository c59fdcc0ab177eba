/*
 * The data movement around Conv1d/Conv2d's products (internal to core/nn):
 * im2col and its adjoint col2im, the copies between the product's layout
 * [out x nb x L] and the tensor's [nb x out x L], the bias fill and the bias
 * gradient. Each splits over selut's two threads (sl_par_pieces) in pieces
 * whose results do not depend on the split: copies, or sums whose every
 * element stays in one piece and keeps its order. Same bits at 1 and 2
 * threads, and the same bits as the serial loops they replaced.
 */
#ifndef SL_CONV_UNFOLD_H
#define SL_CONV_UNFOLD_H
#include <stdbool.h>
#include <stdint.h>

/* One group's geometry, (h, w) per spatial pair; Conv1d has h = oh = 1. */
typedef struct sl_unfold {
  int64_t cin, cg; /* input channels in a sample, in a group */
  int64_t k[2], stride[2], pad[2], dil[2];
  int64_t h, w, oh, ow;
} sl_unfold;

/* Floats of scratch sl_col2im needs in `keep` (0: none). */
int64_t sl_unfold_keep_floats(const sl_unfold *u);
/* col (cg*kh*kw, nb*L) from channels c0.. of nb samples starting at x
 * (each sample cin*h*w floats). */
void sl_im2col(float *col, const float *x, const sl_unfold *u, int64_t c0, int64_t nb);
/* The adjoint: the planes of channels c0..c0+cg-1 of nb samples of gx are
 * zeroed, then receive col's contributions (each element in the order of
 * col's rows). keep: sl_unfold_keep_floats floats of scratch. */
void sl_col2im(float *gx, const float *col, const sl_unfold *u, int64_t c0, int64_t nb, float *keep);
/* y[sm][o0 + o] (L floats each; a sample has cout rows) = t[o][sm] (t is
 * og x nb*L), for o < og, sm < nb. */
void sl_conv_scatter(float *y, const float *t, int64_t cout, int64_t o0, int64_t og, int64_t nb, int64_t l);
/* The reverse: t[o][sm] = gy[sm][o0 + o]. */
void sl_conv_gather(float *t, const float *gy, int64_t cout, int64_t o0, int64_t og, int64_t nb, int64_t l);
/* Row o of t (og rows of width floats) = b[o]. */
void sl_conv_bias_fill(float *t, const float *b, int64_t og, int64_t width);
/* gb[o] += the sum of gy's channel o over n samples and L positions, in
 * double, samples then positions in order. */
void sl_conv_bias_grad(float *gb, const float *gy, int64_t cout, int64_t n, int64_t l);

#endif
