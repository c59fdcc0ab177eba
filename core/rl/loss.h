/*
 * The per-sample pieces of PPO and DQN that sit between a network's output
 * and its backward: the losses' gradients with respect to the outputs (what
 * autograd would compute for Stable-Baselines3's loss expressions), written
 * out so a training step is one forward, one fused kernel and one backward.
 * Also sampling from a batch of categorical logits. Sums run in double; no
 * allocation. Indices (actions) are 1-based floats, as in selut's tensors.
 */
#ifndef SL_RL_LOSS_H
#define SL_RL_LOSS_H
#include <stdint.h>

#include "tensor/random.h"

typedef struct sl_ppo_stats {
  double policy_loss;   /* -mean(min(r A, clip(r) A)) */
  double entropy;       /* mean entropy */
  double clip_fraction; /* share of samples with |r - 1| > clip */
  double approx_kl;     /* mean((r - 1) - log r) */
} sl_ppo_stats;

/* PPO with a categorical policy. logits [B x K], actions [B] in 1..K,
 * old_logp [B], adv [B] (already normalized). Writes grad [B x K] =
 * d/dlogits of policy_loss - ent_coef * mean(entropy). SL_ERANGE for an
 * action outside 1..K (nothing written), SL_EINVAL for clip < 0. */
int sl_ppo_categorical_grad(const float *logits, const float *actions, const float *old_logp, const float *adv,
                            int64_t B, int64_t K, double clip, double ent_coef, float *grad, sl_ppo_stats *st);

/* PPO with a diagonal Gaussian policy N(mean, exp(log_std)). mean and
 * actions [B x K], log_std [K]. Writes grad_mean [B x K] and ACCUMULATES
 * (+=) grad_log_std [K], like a parameter gradient. */
int sl_ppo_gaussian_grad(const float *mean, const float *log_std, const float *actions, const float *old_logp,
                         const float *adv, int64_t B, int64_t K, double clip, double ent_coef, float *grad_mean,
                         float *grad_log_std, sl_ppo_stats *st);

/* DQN targets y = r + gamma (1 - done) q_target_next[argmax], the argmax taken
 * over q_online_next (double DQN) or, when q_online_next is NULL, over
 * q_target_next itself (the original DQN). All [B x K] / [B]. */
void sl_dqn_targets(const float *q_online_next, const float *q_target_next, const float *rewards, const float *dones,
                    int64_t B, int64_t K, double gamma, float *y);

/* Huber (smooth L1, beta 1) loss between q[i, actions[i]] and y[i], mean over
 * the batch: writes grad [B x K] (zero except at the taken actions) and
 * *loss. SL_ERANGE for an action outside 1..K (nothing written). */
int sl_dqn_huber_grad(const float *q, const float *actions, const float *y, int64_t B, int64_t K, float *grad,
                      double *loss);

/* Draws one index per row of logits [B x K] (1-based, into actions [B]) from
 * softmax(row), by inverting the row's CDF with one uniform draw of r; with r
 * NULL takes the row's argmax (first on ties). logp [B] (may be NULL) gets
 * the log probability of the chosen index. */
void sl_categorical_sample(const float *logits, int64_t B, int64_t K, sl_rng *r, float *actions, float *logp);

/* GAE(lambda) over a rollout of S steps of N envs, stored step-major (row
 * t * N + e): values, rewards, starts (1 = first step of an episode) [S*N],
 * last_values and last_dones [N] (the state after the last step). Writes
 * adv and ret [S*N] (ret = adv + values). Sums in double. */
void sl_gae(const float *values, const float *rewards, const float *starts, const float *last_values,
            const float *last_dones, int64_t S, int64_t N, double gamma, double lambda, float *adv, float *ret);

#endif
