/* DataParallel's bookkeeping (dp.h): the flat gradient buffer and the
 * shared segment's layout; the collectives around them are the bindings'. */
#include "dp.h"

#include <stdlib.h>
#include <string.h>

#include "dist/shm.h"
#include "tensor/error.h"

int sl_dp_init(sl_dp *d, int n) {
  d->params = calloc((size_t)n, sizeof *d->params);
  d->grads = calloc((size_t)n, sizeof *d->grads);
  d->offset = calloc((size_t)n, sizeof *d->offset);
  d->homed = calloc((size_t)n, sizeof *d->homed);
  if (!d->params || !d->grads || !d->offset || !d->homed) return SL_ENOMEM;
  d->n = n;
  return SL_OK;
}

void sl_dp_set_param(sl_dp *d, int i, sl_tensor *p, sl_tensor *g) {
  d->params[i] = sl_tensor_retain(p);
  d->grads[i] = sl_tensor_retain(g);
  d->offset[i] = d->total;
  d->total += p->numel;
}

int sl_dp_alloc_flat(sl_dp *d) {
  int64_t shape[1] = {d->total + 1};
  if (!(d->flat = sl_tensor_empty(1, shape))) return sl_last_status();
  for (int i = 0; i < d->n; i++) d->homed[i] = sl_tensor_rehome(d->grads[i], d->flat, d->offset[i]) == SL_OK;
  return SL_OK;
}

void sl_dp_free(sl_dp *d) {
  sl_tensor_release(d->seg_t);
  d->seg_t = NULL;
  for (int i = 0; i < d->n; i++) {
    if (d->params) sl_tensor_release(d->params[i]);
    if (d->grads) sl_tensor_release(d->grads[i]);
  }
  for (int i = 0; i < d->nbuf; i++) sl_tensor_release(d->bufs[i]);
  free(d->bufs);
  d->bufs = NULL;
  d->nbuf = 0;
  free(d->params);
  free(d->grads);
  free(d->offset);
  free(d->homed);
  sl_tensor_release(d->flat);
  d->offset = NULL;
  d->homed = NULL;
  d->params = d->grads = NULL;
  d->flat = NULL;
  d->n = 0;
}

void sl_dp_gather_grads(sl_dp *d) {
  float *f = d->flat->data;
  for (int i = 0; i < d->n; i++) {
    sl_tensor *g = d->grads[i];
    if (g->data == f + d->offset[i]) continue;
    if (d->homed[i]) d->homed[i] = sl_tensor_rehome(g, d->flat, d->offset[i]) == SL_OK;
    if (!d->homed[i]) memcpy(f + d->offset[i], g->data, (size_t)g->numel * sizeof *f);
  }
}

void sl_dp_scatter_grads(sl_dp *d) {
  const float *f = d->flat->data;
  for (int i = 0; i < d->n; i++) {
    sl_tensor *g = d->grads[i];
    if (g->data != f + d->offset[i]) memcpy(g->data, f + d->offset[i], (size_t)g->numel * sizeof *f);
  }
}

void sl_dp_scale(sl_dp *d, float s) {
  float *x = d->flat->data;
  for (int64_t i = 0; i < d->total; i++) x[i] *= s;
}

void sl_dp_pack_params(const sl_dp *d, float *f) {
  for (int i = 0; i < d->n; i++) {
    memcpy(f, d->params[i]->data, (size_t)d->params[i]->numel * sizeof *f);
    f += d->params[i]->numel;
  }
}

void sl_dp_unpack_params(const sl_dp *d, const float *f) {
  for (int i = 0; i < d->n; i++) {
    memcpy(d->params[i]->data, f, (size_t)d->params[i]->numel * sizeof *f);
    f += d->params[i]->numel;
  }
}

int64_t sl_dp_buffer_numel(const sl_dp *d) {
  int64_t nb = 0;
  for (int i = 0; i < d->nbuf; i++) nb += d->bufs[i]->numel;
  return nb;
}

int sl_dp_copied(const sl_dp *d) {
  int copied = 0;
  const float *home = d->shared ? d->G + (size_t)d->shared_rank * (size_t)d->seg : d->flat->data;
  for (int i = 0; i < d->n; i++) copied += d->grads[i]->data != home + d->offset[i];
  return copied;
}

/* ---- the shared segment ---- */

const char *sl_dp_optim_matches(const sl_dp *d, const sl_optim *o) {
  if (sl_optim_param_count(o) != d->n) return "the optimizer holds other parameters than DataParallel";
  for (int i = 0; i < d->n; i++)
    if (sl_optim_param(o, i) != d->params[i]) return "the optimizer holds other parameters than DataParallel";
  return NULL;
}

/* Every tensor that moves into the segment must be movable (not a view
 * sharing its storage with another, not a wrapped host buffer). */
static int movable(const sl_tensor *t) { return sl_tensor_storage_refcount(t) == 1 && sl_tensor_owns_storage(t); }

