#!/usr/bin/python3
"""PPO on CartPole-v1 in PyTorch: the bench side of bench/rl_vs_torch/run.sh.

Stable-Baselines3 and gymnasium are not installable here, so this is SB3's
PPO (stable_baselines3/ppo/ppo.py train(), common/on_policy_algorithm.py
collect_rollouts(), common/buffers.py RolloutBuffer, common/policies.py
ActorCriticPolicy with MlpPolicy defaults: separate 64-64 tanh nets for
policy and value, orthogonal init with gains sqrt(2) / 0.01 / 1, Adam eps
1e-5) with the RL Zoo's CartPole-v1 hyperparameters (rl-baselines3-zoo
hyperparams/ppo.yml: n_envs 8, n_steps 32, batch_size 256, gae_lambda 0.8,
gamma 0.98, n_epochs 20, ent_coef 0.0, learning_rate lin_1e-3, clip_range
lin_0.2, n_timesteps 1e5), on CartPole-v1's dynamics in NumPy (the
equations of tests/ref/gen_rl_refs.py, vectorized; same-step autoreset with
the terminal observation bootstrapped on truncation, as SB3's VecEnv).

Evaluates the deterministic policy on 100 episodes every eval_every steps
and prints the steps and wall time at which the mean first reaches 475.
  /usr/bin/python3 bench/rl_vs_torch/torch_ppo.py [seed [total_steps [eval_every [activation]]]]
"""
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)


class CartPoleVec:
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, n, rng):
        self.n, self.rng = n, rng
        self.state = rng.uniform(-0.05, 0.05, size=(n, 4))
        self.steps = np.zeros(n, dtype=np.int64)

    def obs(self):
        return self.state.astype(np.float32)

    def step(self, action):  # action in {0, 1}
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(action == 1, self.force_mag, -self.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.stack([x, x_dot, theta, theta_dot], 1)
        self.steps += 1
        term = (x < -self.x_threshold) | (x > self.x_threshold) | (theta < -self.theta_threshold_radians) | (
            theta > self.theta_threshold_radians)
        trunc = self.steps >= 500
        done = term | trunc
        final = self.obs()
        if done.any():
            k = int(done.sum())
            self.state[done] = self.rng.uniform(-0.05, 0.05, size=(k, 4))
            self.steps[done] = 0
        return self.obs(), np.ones(self.n, dtype=np.float32), term, trunc, final


def mlp(n_in, n_out, gain_out, act):
    net = nn.Sequential(nn.Linear(n_in, 64), act(), nn.Linear(64, 64), act(), nn.Linear(64, n_out))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=math.sqrt(2) if m.out_features == 64 else gain_out)
            nn.init.zeros_(m.bias)
    return net


def evaluate(pi, n, seed):
    env = CartPoleVec(n, np.random.default_rng(seed))
    obs = env.obs()
    ret, done, returns = np.zeros(n), np.zeros(n, dtype=bool), []
    while not done.all():
        with torch.no_grad():
            a = pi(torch.from_numpy(obs)).argmax(1).numpy()
        obs, r, te, tr, _ = env.step(a)
        live = ~done
        ret[live] += r[live]
        ended = live & (te | tr)
        returns += list(ret[ended])
        done |= ended
    return float(np.mean(returns))


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    eval_every = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[sys.argv[4] if len(sys.argv) > 4 else "tanh"]
    torch.manual_seed(seed)
    N, S, B, EPOCHS, GAMMA, LAM, LR, CLIP, VF, MAXG = 8, 32, 256, 20, 0.98, 0.8, 1e-3, 0.2, 0.5, 0.5
    env = CartPoleVec(N, np.random.default_rng(seed))
    pi, vf = mlp(4, 2, 0.01, act), mlp(4, 1, 1.0, act)
    params = list(pi.parameters()) + list(vf.parameters())
    opt = torch.optim.Adam(params, lr=LR, eps=1e-5)
    obs = env.obs()
    starts = np.ones(N, dtype=np.float32)
    steps, t0, reached, next_eval, train_time = 0, time.time(), None, eval_every, 0.0
    while steps < total:
        progress = 1.0 - steps / total  # SB3's progress_remaining
        b_obs = np.zeros((S, N, 4), np.float32)
        b_act, b_rew, b_start, b_val, b_logp = (np.zeros((S, N), np.float32) for _ in range(5))
        for t in range(S):
            with torch.no_grad():
                o = torch.from_numpy(obs)
                dist = torch.distributions.Categorical(logits=pi(o))
                a = dist.sample()
                logp = dist.log_prob(a)
                v = vf(o)[:, 0]
            nobs, r, te, tr, final = env.step(a.numpy())
            boot = tr & ~te
            if boot.any():  # SB3: timeout bootstrap with the terminal observation
                with torch.no_grad():
                    r = r + GAMMA * boot * vf(torch.from_numpy(final))[:, 0].numpy()
            b_obs[t], b_act[t], b_rew[t], b_start[t], b_val[t], b_logp[t] = obs, a.numpy(), r, starts, v.numpy(), logp.numpy()
            starts = (te | tr).astype(np.float32)
            obs = nobs
            steps += N
        s0 = time.time()
        with torch.no_grad():
            last_v = vf(torch.from_numpy(obs))[:, 0].numpy()
        adv = np.zeros((S, N), np.float32)
        gae = np.zeros(N, np.float32)
        for t in reversed(range(S)):
            nnt, nv = (1.0 - starts, last_v) if t == S - 1 else (1.0 - b_start[t + 1], b_val[t + 1])
            delta = b_rew[t] + GAMMA * nv * nnt - b_val[t]
            gae = delta + GAMMA * LAM * nnt * gae
            adv[t] = gae
        ret = adv + b_val
        T_obs = torch.from_numpy(b_obs.reshape(-1, 4))
        T_act = torch.from_numpy(b_act.reshape(-1)).long()
        T_adv, T_ret = torch.from_numpy(adv.reshape(-1)), torch.from_numpy(ret.reshape(-1))
        T_logp = torch.from_numpy(b_logp.reshape(-1))
        clip = CLIP * progress
        for g in opt.param_groups:
            g["lr"] = LR * progress
        for _ in range(EPOCHS):
            perm = torch.randperm(S * N)
            for i in range(0, S * N, B):
                idx = perm[i:i + B]
                A = T_adv[idx]
                A = (A - A.mean()) / (A.std() + 1e-8)
                dist = torch.distributions.Categorical(logits=pi(T_obs[idx]))
                logp = dist.log_prob(T_act[idx])
                ratio = torch.exp(logp - T_logp[idx])
                pl = -torch.min(A * ratio, A * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
                vl = nn.functional.mse_loss(T_ret[idx], vf(T_obs[idx])[:, 0])
                loss = pl + VF * vl  # ent_coef 0
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, MAXG)
                opt.step()
        train_time += time.time() - s0
        if steps >= next_eval:
            next_eval += eval_every
            mean = evaluate(pi, 100, 1000 + seed)
            print("torch seed %d steps %6d  eval mean %.1f  (%.1f s, train %.1f s)" % (
                seed, steps, mean, time.time() - t0, train_time), flush=True)
            if mean >= 475 and reached is None:
                reached = (steps, time.time() - t0)
                break
    if reached:
        print("torch seed %d: reached 475 at %d steps in %.1f s" % (seed, reached[0], reached[1]))
    else:
        print("torch seed %d: did not reach 475 in %d steps (%.1f s)" % (seed, total, time.time() - t0))


if __name__ == "__main__":
    main()
