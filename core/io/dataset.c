/*
 * In-memory dataset (x, optional y, first dim = samples), standardization
 * and a batch iterator that gathers rows into reused buffers.
 */
#include <math.h>
#include <string.h>

#include "io.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

struct sl_dataset {
  sl_tensor *x, *y;
  int refcount; /* the owner + every live iterator */
};

struct sl_batch_iter {
  sl_dataset *ds;
  int64_t batch_size;
  bool shuffle, drop_last;
  int64_t *perm;      /* N sample indices, allocated once */
  int64_t pos;        /* next position in perm */
  int64_t last_start; /* perm offset of the last batch produced */
  int64_t last_n;
  sl_tensor *xbuf, *ybuf; /* reused by sl_batch_iter_next */
  int64_t shard_index, shard_count; /* sl_batch_iter_shard; count 0 = not sharded */
};

sl_dataset *sl_dataset_new(sl_tensor *x, sl_tensor *y) {
  if (!x) return sl_fail_null(SL_EINVAL, "dataset: x must not be NULL");
  if (y && y->shape[0] != x->shape[0]) {
    char a[96], b[96];
    return sl_fail_null(SL_ESHAPE, "dataset: x %s and y %s have different numbers of samples",
                        sl_shape_str(x, a, sizeof a), sl_shape_str(y, b, sizeof b));
  }
  sl_dataset *ds = sl_malloc(sizeof *ds);
  if (!ds) return NULL;
  ds->x = sl_tensor_retain(x);
  ds->y = y ? sl_tensor_retain(y) : NULL;
  ds->refcount = 1;
  return ds;
}

static void dataset_unref(sl_dataset *ds) {
  if (!ds || --ds->refcount > 0) return;
  sl_tensor_release(ds->x);
  sl_tensor_release(ds->y);
  sl_free(ds);
}

void sl_dataset_free(sl_dataset *ds) { dataset_unref(ds); }

int64_t sl_dataset_size(const sl_dataset *ds) { return ds ? ds->x->shape[0] : 0; }
sl_tensor *sl_dataset_x(const sl_dataset *ds) { return ds ? ds->x : NULL; }
sl_tensor *sl_dataset_y(const sl_dataset *ds) { return ds ? ds->y : NULL; }

static sl_tensor *first_rows_copy(const sl_tensor *t, int64_t n) {
  sl_tensor *v = sl_tensor_narrow(t, 0, 0, n);
  if (!v) return NULL;
  sl_tensor *c = sl_tensor_clone(v);
  sl_tensor_release(v);
  return c;
}

sl_dataset *sl_dataset_subset(const sl_dataset *ds, int64_t n) {
  if (!ds) return sl_fail_null(SL_EINVAL, "dataset.subset: dataset is NULL");
  int64_t size = ds->x->shape[0];
  if (n < 0 || n > size)
    return sl_fail_null(SL_ERANGE, "dataset.subset: n = %lld outside 0..%lld", (long long)n,
                        (long long)size);
  sl_tensor *x = first_rows_copy(ds->x, n), *y = NULL;
  if (!x) return NULL;
  if (ds->y && !(y = first_rows_copy(ds->y, n))) {
    sl_tensor_release(x);
    return NULL;
  }
  sl_dataset *out = sl_dataset_new(x, y);
  sl_tensor_release(x);
  sl_tensor_release(y);
  return out;
}

/* ---- standardization ---------------------------------------------------- */

/* Sum of x[i] (or of (x[i] - c)^2 when squares) in double, in blocks of 4096
 * so the rounding error stays near that of a pairwise sum for 47M values. */
static double block_sum(const float *x, int64_t n, double c, bool squares) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 4096) {
    int64_t e = n - b < 4096 ? n : b + 4096;
    double s = 0;
    for (int64_t i = b; i < e; i++) {
      double d = (double)x[i] - c;
      s += squares ? d * d : d;
    }
    total += s;
  }
  return total;
}

int sl_dataset_standardize(sl_dataset *ds, const double *mean_in, const double *std_in,
                           double *mean_out, double *std_out) {
  if (!ds) return sl_fail(SL_EINVAL, "dataset.standardize: dataset is NULL");
  if ((mean_in == NULL) != (std_in == NULL))
    return sl_fail(SL_EINVAL, "dataset.standardize: give both mean and std, or neither");
  sl_tensor *x = ds->x;
  double mean, sd;
  if (mean_in) {
    mean = *mean_in;
    sd = *std_in;
    if (!(sd > 0) || !isfinite(sd) || !isfinite(mean))
      return sl_fail(SL_EINVAL, "dataset.standardize: need a finite mean and std > 0, got mean "
                     "%g, std %g", mean, sd);
  } else {
    int64_t n = x->numel;
    if (n < 2)
      return sl_fail(SL_EINVAL, "dataset.standardize: need at least 2 values, got %lld",
                     (long long)n);
    mean = block_sum(x->data, n, 0.0, false) / (double)n;
    double ss = block_sum(x->data, n, mean, true);
    sd = sqrt(ss / (double)(n - 1));
    if (!isfinite(mean) || !isfinite(sd))
      return sl_fail(SL_EINVAL, "dataset.standardize: data contains non-finite values");
    if (sd == 0) sd = 1;
  }
  float m = (float)mean, s = (float)sd;
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (x->data[i] - m) / s;
  if (mean_out) *mean_out = mean;
  if (std_out) *std_out = sd;
  return SL_OK;
}

