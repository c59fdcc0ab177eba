#!/usr/bin/python3
"""PyTorch references for selut.rl's loss kernels and GAE (tests/lua/rl_algos.lua).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_rl_loss_refs.py
It rewrites tests/ref/rl_loss_refs.lua (committed; the tests need no PyTorch).

The losses are Stable-Baselines3's expressions (ppo.py train(): ratio,
clipped surrogate, entropy loss; dqn.py train(): double-DQN targets for the
variant selut offers, smooth_l1_loss) evaluated in float64 from float32
inputs; the gradients are autograd's. GAE is RolloutBuffer.
compute_returns_and_advantage (buffers.py) restated with NumPy.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(22)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rl_loss_refs.lua")
f64 = torch.float64


def f32(t):
    return t.to(torch.float32).to(f64)


def lua(v):
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    return repr(float(v))


def surrogate(logp, old, adv, clip):
    ratio = torch.exp(logp - old)
    l1 = adv * ratio
    l2 = adv * torch.clamp(ratio, 1 - clip, 1 + clip)
    pl = -torch.min(l1, l2).mean()
    cf = (torch.abs(ratio - 1) > clip).to(f64).mean()
    kl = ((ratio - 1) - (logp - old)).mean()
    return pl, cf, kl


def categorical_case(B, K, clip, ent_coef):
    logits = f32(torch.randn(B, K) * 1.5).requires_grad_()
    actions = torch.randint(0, K, (B,))
    dist = torch.distributions.Categorical(logits=logits)
    logp = dist.log_prob(actions)
    old = f32(logp.detach() + torch.randn(B, dtype=f64) * 0.3)  # some ratios leave the clip range
    adv = f32(torch.randn(B, dtype=f64))
    pl, cf, kl = surrogate(logp, old, adv, clip)
    ent = dist.entropy().mean()
    loss = pl - ent_coef * ent
    loss.backward()
    return dict(logits=logits.detach(), actions=actions + 1, old=old, adv=adv, clip=clip, ent_coef=ent_coef,
                grad=logits.grad, pl=pl.item(), ent=ent.item(), cf=cf.item(), kl=kl.item())


def gaussian_case(B, K, clip, ent_coef):
    mean = f32(torch.randn(B, K)).requires_grad_()
    log_std = f32(torch.randn(K) * 0.3).requires_grad_()
    actions = f32(mean.detach() + torch.randn(B, K, dtype=f64) * 0.8)
    dist = torch.distributions.Normal(mean, torch.exp(log_std).expand(B, K))
    logp = dist.log_prob(actions).sum(1)
    old = f32(logp.detach() + torch.randn(B, dtype=f64) * 0.3)
    adv = f32(torch.randn(B, dtype=f64))
    pl, cf, kl = surrogate(logp, old, adv, clip)
    ent = dist.entropy().sum(1).mean()
    loss = pl - ent_coef * ent
    loss.backward()
    return dict(mean=mean.detach(), log_std=log_std.detach(), actions=actions, old=old, adv=adv, clip=clip,
                ent_coef=ent_coef, grad_mean=mean.grad, grad_log_std=log_std.grad, pl=pl.item(), ent=ent.item(),
                cf=cf.item(), kl=kl.item())


def dqn_case(B, K, gamma):
    qo = f32(torch.randn(B, K))
    qt = f32(torch.randn(B, K))
    r = f32(torch.randn(B, dtype=f64))
    d = (torch.rand(B) < 0.3).to(f64)
    a_star = qo.argmax(1)
    y = r + gamma * (1 - d) * qt.gather(1, a_star[:, None])[:, 0]   # double DQN
    y_plain = r + gamma * (1 - d) * qt.max(1).values                # original DQN
    q = f32(torch.randn(B, K) * 2).requires_grad_()
    actions = torch.randint(0, K, (B,))
    y32 = f32(y)
    loss = F.smooth_l1_loss(q.gather(1, actions[:, None])[:, 0], y32)
    loss.backward()
    return dict(qo=qo, qt=qt, r=r, d=d, gamma=gamma, y=y, y_plain=y_plain, q=q.detach(), actions=actions + 1,
                loss=loss.item(), grad=q.grad)


def gae_case(T, N, gamma, lam):
    rewards = f32(torch.randn(T, N, dtype=f64)).numpy()
    values = f32(torch.randn(T, N, dtype=f64)).numpy()
    starts = (np.random.default_rng(5).random((T, N)) < 0.25).astype(np.float64)
    starts[0] = 1.0
    last_values = f32(torch.randn(N, dtype=f64)).numpy()
    last_dones = np.array([1.0 if i % 2 else 0.0 for i in range(N)])
    adv = np.zeros((T, N))
    last = np.zeros(N)
    for step in reversed(range(T)):  # buffers.py RolloutBuffer.compute_returns_and_advantage
        if step == T - 1:
            nnt = 1.0 - last_dones
            nv = last_values
        else:
            nnt = 1.0 - starts[step + 1]
            nv = values[step + 1]
        delta = rewards[step] + gamma * nv * nnt - values[step]
        last = delta + gamma * lam * nnt * last
        adv[step] = last
    return dict(rewards=rewards, values=values, starts=starts, last_values=last_values, last_dones=last_dones,
                gamma=gamma, lam=lam, adv=adv, ret=adv + values)


def emit(f, name, case):
    f.write("  %s = {\n" % name)
    for k, v in case.items():
        f.write("    %s = %s,\n" % (k, lua(v)))
    f.write("  },\n")


def main():
    cases = [
        ("categorical", categorical_case(9, 3, 0.2, 0.01)),
        ("categorical_noent", categorical_case(16, 2, 0.1, 0.0)),
        ("gaussian", gaussian_case(8, 2, 0.2, 0.005)),
        ("dqn", dqn_case(10, 3, 0.99)),
        ("gae", gae_case(6, 3, 0.98, 0.8)),
    ]
    with open(OUT, "w") as f:
        f.write("-- Generated by tests/ref/gen_rl_loss_refs.py (PyTorch %s). Do not edit.\n" % torch.__version__)
        f.write("return {\n")
        for name, c in cases:
            emit(f, name, c)
        f.write("}\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
