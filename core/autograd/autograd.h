/*
 * Reverse-mode automatic differentiation (define-by-run). An op whose input
 * requires grad records a node: a backward function, the input tensors (the
 * edges), tensors saved for backward with their version stamps, and a few
 * op parameters. sl_ag_backward walks the nodes reachable from a root in
 * reverse topological order, accumulates into leaf .grad tensors, and frees
 * each node's inputs and saved tensors afterwards unless retain_graph is set.
 * No Lua inside: the bindings decide whether grad mode is on and call the
 * sl_ag_record_* helpers after computing the forward with the usual kernels.
 */
#ifndef SL_AUTOGRAD_H
#define SL_AUTOGRAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tensor/reduce.h"
#include "../tensor/tensor.h"

#define SL_AG_MAX_INPUTS 8
#define SL_AG_MAX_SAVED 4

typedef struct sl_ag_node sl_ag_node;

/* Backward of one node. gy has the node's output shape. gx[i] is NULL when
 * input i needs no gradient, else a tensor of input i's shape that the
 * function must overwrite (not accumulate) with d(out)/d(input i) . gy.
 * Returns SL_OK or a failure recorded with sl_fail. */
typedef int (*sl_ag_backward_fn)(sl_ag_node *n, const sl_tensor *gy, sl_tensor **gx);

struct sl_ag_node {
  const char *name;            /* "AddBackward", "MatmulBackward", ...: static storage */
  sl_ag_backward_fn backward;
  int refcount;                /* the output tensor's meta + consumers' input edges */
  int ninputs, nsaved;
  bool freed;                  /* inputs/saved released after a backward without retain_graph */
  sl_tensor *inputs[SL_AG_MAX_INPUTS];  /* retained; their meta holds grad_fn / grad */
  sl_tensor *saved[SL_AG_MAX_SAVED];    /* retained */
  uint64_t saved_version[SL_AG_MAX_SAVED];
  double f[4];                 /* op parameters (scalars, alpha, ...) */
  int64_t i[4];                /* op parameters (dims, flags) */
  int out_ndim;                /* output shape (for the incoming gradient) */
  int64_t out_shape[SL_MAX_DIMS];
  void *ctx;                   /* extension state (Lua Functions, C layers) */
  void (*ctx_free)(void *ctx); /* called once when the node drops its state (may be NULL) */
  char label[40];              /* storage for a name made at run time (n->name = n->label) */
  uint64_t ctx_inline[4];      /* room for a small ctx (a C layer's), freed with the node */
  /* engine scratch, valid during one sl_ag_backward */
  sl_tensor *gbuf;             /* accumulated gradient of the output */
  int pending;                 /* consumers still to deliver */
  bool ran;
  uint64_t mark;
  sl_ag_node *pool_next;       /* pool.c's free list */
};

/* Per-tensor autograd state, NULL in tensors that never touched autograd
 * (the explicit path pays one NULL pointer). Freed with the tensor header. */
struct sl_ag_meta {
  bool requires_grad;          /* a leaf that records, or a recorded result */
  bool retain_grad;            /* a non-leaf that keeps .grad */
  sl_tensor *grad;             /* accumulated gradient (+=), NULL until the first backward */
  sl_ag_node *grad_fn;         /* NULL for leaves */
  /* pool.c: a tensor made by sl_ag_tensor_empty goes back to its pool */
  bool pooled;
  int64_t pool_numel;          /* its numel and data when made: a resized tensor is not cached */
  const float *pool_data;
  size_t pool_bytes;           /* header, storage, data and this meta, as charged */
  const void *pool;            /* the pool that made it */
  void *pool_next;             /* pool.c's free lists */
};

/* ---- tensor state ---- */
/* The tensor's meta, created (zeroed) when absent; NULL on allocation failure. */
struct sl_ag_meta *sl_ag_meta_of(sl_tensor *t);
bool sl_ag_requires_grad(const sl_tensor *t);
bool sl_ag_is_leaf(const sl_tensor *t);        /* no grad_fn */
sl_tensor *sl_ag_grad(const sl_tensor *t);     /* borrowed; NULL when none */
sl_ag_node *sl_ag_grad_fn(const sl_tensor *t); /* borrowed; NULL for leaves */
/* requires_grad_ : refused (SL_EINVAL) on a non-leaf. */
int sl_ag_set_requires_grad(sl_tensor *t, bool on);
int sl_ag_set_retain_grad(sl_tensor *t);
/* Replaces t's .grad (NULL clears it); retains g. Shape must match. */
int sl_ag_set_grad(sl_tensor *t, sl_tensor *g);

