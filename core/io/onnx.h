/*
 * ONNX models: a writer that builds a graph node by node (weights as float
 * initializers) and saves it atomically, and a reader that validates a file
 * and answers questions about its graph. The wire format is protobuf-c's,
 * generated from ONNX's own onnx.proto (third_party/onnx, Apache-2.0). The
 * Lua half (scripts/onnx.lua) maps layers to nodes and back.
 */
#ifndef SL_ONNX_H
#define SL_ONNX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tensor/tensor.h"

typedef struct sl_onnx_writer sl_onnx_writer;

/* A new graph for the given opset (ai.onnx domain), IR version 8. NULL on OOM. */
sl_onnx_writer *sl_onnx_writer_new(int opset, const char *producer);
void sl_onnx_writer_free(sl_onnx_writer *w);
/* A float32 initializer (a copy of t's elements). */
int sl_onnx_add_initializer(sl_onnx_writer *w, const char *name, const sl_tensor *t);
/* An int64 initializer (shapes, axes, indices for Reshape, Slice, Gather). */
int sl_onnx_add_initializer_i64(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape,
                                const int64_t *data);
/* A graph input (float32, or int64 for indices) or output (float32); a dim
 * < 0 is the symbolic "N". */
int sl_onnx_add_input(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape, bool int64);
int sl_onnx_add_output(sl_onnx_writer *w, const char *name, int ndim, const int64_t *shape);
/* A node; attributes then go to the most recent node. */
int sl_onnx_add_node(sl_onnx_writer *w, const char *op, int nin, const char *const *in, int nout,
                     const char *const *out);
int sl_onnx_attr_float(sl_onnx_writer *w, const char *name, float v);
int sl_onnx_attr_int(sl_onnx_writer *w, const char *name, int64_t v);
int sl_onnx_attr_ints(sl_onnx_writer *w, const char *name, int n, const int64_t *v);
/* Serializes to path through a temporary file and rename: an existing file
 * is never left half written. */
int sl_onnx_save(sl_onnx_writer *w, const char *path);

/* ---- reading ---- */
typedef struct sl_onnx_model sl_onnx_model;

/* Reads and validates path: at most SL_ONNX_MAX_BYTES, parses, refuses
 * external data, non-float initializers, sizes that do not match their dims,
 * dims < 0 or element counts beyond the file, nodes of other domains, and
 * graphs whose nodes are not in topological order (a cycle or an unknown
 * input). Messages say which node/tensor and why. */
#define SL_ONNX_MAX_BYTES ((size_t)1 << 30)
sl_onnx_model *sl_onnx_load(const char *path);
void sl_onnx_model_free(sl_onnx_model *m);
int64_t sl_onnx_opset(const sl_onnx_model *m);
int sl_onnx_node_count(const sl_onnx_model *m);
const char *sl_onnx_node_op(const sl_onnx_model *m, int i);
int sl_onnx_node_ninputs(const sl_onnx_model *m, int i);
int sl_onnx_node_noutputs(const sl_onnx_model *m, int i);
const char *sl_onnx_node_input(const sl_onnx_model *m, int i, int k);
const char *sl_onnx_node_output(const sl_onnx_model *m, int i, int k);
int sl_onnx_node_nattrs(const sl_onnx_model *m, int i);
const char *sl_onnx_node_attr_name(const sl_onnx_model *m, int i, int k);
/* Kind of attribute k: 'f' float, 'i' int, 'I' ints, 's' string, 't' tensor, '?' other;
 * its value through the getters (n: the number of ints). */
char sl_onnx_node_attr_kind(const sl_onnx_model *m, int i, int k);
double sl_onnx_node_attr_number(const sl_onnx_model *m, int i, int k);
int sl_onnx_node_attr_ints(const sl_onnx_model *m, int i, int k, const int64_t **v);
/* A string attribute is bytes of *len (not NUL-terminated). */
const char *sl_onnx_node_attr_string(const sl_onnx_model *m, int i, int k, size_t *len);
/* Graph inputs that are not initializers, and graph outputs. */
int sl_onnx_graph_ninputs(const sl_onnx_model *m);
const char *sl_onnx_graph_input(const sl_onnx_model *m, int k);
int sl_onnx_graph_noutputs(const sl_onnx_model *m);
const char *sl_onnx_graph_output(const sl_onnx_model *m, int k);
/* The initializer called name as a new tensor (a 0-D one becomes [1]), or
 * NULL when there is none (no error is set then) or on OOM. */
sl_tensor *sl_onnx_initializer(const sl_onnx_model *m, const char *name);
bool sl_onnx_has_initializer(const sl_onnx_model *m, const char *name);
/* The declared rank (0 for a scalar, which the getters return as [1]) and
 * element type of an initializer; false when there is none. */
bool sl_onnx_initializer_info(const sl_onnx_model *m, const char *name, int *ndim, bool *int64);
/* A tensor attribute ('t', a Constant's value) as a new tensor, with its
 * declared rank and type; NULL on OOM. */
sl_tensor *sl_onnx_node_attr_tensor(const sl_onnx_model *m, int i, int k, int *ndim, bool *int64);

#endif
