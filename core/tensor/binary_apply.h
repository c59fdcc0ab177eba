/*
 * The scalar definition of each binary op (internal to core/tensor): the
 * elementwise loops (elementwise.c) and the partial lines of the streaming
 * stores (stream.c) use these expressions, so they give the same bits.
 */
#ifndef SL_BINARY_APPLY_H
#define SL_BINARY_APPLY_H
#include <math.h>

#include "elementwise.h"

static inline float sl_binary_apply(sl_binary_op op, float a, float b) {
  switch (op) {
  case SL_ADD: return a + b;
  case SL_SUB: return a - b;
  case SL_MUL: return a * b;
  case SL_DIV: return a / b;
  case SL_POW: return powf(a, b);
  /* NaN propagates from either side (torch.maximum / torch.minimum) */
  case SL_MAXIMUM: return a != a ? a : b != b ? b : a > b ? a : b;
  case SL_MINIMUM: return a != a ? a : b != b ? b : a < b ? a : b;
  case SL_EQ: return a == b ? 1.0f : 0.0f;
  case SL_NE: return a != b ? 1.0f : 0.0f;
  case SL_LT: return a < b ? 1.0f : 0.0f;
  case SL_LE: return a <= b ? 1.0f : 0.0f;
  case SL_GT: return a > b ? 1.0f : 0.0f;
  case SL_GE: return a >= b ? 1.0f : 0.0f;
  default: return 0.0f;
  }
}

#endif
