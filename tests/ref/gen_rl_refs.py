#!/usr/bin/python3
"""Reference traces for selut.rl.envs (tests/lua/rl_envs.lua).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_rl_refs.py
It rewrites tests/ref/rl_traces.lua (committed; the tests need no Python).

The gymnasium package is not installable here (neither Debian nor npm has
it), so this script restates Gymnasium's published update equations with
NumPy, in the same types and order of operations, each constant cited from
gymnasium/envs/classic_control/cartpole.py (CartPoleEnv) and pendulum.py
(PendulumEnv), plus the TimeLimit wrapper the v1 registrations add
(gymnasium/envs/__init__.py: CartPole-v1 max_episode_steps=500, Pendulum-v1
max_episode_steps=200; gymnasium/wrappers TimeLimit:
truncated = elapsed_steps >= max_episode_steps).

Each trace: 1000 random actions, in episodes that start from given states
(drawn here with NumPy and written out) and run until terminated or
truncated. Written per step: the action (1-based for CartPole, a float32
torque for Pendulum, some outside [-2, 2] to exercise the clipping), the
double-precision state after the step, the reward and the two flags.
"""
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rl_traces.lua")
STEPS = 1000


# ---- CartPole-v1: cartpole.py, CartPoleEnv.__init__ and step ----
class CartPole:
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # actually half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02  # seconds between state updates
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    max_episode_steps = 500  # CartPole-v1 registration

    def __init__(self, state):
        self.state = tuple(float(v) for v in state)
        self.elapsed = 0

    def step(self, action):  # action in {0, 1}, kinematics_integrator == "euler"
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta = math.cos(theta)
        sintheta = math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)
        terminated = bool(x < -self.x_threshold or x > self.x_threshold
                          or theta < -self.theta_threshold_radians or theta > self.theta_threshold_radians)
        reward = 1.0  # also on the step where the pole falls
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps
        return reward, terminated, truncated


# ---- Pendulum-v1: pendulum.py, PendulumEnv.__init__ and step ----
def angle_normalize(x):
    return ((x + np.pi) % (2 * np.pi)) - np.pi


class Pendulum:
    max_speed = 8
    max_torque = 2.0
    dt = 0.05
    g = 10.0
    m = 1.0
    l = 1.0  # noqa: E741 (pendulum.py's name)
    max_episode_steps = 200  # Pendulum-v1 registration

    def __init__(self, state):
        self.state = np.array(state, dtype=np.float64)
        self.elapsed = 0

    def step(self, u):  # u: float32 array of shape (1,), the action space's dtype
        th, thdot = self.state
        g, m, l, dt = self.g, self.m, self.l, self.dt
        u = np.clip(u, -self.max_torque, self.max_torque)[0]
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt
        newthdot = np.clip(newthdot, -self.max_speed, self.max_speed)
        newth = th + newthdot * dt
        self.state = np.array([newth, newthdot])
        self.elapsed += 1
        return -costs, False, self.elapsed >= self.max_episode_steps


def lit(v):
    return repr(float(v))


def cartpole_trace(rng):
    episodes, n = [], 0
    while n < STEPS:
        start = rng.uniform(low=-0.05, high=0.05, size=(4,))  # CartPoleEnv.reset's distribution
        if not episodes:
            start = np.array([0.01, -0.02, 0.03, 0.04])  # a fixed first state
        env = CartPole(start)
        ep = {"start": [float(v) for v in start], "actions": [], "states": [], "rewards": [], "term": [], "trunc": []}
        while n < STEPS:
            a = int(rng.integers(0, 2))
            r, term, trunc = env.step(a)
            ep["actions"].append(a + 1)  # selut's actions are 1-based
            ep["states"].append(list(env.state))
            ep["rewards"].append(r)
            ep["term"].append(term)
            ep["trunc"].append(trunc)
            n += 1
            if term or trunc:
                break
        episodes.append(ep)
    return episodes


def pendulum_trace(rng):
    episodes, n = [], 0
    high = np.array([np.pi, 1.0])  # DEFAULT_X, DEFAULT_Y
    while n < STEPS:
        start = rng.uniform(low=-high, high=high)
        env = Pendulum(start)
        ep = {"start": [float(v) for v in start], "actions": [], "states": [], "rewards": [], "term": [], "trunc": []}
        while n < STEPS:
            u = rng.uniform(-3.0, 3.0, size=(1,)).astype(np.float32)  # beyond [-2, 2] too: clipped
            r, term, trunc = env.step(u)
            ep["actions"].append(float(u[0]))
            ep["states"].append([float(v) for v in env.state])
            ep["rewards"].append(float(r))
            ep["term"].append(term)
            ep["trunc"].append(trunc)
            n += 1
            if term or trunc:
                break
        episodes.append(ep)
    return episodes


def emit(f, name, episodes):
    f.write("  %s = {\n" % name)
    for ep in episodes:
        f.write("    {start = {%s},\n" % ", ".join(lit(v) for v in ep["start"]))
        f.write("     actions = {%s},\n" % ", ".join(lit(v) if isinstance(v, float) else str(v) for v in ep["actions"]))
        f.write("     states = {%s},\n" % ", ".join("{%s}" % ", ".join(lit(v) for v in s) for s in ep["states"]))
        f.write("     rewards = {%s},\n" % ", ".join(lit(v) for v in ep["rewards"]))
        f.write("     term = {%s},\n" % ", ".join("true" if v else "false" for v in ep["term"]))
        f.write("     trunc = {%s}},\n" % ", ".join("true" if v else "false" for v in ep["trunc"]))
    f.write("  },\n")


def main():
    rng = np.random.default_rng(20241204)
    cp = cartpole_trace(rng)
    pd = pendulum_trace(rng)
    with open(OUT, "w") as f:
        f.write("-- Generated by tests/ref/gen_rl_refs.py (NumPy %s): Gymnasium's CartPole-v1 and\n" % np.__version__)
        f.write("-- Pendulum-v1 transitions, %d random actions each. Do not edit.\n" % STEPS)
        f.write("return {\n")
        emit(f, "cartpole", cp)
        emit(f, "pendulum", pd)
        f.write("}\n")
    print("wrote %s: cartpole %d episodes, pendulum %d episodes" % (OUT, len(cp), len(pd)))


if __name__ == "__main__":
    main()
