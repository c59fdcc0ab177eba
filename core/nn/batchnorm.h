/*
 * BatchNorm1d, matched to PyTorch (torch.nn.BatchNorm1d): the baseline the
 * SNN paper compares against. Inputs (N, C) or (N, C, L); statistics per
 * channel C over N (and L). Training mode normalizes with the batch mean and
 * biased variance and updates the running statistics with the unbiased one;
 * evaluation mode uses the running statistics.
 */
#ifndef SL_BATCHNORM_H
#define SL_BATCHNORM_H
#include "nn.h"

typedef struct sl_batchnorm_opts {
  double eps;               /* 1e-5 */
  double momentum;          /* 0.1: running = (1 - momentum) running + momentum batch */
  bool affine;              /* true: learnable weight (ones) and bias (zeros) */
  bool track_running_stats; /* true: keep running_mean (zeros) / running_var (ones) */
} sl_batchnorm_opts;

sl_batchnorm_opts sl_batchnorm_defaults(void);

/* SL_EINVAL (naming the value) for num_features < 1, eps <= 0 or momentum
 * outside [0, 1]. forward: SL_ESHAPE when x is not (N, C[, L]) with C =
 * num_features, SL_EINVAL for one value per channel in training mode
 * (PyTorch's "Expected more than 1 value per channel when training").
 * backward: the gradient of the mode the last forward ran in. */
sl_module *sl_batchnorm1d_new(int64_t num_features, sl_batchnorm_opts opts);
/* BatchNorm2d: the same over (N, C, H, W), statistics per channel over N, H
 * and W; the functions below take either. */
sl_module *sl_batchnorm2d_new(int64_t num_features, sl_batchnorm_opts opts);

/* The module's number of features, running statistics (borrowed; NULL when not tracked) and
 * options. SL_EINVAL when m is not a BatchNorm1d. */
int sl_batchnorm_state(const sl_module *m, int64_t *num_features, sl_tensor **running_mean, sl_tensor **running_var,
                       int64_t *num_batches_tracked, sl_batchnorm_opts *opts);

/* The buffers PyTorch's state_dict holds (borrowed; all NULL when
 * track_running_stats is off): running_mean and running_var [C], and
 * num_batches_tracked, a [1] tensor holding the integer count (PyTorch: a
 * 0-dim int64). The count stops at SL_BATCHNORM_MAX_COUNT = 2^24, the last
 * integer float32 counts exactly to (PyTorch uses it only for momentum=None,
 * which selut does not offer). A module's checkpoint writes it as I64 with
 * shape []. Writing into these tensors (selut.load) changes the module's
 * state. SL_EINVAL when m is not a BatchNorm1d. */
#define SL_BATCHNORM_MAX_COUNT 16777216.0f
int sl_batchnorm_buffers(const sl_module *m, sl_tensor **running_mean, sl_tensor **running_var,
                         sl_tensor **num_batches_tracked);

/* Synchronized batch statistics (PyTorch's SyncBatchNorm, for data
 * parallelism): with a reducer set, a training forward sums the per-channel
 * counts and sums, then the squared deviations from the global mean, over
 * every process through reduce(ctx, buf, n) (an in-place elementwise sum of
 * n doubles across processes, SL_OK or an error set with sl_fail), and the
 * backward sums its two per-channel gradient sums the same way, so every
 * process normalizes with the statistics of the global batch and gets the
 * input gradient of the global batch; the weight and bias gradients stay the
 * process's own sums (the gradient allreduce adds them up). Every training
 * forward and backward is then collective. NULL reduce: local statistics. */
typedef sl_reduce_fn sl_batchnorm_reduce_fn; /* nn.h */
int sl_batchnorm_set_reducer(sl_module *m, sl_batchnorm_reduce_fn reduce, void *ctx);

#endif