/* ---- recording ---- */
/* True if any of the n tensors requires grad (the caller also checks that
 * grad mode is on). */
bool sl_ag_any_requires_grad(sl_tensor *const *ts, int n);
/* Makes a node named name for output y over inputs (retained), sets it as
 * y's grad_fn and y.requires_grad. Returns the node (borrowed: y owns it) or
 * NULL on allocation failure. Save tensors with sl_ag_save afterwards. */
sl_ag_node *sl_ag_record(const char *name, sl_ag_backward_fn fn, sl_tensor *y, sl_tensor *const *inputs,
                         int ninputs);
/* Saves t (retained) with its current version stamp. */
int sl_ag_save(sl_ag_node *n, sl_tensor *t);
/* The i-th saved tensor; fails naming the node when it was modified in
 * place since it was saved, or when the graph was freed. */
int sl_ag_saved(sl_ag_node *n, int i, sl_tensor **out);
/* An in-place op on t: refused on a leaf that requires grad (grad mode on),
 * otherwise bumps t's version so nodes that saved it refuse to backward. */
int sl_ag_check_inplace(sl_tensor *t, const char *op, bool grad_mode);

/* ---- backward ---- */
/* Backpropagates from root with gradient g (NULL: root must have one
 * element, the gradient is 1). Leaves that require grad (and tensors with
 * retain_grad) accumulate into .grad. With retain_graph false, every
 * visited node drops its inputs and saved tensors. */
int sl_ag_backward(sl_tensor *root, const sl_tensor *g, bool retain_graph);
/* Gradients of root w.r.t. inputs[0..n), written as new tensors into out[]
 * (NULL for an input that root does not depend on); .grad is untouched. */
int sl_ag_grad_of(sl_tensor *root, const sl_tensor *g, sl_tensor *const *inputs, int n, sl_tensor **out,
                  bool retain_graph);

sl_ag_node *sl_ag_node_retain(sl_ag_node *n);
void sl_ag_node_release(sl_ag_node *n);

/* ---- recorded tensor ops (forward already computed into y) ---- */
/* y = a (op) b with NumPy broadcasting; the gradient of a broadcast operand
 * is summed over the dims it was broadcast along. */
enum sl_ag_binop { SL_AG_ADD, SL_AG_SUB, SL_AG_MUL, SL_AG_DIV, SL_AG_POW, SL_AG_MAXIMUM, SL_AG_MINIMUM };
int sl_ag_record_binop(enum sl_ag_binop op, sl_tensor *y, sl_tensor *a, sl_tensor *b);
/* y = a (op) s, or s (op) a when scalar_left. */
int sl_ag_record_scalar(enum sl_ag_binop op, sl_tensor *y, sl_tensor *a, double s, bool scalar_left);
enum sl_ag_unop { SL_AG_NEG, SL_AG_EXP, SL_AG_LOG, SL_AG_SQRT, SL_AG_ABS, SL_AG_TANH, SL_AG_SIGMOID,
                  SL_AG_SELU, SL_AG_RELU, SL_AG_ELU, SL_AG_CLONE, SL_AG_VIEW, SL_AG_LOG1P, SL_AG_EXPM1,
                  SL_AG_RSQRT, SL_AG_SIN, SL_AG_COS, SL_AG_STEP /* sign floor ceil round: gradient 0 */ };
/* y = op(a); alpha is ELU's alpha (else ignored). */
int sl_ag_record_unary(enum sl_ag_unop op, sl_tensor *y, sl_tensor *a, double alpha);
/* y = sum/mean of a: over everything (dim < 0) or over dim (0-based). */
int sl_ag_record_sum(sl_tensor *y, sl_tensor *a, int dim, bool mean);
/* y = a @ b (sl_matmul's 1-D/2-D rules). */
int sl_ag_record_matmul(sl_tensor *y, sl_tensor *a, sl_tensor *b);
/* y = 2-D transpose of a. */
int sl_ag_record_transpose(sl_tensor *y, sl_tensor *a);
/* y = narrow(a, dim, start, length). */
int sl_ag_record_narrow(sl_tensor *y, sl_tensor *a, int dim, int64_t start, int64_t length);

