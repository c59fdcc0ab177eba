/* Scaled dot-product attention (attention.h). One engine serves
 * F.scaled_dot_product_attention and MultiheadAttention (mha.c): B
 * independent (L x E) queries against (S x E) keys, the scores through
 * sgemm (alpha = scale), masks added as floats, the softmax per row in
 * float after subtracting the row's max (sums in double), dropout from the
 * caller's generator, then the weights times the values through sgemm.
 * Buffers grow only, so a steady shape allocates nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "attention_core.h"

int sl_attn_grow(float **p, int64_t *cap, int64_t n) {
  if (n <= *cap) return SL_OK;
  float *q = sl_malloc((size_t)n * sizeof *q);
  if (!q) return sl_last_status();
  sl_free(*p);
  *p = q;
  *cap = n;
  return SL_OK;
}

void sl_attn_core_free(sl_attn_core *c) {
  sl_free(c->A);
  sl_free(c->G);
  sl_free(c->madd_buf);
  sl_free(c->kpm_buf);
  sl_tensor_release(c->P);
  memset(c, 0, sizeof *c);
}

/* Reads a mask as boolean (values 0 / 1 only) or additive; AUTO decides by
 * the values. */
int sl_attn_mask_kind(const sl_tensor *t, sl_mask_type type, const char *op, const char *name, bool *is_bool) {
  if (type == SL_MASK_FLOAT) {
    *is_bool = false;
    return SL_OK;
  }
  for (int64_t i = 0; i < t->numel; i++) {
    float v = t->data[i];
    if (v != 0.0f && v != 1.0f) {
      if (type == SL_MASK_BOOL)
        return sl_fail(SL_EINVAL, "%s: %s is a boolean mask (mask_type 'bool') but holds %g at element %" PRId64
                                  " (expected 0 or 1)", op, name, (double)v, i + 1);
      *is_bool = false;
      return SL_OK;
    }
  }
  *is_bool = true;
  return SL_OK;
}

/* One mask value as an additive term: boolean masks give 0 or -inf
 * (masked_one: which of 0 / 1 removes the key). */
static inline float mask_term(float v, bool is_bool, bool masked_one) {
  if (!is_bool) return v;
  return ((v != 0.0f) == masked_one) ? -INFINITY : 0.0f;
}

int sl_attn_mask_to_add(float **dst, int64_t *cap, const sl_tensor *t, bool is_bool, bool masked_one) {
  int st = sl_attn_grow(dst, cap, t->numel);
  if (st) return st;
  for (int64_t i = 0; i < t->numel; i++) (*dst)[i] = mask_term(t->data[i], is_bool, masked_one);
  return SL_OK;
}

/* Row i of batch b: scores (already scaled) plus masks, softmax in place. */
static void softmax_row(float *r, const sl_attn_core *c, int64_t b, int64_t i) {
  int64_t S = c->S;
  if (c->madd) {
    const float *m = c->madd + (c->madd_batched ? b * c->L * S : 0) + i * S;
    for (int64_t j = 0; j < S; j++) r[j] += m[j];
  }
  if (c->kpm) {
    const float *m = c->kpm + (b / c->H) * S;
    for (int64_t j = 0; j < S; j++) r[j] += m[j];
  }
  if (c->causal)
    for (int64_t j = i + 1; j < S; j++) r[j] = -INFINITY;
  float mx = -INFINITY;
  for (int64_t j = 0; j < S; j++) mx = r[j] > mx ? r[j] : mx;
  if (isnan(mx) || mx == -INFINITY) { /* every key masked (or NaN): PyTorch's NaN row */
    for (int64_t j = 0; j < S; j++) r[j] = NAN;
    return;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < S; j++) {
    r[j] = expf(r[j] - mx);
    sum += (double)r[j];
  }
  float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < S; j++) r[j] *= inv;
}

