/*
 * GRU and LSTM (multi-layer, over a whole sequence) and their single-step
 * cells GRUCell and LSTMCell, matched to PyTorch: gate order (GRU r, z, n;
 * LSTM i, f, g, o), weight layouts (weight_ih_l<k> [G*hidden x in],
 * weight_hh_l<k> [G*hidden x hidden], biases [G*hidden]), state_dict names
 * (cells: weight_ih, weight_hh, bias_ih, bias_hh) and the default init
 * U(-1/sqrt(hidden), 1/sqrt(hidden)) for every parameter in that order.
 * docs/api.md ("Recurrent layers") describes the Lua side.
 */
#ifndef SL_RNN_H
#define SL_RNN_H
#include "nn.h"

typedef enum sl_rnn_mode { SL_RNN_GRU, SL_RNN_LSTM } sl_rnn_mode;

/* The deepest stack a GRU/LSTM module holds (4 parameters per layer). */
#define SL_RNN_MAX_LAYERS (SL_MAX_PARAMS / 4)

/* GRU / LSTM(input_size, hidden_size, num_layers, bias, batch_first,
 * dropout, bidirectional, proj_size). Inputs: (T, N, input_size), or
 * (N, T, input_size) with batch_first, or unbatched (T, input_size); states
 * are (num_layers, N, hidden) (batch_first does not apply to them; unbatched:
 * (num_layers, hidden)). Supported: dropout 0, bidirectional false,
 * proj_size 0 (SL_EINVAL naming the argument otherwise). Weights start as
 * PyTorch's default when rng != NULL, zeros otherwise. */
sl_module *sl_rnn_new(sl_rnn_mode mode, int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                      bool batch_first, double dropout, bool bidirectional, int64_t proj_size, sl_rng *rng);
/* GRUCell / LSTMCell(input_size, hidden_size, bias): one step, input
 * (N, input_size) or unbatched (input_size), states (N, hidden) / (hidden). */
sl_module *sl_rnn_cell_new(sl_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias, sl_rng *rng);

/* True for the four recurrent layer types; *mode and *cell describe it. */
bool sl_rnn_info(const sl_module *m, sl_rnn_mode *mode, bool *cell);

/* Forward with optional initial states (NULL: zeros; an LSTM takes h0 and
 * c0 together). Outputs stay owned by the module and are overwritten by the
 * next forward: *out is m->output (the sequence of the last layer's hidden
 * states; for a cell the new h), *hn the final hidden state of every layer
 * (for a cell: the same tensor as *out), *cn the final cell states (LSTM
 * types; NULL otherwise). Any output pointer may be NULL. */
int sl_rnn_forward(sl_module *m, const sl_tensor *x, const sl_tensor *h0, const sl_tensor *c0,
                   const sl_tensor **out, const sl_tensor **hn, const sl_tensor **cn);
/* The final states of the last forward (the module's buffers; *cn NULL for
 * a GRU; for a cell *hn is m->output). */
void sl_rnn_forward_results(const sl_module *m, const sl_tensor **hn, const sl_tensor **cn);
/* Backpropagation through time from the last forward (x: its input).
 * gout = dL/d(out), ghn = dL/d(h_n) (GRU/LSTM only: for a cell *out is h'
 * and its gradient is gout), gcn = dL/d(c_n) (LSTM types); each NULL counts
 * as zeros, not all of them. WRITES *gx = m->grad_input, *gh0 and *gc0
 * (the gradients of the initial states, also when they were omitted:
 * zeros were used) and ACCUMULATES the parameter gradients. */
int sl_rnn_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gout, const sl_tensor *ghn,
                    const sl_tensor *gcn, const sl_tensor **gx, const sl_tensor **gh0, const sl_tensor **gc0);

#endif
