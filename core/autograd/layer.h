/*
 * C layers on the autograd path: m(x) runs the layer's own forward kernel
 * and records one node whose backward is the layer's own backward (nn.h's
 * protocol), so no gradient is written twice.
 *
 * Parameter gradients: the node keeps the module in its context and the
 * layer's backward ACCUMULATES into m->grads[i], exactly as the explicit
 * m:backward does; the parameter tensors are not inputs of the node. Their
 * .grad (sl_ag_grad) is bound to m->grads[i] (sl_ag_layer_bind_grads), so
 * .grad, the optimizers (which hold m->grads) and zero_grad see one tensor,
 * and a parameter a user makes require grad and uses in tensor ops adds its
 * gradient into the same tensor.
 *
 * Per-forward state: layers flagged SL_LAYER_FORWARD_STATE (dropout keys,
 * batch statistics, pooling indices, a container's children outputs) keep
 * only the last forward's state. The node stamps the module's forward count;
 * a backward after another forward of the same module fails naming the
 * layer instead of using the wrong state. Stateless layers (Linear, the
 * activations, Conv, ...) can be used any number of times in one graph:
 * their backward reads only the saved input, the parameters and gy.
 */
#ifndef SL_AG_LAYER_H
#define SL_AG_LAYER_H
#include <stdbool.h>

#include "../nn/nn.h"
#include "autograd.h"

/* True when a call of m on x must record (the caller also checks its own
 * grad mode): x requires grad, or m (or a child) has parameters. */
bool sl_ag_layer_wants_record(const sl_module *m, const sl_tensor *x);

/* Runs m's forward on x and stores in *y a new tensor holding the output
 * (not the module's reused buffer). With record, *y gets a node named
 * "<Type>Backward" (x saved with its version stamp) whose backward runs m's
 * backward. Refused for an in-place activation when recording. On failure
 * *y is NULL. */
int sl_ag_layer_call(sl_module *m, sl_tensor *x, bool record, sl_tensor **y);

/* The functional form: ext[0..next) stand for m->params[0..next) (same
 * shapes): their values are copied into the module before the forward, they
 * are inputs of the node, and their gradients are the module's gradients of
 * this call (the module's grads are scratch). Used by nn.functional with a
 * private module (F.batch_norm's weight and bias). */
int sl_ag_layer_call_ext(sl_module *m, sl_tensor *x, sl_tensor *const *ext, int next, bool record,
                         sl_tensor **y);

/* Makes .grad of each parameter of m (recursively) the module's gradient
 * tensor m->grads[i]. */
int sl_ag_layer_bind_grads(sl_module *m);

#endif
