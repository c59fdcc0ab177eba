/* MultiheadAttention (attention.h) with PyTorch's packed in-projection:
 * q/k/v = query/key/value @ in_proj_weight[part]^T + in_proj_bias[part]
 * (one sgemm each over all rows), heads gathered into contiguous
 * (N*H, L, E/H) blocks for the shared engine (attention_core.h), the
 * context scattered back to rows and projected by out_proj. Rows are
 * (l, n) pairs: row l*N + n (sequence first) or n*L + l (batch_first).
 * Buffers grow only; a steady shape allocates nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "attention_core.h"

typedef struct mha_state {
  int64_t E, H, hd;
  int wo, bo; /* parameter slots of out_proj.weight / out_proj.bias */
  double dropout;
  bool bias, batch_first;
  sl_attn_core c;
  /* head blocks (B, L|S, hd) and row blocks (rows, E) */
  float *qh, *kh, *vh, *ch, *gqh, *gkh, *gvh, *rows, *ctx;
  int64_t qh_cap, kh_cap, vh_cap, ch_cap, gqh_cap, gkh_cap, gvh_cap, rows_cap, ctx_cap;
  sl_tensor *weights, *gq, *gk, *gv;
  /* the last forward's geometry */
  bool done, batched;
  int64_t N, L, S;
} mha_state;

static const char *const OP = "MultiheadAttention";

static inline int64_t row_of(const mha_state *s, int64_t n, int64_t l, int64_t len) {
  return s->batch_first ? n * len + l : l * s->N + n;
}

/* rows (len*N, E) -> heads (N*H, len, hd) */
static void gather(float *dst, const float *src, const mha_state *s, int64_t len) {
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t l = 0; l < len; l++) {
      const float *r = src + row_of(s, n, l, len) * s->E;
      for (int64_t h = 0; h < s->H; h++) memcpy(dst + ((n * s->H + h) * len + l) * s->hd, r + h * s->hd, (size_t)s->hd * sizeof *dst);
    }
}

/* heads (N*H, len, hd) -> rows (len*N, E) */
static void scatter(float *dst, const float *src, const mha_state *s, int64_t len) {
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t l = 0; l < len; l++) {
      float *r = dst + row_of(s, n, l, len) * s->E;
      for (int64_t h = 0; h < s->H; h++) memcpy(r + h * s->hd, src + ((n * s->H + h) * len + l) * s->hd, (size_t)s->hd * sizeof *dst);
    }
}

static int check_inputs(sl_module *m, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const char *what) {
  mha_state *s = m->state;
  char s1[160], s2[160];
  if (q->ndim != 2 && q->ndim != 3)
    return sl_fail(SL_ESHAPE, "%s.%s: query should be an unbatched 2-D or batched 3-D tensor, got %s", OP, what,
                   sl_shape_str(q, s1, sizeof s1));
  if (k->ndim != q->ndim || v->ndim != q->ndim)
    return sl_fail(SL_ESHAPE, "%s.%s: key %s and value %s must have query's %d dims (query %s)", OP, what,
                   sl_shape_str(k, s1, sizeof s1), sl_shape_str(v, s2, sizeof s2), q->ndim,
                   sl_shape_str(q, (char[160]){0}, 160));
  if (!sl_tensor_same_shape(k, v))
    return sl_fail(SL_ESHAPE, "%s.%s: key shape %s does not match value shape %s", OP, what,
                   sl_shape_str(k, s1, sizeof s1), sl_shape_str(v, s2, sizeof s2));
  int nd = q->ndim;
  if (q->shape[nd - 1] != s->E || k->shape[nd - 1] != s->E)
    return sl_fail(SL_ESHAPE, "%s.%s: query %s and key %s must end with embed_dim %" PRId64, OP, what,
                   sl_shape_str(q, s1, sizeof s1), sl_shape_str(k, s2, sizeof s2), s->E);
  int bd = s->batch_first ? 0 : 1, sd = s->batch_first ? 1 : 0;
  if (nd == 3 && q->shape[bd] != k->shape[bd])
    return sl_fail(SL_ESHAPE, "%s.%s: query %s and key %s have different batch sizes (dim %d%s)", OP, what,
                   sl_shape_str(q, s1, sizeof s1), sl_shape_str(k, s2, sizeof s2), bd + 1,
                   s->batch_first ? ", batch_first" : "");
  s->batched = nd == 3;
  s->N = nd == 3 ? q->shape[bd] : 1;
  s->L = nd == 3 ? q->shape[sd] : q->shape[0];
  s->S = nd == 3 ? k->shape[sd] : k->shape[0];
  return SL_OK;
}

