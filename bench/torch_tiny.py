"""bench/torch_tiny.py: the tiny-net case in PyTorch, for bench/vs_torch.sh.

2 -> 64 -> 64 -> 1 SELU MLP, batch 32 (one fixed batch), MSE, SGD(lr=0.01,
momentum=0.9), STEPS training steps after 100 warm-up steps; --inplace uses
SELU(inplace=True). The steps are timed in ROUNDS rounds and the best round
is reported (as bench/autograd.lua does for selut): PyTorch at its best, on
a machine whose load moves between rounds. cpu_us is the process CPU time
per step of that round (less sensitive to other jobs than the wall clock).
--foreach passes foreach=True to SGD (the multi-tensor update). Prints
"torch_tiny us_per_step=... steps=... loss=... threads=... inplace=0|1
cpu_us=... rounds=...".

  /usr/bin/python3 bench/torch_tiny.py [--threads N] [--steps N] [--rounds N] [--inplace] [--foreach]
"""
import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inplace", action="store_true")
    ap.add_argument("--foreach", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SELU(inplace=a.inplace), torch.nn.Linear(64, 64),
                              torch.nn.SELU(inplace=a.inplace), torch.nn.Linear(64, 1))
    crit = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, **({"foreach": True} if a.foreach else {}))
    x = torch.rand(32, 2) * 4 - 2
    y = (torch.sin(x[:, 0]) * torch.cos(x[:, 1])).unsqueeze(1)

    def step():
        loss = crit(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(100):
        step()
    rounds = max(1, a.rounds)
    n = max(1, a.steps // rounds)
    best = best_cpu = None
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            loss = step()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or secs < best:
            best, best_cpu = secs, cpu
    print("torch_tiny us_per_step=%.2f steps=%d loss=%.6f threads=%d inplace=%d cpu_us=%.2f rounds=%d" % (
        best / n * 1e6, n * rounds, loss, a.threads, a.inplace, best_cpu / n * 1e6, rounds))


if __name__ == "__main__":
    main()
