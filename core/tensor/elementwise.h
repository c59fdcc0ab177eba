/*
 * Elementwise ops with PyTorch's float32 semantics: binary arithmetic and
 * comparisons with NumPy broadcasting, where, unary math and clamp. Outputs
 * are passed in (destination first) with the broadcast shape; an output may
 * alias an input of its own shape (the in-place twins). The *_new forms
 * allocate the result (refcount 1) or return NULL with sl_last_error set.
 */
#ifndef SL_ELEMENTWISE_H
#define SL_ELEMENTWISE_H
#include <stdbool.h>

#include "tensor.h"

typedef enum sl_binary_op {
  SL_ADD, SL_SUB, SL_MUL, SL_DIV, SL_POW, SL_MAXIMUM, SL_MINIMUM,
  SL_EQ, SL_NE, SL_LT, SL_LE, SL_GT, SL_GE, /* 1.0 where true, 0.0 where false */
  SL_BINARY_COUNT
} sl_binary_op;

typedef enum sl_unary_op {
  SL_NEG, SL_ABS, SL_SIGN, SL_EXP, SL_LOG, SL_LOG1P, SL_EXPM1, SL_SQRT, SL_RSQRT, SL_TANH,
  SL_SIGMOID, SL_SIN, SL_COS, SL_FLOOR, SL_CEIL, SL_ROUND, /* round: half to even, like torch.round */
  SL_UNARY_COUNT
} sl_unary_op;

/* "add", "pow", "eq", ...; "exp", "round", ... (the Lua method names). */
const char *sl_binary_name(sl_binary_op op);
const char *sl_unary_name(sl_unary_op op);

/* y = a (op) b, broadcast; y must have the broadcast shape of a and b. */
int sl_binary(sl_binary_op op, sl_tensor *y, const sl_tensor *a, const sl_tensor *b);
sl_tensor *sl_binary_new(sl_binary_op op, const sl_tensor *a, const sl_tensor *b);
/* y = a (op) s, or s (op) a when scalar_left; y has a's shape. */
int sl_binary_scalar(sl_binary_op op, sl_tensor *y, const sl_tensor *a, float s, bool scalar_left);
sl_tensor *sl_binary_scalar_new(sl_binary_op op, const sl_tensor *a, float s, bool scalar_left);

/* y = cond != 0 ? a : b, the three broadcast together. */
int sl_where(sl_tensor *y, const sl_tensor *cond, const sl_tensor *a, const sl_tensor *b);
sl_tensor *sl_where_new(const sl_tensor *cond, const sl_tensor *a, const sl_tensor *b);

/* y = op(x), same numel. */
int sl_unary(sl_unary_op op, sl_tensor *y, const sl_tensor *x);
sl_tensor *sl_unary_new(sl_unary_op op, const sl_tensor *x);

/* y = min(max(x, lo), hi) with either bound optional (NULL-like: has_lo /
 * has_hi false); a NaN bound or lo > hi... NaN bounds are refused
 * (SL_EINVAL); lo > hi gives hi everywhere, as in PyTorch. NaN in x stays. */
int sl_clamp(sl_tensor *y, const sl_tensor *x, bool has_lo, float lo, bool has_hi, float hi);

#endif
