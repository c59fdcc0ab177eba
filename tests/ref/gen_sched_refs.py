#!/usr/bin/python3
"""PyTorch references for the training library (tests/lua/lr_scheduler.lua,
tests/lua/optim_refs.lua):

    /usr/bin/python3 tests/ref/gen_sched_refs.py   # (re)writes tests/ref/sched_refs.lua

- every lr scheduler's learning rates over 300 steps (two parameter groups,
  lr 0.1 and 0.01), OneCycleLR's momentum / beta1 too, ReduceLROnPlateau fed
  the metric series written beside it;
- RMSprop and Adagrad over 50 steps on fixed parameters and gradients;
- clip_grad_norm_ for p = 2, 1 and inf (total norm and clipped gradients).
Numbers are written with 17 significant digits (exact doubles).
"""
import math
import os

import torch
from torch.optim import lr_scheduler as S

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sched_refs.lua")
STEPS = 300


def num(x):
    if x == math.inf:
        return "math.huge"
    if x == -math.inf:
        return "-math.huge"
    return repr(float(x))


def lua(v, ind=""):
    if isinstance(v, dict):
        inner = ind + "  "
        return "{\n" + "".join(f"{inner}{k} = {lua(x, inner)},\n" for k, x in v.items()) + ind + "}"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x, ind) for x in v) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, int):
        return str(v)
    return num(v)


def optimizer(kind="sgd"):
    p1, p2 = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    groups = [{"params": [p1]}, {"params": [p2], "lr": 0.01}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.1)
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def run(make, kind="sgd", metrics=None, momentum=False):
    opt = optimizer(kind)
    sched = make(opt)
    lrs, moms = [[g["lr"] for g in opt.param_groups]], []

    def mom():
        return [g["betas"][0] if kind == "adam" else g["momentum"] for g in opt.param_groups]

    if momentum:
        moms.append(mom())
    for t in range(STEPS):
        opt.step()
        if metrics is not None:
            sched.step(metrics[t])
        else:
            sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
        if momentum:
            moms.append(mom())
    r = {"lr": lrs}
    if momentum:
        r["momentum"] = moms
    return r


# a loss that falls, stalls, jitters and falls again
plateau = [max(0.2, 1.0 - 0.01 * t) + 0.002 * math.sin(t) if t < 150 else 0.5 - 0.001 * (t - 150) * (t % 3 == 0)
           for t in range(STEPS)]

cases = {}
cases["StepLR"] = run(lambda o: S.StepLR(o, step_size=7, gamma=0.5))
cases["MultiStepLR"] = run(lambda o: S.MultiStepLR(o, milestones=[30, 80, 80, 150], gamma=0.3))
cases["ExponentialLR"] = run(lambda o: S.ExponentialLR(o, gamma=0.99))
cases["CosineAnnealingLR"] = run(lambda o: S.CosineAnnealingLR(o, T_max=50, eta_min=0.001))
cases["CosineAnnealingWarmRestarts"] = run(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-4))
cases["CosineAnnealingWarmRestarts_1"] = run(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=13))
cases["LinearLR"] = run(lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=40))
cases["OneCycleLR"] = run(lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=STEPS + 1), momentum=True)
cases["OneCycleLR_three_phase"] = run(
    lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=STEPS + 1, three_phase=True, anneal_strategy="linear",
                           pct_start=0.25), kind="adam", momentum=True)
cases["ReduceLROnPlateau"] = run(
    lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=5, threshold=1e-3, cooldown=2, min_lr=1e-4),
    metrics=plateau)
cases["SequentialLR"] = run(lambda o: S.SequentialLR(
    o, [S.LinearLR(o, start_factor=0.1, total_iters=10), S.CosineAnnealingLR(o, T_max=100)], milestones=[10]))
cases["LambdaLR"] = run(lambda o: S.LambdaLR(o, lr_lambda=[lambda e: 0.95 ** e, lambda e: 1.0 / (1 + e)]))

# RMSprop / Adagrad: 50 steps from P0 with the gradients GRADS (written out,
# so the test feeds the same float32 values)
P0 = [0.5, -1.0, 2.0, 0.0, 0.25, -0.75]
GRADS = [[float(x) for x in torch.sin(0.37 * torch.arange(1, 7, dtype=torch.float64) * (t + 1)).float()]
         for t in range(50)]


def opt_run(make):
    p = torch.nn.Parameter(torch.tensor(P0, dtype=torch.float32))
    opt = make([p])
    for t in range(50):
        opt.zero_grad()
        p.grad = torch.tensor(GRADS[t], dtype=torch.float32)
        opt.step()
    return [float(x) for x in p.detach()]


optims = {
    "RMSprop": opt_run(lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    "RMSprop_full": opt_run(lambda ps: torch.optim.RMSprop(ps, lr=0.02, alpha=0.9, eps=1e-6, weight_decay=0.01,
                                                           momentum=0.8, centered=True)),
    "Adagrad": opt_run(lambda ps: torch.optim.Adagrad(ps, lr=0.1)),
    "Adagrad_full": opt_run(lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                                           initial_accumulator_value=0.3, eps=1e-8)),
}

# clip_grad_norm_: two gradients, max_norm 1.5
clips = {}
for name, p in [("p2", 2.0), ("p1", 1.0), ("pinf", math.inf)]:
    a = torch.nn.Parameter(torch.zeros(2, 3))
    b = torch.nn.Parameter(torch.zeros(4))
    a.grad = torch.tensor([[0.3, -1.2, 0.7], [2.0, -0.1, 0.05]])
    b.grad = torch.tensor([-0.9, 0.4, 1.1, -0.6])
    total = torch.nn.utils.clip_grad_norm_([a, b], 1.5, norm_type=p)
    clips[name] = {"total": float(total), "a": [float(x) for x in a.grad.flatten()],
                   "b": [float(x) for x in b.grad.flatten()]}

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_sched_refs.py (PyTorch %s): do not edit\n" % torch.__version__)
    f.write("return " + lua({"steps": STEPS, "plateau": plateau, "sched": cases, "optim": optims, "p0": P0,
                             "grads": GRADS,
                             "clip": clips}) + "\n")
print("wrote", OUT)
