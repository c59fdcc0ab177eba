"""bench/torch_tiny.py: the tiny-net case in PyTorch, for bench/vs_torch.sh.

2 -> 64 -> 64 -> 1 SELU MLP, batch 32 (one fixed batch), MSE, SGD(lr=0.01,
momentum=0.9), STEPS training steps after 100 warm-up steps; --inplace uses
SELU(inplace=True). Prints "torch_tiny us_per_step=... steps=... loss=...
threads=... inplace=0|1".

  /usr/bin/python3 bench/torch_tiny.py [--threads N] [--steps N] [--inplace]
"""
import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--inplace", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SELU(inplace=a.inplace), torch.nn.Linear(64, 64),
                              torch.nn.SELU(inplace=a.inplace), torch.nn.Linear(64, 1))
    crit = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
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
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    secs = time.perf_counter() - t0
    print("torch_tiny us_per_step=%.2f steps=%d loss=%.6f threads=%d inplace=%d" % (
        secs / a.steps * 1e6, a.steps, loss, a.threads, a.inplace))


if __name__ == "__main__":
    main()
