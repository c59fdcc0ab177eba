/* DataParallel's bookkeeping (dp.h): the flat gradient buffer, the packing
 * and scaling the collectives (dp_shared.c) work on. */
#include "dp.h"

#include <stdlib.h>
#include <string.h>

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
