/* Embedding (torch.nn.Embedding, see norm.h): a row lookup forward, a
 * row scatter-add backward that skips padding_idx. Indices arrive as floats
 * holding exact integers, numbered from the module's index_base. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "norm.h"

typedef struct embedding_state {
  int64_t num, dim;
  int64_t padding; /* 0-based row, -1 for none */
  int base;        /* index_base of the input and of messages */
} embedding_state;

/* Checks every index; SL_ERANGE naming the first bad one as the caller wrote it. */
static int check_indices(const embedding_state *s, const sl_tensor *x, const char *what) {
  for (int64_t i = 0; i < x->numel; i++) {
    double v = (double)x->data[i] - s->base;
    if (!(v >= 0 && v < (double)s->num) || v != floor(v))
      return sl_fail(SL_ERANGE, "Embedding.%s: index %g at position %" PRId64 " %s %" PRId64 "..%" PRId64, what,
                     (double)x->data[i], i + s->base,
                     v == floor(v) || isnan(v) ? "is out of range" : "is not an integer in the range",
                     (int64_t)s->base, s->num - 1 + s->base);
  }
  return SL_OK;
}

/* x: (*) indices, w: (num, dim), y: (*, dim) */
static int embedding_forward(sl_module *m, const sl_tensor *x) {
  const embedding_state *s = m->state;
  char buf[160];
  if (x->ndim >= SL_MAX_DIMS)
    return sl_fail(SL_ESHAPE, "Embedding.forward: input %s has %d dims; at most %d (the output adds one)",
                   sl_shape_str(x, buf, sizeof buf), x->ndim, SL_MAX_DIMS - 1);
  int st = check_indices(s, x, "forward");
  if (st) return st;
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  shape[x->ndim] = s->dim;
  if ((st = sl_tensor_ensure(&m->output, x->ndim + 1, shape))) return st;
  const float *w = m->params[0]->data;
  for (int64_t i = 0; i < x->numel; i++) {
    int64_t row = (int64_t)x->data[i] - s->base;
    memcpy(m->output->data + i * s->dim, w + row * s->dim, (size_t)s->dim * sizeof(float));
  }
  return SL_OK;
}

/* gw[row] += gy[i] for every index i but padding_idx's; gx = 0 */
static int embedding_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  const embedding_state *s = m->state;
  char a[160], b[160];
  int st = check_indices(s, x, "backward");
  if (st) return st;
  if (gy->numel != x->numel * s->dim || gy->ndim != x->ndim + 1 || gy->shape[gy->ndim - 1] != s->dim)
    return sl_fail(SL_ESHAPE, "Embedding.backward: gradOutput shape %s does not match input %s and embedding_dim %"
                   PRId64, sl_shape_str(gy, a, sizeof a), sl_shape_str(x, b, sizeof b), s->dim);
  float *gw = m->grads[0]->data;
  for (int64_t i = 0; i < x->numel; i++) {
    int64_t row = (int64_t)x->data[i] - s->base;
    if (row == s->padding) continue;
    float *dst = gw + row * s->dim;
    const float *src = gy->data + i * s->dim;
    for (int64_t j = 0; j < s->dim; j++) dst[j] += src[j];
  }
  if (m->skip_grad_input) return SL_OK;
  if ((st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  memset(m->grad_input->data, 0, (size_t)x->numel * sizeof(float));
  return SL_OK;
}

static void embedding_destroy(sl_module *m) { sl_free(m->state); }

/* Embedding(10, 3, padding_idx=1): padding_idx numbered like the input */
static void embedding_repr(const sl_module *m, char *buf, size_t n) {
  const embedding_state *s = m->state;
  if (s->padding >= 0)
    snprintf(buf, n, "Embedding(%" PRId64 ", %" PRId64 ", padding_idx=%" PRId64 ")", s->num, s->dim,
             s->padding + s->base);
  else
    snprintf(buf, n, "Embedding(%" PRId64 ", %" PRId64 ")", s->num, s->dim);
}

static int embedding_hparams(const sl_module *m, sl_hparam *out) {
  const embedding_state *s = m->state;
  out[0] = (sl_hparam){"num_embeddings", SL_VALUE_INT, (double)s->num, SL_HP_POSITIONAL};
  out[1] = (sl_hparam){"embedding_dim", SL_VALUE_INT, (double)s->dim, SL_HP_POSITIONAL};
  if (s->padding < 0) return 2;
  out[2] = (sl_hparam){"padding_idx", SL_VALUE_INT, (double)(s->padding + s->base), 0};
  return 3;
}

/* nn.init leaves it alone: N(0, 1) is PyTorch's embedding init, fan-in rules do not apply */
static const sl_param_spec embedding_params[] = {{"weight", SL_INIT_KEEP}, {NULL, SL_INIT_KEEP}};

const sl_layer sl_embedding_layer = {.type = "Embedding", .forward = embedding_forward,
                                     .backward = embedding_backward, .destroy = embedding_destroy,
                                     .params = embedding_params, .hparams = embedding_hparams,
                                     .repr = embedding_repr};

sl_module *sl_embedding_new(int64_t num, int64_t dim, int64_t padding_idx, int index_base, sl_rng *rng) {
  if (num < 1 || dim < 1)
    return sl_fail_null(SL_EINVAL, "Embedding: num_embeddings and embedding_dim must be >= 1, got %" PRId64
                        " and %" PRId64, num, dim);
  int64_t pad = -1;
  if (padding_idx != SL_EMBEDDING_NO_PADDING) {
    /* PyTorch: -num <= padding_idx < num, negative from the end */
    int64_t p = padding_idx >= 0 ? padding_idx - index_base : padding_idx + num;
    if (padding_idx >= 0 ? !(p >= 0 && p < num) : !(padding_idx >= -num))
      return sl_fail_null(SL_EINVAL, "Embedding: padding_idx %" PRId64 " out of range %" PRId64 "..%" PRId64
                          " (or -%" PRId64 "..-1)", padding_idx, (int64_t)index_base, num - 1 + index_base, num);
    pad = p;
  }
  int64_t wshape[2] = {num, dim}, numel;
  if (sl_shape_check(2, wshape, &numel)) return NULL;
  sl_module *m = sl_module_new(&sl_embedding_layer);
  if (!m) return NULL;
  embedding_state *s = sl_malloc(sizeof *s);
  if (!s) goto fail;
  *s = (embedding_state){num, dim, pad, index_base};
  m->state = s;
  if (sl_module_add_param(m, "weight", 2, wshape)) goto fail;
  float *w = m->params[0]->data;
  if (rng)
    for (int64_t i = 0; i < numel; i++) w[i] = (float)sl_rng_normal(rng);
  if (pad >= 0) memset(w + pad * dim, 0, (size_t)dim * sizeof(float));
  return m;
fail:
  sl_module_release(m);
  return NULL;
}