static int set_masks(mha_state *s, const sl_mha_opts *o) {
  sl_attn_core *c = &s->c;
  char s1[160], s2[160];
  c->madd = c->kpm = NULL;
  c->madd_batched = false;
  c->causal = o->is_causal;
  int st;
  if (o->key_padding_mask) {
    const sl_tensor *t = o->key_padding_mask;
    bool ok = s->batched ? t->ndim == 2 && t->shape[0] == s->N && t->shape[1] == s->S
                         : t->ndim == 1 && t->shape[0] == s->S;
    if (!ok) {
      int64_t want[2] = {s->N, s->S};
      return sl_fail(SL_ESHAPE, "%s: key_padding_mask shape %s, expected %s", OP, sl_shape_str(t, s1, sizeof s1),
                     sl_shape_str_raw(s->batched ? 2 : 1, s->batched ? want : want + 1, s2, sizeof s2));
    }
    bool is_bool;
    if ((st = sl_attn_mask_kind(t, o->mask_type, OP, "key_padding_mask", &is_bool)) ||
        (st = sl_attn_mask_to_add(&c->kpm_buf, &c->kpm_cap, t, is_bool, true)))
      return st;
    c->kpm = c->kpm_buf;
  }
  if (o->attn_mask) {
    const sl_tensor *t = o->attn_mask;
    int64_t B = s->N * s->H;
    bool two = t->ndim == 2 && t->shape[0] == s->L && t->shape[1] == s->S;
    bool three = t->ndim == 3 && t->shape[0] == B && t->shape[1] == s->L && t->shape[2] == s->S;
    if (!two && !three) {
      int64_t w2[2] = {s->L, s->S}, w3[3] = {B, s->L, s->S};
      return sl_fail(SL_ESHAPE, "%s: attn_mask shape %s, expected %s or %s", OP, sl_shape_str(t, s1, sizeof s1),
                     sl_shape_str_raw(2, w2, s2, sizeof s2), sl_shape_str_raw(3, w3, (char[160]){0}, 160));
    }
    bool is_bool;
    if ((st = sl_attn_mask_kind(t, o->mask_type, OP, "attn_mask", &is_bool)) ||
        (st = sl_attn_mask_to_add(&c->madd_buf, &c->madd_cap, t, is_bool, true)))
      return st;
    c->madd = c->madd_buf;
    c->madd_batched = three;
  }
  return SL_OK;
}

/* rows (n, E) = x (n, E) @ W[part]^T + b[part] */
static void project(float *dst, const float *x, int64_t n, const sl_module *m, int part) {
  const mha_state *s = m->state;
  int64_t E = s->E;
  const float *w = m->params[0]->data + part * E * E;
  if (s->bias) sl_vrows_fill_f32(dst, m->params[1]->data + part * E, n, E);
  sl_sgemm_f32(false, true, n, E, E, 1.0f, x, w, s->bias ? 1.0f : 0.0f, dst);
}

sl_mha_opts sl_mha_defaults(void) {
  return (sl_mha_opts){.mask_type = SL_MASK_AUTO, .need_weights = true, .average_attn_weights = true};
}

