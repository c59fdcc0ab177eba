/* core/rl: the C API a host uses without Lua (an array of envs it owns):
 * error codes and messages, a rejected vector step leaves every env as it
 * was, stepping allocates nothing, and the same generator seed gives the
 * same run bit for bit. The transitions themselves are checked against
 * Gymnasium's equations in tests/lua/rl_envs.lua. */
#include <string.h>

#include "test_nn_util.h"

Test(rl_env, cartpole_step_errors_name_the_action_and_the_ended_episode) {
  sl_cartpole e;
  sl_rng r;
  sl_rng_seed(&r, 1);
  sl_cartpole_reset(&e, &r, NULL);
  double rew;
  int term, trunc;
  cr_assert_eq(sl_cartpole_step(&e, 2, NULL, &rew, &term, &trunc), SL_ERANGE);
  cr_assert_str_eq(sl_last_error(), "cartpole.step: action 2 is out of range (expected 0 or 1)");
  e.state[2] = 1.0; /* far past 12 degrees: terminates */
  cr_assert_eq(sl_cartpole_step(&e, 0, NULL, &rew, &term, &trunc), SL_OK);
  cr_assert(term && !trunc && rew == 1.0);
  cr_assert_eq(sl_cartpole_step(&e, 0, NULL, &rew, &term, &trunc), SL_EINVAL);
  cr_assert(strstr(sl_last_error(), "call reset first"));
  NN_LEAK_CHECK();
}

Test(rl_env, vector_step_checks_all_actions_first_and_allocates_nothing) {
  enum { N = 64 };
  sl_cartpole envs[N];
  float obs[N * 4], rew[N], term[N], trunc[N], fin[N * 4], act[N];
  sl_rng r;
  sl_rng_seed(&r, 7);
  for (int i = 0; i < N; i++) sl_cartpole_reset(&envs[i], &r, obs + 4 * i), act[i] = 1.0f + (float)(i % 2);
  sl_cartpole saved[N];
  memcpy(saved, envs, sizeof envs);
  act[N - 1] = 0.0f;
  cr_assert_eq(sl_cartpole_vec_step(envs, N, act, &r, obs, rew, term, trunc, fin), SL_ERANGE);
  cr_assert_str_eq(sl_last_error(), "cartpole.step: action 0 at index 64 is out of range (expected 1 or 2)");
  cr_assert(memcmp(saved, envs, sizeof envs) == 0, "a rejected step moved an env");
  act[N - 1] = 2.0f;
  uint64_t allocs = sl_alloc_count();
  int ended = 0;
  for (int t = 0; t < 1000; t++) {
    cr_assert_eq(sl_cartpole_vec_step(envs, N, act, &r, obs, rew, term, trunc, fin), SL_OK);
    for (int i = 0; i < N; i++) ended += term[i] != 0;
  }
  cr_assert_eq(sl_alloc_count(), allocs, "vector steps allocated");
  cr_assert(ended > 0);
  NN_LEAK_CHECK();
}

Test(rl_env, same_seed_same_pendulum_run_bit_for_bit) {
  enum { N = 8, STEPS = 500 };
  sl_pendulum a[N], b[N];
  float oa[N * 3], ob[N * 3], ra[N], rb[N], t[N], u[N], f[N * 3], act[N];
  sl_rng r1, r2;
  sl_rng_seed(&r1, 11);
  sl_rng_seed(&r2, 11);
  for (int i = 0; i < N; i++) sl_pendulum_reset(&a[i], &r1, oa + 3 * i), sl_pendulum_reset(&b[i], &r2, ob + 3 * i);
  for (int s = 0; s < STEPS; s++) {
    for (int i = 0; i < N; i++) act[i] = (float)((s * 7 + i * 3) % 9) - 4.0f; /* -4..4: clipped */
    cr_assert_eq(sl_pendulum_vec_step(a, N, act, &r1, oa, ra, t, u, f), SL_OK);
    cr_assert_eq(sl_pendulum_vec_step(b, N, act, &r2, ob, rb, t, u, f), SL_OK);
    cr_assert(memcmp(oa, ob, sizeof oa) == 0 && memcmp(ra, rb, sizeof ra) == 0);
  }
  act[3] = NAN;
  cr_assert_eq(sl_pendulum_vec_step(a, N, act, &r1, oa, ra, t, u, f), SL_EINVAL);
  cr_assert_str_eq(sl_last_error(), "pendulum.step: torque at index 4 is NaN (expected a number, clipped to [-2, 2])");
  NN_LEAK_CHECK();
}
