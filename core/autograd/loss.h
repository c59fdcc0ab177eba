/*
 * Losses on the autograd path (nn.functional's cross_entropy, mse_loss,
 * nll_loss): *y is a new [1] tensor holding the loss (mean over the batch,
 * or the sum with sum = true); with record it gets a node whose backward
 * runs the loss's gradient kernel (core/nn/loss.c). Labels are class
 * indices stored as floats, numbered from label_base (1 for Lua). On
 * failure *y is NULL.
 */
#ifndef SL_AG_LOSS_H
#define SL_AG_LOSS_H
#include <stdbool.h>

#include "autograd.h"

int sl_ag_cross_entropy(sl_tensor *logits, sl_tensor *labels, int label_base, bool sum, bool record, sl_tensor **y);
int sl_ag_mse_loss(sl_tensor *pred, sl_tensor *target, bool sum, bool record, sl_tensor **y);
/* logp: [N x C] log-probabilities; the loss is -mean(logp[i, label_i]). */
int sl_ag_nll_loss(sl_tensor *logp, sl_tensor *labels, int label_base, bool sum, bool record, sl_tensor **y);

#endif
