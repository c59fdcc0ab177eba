/*
 * PPO and DQN loss gradients with respect to network outputs (core/rl/loss.h).
 * The expressions are Stable-Baselines3's (ppo.py: ratio = exp(logp -
 * old_logp), policy_loss = -mean(min(adv ratio, adv clamp(ratio, 1 - c,
 * 1 + c))), entropy_loss = -mean(entropy); dqn.py: smooth_l1_loss), and the
 * gradients what PyTorch's autograd gives for them (tests/ref/gen_rl_loss_refs.py
 * checks against it). Where the two terms of the min are equal, torch.min
 * splits the gradient in halves; both halves are ratio * adv there, so the
 * gradient is ratio * adv whenever the unclipped term is not the larger one.
 */
#include <math.h>

#include "rl/loss.h"
#include "tensor/error.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int check_actions(const float *actions, int64_t B, int64_t K, const char *op) {
  for (int64_t i = 0; i < B; i++) {
    float a = actions[i];
    if (!(a >= 1 && a <= (float)K && a == floorf(a)))
      return sl_fail(SL_ERANGE, "%s: action %g at position %lld out of range 1..%lld", op, (double)a,
                     (long long)i + 1, (long long)K);
  }
  return SL_OK;
}

/* d(-min(r A, clamp(r) A))/dlogp for one sample, and its statistics. */
static double surrogate(double logp, double old_logp, double A, double clip, sl_ppo_stats *st) {
  double ratio = exp(logp - old_logp);
  double c = ratio < 1 - clip ? 1 - clip : ratio > 1 + clip ? 1 + clip : ratio;
  double s1 = ratio * A, s2 = c * A;
  st->policy_loss -= s1 < s2 ? s1 : s2;
  st->clip_fraction += fabs(ratio - 1) > clip;
  st->approx_kl += (ratio - 1) - (logp - old_logp);
  return s1 <= s2 ? -ratio * A : 0.0;
}

static void finish(sl_ppo_stats *st, int64_t B) {
  st->policy_loss /= (double)B;
  st->entropy /= (double)B;
  st->clip_fraction /= (double)B;
  st->approx_kl /= (double)B;
}

int sl_ppo_categorical_grad(const float *logits, const float *actions, const float *old_logp, const float *adv,
                            int64_t B, int64_t K, double clip, double ent_coef, float *grad, sl_ppo_stats *st) {
  if (!(clip >= 0)) return sl_fail(SL_EINVAL, "ppo: clip range must be >= 0, got %g", clip);
  int status = check_actions(actions, B, K, "ppo");
  if (status) return status;
  *st = (sl_ppo_stats){0, 0, 0, 0};
  for (int64_t i = 0; i < B; i++) {
    const float *z = logits + i * K;
    float *g = grad + i * K;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < K; j++) m = (double)z[j] > m ? (double)z[j] : m;
    for (int64_t j = 0; j < K; j++) s += exp((double)z[j] - m);
    double lse = m + log(s);
    int64_t a = (int64_t)actions[i] - 1;
    double h = 0;
    for (int64_t j = 0; j < K; j++) {
      double lp = (double)z[j] - lse;
      h -= exp(lp) * lp;
    }
    st->entropy += h;
    double d = surrogate((double)z[a] - lse, (double)old_logp[i], (double)adv[i], clip, st) / (double)B;
    for (int64_t j = 0; j < K; j++) {
      double lp = (double)z[j] - lse, p = exp(lp);
      /* dlogp_a/dz_j = [j == a] - p_j;  d(-ent_coef H / B)/dz_j = ent_coef p_j (log p_j + H) / B */
      g[j] = (float)(d * ((j == a) - p) + ent_coef * p * (lp + h) / (double)B);
    }
  }
  finish(st, B);
  return SL_OK;
}