int sl_attn_core_forward(sl_attn_core *c, const float *Q, const float *K, const float *V, float *O, sl_rng *rng) {
  int64_t LS = c->L * c->S;
  c->dropout = c->p > 0.0;
  if (c->dropout && !rng) return sl_fail(SL_EINVAL, "attention: dropout needs a generator");
  int st = sl_attn_grow(&c->G, &c->G_cap, c->B * LS);
  if (!st && c->dropout) st = sl_attn_grow(&c->A, &c->A_cap, c->B * LS);
  if (st) return st;
  float *P = c->P->data, *A = c->dropout ? c->A : P;
  float keep = c->dropout ? (float)(1.0 / (1.0 - c->p)) : 1.0f;
  for (int64_t b = 0; b < c->B; b++) {
    float *Ab = A + b * LS;
    sl_sgemm_f32(false, true, c->L, c->S, c->E, c->scale, Q + b * c->L * c->E, K + b * c->S * c->E, 0.0f, Ab);
    for (int64_t i = 0; i < c->L; i++) softmax_row(Ab + i * c->S, c, b, i);
    if (c->dropout) {
      float *Pb = P + b * LS;
      for (int64_t j = 0; j < LS; j++) Pb[j] = sl_rng_uniform(rng) >= (float)c->p ? Ab[j] * keep : 0.0f;
    }
    sl_sgemm_f32(false, false, c->L, c->Ev, c->S, 1.0f, P + b * LS, V + b * c->S * c->Ev, 0.0f,
                 O + b * c->L * c->Ev);
  }
  return SL_OK;
}

void sl_attn_core_backward(sl_attn_core *c, const float *Q, const float *K, const float *V, const float *gO,
                           float *gQ, float *gK, float *gV) {
  int64_t LS = c->L * c->S;
  const float *P = c->P->data, *A = c->dropout ? c->A : P;
  float keep = c->dropout ? (float)(1.0 / (1.0 - c->p)) : 1.0f;
  for (int64_t b = 0; b < c->B; b++) {
    float *G = c->G + b * LS;
    const float *Pb = P + b * LS, *Ab = A + b * LS, *gOb = gO + b * c->L * c->Ev;
    /* dL/dP = gO V^T; dL/dV = P^T gO */
    sl_sgemm_f32(false, true, c->L, c->S, c->Ev, 1.0f, gOb, V + b * c->S * c->Ev, 0.0f, G);
    sl_sgemm_f32(true, false, c->S, c->Ev, c->L, 1.0f, Pb, gOb, 0.0f, gV + b * c->S * c->Ev);
    /* through the dropout: a dropped weight is 0 in P (a kept one is A/(1-p) > 0
     * unless A is 0, where the softmax gradient below is 0 anyway) */
    if (c->dropout)
      for (int64_t j = 0; j < LS; j++) G[j] = Pb[j] != 0.0f ? G[j] * keep : 0.0f;
    /* softmax: dS = A (dA - sum_j dA A), times the score scale */
    for (int64_t i = 0; i < c->L; i++) {
      float *g = G + i * c->S;
      const float *a = Ab + i * c->S;
      double dot = 0.0;
      for (int64_t j = 0; j < c->S; j++) dot += (double)g[j] * (double)a[j];
      for (int64_t j = 0; j < c->S; j++) g[j] = (float)((double)a[j] * ((double)g[j] - dot) * (double)c->scale);
    }
    /* dQ = dS K, dK = dS^T Q */
    sl_sgemm_f32(false, false, c->L, c->E, c->S, 1.0f, G, K + b * c->S * c->E, 0.0f, gQ + b * c->L * c->E);
    sl_sgemm_f32(true, false, c->S, c->E, c->L, 1.0f, G, Q + b * c->L * c->E, 0.0f, gK + b * c->S * c->E);
  }
}

/* ---- F.scaled_dot_product_attention ---- */

struct sl_sdpa {
  sl_attn_core c;
  sl_tensor *out, *gq, *gk, *gv;
  int nbatch;                     /* leading dims of the last forward */
  int64_t batch[SL_MAX_DIMS];
};

sl_sdpa *sl_sdpa_new(void) {
  sl_sdpa *a = sl_malloc(sizeof *a);
  if (a) memset(a, 0, sizeof *a);
  return a;
}

void sl_sdpa_free(sl_sdpa *a) {
  if (!a) return;
  sl_attn_core_free(&a->c);
  sl_tensor_release(a->out);
  sl_tensor_release(a->gq);
  sl_tensor_release(a->gk);
  sl_tensor_release(a->gv);
  sl_free(a);
}

