/* Flatten (torch.nn.Flatten): dims start..end merged into one. The output
 * and the input gradient are copies in the module's own buffers, so the
 * layer keeps the module protocol (outputs owned by the module, no header
 * made per step). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "conv.h"

typedef struct flatten_state {
  int start, end; /* as given: negative counts from the end */
} flatten_state;

/* Resolves the dims against x's rank (PyTorch's wrap rule; a 0-dim input is
 * not possible here). */
static int flatten_dims(const flatten_state *s, const sl_tensor *x, const char *what, int *a, int *b) {
  char buf[160];
  int n = x->ndim;
  *a = s->start < 0 ? s->start + n : s->start;
  *b = s->end < 0 ? s->end + n : s->end;
  if (*a < 0 || *a >= n || *b < 0 || *b >= n)
    return sl_fail(SL_ESHAPE, "Flatten.%s: start_dim %d / end_dim %d out of range for input %s (dims 0..%d, "
                   "or -%d..-1)", what, s->start, s->end, sl_shape_str(x, buf, sizeof buf), n - 1, n);
  if (*a > *b)
    return sl_fail(SL_ESHAPE, "Flatten.%s: start_dim %d comes after end_dim %d for input %s", what, s->start,
                   s->end, sl_shape_str(x, buf, sizeof buf));
  return SL_OK;
}

static int flatten_forward(sl_module *m, const sl_tensor *x) {
  int a, b, st = flatten_dims(m->state, x, "forward", &a, &b);
  if (st) return st;
  int64_t shape[SL_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < a; d++) shape[nd++] = x->shape[d];
  int64_t merged = 1;
  for (int d = a; d <= b; d++) merged *= x->shape[d]; /* <= numel: no overflow */
  shape[nd++] = merged;
  for (int d = b + 1; d < x->ndim; d++) shape[nd++] = x->shape[d];
  if ((st = sl_tensor_ensure(&m->output, nd, shape))) return st;
  return sl_tensor_copy(m->output, x);
}

static int flatten_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  char ga[160], xa[160];
  int a, b, st = flatten_dims(m->state, x, "backward", &a, &b);
  if (st) return st;
  if (gy->numel != x->numel)
    return sl_fail(SL_ESHAPE, "Flatten.backward: gradOutput shape %s does not match input %s",
                   sl_shape_str(gy, ga, sizeof ga), sl_shape_str(x, xa, sizeof xa));
  if (m->skip_grad_input) return SL_OK;
  if ((st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  return sl_tensor_copy(m->grad_input, gy);
}

static void flatten_destroy(sl_module *m) { sl_free(m->state); }

/* Flatten(start_dim=2, end_dim=-1): dims numbered from 1 as the Lua API
 * takes them (PyTorch prints start_dim=1 for the same layer). */
static void flatten_repr(const sl_module *m, char *buf, size_t n) {
  const flatten_state *s = m->state;
  snprintf(buf, n, "Flatten(start_dim=%d, end_dim=%d)", s->start >= 0 ? s->start + 1 : s->start,
           s->end >= 0 ? s->end + 1 : s->end);
}

const sl_layer sl_flatten_layer = {.type = "Flatten", .forward = flatten_forward, .backward = flatten_backward,
                                   .destroy = flatten_destroy, .repr = flatten_repr};

sl_module *sl_flatten_new(int start_dim, int end_dim) {
  if (start_dim < -SL_MAX_DIMS || start_dim >= SL_MAX_DIMS || end_dim < -SL_MAX_DIMS || end_dim >= SL_MAX_DIMS)
    return sl_fail_null(SL_EINVAL, "Flatten: start_dim %d and end_dim %d must be in -%d..%d", start_dim, end_dim,
                        SL_MAX_DIMS, SL_MAX_DIMS - 1);
  sl_module *m = sl_module_new(&sl_flatten_layer);
  if (!m) return NULL;
  flatten_state *s = sl_malloc(sizeof *s);
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  s->start = start_dim;
  s->end = end_dim;
  m->state = s;
  return m;
}

int sl_flatten_dims(const sl_module *m, int *start_dim, int *end_dim) {
  if (!m || m->vt != &sl_flatten_layer)
    return sl_fail(SL_EINVAL, "Flatten dims: module is a %s, not a Flatten", sl_module_type(m));
  const flatten_state *s = m->state;
  *start_dim = s->start;
  *end_dim = s->end;
  return SL_OK;
}
