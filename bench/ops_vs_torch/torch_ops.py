#!/usr/bin/python3
"""PyTorch's side of bench/ops_vs_torch: the ops of cases.txt, same shapes,
best of several rounds, at 1 and 2 threads. Prints "name threads seconds".
  /usr/bin/python3 bench/ops_vs_torch/torch_ops.py N [rounds [op,op,...]]"""
import os
import sys
import time

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 0
if rounds == 0:
    rounds = 8 if n >= 10000000 else 40
only = set(sys.argv[3].split(",")) | {"memcpy"} if len(sys.argv) > 3 else None
cols = 1000
rows = n // cols
torch.manual_seed(1)
a, b = torch.randn(rows, cols), torch.randn(rows, cols)
row, col = torch.randn(cols), torch.randn(rows, 1)
dst = torch.zeros(rows, cols)
half1, half2 = torch.randn(rows, cols // 2), torch.randn(rows, cols // 2)
tall = torch.randn(cols, rows)
out, out_rows, out_cols = torch.zeros(rows, cols), torch.zeros(rows), torch.zeros(cols)

ops = {
    "memcpy": lambda: dst.copy_(a),
    "add": lambda: a + b,
    "add_row": lambda: a + row,
    "add_col": lambda: a + col,
    "mul_scalar": lambda: a * 2,
    "maximum": lambda: torch.maximum(a, b),
    "exp": lambda: a.exp(),
    "tanh": lambda: a.tanh(),
    "sigmoid": lambda: a.sigmoid(),
    "abs": lambda: a.abs(),
    "sum_last": lambda: a.sum(1),
    "sum_first": lambda: a.sum(0),
    "max_last": lambda: a.max(1)[0],
    "softmax_last": lambda: a.softmax(1),
    "cat": lambda: torch.cat([half1, half2], 1),
    "permute": lambda: tall.permute(1, 0).contiguous(),  # selut's permute copies: compare the copy
    "add_out": lambda: torch.add(a, b, out=out),
    "add_row_out": lambda: torch.add(a, row, out=out),
    "add_col_out": lambda: torch.add(a, col, out=out),
    "mul_scalar_out": lambda: torch.mul(a, 2, out=out),
    "maximum_out": lambda: torch.maximum(a, b, out=out),
    "exp_out": lambda: torch.exp(a, out=out),
    "tanh_out": lambda: torch.tanh(a, out=out),
    "sigmoid_out": lambda: torch.sigmoid(a, out=out),
    "abs_out": lambda: torch.abs(a, out=out),
    "sum_last_out": lambda: torch.sum(a, 1, out=out_rows),
    "sum_first_out": lambda: torch.sum(a, 0, out=out_cols),
    "softmax_last_out": lambda: torch.ops.aten._softmax.out(a, 1, False, out=out),  # softmax has no public out=
    "cat_out": lambda: torch.cat([half1, half2], 1, out=out),
    "permute_out": lambda: out.copy_(tall.permute(1, 0)),  # permute is a view in PyTorch: its copy into out
}

order = []
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.txt")) as f:
    for line in f:
        parts = line.split()
        if parts and not line.startswith("#") and (only is None or parts[1] in only):
            order.append(parts[1])

for threads in (1, 2):
    torch.set_num_threads(threads)
    for name in order:
        op = ops[name]
        op()
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = op()
            dt = time.perf_counter() - t0
            best = min(best, dt)
            del r
        print("%s %d %.9f" % (name, threads, best))
