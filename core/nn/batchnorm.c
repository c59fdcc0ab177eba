/* BatchNorm1d and BatchNorm2d (PyTorch semantics, see batchnorm.h). Per-channel sums are
 * accumulated in double; the forward keeps each channel's mean and 1/std for
 * the backward. x: (N, C) or (N, C, L), element (n, c, l) at (n*C + c)*L + l. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/error.h"
#include "batchnorm.h"

typedef struct bn_state {
  int64_t c;
  sl_batchnorm_opts o;
  sl_tensor *running_mean, *running_var; /* (C), NULL unless tracked */
  sl_tensor *num_batches_tracked;        /* [1], an integer count in a float; NULL unless tracked */
  double *mean, *invstd; /* (C) each, of the last forward */
  bool batch_stats;      /* the last forward normalized with batch statistics */
  sl_batchnorm_reduce_fn reduce; /* synchronized statistics (NULL: local) */
  void *reduce_ctx;
  double *sums;          /* (2C + 1) scratch for the reductions, with a reducer */
  double count;          /* the (global) batch count of the last forward */
} bn_state;

sl_batchnorm_opts sl_batchnorm_defaults(void) {
  return (sl_batchnorm_opts){.eps = 1e-5, .momentum = 0.1, .affine = true, .track_running_stats = true};
}

extern const sl_layer sl_batchnorm2d_layer;

/* x's (N, C, L) split (BatchNorm2d: L = H*W); SL_ESHAPE unless it fits the module. */
static int bn_dims(const sl_module *m, const sl_tensor *x, const char *what, int64_t *n, int64_t *l) {
  const bn_state *s = m->state;
  char buf[160];
  if (m->vt == &sl_batchnorm2d_layer) {
    if (x->ndim != 4 || x->shape[1] != s->c)
      return sl_fail(SL_ESHAPE, "BatchNorm2d.%s: expected input of shape [N x %" PRId64 " x H x W], got %s", what,
                     s->c, sl_shape_str(x, buf, sizeof buf));
    *n = x->shape[0];
    *l = x->shape[2] * x->shape[3];
    return SL_OK;
  }
  if ((x->ndim != 2 && x->ndim != 3) || x->shape[1] != s->c)
    return sl_fail(SL_ESHAPE, "BatchNorm1d.%s: expected input of shape [N x %" PRId64 "] or [N x %" PRId64
                   " x L], got %s", what, s->c, s->c, sl_shape_str(x, buf, sizeof buf));
  *n = x->shape[0];
  *l = x->ndim == 3 ? x->shape[2] : 1;
  return SL_OK;
}

/* Channel c's sum, and its sum of squared deviations from mu. */
static double channel_sum(const float *x, int64_t n, int64_t cs, int64_t l, int64_t c) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < l; k++) sum += (double)x[(i * cs + c) * l + k];
  return sum;
}

static double channel_sqdev(const float *x, int64_t n, int64_t cs, int64_t l, int64_t c, double mu) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < l; k++) {
      double d = (double)x[(i * cs + c) * l + k] - mu;
      ss += d * d;
    }
  return ss;
}

/* Batch statistics of channel c: mean and biased variance (two passes). */
static void channel_stats(const float *x, int64_t n, int64_t cs, int64_t l, int64_t c, double *mean,
                          double *var) {
  double mu = channel_sum(x, n, cs, l, c) / (double)(n * l);
  *mean = mu;
  *var = channel_sqdev(x, n, cs, l, c, mu) / (double)(n * l);
}

/* Synchronized statistics of every channel, the same two passes as
 * channel_stats with each summed over the processes by the reducer: leaves
 * the global means in s->mean and the global sums of squared deviations in
 * s->sums[0..C), and the global count in *total. */
static int synced_stats(bn_state *s, const float *x, int64_t n, int64_t l, double *total) {
  const int64_t cs = s->c;
  double *buf = s->sums;
  buf[0] = (double)(n * l);
  for (int64_t c = 0; c < cs; c++) buf[1 + c] = channel_sum(x, n, cs, l, c);
  int st = s->reduce(s->reduce_ctx, buf, (int)(cs + 1));
  if (st) return st;
  *total = buf[0];
  if (!(*total > 1.0)) return SL_OK; /* the caller refuses it, on every process alike */
  for (int64_t c = 0; c < cs; c++) s->mean[c] = buf[1 + c] / *total;
  for (int64_t c = 0; c < cs; c++) buf[c] = channel_sqdev(x, n, cs, l, c, s->mean[c]);
  return s->reduce(s->reduce_ctx, buf, (int)cs);
}