const char *sl_dp_share_check(const sl_dp *d, const sl_optim *o, int size) {
  int kinds = sl_optim_state_kinds(o);
  const char *why = NULL;
  const char *env = getenv("SELUT_DIST_SHARED");
  if (env && strcmp(env, "0") == 0) why = "SELUT_DIST_SHARED=0";
  if (size > 64) why = "more than 64 ranks";
  for (int i = 0; !why && i < d->n; i++) {
    if (!movable(d->params[i])) why = "a parameter shares its storage with another view";
    for (int k = 0; !why && k < kinds; k++)
      if (!movable(sl_optim_state_tensor(o, kinds * i + k, NULL))) why = "an optimizer state tensor is a view";
  }
  return why;
}

size_t sl_dp_shared_bytes(sl_dp *d, const sl_optim *o, int size) {
  d->seg = (d->total + 15) / 16 * 16;
  size_t floats = (size_t)d->seg * (size_t)(1 + sl_optim_state_kinds(o) + size);
  return floats * sizeof(float);
}

void sl_dp_share_layout(sl_dp *d, const sl_optim *o, float *base) {
  int kinds = sl_optim_state_kinds(o);
  d->P = base;
  d->S0 = kinds >= 1 ? base + d->seg : NULL;
  d->S1 = kinds >= 2 ? base + 2 * d->seg : NULL;
  d->G = base + (size_t)(1 + kinds) * (size_t)d->seg;
}

int sl_dp_share_params(sl_dp *d, sl_optim *o, unsigned flags) {
  int kinds = sl_optim_state_kinds(o);
  for (int i = 0; i < d->n; i++) {
    int64_t off = (int64_t)(d->P - d->seg_t->data) + d->offset[i];
    int st = sl_tensor_rehome_ex(d->params[i], d->seg_t, off, flags);
    if (st != SL_OK) return st;
    for (int k = 0; k < kinds; k++) {
      st = sl_tensor_rehome_ex(sl_optim_state_tensor(o, kinds * i + k, NULL), d->seg_t,
                               (int64_t)(k + 1) * d->seg + d->offset[i], flags);
      if (st != SL_OK) return st;
    }
  }
  return SL_OK;
}

int sl_dp_share_grads(sl_dp *d, sl_optim *o, int rank, const char *owner) {
  int64_t gbase = (int64_t)(d->G - d->seg_t->data) + (int64_t)rank * d->seg;
  for (int i = 0; i < d->n; i++) {
    int st = sl_tensor_rehome_ex(d->grads[i], d->seg_t, gbase + d->offset[i], SL_REHOME_DETACH);
    if (st != SL_OK) return st;
  }
  /* the flat buffer is no longer read (allreduce_gradients refuses now):
   * keep a one-float stand-in (d->flat marks the object open) and free the rest */
  int64_t one = 1;
  sl_tensor *stub = sl_tensor_empty(1, &one);
  if (stub) {
    sl_tensor_release(d->flat);
    d->flat = stub;
  }
  sl_optim_set_external(o, owner);
  d->opt = o;
  d->shared_rank = rank;
  d->shared = 1;
  return SL_OK;
}

int sl_dp_shared_step(sl_dp *d, sl_optim *o, const long long *counts, long long sum, int rank, int size) {
  float coef_buf[64], *coef = NULL;
  if (counts) {
    for (int q = 0; q < size; q++) coef_buf[q] = (float)((double)counts[q] / (double)sum);
    coef = coef_buf;
  }
  size_t a = (size_t)((d->total * rank / size + 15) / 16 * 16);
  size_t b = (size_t)((d->total * (rank + 1) / size + 15) / 16 * 16);
  if (b > (size_t)d->total) b = (size_t)d->total;
  if (a > b) a = b;
  float *in[64];
  for (int q = 0; q < size; q++) in[q] = d->G + (size_t)q * (size_t)d->seg;
  float *mine = in[rank]; /* this rank's slice of its own gradient takes the sum: the step reads it there */
  sl_shm_sum(mine, in, coef, size, a, b);
  return sl_optim_step_flat(o, d->P + a, mine + a, d->S0 ? d->S0 + a : NULL, d->S1 ? d->S1 + a : NULL, b - a);
}

void sl_dp_unshare(sl_dp *d, sl_optim *o) {
  if (!d->shared) return;
  d->shared = 0;
  int kinds = o ? sl_optim_state_kinds(o) : 0;
  for (int i = 0; i < d->n; i++)
    for (int k = -2; k < kinds; k++) {
      sl_tensor *t = k == -2 ? d->grads[i] : k == -1 ? d->params[i] : sl_optim_state_tensor(o, kinds * i + k, NULL);
      sl_tensor *home = sl_tensor_shares_storage(t, d->seg_t) ? sl_tensor_empty(1, &t->numel) : NULL;
      if (home) sl_tensor_rehome_ex(t, home, 0, SL_REHOME_DETACH); /* t keeps home's storage */
      sl_tensor_release(home);
    }
  if (o) sl_optim_set_external(o, NULL);
  d->opt = NULL;
}