/* ---- more recorded ops: elementwise (ops_elementwise.c), reductions
 * (ops_reduce.c), shape and batched products (ops_shape.c) ---- */
/* dst = src summed over the dims src was broadcast along to reach its shape
 * (dst's shape broadcasts to src's): the gradient of a broadcast operand. */
int sl_ag_sum_to(sl_tensor *dst, const sl_tensor *src);
/* y = where(cond, a, b); a or b NULL when it was a number (a constant). */
int sl_ag_record_where(sl_tensor *y, sl_tensor *cond, sl_tensor *a, sl_tensor *b);
/* y = clamp(a, lo, hi), either bound optional. */
int sl_ag_record_clamp(sl_tensor *y, sl_tensor *a, bool has_lo, float lo, bool has_hi, float hi);
/* y = op of a over everything (dim < 0) or along dim, for prod var std max
 * min logsumexp norm (sum and mean: sl_ag_record_sum). idx: max/min along a
 * dim, the 0-based positions the forward picked (copied; the gradient goes
 * there); the all-element max/min splits it evenly among ties (PyTorch). */
int sl_ag_record_reduce(sl_reduce_op op, sl_tensor *y, sl_tensor *a, int dim, const sl_reduce_opts *o,
                        const sl_tensor *idx);
/* y = softmax or log_softmax of a along dim. */
int sl_ag_record_softmax(sl_tensor *y, sl_tensor *a, int dim, bool log);
/* y = a with dims reordered (y's dim k is a's dim perm[k]); name is
 * "PermuteBackward" or "TransposeBackward". */
int sl_ag_record_permute(sl_tensor *y, sl_tensor *a, const int *perm, const char *name);
/* y = a expanded (broadcast) to y's shape. */
int sl_ag_record_expand(sl_tensor *y, sl_tensor *a);
/* y = a's index i along dim, that dim removed (or kept, for a 1-D a). */
int sl_ag_record_select(sl_tensor *y, sl_tensor *a, int dim, int64_t i);
/* y = piece [start, start + length) of a along dim, one node per piece of
 * split/chunk (name "SplitBackward"). */
int sl_ag_record_piece(sl_tensor *y, sl_tensor *a, int dim, int64_t start, int64_t length);
/* y = cat(ts, dim) or, with stack, stack(ts, dim). More than
 * SL_AG_MAX_INPUTS inputs are grouped under intermediate cat nodes. */
int sl_ag_record_cat(sl_tensor *y, sl_tensor *const *ts, int n, int dim, bool stack);
/* y = a @ b with torch.matmul's rules, batched (3-D+ operands, broadcast
 * batch dims), bmm included; the 1-D/2-D cases go to sl_ag_record_matmul. */
int sl_ag_record_matmul_nd(sl_tensor *y, sl_tensor *a, sl_tensor *b);

/* ---- recorded indexing ops (ops_index.c; core/tensor/index.h) ----
 * idx (indices numbered from base) is saved with its version stamp; it
 * gets no gradient. */
/* y = index_select(x, dim, idx): gx = zeros with gy's slices added at idx. */
int sl_ag_record_index_select(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, int base);
/* y = gather(x, dim, idx): gx = zeros scatter_add'ed with gy. */
int sl_ag_record_gather(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, int base);
/* y = scatter_add(x, dim, idx, src): gx = gy; gsrc = gy gathered at idx
 * (0 where src extends beyond idx). */
int sl_ag_record_scatter_add(sl_tensor *y, sl_tensor *x, int dim, sl_tensor *idx, sl_tensor *src, int base);
/* y = masked_fill(x, mask, v): gx = gy where the mask is 0, summed over the
 * dims x was broadcast along. */
int sl_ag_record_masked_fill(sl_tensor *y, sl_tensor *x, sl_tensor *mask);

#endif
