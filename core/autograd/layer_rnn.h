/*
 * The recurrent layers (core/nn/rnn.h) on the autograd path: m(x[, h0[, c0]])
 * with several outputs. One node runs the layer's BPTT; its output is one
 * flat tensor holding out, h_n and c_n one after the other, and the results
 * are recorded views of its pieces (narrow + view), so the engine sums the
 * gradients reaching any of them into that node's one incoming gradient
 * (zeros for an unused result) and the node splits it again.
 *
 * Like the other C layers (layer.h): parameter gradients accumulate into
 * m->grads (bound as the parameters' .grad); the node stamps the module's
 * forward count, and a backward after another forward of the same module
 * fails naming the layer (the BPTT reads the activations of the last
 * forward).
 */
#ifndef SL_AG_LAYER_RNN_H
#define SL_AG_LAYER_RNN_H
#include <stdbool.h>

#include "../nn/rnn.h"
#include "autograd.h"

/* Runs the forward (h0, c0 may be NULL) and stores new tensors (not the
 * module's buffers) in *out, *hn (GRU/LSTM only; NULL for a cell) and *cn
 * (LSTM types; NULL otherwise). With record, they are recorded as described
 * above. On failure all are NULL. */
int sl_ag_rnn_call(sl_module *m, sl_tensor *x, sl_tensor *h0, sl_tensor *c0, bool record, sl_tensor **out,
                   sl_tensor **hn, sl_tensor **cn);

#endif