static int bn_forward(sl_module *m, const sl_tensor *x) {
  bn_state *s = m->state;
  int64_t n, l;
  int st = bn_dims(m, x, "forward", &n, &l);
  if (st) return st;
  const int64_t cs = s->c;
  double count = (double)(n * l);
  bool batch = m->training || !s->o.track_running_stats;
  bool synced = batch && s->reduce;
  if (synced && (st = synced_stats(s, x->data, n, l, &count))) return st;
  if (batch && count <= 1.0) {
    char buf[160];
    return sl_fail(SL_EINVAL, "%s.forward: expected more than 1 value per channel when training, "
                   "got input of shape %s%s", sl_module_type(m), sl_shape_str(x, buf, sizeof buf),
                   synced ? " (synchronized: over all processes)" : "");
  }
  s->count = count;
  if ((st = sl_tensor_ensure(&m->output, x->ndim, x->shape))) return st;
  const float *w = s->o.affine ? m->params[0]->data : NULL, *b = s->o.affine ? m->params[1]->data : NULL;
  for (int64_t c = 0; c < cs; c++) {
    double mean, var;
    if (synced) {
      mean = s->mean[c];
      var = s->sums[c] / count;
    } else if (batch) {
      channel_stats(x->data, n, cs, l, c, &mean, &var);
    } else {
      mean = (double)s->running_mean->data[c];
      var = (double)s->running_var->data[c];
    }
    if (batch) {
      if (m->training && s->o.track_running_stats) {
        double mom = s->o.momentum, unbiased = var * count / (count - 1.0);
        float *rm = s->running_mean->data + c, *rv = s->running_var->data + c;
        *rm = (float)((1.0 - mom) * (double)*rm + mom * mean);
        *rv = (float)((1.0 - mom) * (double)*rv + mom * unbiased);
      }
    }
    double invstd = 1.0 / sqrt(var + s->o.eps);
    s->mean[c] = mean;
    s->invstd[c] = invstd;
    double g = w ? (double)w[c] : 1.0, sh = b ? (double)b[c] : 0.0;
    float *y = m->output->data;
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < l; k++) {
        int64_t j = (i * cs + c) * l + k;
        y[j] = (float)(((double)x->data[j] - mean) * invstd * g + sh);
      }
  }
  if (batch && m->training && s->o.track_running_stats && s->num_batches_tracked->data[0] < SL_BATCHNORM_MAX_COUNT)
    s->num_batches_tracked->data[0] += 1.0f;
  s->batch_stats = batch;
  return SL_OK;
}

/* Channel c's sum(gy) and sum(gy xhat) over this process's batch. */
static void channel_grad_sums(const float *x, const float *gy, int64_t n, int64_t cs, int64_t l, int64_t c,
                              double mean, double invstd, double *sum_gy, double *sum_gy_xhat) {
  double s1 = 0.0, s2 = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < l; k++) {
      int64_t j = (i * cs + c) * l + k;
      double dy = (double)gy[j];
      s1 += dy;
      s2 += dy * ((double)x[j] - mean) * invstd;
    }
  *sum_gy = s1;
  *sum_gy_xhat = s2;
}

/* Batch statistics: gx = g invstd / M (M gy - sum gy - xhat sum(gy xhat));
 * running statistics (constants): gx = g invstd gy. Parameters: dweight +=
 * sum(gy xhat), dbias += sum(gy). */
static int bn_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  bn_state *s = m->state;
  int64_t n, l;
  char a[160], bb[160];
  int st = bn_dims(m, x, "backward", &n, &l);
  if (st) return st;
  if (!sl_tensor_same_shape(x, gy))
    return sl_fail(SL_ESHAPE, "%s.backward: gradOutput shape %s does not match input shape %s",
                   sl_module_type(m), sl_shape_str(gy, a, sizeof a), sl_shape_str(x, bb, sizeof bb));
  if (!m->output || !sl_tensor_same_shape(m->output, x))
    return sl_fail(SL_EINVAL, "%s.backward: input shape %s differs from the last forward's; call "
                   "forward first", sl_module_type(m), sl_shape_str(x, a, sizeof a));
  if ((st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  const int64_t cs = s->c;
  const float *w = s->o.affine ? m->params[0]->data : NULL;
  float *gw = s->o.affine ? m->grads[0]->data : NULL, *gb = s->o.affine ? m->grads[1]->data : NULL;
  float *gx = m->grad_input->data;
  /* synchronized: the input gradient takes the sums over every process's
   * batch (global count); the parameter gradients keep this process's */
  bool synced = s->batch_stats && s->reduce;
  double count = synced ? s->count : (double)(n * l);
  if (synced) {
    for (int64_t c = 0; c < cs; c++) {
      double sum_gy, sum_gy_xhat;
      channel_grad_sums(x->data, gy->data, n, cs, l, c, s->mean[c], s->invstd[c], &sum_gy, &sum_gy_xhat);
      s->sums[2 * c] = sum_gy;
      s->sums[2 * c + 1] = sum_gy_xhat;
      if (gw) gw[c] += (float)sum_gy_xhat;
      if (gb) gb[c] += (float)sum_gy;
    }
    if ((st = s->reduce(s->reduce_ctx, s->sums, (int)(2 * cs)))) return st;
  }
  for (int64_t c = 0; c < cs; c++) {
    const double mean = s->mean[c], invstd = s->invstd[c], g = w ? (double)w[c] : 1.0;
    double sum_gy, sum_gy_xhat;
    if (synced) {
      sum_gy = s->sums[2 * c];
      sum_gy_xhat = s->sums[2 * c + 1];
    } else {
      channel_grad_sums(x->data, gy->data, n, cs, l, c, mean, invstd, &sum_gy, &sum_gy_xhat);
    }
    double f = g * invstd;
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < l; k++) {
        int64_t j = (i * cs + c) * l + k;
        double dy = (double)gy->data[j];
        if (s->batch_stats) {
          double xhat = ((double)x->data[j] - mean) * invstd;
          gx[j] = (float)(f * (dy - sum_gy / count - xhat * sum_gy_xhat / count));
        } else {
          gx[j] = (float)(f * dy);
        }
      }
    if (!synced && gw) gw[c] += (float)sum_gy_xhat;
    if (!synced && gb) gb[c] += (float)sum_gy;
  }
  return SL_OK;
}