const sl_tensor *sl_sdpa_weights(sl_sdpa *a) { return a ? a->c.P : NULL; }

sl_tensor *sl_sdpa_take_output(sl_sdpa *a) {
  sl_tensor *t = a->out;
  a->out = NULL;
  return t;
}

static int sdpa_shapes(sl_sdpa *a, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const char *op) {
  char s1[160], s2[160], s3[160];
  if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
    return sl_fail(SL_ESHAPE, "%s: query, key and value need at least 2 dims (..., L, E), got %s, %s and %s", op,
                   sl_shape_str(q, s1, sizeof s1), sl_shape_str(k, s2, sizeof s2), sl_shape_str(v, s3, sizeof s3));
  bool same = q->ndim == k->ndim && q->ndim == v->ndim;
  for (int d = 0; same && d < q->ndim - 2; d++) same = q->shape[d] == k->shape[d] && q->shape[d] == v->shape[d];
  int nd = q->ndim;
  if (!same || q->shape[nd - 1] != k->shape[nd - 1] || k->shape[nd - 2] != v->shape[nd - 2])
    return sl_fail(SL_ESHAPE,
                   "%s: shapes query %s, key %s, value %s do not fit (expected (..., L, E), (..., S, E), "
                   "(..., S, Ev) with the same leading dims)",
                   op, sl_shape_str(q, s1, sizeof s1), sl_shape_str(k, s2, sizeof s2), sl_shape_str(v, s3, sizeof s3));
  a->nbatch = nd - 2;
  int64_t B = 1;
  for (int d = 0; d < nd - 2; d++) B *= (a->batch[d] = q->shape[d]);
  sl_attn_core *c = &a->c;
  c->B = B;
  c->L = q->shape[nd - 2];
  c->S = k->shape[nd - 2];
  c->E = q->shape[nd - 1];
  c->Ev = v->shape[nd - 1];
  c->H = 1;
  return SL_OK;
}

/* The attention mask broadcast to (B, L, S) (or kept as one (L, S) when
 * it has no leading dims above 1). */
static int sdpa_mask(sl_sdpa *a, const sl_tensor *m, bool is_bool) {
  sl_attn_core *c = &a->c;
  const char *op = "scaled_dot_product_attention";
  char s1[160], s2[160];
  int nb = m->ndim - 2;
  bool ok = m->ndim >= 2 && nb <= a->nbatch && m->shape[m->ndim - 2] == c->L && m->shape[m->ndim - 1] == c->S;
  bool batched = false;
  for (int d = 0; ok && d < nb; d++) {
    int64_t want = a->batch[a->nbatch - nb + d];
    ok = m->shape[d] == want || m->shape[d] == 1;
    batched = batched || m->shape[d] > 1;
  }
  if (!ok) {
    int64_t shp[SL_MAX_DIMS];
    memcpy(shp, a->batch, (size_t)a->nbatch * sizeof *shp);
    shp[a->nbatch] = c->L;
    shp[a->nbatch + 1] = c->S;
    return sl_fail(SL_ESHAPE, "%s: attn_mask shape %s does not broadcast to %s", op, sl_shape_str(m, s1, sizeof s1),
                   sl_shape_str_raw(a->nbatch + 2, shp, s2, sizeof s2));
  }
  int64_t LS = c->L * c->S, n = batched ? c->B * LS : LS;
  int st = sl_attn_grow(&c->madd_buf, &c->madd_cap, n);
  if (st) return st;
  c->madd = c->madd_buf;
  c->madd_batched = batched;
  for (int64_t b = 0; b < (batched ? c->B : 1); b++) {
    /* b over q's leading dims -> the mask's offset (stride 0 where it has 1) */
    int64_t rem = b, off = 0, stride = LS;
    for (int d = a->nbatch - 1; d >= 0; d--) {
      int64_t i = rem % a->batch[d];
      rem /= a->batch[d];
      int md = d - (a->nbatch - nb);
      if (md >= 0) {
        if (m->shape[md] > 1) off += i * stride;
        stride *= m->shape[md];
      }
    }
    for (int64_t j = 0; j < LS; j++) c->madd_buf[b * LS + j] = mask_term(m->data[off + j], is_bool, false);
  }
  return SL_OK;
}