int sl_ppo_gaussian_grad(const float *mean, const float *log_std, const float *actions, const float *old_logp,
                         const float *adv, int64_t B, int64_t K, double clip, double ent_coef, float *grad_mean,
                         float *grad_log_std, sl_ppo_stats *st) {
  if (!(clip >= 0)) return sl_fail(SL_EINVAL, "ppo: clip range must be >= 0, got %g", clip);
  const double half_log_2pi = 0.5 * log(2 * M_PI);
  *st = (sl_ppo_stats){0, 0, 0, 0};
  double ent_row = 0;
  for (int64_t j = 0; j < K; j++) ent_row += 0.5 + half_log_2pi + (double)log_std[j];
  for (int64_t i = 0; i < B; i++) {
    const float *mu = mean + i * K, *a = actions + i * K;
    double logp = 0;
    for (int64_t j = 0; j < K; j++) {
      double z = ((double)a[j] - (double)mu[j]) / exp((double)log_std[j]);
      logp += -0.5 * z * z - (double)log_std[j] - half_log_2pi;
    }
    st->entropy += ent_row;
    double d = surrogate(logp, (double)old_logp[i], (double)adv[i], clip, st) / (double)B;
    for (int64_t j = 0; j < K; j++) {
      double sd = exp((double)log_std[j]), diff = (double)a[j] - (double)mu[j];
      grad_mean[i * K + j] = (float)(d * diff / (sd * sd));             /* dlogp/dmu = (a - mu) / sd^2 */
      grad_log_std[j] += (float)(d * (diff * diff / (sd * sd) - 1)); /* dlogp/dlog_std = z^2 - 1 */
    }
  }
  for (int64_t j = 0; j < K; j++) grad_log_std[j] -= (float)ent_coef; /* dH/dlog_std_j = 1 for every sample */
  finish(st, B);
  return SL_OK;
}

static int64_t argmax_row(const float *q, int64_t K) {
  int64_t a = 0;
  for (int64_t j = 1; j < K; j++)
    if (q[j] > q[a]) a = j;
  return a;
}

void sl_dqn_targets(const float *q_online_next, const float *q_target_next, const float *rewards, const float *dones,
                    int64_t B, int64_t K, double gamma, float *y) {
  for (int64_t i = 0; i < B; i++) {
    const float *qt = q_target_next + i * K;
    int64_t a = argmax_row(q_online_next ? q_online_next + i * K : qt, K);
    y[i] = (float)((double)rewards[i] + gamma * (1.0 - (double)dones[i]) * (double)qt[a]);
  }
}

int sl_dqn_huber_grad(const float *q, const float *actions, const float *y, int64_t B, int64_t K, float *grad,
                      double *loss) {
  int status = check_actions(actions, B, K, "dqn");
  if (status) return status;
  double l = 0;
  for (int64_t i = 0; i < B; i++) {
    int64_t a = (int64_t)actions[i] - 1;
    for (int64_t j = 0; j < K; j++) grad[i * K + j] = 0;
    double d = (double)q[i * K + a] - (double)y[i], ad = fabs(d);
    l += ad < 1 ? 0.5 * d * d : ad - 0.5;
    grad[i * K + a] = (float)((d < -1 ? -1 : d > 1 ? 1 : d) / (double)B);
  }
  *loss = l / (double)B;
  return SL_OK;
}

void sl_categorical_sample(const float *logits, int64_t B, int64_t K, sl_rng *r, float *actions, float *logp) {
  for (int64_t i = 0; i < B; i++) {
    const float *z = logits + i * K;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < K; j++) m = (double)z[j] > m ? (double)z[j] : m;
    for (int64_t j = 0; j < K; j++) s += exp((double)z[j] - m);
    double lse = m + log(s);
    int64_t a = K - 1;
    if (r) {
      double u = sl_rng_uniform_double(r), c = 0;
      for (int64_t j = 0; j < K; j++) {
        c += exp((double)z[j] - lse);
        if (u < c) {
          a = j;
          break;
        }
      }
    } else {
      a = argmax_row(z, K);
    }
    actions[i] = (float)(a + 1);
    if (logp) logp[i] = (float)((double)z[a] - lse);
  }
}