static void bn_destroy(sl_module *m) {
  bn_state *s = m->state;
  if (!s) return;
  sl_tensor_release(s->running_mean);
  sl_tensor_release(s->running_var);
  sl_tensor_release(s->num_batches_tracked);
  sl_free(s->mean);
  sl_free(s->invstd);
  sl_free(s->sums);
  sl_free(s);
}

static int bn_hparams(const sl_module *m, sl_hparam *out) {
  const bn_state *s = m->state;
  out[0] = (sl_hparam){"num_features", SL_VALUE_INT, (double)s->c, SL_HP_POSITIONAL};
  out[1] = (sl_hparam){"eps", SL_VALUE_FLOAT, s->o.eps, 0};
  out[2] = (sl_hparam){"momentum", SL_VALUE_FLOAT, s->o.momentum, 0};
  out[3] = (sl_hparam){"affine", SL_VALUE_BOOL, s->o.affine, 0};
  out[4] = (sl_hparam){"track_running_stats", SL_VALUE_BOOL, s->o.track_running_stats, 0};
  return 5;
}

/* PyTorch's state_dict buffers; none without running statistics. */
static int bn_buffers(const sl_module *m, sl_buffer *out) {
  const bn_state *s = m->state;
  if (!s->running_mean) return 0;
  out[0] = (sl_buffer){"running_mean", s->running_mean, false, false};
  out[1] = (sl_buffer){"running_var", s->running_var, false, false};
  out[2] = (sl_buffer){"num_batches_tracked", s->num_batches_tracked, true, true};
  return 3;
}

static int bn_set_reducer(sl_module *m, sl_reduce_fn reduce, void *ctx);

/* Only the bias is zeroed by nn.init: the weight (ones) is kept. */
static const sl_param_spec bn_params[] = {{"weight", SL_INIT_KEEP}, {"bias", SL_INIT_ZERO}, {NULL, SL_INIT_KEEP}};

const sl_layer sl_batchnorm1d_layer = {.type = "BatchNorm1d", .flags = SL_LAYER_NORMALIZATION | SL_LAYER_FORWARD_STATE,
                                       .forward = bn_forward, .backward = bn_backward, .destroy = bn_destroy,
                                       .params = bn_params, .hparams = bn_hparams, .buffers = bn_buffers,
                                       .set_reducer = bn_set_reducer};