int sl_mha_forward(sl_module *m, const sl_tensor *query, const sl_tensor *key, const sl_tensor *value,
                   const sl_mha_opts *o, const sl_tensor **out, const sl_tensor **weights) {
  if (!m || !query || !key || !value || !o) return sl_fail(SL_EINVAL, "%s: NULL argument", OP);
  mha_state *s = m->state;
  sl_attn_core *c = &s->c;
  s->done = false;
  m->forwards++; /* the autograd path's stamp (its backward reads this call's weights) */
  int st = check_inputs(m, query, key, value, "forward");
  if (st || (st = set_masks(s, o))) return st;
  int64_t N = s->N, L = s->L, S = s->S, E = s->E, H = s->H, hd = s->hd, B = N * H;
  c->B = B;
  c->L = L;
  c->S = S;
  c->E = c->Ev = hd;
  c->H = H;
  c->scale = (float)(1.0 / sqrt((double)hd));
  c->p = m->training ? s->dropout : 0.0;
  int64_t maxrows = (L > S ? L : S) * N, pshape[3] = {B, L, S};
  if ((st = sl_attn_grow(&s->qh, &s->qh_cap, B * L * hd)) || (st = sl_attn_grow(&s->kh, &s->kh_cap, B * S * hd)) ||
      (st = sl_attn_grow(&s->vh, &s->vh_cap, B * S * hd)) || (st = sl_attn_grow(&s->ch, &s->ch_cap, B * L * hd)) ||
      (st = sl_attn_grow(&s->rows, &s->rows_cap, maxrows * E)) ||
      (st = sl_attn_grow(&s->ctx, &s->ctx_cap, L * N * E)) || (st = sl_tensor_ensure(&c->P, 3, pshape)) ||
      (st = sl_tensor_ensure(&m->output, query->ndim, query->shape)))
    return st;
  project(s->rows, query->data, L * N, m, 0);
  gather(s->qh, s->rows, s, L);
  project(s->rows, key->data, S * N, m, 1);
  gather(s->kh, s->rows, s, S);
  project(s->rows, value->data, S * N, m, 2);
  gather(s->vh, s->rows, s, S);
  if ((st = sl_attn_core_forward(c, s->qh, s->kh, s->vh, s->ch, m->rng))) return st;
  scatter(s->ctx, s->ch, s, L);
  /* out = ctx @ out_proj.weight^T + out_proj.bias */
  float *y = m->output->data;
  if (s->bias) sl_vrows_fill_f32(y, m->params[s->bo]->data, L * N, E);
  sl_sgemm_f32(false, true, L * N, E, E, 1.0f, s->ctx, m->params[s->wo]->data, s->bias ? 1.0f : 0.0f, y);
  *out = m->output;
  if (weights) *weights = NULL;
  if (o->need_weights && weights) {
    int64_t shp[4], nd = 0;
    if (s->batched) shp[nd++] = N;
    if (!o->average_attn_weights) shp[nd++] = H;
    shp[nd++] = L;
    shp[nd++] = S;
    if ((st = sl_tensor_ensure(&s->weights, (int)nd, shp))) return st;
    const float *P = c->P->data;
    float *w = s->weights->data;
    int64_t LS = L * S;
    if (!o->average_attn_weights) {
      memcpy(w, P, (size_t)(B * LS) * sizeof *w);
    } else {
      for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < LS; j++) {
          float sum = 0.0f;
          for (int64_t h = 0; h < H; h++) sum += P[(n * H + h) * LS + j];
          w[n * LS + j] = sum / (float)H;
        }
    }
    *weights = s->weights;
  }
  s->done = true;
  return SL_OK;
}

int sl_mha_backward(sl_module *m, const sl_tensor *query, const sl_tensor *key, const sl_tensor *value,
                    const sl_tensor *gout, const sl_tensor **gq, const sl_tensor **gk, const sl_tensor **gv) {
  if (!m || !query || !key || !value || !gout) return sl_fail(SL_EINVAL, "%s.backward: NULL argument", OP);
  mha_state *s = m->state;
  sl_attn_core *c = &s->c;
  char s1[160], s2[160];
  if (!s->done) return sl_fail(SL_EINVAL, "%s.backward: called before a successful forward", OP);
  int64_t N = s->N, L = s->L, S = s->S;
  int st = check_inputs(m, query, key, value, "backward");
  if (st) return st;
  if (s->N != N || s->L != L || s->S != S || !sl_tensor_same_shape(query, m->output))
    return sl_fail(SL_EINVAL, "%s.backward: input shapes differ from the last forward's; call forward first", OP);
  if (!sl_tensor_same_shape(gout, m->output))
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match output shape %s", OP,
                   sl_shape_str(gout, s1, sizeof s1), sl_shape_str(m->output, s2, sizeof s2));
  int64_t E = s->E, hd = s->hd, B = N * s->H;
  if ((st = sl_attn_grow(&s->gqh, &s->gqh_cap, B * L * hd)) || (st = sl_attn_grow(&s->gkh, &s->gkh_cap, B * S * hd)) ||
      (st = sl_attn_grow(&s->gvh, &s->gvh_cap, B * S * hd)) ||
      (st = sl_tensor_ensure(&s->gq, query->ndim, query->shape)) ||
      (st = sl_tensor_ensure(&s->gk, key->ndim, key->shape)) ||
      (st = sl_tensor_ensure(&s->gv, value->ndim, value->shape)))
    return st;
  float *W = m->params[0]->data, *gW = m->grads[0]->data, *gb = s->bias ? m->grads[1]->data : NULL;
  /* out_proj: gWo += gout^T ctx, gbo += colsum(gout), dctx = gout Wo (into rows) */
  sl_sgemm_f32(true, false, E, E, L * N, 1.0f, gout->data, s->ctx, 1.0f, m->grads[s->wo]->data);
  if (s->bias) sl_vcolsum_acc_f32(m->grads[s->bo]->data, gout->data, L * N, E);
  sl_sgemm_f32(false, false, L * N, E, E, 1.0f, gout->data, m->params[s->wo]->data, 0.0f, s->rows);
  gather(s->ch, s->rows, s, L);
  sl_attn_core_backward(c, s->qh, s->kh, s->vh, s->ch, s->gqh, s->gkh, s->gvh);
  /* in-projection, part by part: rows = d(projected), gW[part] += rows^T x,
   * gb[part] += colsum(rows), dx = rows W[part] */
  const sl_tensor *xs[3] = {query, key, value};
  const float *gh[3] = {s->gqh, s->gkh, s->gvh};
  sl_tensor *gx[3] = {s->gq, s->gk, s->gv};
  for (int part = 0; part < 3; part++) {
    int64_t len = part ? S : L, n = len * N;
    scatter(s->rows, gh[part], s, len);
    sl_sgemm_f32(true, false, E, E, n, 1.0f, s->rows, xs[part]->data, 1.0f, gW + part * E * E);
    if (gb) sl_vcolsum_acc_f32(gb + part * E, s->rows, n, E);
    sl_sgemm_f32(false, false, n, E, E, 1.0f, s->rows, W + part * E * E, 0.0f, gx[part]->data);
  }
  if (gq) *gq = s->gq;
  if (gk) *gk = s->gk;
  if (gv) *gv = s->gv;
  return SL_OK;
}

