/*
 * LayerNorm, GroupNorm and Embedding, matched to PyTorch (names, layouts,
 * defaults, state_dict names). LayerNorm and GroupNorm normalize with the
 * statistics of each sample (no running state; the same in training and
 * evaluation); Embedding looks rows of its weight up by index.
 */
#ifndef SL_NORM_H
#define SL_NORM_H
#include "nn.h"

/* LayerNorm over the last ndim dims of the input, which must equal shape
 * (1 <= ndim <= SL_MAX_DIMS - 1): mean and biased variance per row,
 * y = (x - mean) / sqrt(var + eps) * weight + bias with weight (ones) and
 * bias (zeros) of that shape when affine. SL_EINVAL for sizes < 1 or
 * eps <= 0; forward: SL_ESHAPE when the input does not end with shape. */
sl_module *sl_layernorm_new(int ndim, const int64_t *shape, double eps, bool affine);

/* GroupNorm over (N, C, *): the C channels in num_groups groups, each
 * sample's group normalized with its own mean and biased variance; weight
 * (ones) and bias (zeros) per channel when affine. SL_EINVAL when
 * num_groups does not divide num_channels. */
sl_module *sl_groupnorm_new(int64_t num_groups, int64_t num_channels, double eps, bool affine);

/* Embedding(num_embeddings, embedding_dim): weight (num, dim) from N(0, 1)
 * (PyTorch's default) when rng is given, zeros otherwise. The input holds
 * indices numbered from index_base (0 for C, 1 for Lua) as exact integers
 * in floats, of any shape; the output has the input's shape plus dim.
 * padding_idx (numbered from index_base too; negative counts from the end
 * as in PyTorch; SL_EMBEDDING_NO_PADDING for none): that row starts at zero
 * and gets no gradient. forward: SL_ERANGE naming the index, its position
 * and the range for an index out of range or not an integer. The input
 * gradient is zeros (indices are not differentiable). */
#define SL_EMBEDDING_NO_PADDING INT64_MIN
sl_module *sl_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx, int index_base,
                            sl_rng *rng);

#endif
