/*
 * GAE(lambda) returns and advantages over a rollout, as Stable-Baselines3's
 * RolloutBuffer.compute_returns_and_advantage computes them. It was a Lua
 * loop of per-element tensor reads (about 1 ms for 8 x 256 transitions, on
 * the frame that completes a rollout in a host's loop); here it is a pass in
 * double precision with the same operation order as that loop had, so the
 * results keep their bits.
 */
#include "rl/loss.h"

void sl_gae(const float *values, const float *rewards, const float *starts, const float *last_values,
            const float *last_dones, int64_t S, int64_t N, double gamma, double lambda, float *adv, float *ret) {
  for (int64_t e = 0; e < N; e++) {
    double gae = 0;
    for (int64_t t = S - 1; t >= 0; t--) {
      int64_t k = t * N + e;
      double next_nonterminal, next_value;
      if (t == S - 1) {
        next_nonterminal = 1 - (double)last_dones[e];
        next_value = (double)last_values[e];
      } else {
        next_nonterminal = 1 - (double)starts[k + N];
        next_value = (double)values[k + N];
      }
      double delta = (double)rewards[k] + gamma * next_value * next_nonterminal - (double)values[k];
      gae = delta + gamma * lambda * next_nonterminal * gae;
      adv[k] = (float)gae;
      ret[k] = (float)(gae + (double)values[k]);
    }
  }
}
