/*
 * Per-step bookkeeping of n environments stepped together, as an agent's
 * observe() does it once per frame: the reward check, the episode starts
 * from the done flags and the timeout bootstrap. Loops of element reads
 * from Lua cost about 0.1 ms a frame for 256 environments; these are one
 * pass each and allocate nothing. Flags are floats, nonzero = set.
 */
#ifndef SL_RL_EPISODE_H
#define SL_RL_EPISODE_H
#include <stdint.h>

/* The first k in [0, n) whose x[k] is NaN or infinite, or -1. */
int64_t sl_first_nonfinite_f32(const float *x, int64_t n);
/* Whether some k has trunc[k] set and term[k] not: a timeout to bootstrap. */
int sl_any_timeout(const float *term, const float *trunc, int64_t n);
/* starts[k] = 1 when term[k] or trunc[k] is set, else 0 (the next step
 * starts an episode). */
void sl_episode_starts(const float *term, const float *trunc, int64_t n, float *starts);
/* rewards[k] += gamma * values[k] where trunc[k] is set and term[k] is not
 * (Stable-Baselines3's timeout bootstrap); the sum in double, rounded once. */
void sl_timeout_bootstrap(float *rewards, const float *values, const float *term, const float *trunc, int64_t n,
                          double gamma);

#endif
