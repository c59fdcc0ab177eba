/* Loading a safetensors file into existing tensors, all or nothing (io.h):
 * every target is compared with the file before the first copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "../tensor/error.h"

/* An integer buffer (SL_ST_I64; I64 in files) must receive integers: the
 * first element of src that is not one, or -1. */
static int64_t first_non_integer(const sl_tensor *src) {
  for (int64_t j = 0; j < src->numel; j++)
    if (!(src->data[j] == floorf(src->data[j]) && src->data[j] >= -9.2233720368547758e18f &&
          src->data[j] < 9.2233720368547758e18f))
      return j;
  return -1;
}

static _Thread_local const char *const *sort_names; /* for cmp_target (qsort has no context argument) */

static int cmp_target(const void *a, const void *b) {
  return strcmp(sort_names[*(const int *)a], sort_names[*(const int *)b]);
}

/* Whether one of the n targets is called name (order: the targets sorted by name). */
static int has_target(const char *const *names, const int *order, int n, const char *name) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(names[order[mid]], name);
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

static void note(int *errors, sl_st_mismatch *first, int kind, int target, int entry, int64_t element) {
  if ((*errors)++ == 0) *first = (sl_st_mismatch){kind, target, entry, element};
}

int sl_safetensors_match(const sl_safetensors *st, int n, const char *const *names, sl_tensor *const *dst,
                         const int *formats, int strict, sl_st_mismatch *first) {
  int errors = 0;
  for (int i = 0; i < n; i++) {
    int k = sl_safetensors_find(st, names[i]);
    if (k < 0) {
      if (strict) note(&errors, first, SL_ST_MISSING, i, -1, 0);
      continue;
    }
    sl_tensor *src = sl_safetensors_tensor(st, k);
    int64_t j;
    if (!sl_tensor_same_shape(src, dst[i])) note(&errors, first, SL_ST_SHAPE, i, k, 0);
    else if (formats && (formats[i] & ~SL_ST_SCALAR) == SL_ST_I64 && (j = first_non_integer(src)) >= 0)
      note(&errors, first, SL_ST_NOT_INTEGER, i, k, j);
  }
  int count = sl_safetensors_count(st);
  if (!strict || count == 0) return errors;
  int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  if (!order) {
    sl_fail(SL_ENOMEM, "load: out of memory comparing %d tensor names", n);
    return -1;
  }
  for (int i = 0; i < n; i++) order[i] = i;
  sort_names = names;
  qsort(order, (size_t)n, sizeof *order, cmp_target);
  for (int k = 0; k < count; k++)
    if (!has_target(names, order, n, sl_safetensors_name(st, k))) note(&errors, first, SL_ST_EXTRA, -1, k, 0);
  free(order);
  return errors;
}

int sl_safetensors_copy_into(const sl_safetensors *st, int n, const char *const *names, sl_tensor *const *dst) {
  for (int i = 0; i < n; i++) {
    int k = sl_safetensors_find(st, names[i]);
    int status = k >= 0 ? sl_tensor_copy(dst[i], sl_safetensors_tensor(st, k)) : SL_OK;
    if (status != SL_OK) return status;
  }
  return SL_OK;
}