int sl_dataset_standardize_features(sl_dataset *ds, const sl_tensor *mean_in,
                                    const sl_tensor *std_in, sl_tensor **mean_out,
                                    sl_tensor **std_out) {
  if (mean_out) *mean_out = NULL;
  if (std_out) *std_out = NULL;
  if (!ds) return sl_fail(SL_EINVAL, "dataset.standardize: dataset is NULL");
  sl_tensor *x = ds->x;
  if (x->ndim != 2) {
    char b[96];
    return sl_fail(SL_ESHAPE, "dataset.standardize: per-feature statistics need x of 2 dims, "
                   "got %s", sl_shape_str(x, b, sizeof b));
  }
  if ((mean_in == NULL) != (std_in == NULL))
    return sl_fail(SL_EINVAL, "dataset.standardize: give both mean and std, or neither");
  int64_t n = x->shape[0], d = x->shape[1];
  int64_t ds1[1] = {d};
  sl_tensor *mt = NULL, *st = NULL;
  if (mean_in) {
    if (mean_in->numel != d || std_in->numel != d) {
      char a[96], b[96];
      return sl_fail(SL_ESHAPE, "dataset.standardize: mean %s and std %s must have %lld "
                     "elements", sl_shape_str(mean_in, a, sizeof a),
                     sl_shape_str(std_in, b, sizeof b), (long long)d);
    }
    for (int64_t j = 0; j < d; j++)
      if (!(std_in->data[j] > 0) || !isfinite(std_in->data[j]))
        return sl_fail(SL_EINVAL, "dataset.standardize: std[%lld] = %g, must be finite and > 0",
                       (long long)j, (double)std_in->data[j]);
    mt = sl_tensor_clone(mean_in);
    st = sl_tensor_clone(std_in);
    if (!mt || !st) goto nomem;
  } else {
    if (n < 2) {
      return sl_fail(SL_EINVAL, "dataset.standardize: need at least 2 samples, got %lld",
                     (long long)n);
    }
    mt = sl_tensor_empty(1, ds1);
    st = sl_tensor_empty(1, ds1);
    double *acc = sl_calloc((size_t)d * 2, sizeof(double));
    if (!mt || !st || !acc) { sl_free(acc); goto nomem; }
    double *sum = acc, *ss = acc + d;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++) sum[j] += (double)x->data[i * d + j];
    for (int64_t j = 0; j < d; j++) sum[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++) {
        double e = (double)x->data[i * d + j] - sum[j];
        ss[j] += e * e;
      }
    for (int64_t j = 0; j < d; j++) {
      double sd = sqrt(ss[j] / (double)(n - 1));
      mt->data[j] = (float)sum[j];
      st->data[j] = sd == 0 ? 1.0f : (float)sd;
    }
    sl_free(acc);
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++)
      x->data[i * d + j] = (x->data[i * d + j] - mt->data[j]) / st->data[j];
  if (mean_out) *mean_out = mt; else sl_tensor_release(mt);
  if (std_out) *std_out = st; else sl_tensor_release(st);
  return SL_OK;
nomem:
  sl_tensor_release(mt);
  sl_tensor_release(st);
  return sl_last_status() ? sl_last_status() : SL_ENOMEM;
}

/* ---- batches ------------------------------------------------------------ */

static void iter_permute(sl_batch_iter *it, sl_rng *rng) {
  int64_t n = it->ds->x->shape[0];
  for (int64_t i = 0; i < n; i++) it->perm[i] = i;
  if (it->shuffle)
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
      int64_t j = (int64_t)sl_rng_below(rng, (uint64_t)i + 1);
      int64_t t = it->perm[i];
      it->perm[i] = it->perm[j];
      it->perm[j] = t;
    }
  it->pos = 0;
  it->last_start = 0;
  it->last_n = 0;
}

sl_batch_iter *sl_batch_iter_new(sl_dataset *ds, int64_t batch_size, bool shuffle,
                                 bool drop_last, sl_rng *rng) {
  if (!ds) return sl_fail_null(SL_EINVAL, "batches: dataset is NULL");
  if (batch_size < 1)
    return sl_fail_null(SL_EINVAL, "batches: batch size must be >= 1, got %lld",
                        (long long)batch_size);
  if (shuffle && !rng) return sl_fail_null(SL_EINVAL, "batches: shuffling needs a generator");
  sl_batch_iter *it = sl_calloc(1, sizeof *it);
  if (!it) return NULL;
  int64_t n = ds->x->shape[0];
  it->perm = sl_malloc((size_t)(n > 0 ? n : 1) * sizeof *it->perm);
  if (!it->perm) { sl_free(it); return NULL; }
  it->ds = ds;
  ds->refcount++;
  it->batch_size = batch_size;
  it->shuffle = shuffle;
  it->drop_last = drop_last;
  iter_permute(it, rng);
  return it;
}

