/*
 * Pendulum-v1 with Gymnasium's exact dynamics (PendulumEnv in
 * gymnasium/envs/classic_control/pendulum.py, wrapped in TimeLimit(200) by
 * the Pendulum-v1 registration). The torque arrives as the action space's
 * float32, is clipped in float32 and enters the update as a double (NumPy
 * 1.x promotes `3.0 / (m * l**2) * u` to float64); u**2 of the cost stays a
 * float32 square, as np.float32 ** 2 is.
 */
#include <math.h>

#include "rl/env.h"
#include "tensor/error.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* pendulum.py, PendulumEnv.__init__ (g, m, l: the constructor's defaults) */
#define MAX_SPEED 8.0
#define MAX_TORQUE SL_PENDULUM_MAX_TORQUE
#define DT 0.05
#define G 10.0
#define M 1.0
#define L 1.0
#define DEFAULT_X M_PI /* reset bounds: high = [DEFAULT_X, DEFAULT_Y], low = -high */
#define DEFAULT_Y 1.0

/* angle_normalize(x) = ((x + pi) % (2 pi)) - pi with Python's/NumPy's float
 * modulo: the result takes the divisor's sign. */
static double angle_normalize(double x) {
  double a = x + M_PI, b = 2 * M_PI;
  double m = fmod(a, b);
  if (m != 0) {
    if ((b < 0) != (m < 0)) m += b;
  } else {
    m = copysign(0.0, b);
  }
  return m - M_PI;
}

static double clip(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void sl_pendulum_observe(const sl_pendulum *e, float *obs) {
  obs[0] = (float)cos(e->state[0]);
  obs[1] = (float)sin(e->state[0]);
  obs[2] = (float)e->state[1];
}

void sl_pendulum_reset(sl_pendulum *e, sl_rng *r, float *obs) {
  /* np_random.uniform(low=-high, high=high) = low + (high - low) * random() */
  e->state[0] = -DEFAULT_X + (DEFAULT_X - -DEFAULT_X) * sl_rng_uniform_double(r);
  e->state[1] = -DEFAULT_Y + (DEFAULT_Y - -DEFAULT_Y) * sl_rng_uniform_double(r);
  e->steps = 0;
  e->done = 0;
  if (obs) sl_pendulum_observe(e, obs);
}

static double transition(double *s, float u) {
  double th = s[0], thdot = s[1];
  float u2 = u * u;
  double an = angle_normalize(th);
  double costs = an * an + 0.1 * (thdot * thdot) + 0.001 * (double)u2;
  double newthdot = thdot + (3 * G / (2 * L) * sin(th) + 3.0 / (M * (L * L)) * (double)u) * DT;
  newthdot = clip(newthdot, -MAX_SPEED, MAX_SPEED);
  double newth = th + newthdot * DT;
  s[0] = newth, s[1] = newthdot;
  return -costs;
}

int sl_pendulum_step(sl_pendulum *e, double u, float *obs, double *reward, int *terminated, int *truncated) {
  if (isnan(u)) return sl_fail(SL_EINVAL, "pendulum.step: torque is NaN (expected a number, clipped to [-2, 2])");
  if (e->done)
    return sl_fail(SL_EINVAL, "pendulum.step: the episode has ended (truncated): call reset first");
  float uf = (float)clip((double)(float)u, -MAX_TORQUE, MAX_TORQUE); /* np.clip on the float32 action */
  *reward = transition(e->state, uf);
  e->steps++;
  *terminated = 0;
  *truncated = e->steps >= SL_PENDULUM_MAX_STEPS;
  e->done = *truncated;
  if (obs) sl_pendulum_observe(e, obs);
  return SL_OK;
}

int sl_pendulum_vec_step(sl_pendulum *envs, size_t n, const float *actions, sl_rng *r, float *obs, float *reward,
                         float *terminated, float *truncated, float *final_obs) {
  for (size_t i = 0; i < n; i++)
    if (isnan(actions[i]))
      return sl_fail(SL_EINVAL, "pendulum.step: torque at index %zu is NaN (expected a number, clipped to [-2, 2])",
                     i + 1);
  for (size_t i = 0; i < n; i++) {
    sl_pendulum *e = &envs[i];
    if (e->done) sl_pendulum_reset(e, r, NULL);
    double rew;
    int term, trunc;
    sl_pendulum_step(e, actions[i], obs + 3 * i, &rew, &term, &trunc);
    reward[i] = (float)rew;
    terminated[i] = (float)term;
    truncated[i] = (float)trunc;
    if (term || trunc) {
      if (final_obs)
        for (int k = 0; k < 3; k++) final_obs[3 * i + k] = obs[3 * i + k];
      sl_pendulum_reset(e, r, obs + 3 * i);
    }
  }
  return SL_OK;
}
