/*
 * selut: float32 tensors, layers, losses, optimizers, data and plots for
 * self-normalizing networks. The umbrella header for C users of the core.
 */
#ifndef SELUT_H
#define SELUT_H
#ifdef __cplusplus
extern "C" {
#endif

#include "tensor/error.h"
#include "tensor/alloc.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
#include "tensor/ops.h"
#include "tensor/broadcast.h"
#include "tensor/elementwise.h"
#include "tensor/reduce.h"
#include "tensor/blas.h"
#include "tensor/shape.h"
#include "tensor/matmul.h"
#include "tensor/sample.h"
#include "tensor/index.h"
#include "nn/nn.h"
#include "autograd/autograd.h"
#include "autograd/layer.h"
#include "autograd/loss.h"
#include "autograd/pool.h"
#include "nn/snn.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/norm.h"
#include "nn/rnn.h"
#include "nn/attention.h"
#include "io/io.h"
#include "io/onnx.h"
#include "viz/viz.h"
#include "rl/env.h"
#include "rl/buffer.h"
#include "rl/loss.h"
#include "rl/episode.h"

#define SELUT_VERSION "0.1.0"

#ifdef __cplusplus
}
#endif
#endif