int sl_batch_iter_reset(sl_batch_iter *it, sl_rng *rng) {
  if (!it) return sl_fail(SL_EINVAL, "batches: iterator is NULL");
  if (it->shuffle && !rng) return sl_fail(SL_EINVAL, "batches: shuffling needs a generator");
  iter_permute(it, rng);
  return SL_OK;
}

int64_t sl_batch_iter_count(const sl_batch_iter *it) {
  if (!it) return 0;
  int64_t n = it->ds->x->shape[0];
  int64_t parts = it->shard_count > 1 ? it->shard_count : 1, gb = it->batch_size * parts;
  if (it->drop_last || n % gb < parts) return n / gb; /* a tail smaller than parts is dropped */
  return n / gb + 1;
}

/* Data-parallel sharding (docs/distributed.md). */
int sl_batch_iter_shard(sl_batch_iter *it, int64_t index, int64_t count) {
  if (!it) return sl_fail(SL_EINVAL, "batches: iterator is NULL");
  if (count < 1 || index < 0 || index >= count)
    return sl_fail(SL_EINVAL, "batches: shard %lld of %lld is out of range (expected 0 <= index < count)",
                   (long long)index, (long long)count);
  if (it->batch_size > INT64_MAX / count)
    return sl_fail(SL_EINVAL, "batches: batch size %lld x %lld shards overflows", (long long)it->batch_size,
                   (long long)count);
  if (it->pos != 0) return sl_fail(SL_EINVAL, "batches: shard must be set before the first batch");
  it->shard_index = index;
  it->shard_count = count;
  return SL_OK;
}

const int64_t *sl_batch_iter_indices(const sl_batch_iter *it, int64_t *n) {
  if (n) *n = it ? it->last_n : 0;
  return it ? it->perm + it->last_start : NULL;
}

/* Makes *buf a tensor of src's shape with first dim m, allocating only when
 * it does not exist yet or its storage is too small. */
static int ensure_batch(sl_tensor **buf, const sl_tensor *src, int64_t m) {
  int64_t shape[SL_MAX_DIMS];
  memcpy(shape, src->shape, sizeof shape);
  shape[0] = m;
  if (*buf && (*buf)->ndim == src->ndim && memcmp((*buf)->shape, shape, sizeof shape) == 0)
    return SL_OK;
  if (*buf) return sl_tensor_resize(*buf, src->ndim, shape);
  *buf = sl_tensor_empty(src->ndim, shape);
  return *buf ? SL_OK : sl_last_status();
}

static void gather(sl_tensor *dst, const sl_tensor *src, const int64_t *idx, int64_t m) {
  int64_t n = src->shape[0];
  size_t row = n > 0 ? (size_t)(src->numel / n) : 0;
  for (int64_t i = 0; i < m; i++)
    memcpy(dst->data + (size_t)i * row, src->data + (size_t)idx[i] * row, row * sizeof(float));
}

int sl_batch_iter_next_into(sl_batch_iter *it, sl_tensor **xb, sl_tensor **yb) {
  if (!it || !xb) return sl_fail(SL_EINVAL, "batches: iterator and x buffer must not be NULL");
  sl_dataset *ds = it->ds;
  int64_t n = ds->x->shape[0];
  /* sharded: a global batch of batch_size * parts samples, this shard's part */
  int64_t parts = it->shard_count > 1 ? it->shard_count : 1, gb = it->batch_size * parts;
  int64_t m = n - it->pos < gb ? n - it->pos : gb;
  if (m <= 0 || (it->drop_last && m < gb) || m < parts) {
    it->last_n = 0;
    return 0;
  }
  int64_t lo = it->pos + it->shard_index * m / parts, k = it->pos + (it->shard_index + 1) * m / parts - lo;
  int st = ensure_batch(xb, ds->x, k);
  if (st) return st;
  if (ds->y && yb && (st = ensure_batch(yb, ds->y, k))) return st;
  const int64_t *idx = it->perm + lo;
  gather(*xb, ds->x, idx, k);
  if (ds->y && yb) gather(*yb, ds->y, idx, k);
  it->last_start = lo;
  it->last_n = k;
  it->pos += m;
  return 1;
}

int sl_batch_iter_next(sl_batch_iter *it, sl_tensor **xb, sl_tensor **yb) {
  if (!it) return sl_fail(SL_EINVAL, "batches: iterator is NULL");
  int r = sl_batch_iter_next_into(it, &it->xbuf, &it->ybuf);
  if (xb) *xb = r > 0 ? it->xbuf : NULL;
  if (yb) *yb = r > 0 ? it->ybuf : NULL;
  return r;
}

void sl_batch_iter_free(sl_batch_iter *it) {
  if (!it) return;
  sl_tensor_release(it->xbuf);
  sl_tensor_release(it->ybuf);
  sl_free(it->perm);
  dataset_unref(it->ds);
  sl_free(it);
}
