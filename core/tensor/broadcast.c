/* Broadcast shapes and the broadcasting iterator (see broadcast.h). */
#include "broadcast.h"

#include <inttypes.h>
#include <string.h>

#include "error.h"
#include "parallel.h"

int sl_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb, int *nd,
                       int64_t *shape) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) { /* i counts from the right */
    int64_t x = i < na ? sa[na - 1 - i] : 1, y = i < nb ? sb[nb - 1 - i] : 1;
    if (x != y && x != 1 && y != 1) {
      char s1[160], s2[160];
      return sl_fail(SL_ESHAPE, "%s: shapes %s and %s cannot broadcast (dim %d: %" PRId64 " vs %" PRId64 ")", op,
                     sl_shape_str_raw(na, sa, s1, sizeof s1), sl_shape_str_raw(nb, sb, s2, sizeof s2), n - i, x, y);
    }
    shape[n - 1 - i] = x == 1 ? y : x;
  }
  *nd = n;
  return SL_OK;
}

int sl_broadcast_shapes(const char *op, const sl_tensor *a, const sl_tensor *b, int *nd, int64_t *shape) {
  return sl_broadcast_shape(op, a->ndim, a->shape, b->ndim, b->shape, nd, shape);
}

/* The iteration plan: collapsed dims (outermost first) and, per input, the
 * element stride of each collapsed dim (0 where it broadcasts). */
typedef struct plan {
  int nd, nin;
  int64_t shape[SL_MAX_DIMS];
  int64_t stride[SL_BCAST_MAX_IN][SL_MAX_DIMS];
  float *y;
  const float *in[SL_BCAST_MAX_IN];
  sl_bcast_kernel k;       /* one of k and rk */
  sl_bcast_rows_kernel rk;
  const void *ctx;
} plan;

static int make_plan(plan *p, const char *op, const sl_tensor *y, int nin, const sl_tensor *const *in) {
  int nd = y->ndim;
  int64_t st[SL_BCAST_MAX_IN][SL_MAX_DIMS];
  const sl_tensor *t = NULL; /* the input named when one does not fit */
  for (int k = 0; k < nin; k++) {
    t = in[k];
    if (t->ndim > nd) goto bad;
    int64_t acc = 1;
    for (int i = nd - 1; i >= 0; i--) {
      int ti = i - (nd - t->ndim);
      int64_t size = ti >= 0 ? t->shape[ti] : 1;
      if (size != y->shape[i] && size != 1) goto bad;
      st[k][i] = size == 1 ? 0 : acc;
      acc *= size;
    }
  }
  /* Collapse: drop size-1 dims, merge dim i into i+1 when every operand
   * (y included) is contiguous across the pair. */
  int m = 0;
  for (int i = 0; i < nd; i++) {
    if (y->shape[i] == 1) continue;
    if (m > 0) {
      bool merge = true;
      for (int k = 0; k < nin && merge; k++) merge = st[k][i] * y->shape[i] == p->stride[k][m - 1];
      if (merge) {
        p->shape[m - 1] *= y->shape[i];
        for (int k = 0; k < nin; k++) p->stride[k][m - 1] = st[k][i];
        continue;
      }
    }
    p->shape[m] = y->shape[i];
    for (int k = 0; k < nin; k++) p->stride[k][m] = st[k][i];
    m++;
  }
  if (m == 0) { /* a single element */
    p->shape[0] = 1;
    for (int k = 0; k < nin; k++) p->stride[k][0] = 0;
    m = 1;
  }
  p->nd = m;
  p->nin = nin;
  return SL_OK;
bad:;
  char s1[160], s2[160];
  return sl_fail(SL_ESHAPE, "%s: input %s does not broadcast to output %s", op, sl_shape_str(t, s1, sizeof s1),
                 sl_shape_str(y, s2, sizeof s2));
}

/* Elements [b, e) of the output in row-major order, as runs of the inner
 * dim (blocks of whole rows within one outer index for a rows kernel). */
static void run_range(const void *vp, size_t b, size_t e) {
  const plan *p = vp;
  int nd = p->nd, nin = p->nin;
  int64_t inner = p->shape[nd - 1];
  int64_t idx[SL_MAX_DIMS];
  int64_t rem = (int64_t)b;
  for (int i = nd - 1; i >= 0; i--) {
    idx[i] = rem % p->shape[i];
    rem /= p->shape[i];
  }
  const float *in[SL_BCAST_MAX_IN];
  int64_t s[SL_BCAST_MAX_IN], os[SL_BCAST_MAX_IN];
  for (int k = 0; k < nin; k++) s[k] = p->stride[k][nd - 1], os[k] = nd > 1 ? p->stride[k][nd - 2] : 0;
  int64_t pos = (int64_t)b, end = (int64_t)e;
  while (pos < end) {
    int64_t n = inner - idx[nd - 1];
    if (n > end - pos) n = end - pos;
    for (int k = 0; k < nin; k++) {
      int64_t off = 0;
      for (int i = 0; i < nd; i++) off += idx[i] * p->stride[k][i];
      in[k] = p->in[k] + off;
    }
    int64_t rows = 1;
    if (p->rk && nd > 1 && n == inner) { /* whole rows: as many as this dim and the range hold */
      rows = (end - pos) / inner;
      if (rows > p->shape[nd - 2] - idx[nd - 2]) rows = p->shape[nd - 2] - idx[nd - 2];
    }
    if (p->rk)
      p->rk(p->ctx, p->y + pos, in, s, n, rows, os);
    else
      p->k(p->ctx, p->y + pos, in, s, n);
    pos += n * rows;
    int i = nd - 1;
    if (rows > 1)
      idx[--i] += rows; /* idx[nd - 1] stays 0 */
    else
      idx[i] += n;
    for (; i > 0 && idx[i] >= p->shape[i]; i--) {
      idx[i] = 0;
      idx[i - 1]++;
    }
  }
}

static int run(const char *op, sl_tensor *y, int nin, const sl_tensor *const *in, plan *p) {
  if (nin < 1 || nin > SL_BCAST_MAX_IN) return sl_fail(SL_EINVAL, "%s: 1 to 3 inputs expected", op);
  int st = make_plan(p, op, y, nin, in);
  if (st) return st;
  if (y->numel == 0) return SL_OK;
  p->y = y->data;
  for (int i = 0; i < nin; i++) p->in[i] = in[i]->data;
  sl_par_for((size_t)y->numel, run_range, p);
  return SL_OK;
}

int sl_broadcast_run(const char *op, sl_tensor *y, int nin, const sl_tensor *const *in, sl_bcast_kernel k,
                     const void *ctx) {
  plan p;
  p.k = k, p.rk = NULL, p.ctx = ctx;
  return run(op, y, nin, in, &p);
}

int sl_broadcast_run_rows(const char *op, sl_tensor *y, int nin, const sl_tensor *const *in, sl_bcast_rows_kernel k,
                          const void *ctx) {
  plan p;
  p.k = NULL, p.rk = k, p.ctx = ctx;
  return run(op, y, nin, in, &p);
}
