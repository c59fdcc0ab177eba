/*
 * Matrix products with torch.matmul's rules on top of sl_sgemm_f32 (blas.h):
 * 1-D . 1-D, matrix-vector, 2-D, and batched 3-D+ products whose batch dims
 * broadcast. Shapes are validated before any BLAS call.
 */
#ifndef SL_MATMUL_H
#define SL_MATMUL_H
#include "tensor.h"

/* New tensor a @ b. Up to 2-D this is sl_matmul (same result bits). A 1-D
 * operand is promoted to [1 x k] (left) or [k x 1] (right) and that dim is
 * removed from the result; the batch dims (all but the last two) broadcast.
 * 1-D . 1-D gives a 1-element 1-D tensor (selut has no 0-D tensors). */
sl_tensor *sl_matmul_nd(const sl_tensor *a, const sl_tensor *b);
/* torch.bmm: a [B x n x m] @ b [B x m x p] -> [B x n x p], no broadcasting. */
sl_tensor *sl_bmm(const sl_tensor *a, const sl_tensor *b);

#endif
