/*
 * Reinforcement-learning environments with Gymnasium's dynamics, in double
 * precision as Gymnasium holds its state: CartPole-v1 and Pendulum-v1
 * (docs/rl.md). Each environment is a plain struct the caller owns (a host
 * can keep 256 of them in an array); stepping allocates nothing. The vector
 * forms step n copies and write into caller-provided float32 arrays.
 */
#ifndef SL_RL_ENV_H
#define SL_RL_ENV_H
#include <stddef.h>
#include <stdint.h>

#include "tensor/random.h"

/* ---- CartPole-v1 (gymnasium/envs/classic_control/cartpole.py) ---- */
#define SL_CARTPOLE_OBS 4
#define SL_CARTPOLE_ACTIONS 2
#define SL_CARTPOLE_MAX_STEPS 500 /* CartPole-v1's TimeLimit (registration max_episode_steps) */

typedef struct sl_cartpole {
  double state[4]; /* x, x_dot, theta, theta_dot */
  int64_t steps;   /* steps since the last reset (the TimeLimit counter) */
  int done;        /* 1 after a terminated or truncated step, until reset or a new state */
} sl_cartpole;

/* Draws each state component from U(-0.05, 0.05) with r (Gymnasium's
 * np_random.uniform(low, high, size=(4,))), zeroes the step counter and
 * writes the float32 observation (4 floats) to obs (may be NULL). */
void sl_cartpole_reset(sl_cartpole *e, sl_rng *r, float *obs);
/* One Euler step with action 0 (push left) or 1 (push right), as
 * CartPoleEnv.step; reward 1 on every step including the terminating one;
 * truncated when the step counter reaches SL_CARTPOLE_MAX_STEPS. obs (may be
 * NULL) gets the float32 observation. SL_ERANGE for another action,
 * SL_EINVAL when the episode is over (call reset first). */
int sl_cartpole_step(sl_cartpole *e, int action, float *obs, double *reward, int *terminated, int *truncated);
/* Writes the float32 observation of the current state. */
void sl_cartpole_observe(const sl_cartpole *e, float *obs);

/* ---- Pendulum-v1 (gymnasium/envs/classic_control/pendulum.py) ---- */
#define SL_PENDULUM_OBS 3
#define SL_PENDULUM_MAX_TORQUE 2.0 /* pendulum.py: self.max_torque = 2.0 */
#define SL_PENDULUM_MAX_STEPS 200  /* Pendulum-v1's TimeLimit (registration max_episode_steps) */

typedef struct sl_pendulum {
  double state[2]; /* theta (0 = upright), theta_dot */
  int64_t steps;
  int done;
} sl_pendulum;

/* theta ~ U(-pi, pi), theta_dot ~ U(-1, 1) from r (high = [DEFAULT_X,
 * DEFAULT_Y] = [pi, 1.0]); obs = [cos theta, sin theta, theta_dot]. */
void sl_pendulum_reset(sl_pendulum *e, sl_rng *r, float *obs);
/* One step with torque u, rounded to float32 (the action space's dtype) and
 * clipped to [-2, 2]; reward = -(angle_normalize(theta)^2 + 0.1 theta_dot^2
 * + 0.001 u^2) of the state before the step; never terminates, truncates at
 * SL_PENDULUM_MAX_STEPS. SL_EINVAL for a NaN torque or an ended episode. */
int sl_pendulum_step(sl_pendulum *e, double u, float *obs, double *reward, int *terminated, int *truncated);
void sl_pendulum_observe(const sl_pendulum *e, float *obs);

/* ---- vector forms: n environments stepped in one call ----
 * actions: n floats (CartPole: 1 or 2, 1-based; Pendulum: torques). Writes
 * obs (n x obs size), reward, terminated and truncated (n floats, 1 or 0).
 * An environment whose episode ends is reset at once from r (Stable-
 * Baselines3's convention): obs then holds the new episode's first
 * observation and final_obs (n x obs size, may be NULL) the last one of the
 * ended episode (rows of environments that did not end are left as they
 * were). The actions are all checked before any environment moves: on
 * SL_ERANGE / SL_EINVAL nothing changed. */
int sl_cartpole_vec_step(sl_cartpole *envs, size_t n, const float *actions, sl_rng *r, float *obs, float *reward,
                         float *terminated, float *truncated, float *final_obs);
int sl_pendulum_vec_step(sl_pendulum *envs, size_t n, const float *actions, sl_rng *r, float *obs, float *reward,
                         float *terminated, float *truncated, float *final_obs);

#endif
