/* Per-step episode bookkeeping of vector environments (episode.h). */
#include "episode.h"

#include <math.h>

int64_t sl_first_nonfinite_f32(const float *x, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    if (!isfinite(x[k])) return k;
  return -1;
}

int sl_any_timeout(const float *term, const float *trunc, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    if (trunc[k] != 0 && term[k] == 0) return 1;
  return 0;
}

void sl_episode_starts(const float *term, const float *trunc, int64_t n, float *starts) {
  for (int64_t k = 0; k < n; k++) starts[k] = (term[k] != 0 || trunc[k] != 0) ? 1.0f : 0.0f;
}

void sl_timeout_bootstrap(float *rewards, const float *values, const float *term, const float *trunc, int64_t n,
                          double gamma) {
  for (int64_t k = 0; k < n; k++)
    if (trunc[k] != 0 && term[k] == 0) rewards[k] = (float)((double)rewards[k] + gamma * (double)values[k]);
}