/* ---- the one-input layer protocol: self-attention m(x) = mha(x, x, x) ---- */

static int mha_forward1(sl_module *m, const sl_tensor *x) {
  sl_mha_opts o = sl_mha_defaults();
  o.need_weights = false;
  const sl_tensor *y;
  return sl_mha_forward(m, x, x, x, &o, &y, NULL);
}

static int mha_backward1(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  const sl_tensor *a, *b, *c;
  int st = sl_mha_backward(m, x, x, x, gy, &a, &b, &c);
  if (st || (st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  float *g = m->grad_input->data;
  for (int64_t i = 0; i < x->numel; i++) g[i] = a->data[i] + b->data[i] + c->data[i];
  return SL_OK;
}

static void mha_destroy(sl_module *m) {
  mha_state *s = m->state;
  if (!s) return;
  sl_attn_core_free(&s->c);
  float *bufs[] = {s->qh, s->kh, s->vh, s->ch, s->gqh, s->gkh, s->gvh, s->rows, s->ctx};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) sl_free(bufs[i]);
  sl_tensor_release(s->weights);
  sl_tensor_release(s->gq);
  sl_tensor_release(s->gk);
  sl_tensor_release(s->gv);
  sl_free(s);
}

static int mha_hparams(const sl_module *m, sl_hparam *out) {
  const mha_state *s = m->state;
  out[0] = (sl_hparam){"embed_dim", SL_VALUE_INT, (double)s->E, SL_HP_POSITIONAL};
  out[1] = (sl_hparam){"num_heads", SL_VALUE_INT, (double)s->H, SL_HP_POSITIONAL};
  out[2] = (sl_hparam){"dropout", SL_VALUE_FLOAT, s->dropout, 0};
  out[3] = (sl_hparam){"bias", SL_VALUE_BOOL, s->bias, 0};
  out[4] = (sl_hparam){"batch_first", SL_VALUE_BOOL, s->batch_first, 0};
  out[5] = (sl_hparam){"head_dim", SL_VALUE_INT, (double)s->hd, SL_HP_HIDDEN};
  return 6;
}

static const sl_param_spec mha_params[] = {{"in_proj_weight", SL_INIT_FAN},
                                           {"in_proj_bias", SL_INIT_ZERO},
                                           {"out_proj.weight", SL_INIT_FAN},
                                           {"out_proj.bias", SL_INIT_ZERO},
                                           {NULL, SL_INIT_KEEP}};

/* PyTorch's order: embed_dim, num_heads, dropout, bias, add_bias_kv,
 * add_zero_attn, kdim, vdim, batch_first (kdim/vdim 0 = None). */
static const sl_hparam mha_args[] = {{"embed_dim", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                     {"num_heads", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                     {"dropout", SL_VALUE_FLOAT, 0.0, 0},
                                     {"bias", SL_VALUE_BOOL, 1, 0},
                                     {"add_bias_kv", SL_VALUE_BOOL, 0, 0},
                                     {"add_zero_attn", SL_VALUE_BOOL, 0, 0},
                                     {"kdim", SL_VALUE_INT, 0, 0},
                                     {"vdim", SL_VALUE_INT, 0, 0},
                                     {"batch_first", SL_VALUE_BOOL, 0, 0},
                                     {NULL, SL_VALUE_FLOAT, 0, 0}};

static sl_module *mha_create(const double *a, sl_rng *rng);

const sl_layer sl_mha_layer = {.type = "MultiheadAttention", .flags = SL_LAYER_STOCHASTIC | SL_LAYER_FORWARD_STATE, .forward = mha_forward1,
                               .backward = mha_backward1, .destroy = mha_destroy, .params = mha_params,
                               .args = mha_args, .create = mha_create, .hparams = mha_hparams};

bool sl_mha_is(const sl_module *m) { return m && m->vt == &sl_mha_layer; }

static sl_module *mha_create(const double *a, sl_rng *rng) {
  if (!(fabs(a[0]) < 9e15 && fabs(a[1]) < 9e15)) return sl_fail_null(SL_EINVAL, "%s: embed_dim or num_heads out of range", OP);
  int64_t E = (int64_t)a[0];
  if (a[4] != 0) return sl_fail_null(SL_EINVAL, "%s: add_bias_kv is not supported", OP);
  if (a[5] != 0) return sl_fail_null(SL_EINVAL, "%s: add_zero_attn is not supported", OP);
  for (int i = 6; i < 8; i++)
    if (a[i] != 0 && a[i] != (double)E)
      return sl_fail_null(SL_EINVAL, "%s: %s (%.0f) different from embed_dim (%" PRId64 ") is not supported", OP,
                          mha_args[i].name, a[i], E);
  return sl_mha_new(E, (int64_t)a[1], a[2], a[3] != 0, a[8] != 0, rng);
}

sl_module *sl_mha_new(int64_t E, int64_t H, double dropout, bool bias, bool batch_first, sl_rng *rng) {
  if (E < 1 || H < 1)
    return sl_fail_null(SL_EINVAL, "%s: embed_dim and num_heads must be >= 1, got %" PRId64 " and %" PRId64, OP, E, H);
  if (E % H)
    return sl_fail_null(SL_EINVAL, "%s: embed_dim (%" PRId64 ") must be divisible by num_heads (%" PRId64 ")", OP, E, H);
  if (!(dropout >= 0.0 && dropout < 1.0))
    return sl_fail_null(SL_EINVAL, "%s: dropout must be in [0, 1), got %g", OP, dropout);
  if (dropout > 0.0 && !rng) return sl_fail_null(SL_EINVAL, "%s: dropout > 0 needs a generator", OP);
  sl_module *m = sl_module_new(&sl_mha_layer);
  if (!m) return NULL;
  mha_state *s = sl_malloc(sizeof *s);
  if (!s) goto fail;
  memset(s, 0, sizeof *s);
  *s = (mha_state){.E = E, .H = H, .hd = E / H, .wo = bias ? 2 : 1, .bo = 3, .dropout = dropout, .bias = bias, .batch_first = batch_first};
  m->state = s;
  m->rng = rng;
  int64_t win[2] = {3 * E, E}, bin = 3 * E, wout[2] = {E, E};
  if (sl_module_add_param(m, "in_proj_weight", 2, win)) goto fail;
  if (bias && sl_module_add_param(m, "in_proj_bias", 1, &bin)) goto fail;
  if (sl_module_add_param(m, "out_proj.weight", 2, wout)) goto fail;
  if (bias && sl_module_add_param(m, "out_proj.bias", 1, &E)) goto fail;
  if (rng) {
    /* xavier_uniform_ on in_proj_weight (fan_in E, fan_out 3E); out_proj as
     * Linear's default (kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(E))); biases 0 */
    float xb = (float)sqrt(6.0 / (double)(E + 3 * E)), lb = (float)(1.0 / sqrt((double)E));
    sl_rng_fill_uniform_f32(rng, m->params[0]->data, (size_t)(3 * E * E), -xb, xb);
    sl_rng_fill_uniform_f32(rng, m->params[s->wo]->data, (size_t)(E * E), -lb, lb);
  }
  return m;
fail:
  sl_module_release(m);
  return NULL;
}