int sl_sdpa_forward(sl_sdpa *a, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const sl_sdpa_opts *o,
                    sl_rng *rng, const sl_tensor **out) {
  const char *op = "scaled_dot_product_attention";
  if (!a || !q || !k || !v || !o || !out) return sl_fail(SL_EINVAL, "%s: NULL argument", op);
  int st = sdpa_shapes(a, q, k, v, op);
  if (st) return st;
  sl_attn_core *c = &a->c;
  if (!(o->dropout_p >= 0.0 && o->dropout_p < 1.0))
    return sl_fail(SL_EINVAL, "%s: dropout_p must be in [0, 1), got %g", op, o->dropout_p);
  if (o->is_causal && o->attn_mask)
    return sl_fail(SL_EINVAL, "%s: attn_mask and is_causal cannot both be given (PyTorch's rule)", op);
  c->scale = o->scale > 0.0 ? (float)o->scale : (float)(1.0 / sqrt((double)c->E));
  c->p = o->dropout_p;
  c->causal = o->is_causal;
  c->kpm = NULL;
  c->madd = NULL;
  if (o->attn_mask) {
    bool is_bool;
    if ((st = sl_attn_mask_kind(o->attn_mask, o->mask_type, op, "attn_mask", &is_bool))) return st;
    if ((st = sdpa_mask(a, o->attn_mask, is_bool))) return st;
  }
  int64_t shp[SL_MAX_DIMS];
  memcpy(shp, a->batch, (size_t)a->nbatch * sizeof *shp);
  shp[a->nbatch] = c->L;
  shp[a->nbatch + 1] = c->Ev;
  if ((st = sl_tensor_ensure(&a->out, a->nbatch + 2, shp))) return st;
  shp[a->nbatch + 1] = c->S;
  if ((st = sl_tensor_ensure(&c->P, a->nbatch + 2, shp))) return st;
  if ((st = sl_attn_core_forward(c, q->data, k->data, v->data, a->out->data, rng))) return st;
  *out = a->out;
  return SL_OK;
}

int sl_sdpa_backward(sl_sdpa *a, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const sl_tensor *gout,
                     const sl_tensor **gq, const sl_tensor **gk, const sl_tensor **gv) {
  const char *op = "scaled_dot_product_attention.backward";
  char s1[160], s2[160];
  if (!a || !q || !k || !v || !gout) return sl_fail(SL_EINVAL, "%s: NULL argument", op);
  if (!a->c.P) return sl_fail(SL_EINVAL, "%s: called before forward", op);
  sl_attn_core *c = &a->c;
  int64_t B = c->B, L = c->L, S = c->S, E = c->E, Ev = c->Ev;
  int st = sdpa_shapes(a, q, k, v, op);
  if (st) return st;
  if (c->B != B || c->L != L || c->S != S || c->E != E || c->Ev != Ev)
    return sl_fail(SL_EINVAL, "%s: query/key/value shapes differ from the last forward's; call forward first", op);
  int64_t oshape[SL_MAX_DIMS];
  memcpy(oshape, q->shape, sizeof oshape);
  oshape[q->ndim - 1] = Ev;
  bool ok = gout->ndim == q->ndim;
  for (int d = 0; ok && d < q->ndim; d++) ok = gout->shape[d] == oshape[d];
  if (!ok)
    return sl_fail(SL_ESHAPE, "%s: gradOutput shape %s does not match output shape %s", op,
                   sl_shape_str(gout, s1, sizeof s1), sl_shape_str_raw(q->ndim, oshape, s2, sizeof s2));
  if ((st = sl_tensor_ensure(&a->gq, q->ndim, q->shape)) || (st = sl_tensor_ensure(&a->gk, k->ndim, k->shape)) ||
      (st = sl_tensor_ensure(&a->gv, v->ndim, v->shape)))
    return st;
  sl_attn_core_backward(c, q->data, k->data, v->data, gout->data, a->gq->data, a->gk->data, a->gv->data);
  if (gq) *gq = a->gq;
  if (gk) *gk = a->gk;
  if (gv) *gv = a->gv;
  return SL_OK;
}
