/*
 * CartPole-v1 with Gymnasium's exact dynamics (CartPoleEnv in
 * gymnasium/envs/classic_control/cartpole.py, Euler integrator, wrapped in
 * TimeLimit(500) by the CartPole-v1 registration). Every constant and every
 * expression keeps cartpole.py's order of operations so the double-precision
 * state matches Gymnasium's bit for bit (-std=c11 forbids FMA contraction).
 */
#include <math.h>

#include "rl/env.h"
#include "tensor/error.h"

/* cartpole.py, CartPoleEnv.__init__ */
#define GRAVITY 9.8
#define MASSCART 1.0
#define MASSPOLE 0.1
#define TOTAL_MASS (MASSPOLE + MASSCART)
#define LENGTH 0.5 /* "actually half the pole's length" */
#define POLEMASS_LENGTH (MASSPOLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02 /* seconds between state updates */
#define THETA_THRESHOLD_RADIANS (12 * 2 * M_PI / 360)
#define X_THRESHOLD 2.4
#define RESET_BOUND 0.05 /* reset(): np_random.uniform(low=-0.05, high=0.05, size=(4,)) */

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void sl_cartpole_observe(const sl_cartpole *e, float *obs) {
  for (int i = 0; i < 4; i++) obs[i] = (float)e->state[i]; /* np.array(self.state, dtype=np.float32) */
}

void sl_cartpole_reset(sl_cartpole *e, sl_rng *r, float *obs) {
  /* Generator.uniform(low, high) = low + (high - low) * random() */
  for (int i = 0; i < 4; i++) e->state[i] = -RESET_BOUND + (RESET_BOUND - -RESET_BOUND) * sl_rng_uniform_double(r);
  e->steps = 0;
  e->done = 0;
  if (obs) sl_cartpole_observe(e, obs);
}

/* The transition alone (CartPoleEnv.step between reading and storing the state). */
static int transition(double *s, int action) {
  double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
  double force = action == 1 ? FORCE_MAG : -FORCE_MAG;
  double costheta = cos(theta), sintheta = sin(theta);
  double temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
  double thetaacc = (GRAVITY * sintheta - costheta * temp) /
                    (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
  double xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
  /* kinematics_integrator == "euler" */
  x = x + TAU * x_dot;
  x_dot = x_dot + TAU * xacc;
  theta = theta + TAU * theta_dot;
  theta_dot = theta_dot + TAU * thetaacc;
  s[0] = x, s[1] = x_dot, s[2] = theta, s[3] = theta_dot;
  return x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD_RADIANS || theta > THETA_THRESHOLD_RADIANS;
}

int sl_cartpole_step(sl_cartpole *e, int action, float *obs, double *reward, int *terminated, int *truncated) {
  if (action != 0 && action != 1)
    return sl_fail(SL_ERANGE, "cartpole.step: action %d is out of range (expected 0 or 1)", action);
  if (e->done)
    return sl_fail(SL_EINVAL, "cartpole.step: the episode has ended (terminated or truncated): call reset first");
  int term = transition(e->state, action);
  e->steps++;
  int trunc = e->steps >= SL_CARTPOLE_MAX_STEPS; /* TimeLimit: elapsed_steps >= max_episode_steps */
  e->done = term || trunc;
  if (obs) sl_cartpole_observe(e, obs);
  *reward = 1.0; /* also on the terminating step */
  *terminated = term;
  *truncated = trunc;
  return SL_OK;
}

int sl_cartpole_vec_step(sl_cartpole *envs, size_t n, const float *actions, sl_rng *r, float *obs, float *reward,
                         float *terminated, float *truncated, float *final_obs) {
  for (size_t i = 0; i < n; i++)
    if (!(actions[i] == 1.0f || actions[i] == 2.0f))
      return sl_fail(SL_ERANGE, "cartpole.step: action %g at index %zu is out of range (expected 1 or 2)",
                     (double)actions[i], i + 1);
  for (size_t i = 0; i < n; i++) {
    sl_cartpole *e = &envs[i];
    if (e->done) sl_cartpole_reset(e, r, NULL); /* a state set by hand after an ended episode */
    double rew;
    int term, trunc;
    sl_cartpole_step(e, (int)actions[i] - 1, obs + 4 * i, &rew, &term, &trunc);
    reward[i] = (float)rew;
    terminated[i] = (float)term;
    truncated[i] = (float)trunc;
    if (term || trunc) {
      if (final_obs)
        for (int k = 0; k < 4; k++) final_obs[4 * i + k] = obs[4 * i + k];
      sl_cartpole_reset(e, r, obs + 4 * i);
    }
  }
  return SL_OK;
}