/* BatchNorm2d's generic constructor (nn.BatchNorm2d(C[, {eps=, momentum=, affine=, track_running_stats=}])). */
static const sl_hparam bn2d_args[] = {{"num_features", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                      {"eps", SL_VALUE_FLOAT, 1e-5, 0},
                                      {"momentum", SL_VALUE_FLOAT, 0.1, 0},
                                      {"affine", SL_VALUE_BOOL, 1, 0},
                                      {"track_running_stats", SL_VALUE_BOOL, 1, 0},
                                      {NULL, SL_VALUE_FLOAT, 0, 0}};

static sl_module *bn2d_create(const double *args, sl_rng *rng) {
  (void)rng;
  if (!(fabs(args[0]) < 9e15)) return sl_fail_null(SL_EINVAL, "BatchNorm2d: num_features out of range");
  sl_batchnorm_opts o = {.eps = args[1], .momentum = args[2], .affine = args[3] != 0,
                         .track_running_stats = args[4] != 0};
  return sl_batchnorm2d_new((int64_t)args[0], o);
}

const sl_layer sl_batchnorm2d_layer = {.type = "BatchNorm2d", .flags = SL_LAYER_NORMALIZATION | SL_LAYER_FORWARD_STATE,
                                       .forward = bn_forward, .backward = bn_backward, .destroy = bn_destroy,
                                       .params = bn_params, .args = bn2d_args, .create = bn2d_create,
                                       .hparams = bn_hparams, .buffers = bn_buffers, .set_reducer = bn_set_reducer};

static bool is_bn(const sl_module *m) {
  return m && (m->vt == &sl_batchnorm1d_layer || m->vt == &sl_batchnorm2d_layer);
}

static sl_module *bn_new(const sl_layer *l, int64_t num_features, sl_batchnorm_opts o) {
  if (num_features < 1)
    return sl_fail_null(SL_EINVAL, "%s: num_features must be >= 1, got %" PRId64, l->type, num_features);
  if (!(o.eps > 0.0) || !isfinite(o.eps))
    return sl_fail_null(SL_EINVAL, "%s: eps must be > 0, got %g", l->type, o.eps);
  if (!(o.momentum >= 0.0 && o.momentum <= 1.0))
    return sl_fail_null(SL_EINVAL, "%s: momentum must be in [0, 1], got %g", l->type, o.momentum);
  sl_module *m = sl_module_new(l);
  if (!m) return NULL;
  bn_state *s = sl_calloc(1, sizeof *s);
  if (!s) goto fail;
  m->state = s;
  s->c = num_features;
  s->o = o;
  if (!(s->mean = sl_calloc((size_t)num_features, sizeof(double)))) goto fail;
  if (!(s->invstd = sl_calloc((size_t)num_features, sizeof(double)))) goto fail;
  if (o.track_running_stats) {
    if (!(s->running_mean = sl_tensor_zeros(1, &num_features))) goto fail;
    if (!(s->running_var = sl_tensor_ones(1, &num_features))) goto fail;
    if (!(s->num_batches_tracked = sl_tensor_zeros(1, (const int64_t[]){1}))) goto fail;
  }
  if (o.affine) {
    if (sl_module_add_param(m, "weight", 1, &num_features)) goto fail;
    if (sl_module_add_param(m, "bias", 1, &num_features)) goto fail;
    float *w = m->params[0]->data;
    for (int64_t c = 0; c < num_features; c++) w[c] = 1.0f;
  }
  return m;
fail:
  sl_module_release(m);
  return NULL;
}

sl_module *sl_batchnorm1d_new(int64_t num_features, sl_batchnorm_opts o) {
  return bn_new(&sl_batchnorm1d_layer, num_features, o);
}

sl_module *sl_batchnorm2d_new(int64_t num_features, sl_batchnorm_opts o) {
  return bn_new(&sl_batchnorm2d_layer, num_features, o);
}

int sl_batchnorm_state(const sl_module *m, int64_t *num_features, sl_tensor **running_mean, sl_tensor **running_var,
                       int64_t *num_batches_tracked, sl_batchnorm_opts *opts) {
  if (!is_bn(m))
    return sl_fail(SL_EINVAL, "BatchNorm1d state: module is a %s, not a BatchNorm1d", sl_module_type(m));
  const bn_state *s = m->state;
  if (num_features) *num_features = s->c;
  if (running_mean) *running_mean = s->running_mean;
  if (running_var) *running_var = s->running_var;
  if (num_batches_tracked)
    *num_batches_tracked = s->num_batches_tracked ? (int64_t)s->num_batches_tracked->data[0] : 0;
  if (opts) *opts = s->o;
  return SL_OK;
}

int sl_batchnorm_buffers(const sl_module *m, sl_tensor **running_mean, sl_tensor **running_var,
                         sl_tensor **num_batches_tracked) {
  if (!is_bn(m))
    return sl_fail(SL_EINVAL, "BatchNorm1d buffers: module is a %s, not a BatchNorm1d", sl_module_type(m));
  const bn_state *s = m->state;
  *running_mean = s->running_mean;
  *running_var = s->running_var;
  *num_batches_tracked = s->num_batches_tracked;
  return SL_OK;
}

int sl_batchnorm_set_reducer(sl_module *m, sl_batchnorm_reduce_fn reduce, void *ctx) {
  if (!is_bn(m))
    return sl_fail(SL_EINVAL, "BatchNorm1d reducer: module is a %s, not a BatchNorm1d", sl_module_type(m));
  return bn_set_reducer(m, reduce, ctx);
}

static int bn_set_reducer(sl_module *m, sl_reduce_fn reduce, void *ctx) {
  bn_state *s = m->state;
  if (reduce && !s->sums && !(s->sums = sl_calloc((size_t)(2 * s->c + 1), sizeof(double))))
    return sl_last_status();
  s->reduce = reduce;
  s->reduce_ctx = ctx;
  return SL_OK;
}
