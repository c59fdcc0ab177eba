"""bench/torch_epoch.py: the default recipe in PyTorch, for bench/vs_torch.sh.

784 -> 8 x 512 SELU + AlphaDropout(0.05) -> 10, LeCun-normal weights and zero
biases, SGD(lr=0.01, momentum=0.9), batch 128, shuffled, cross entropy: one
epoch timed after a warm-up step, the batches gathered by indexing (faster
than a DataLoader), zero_grad(set_to_none=True). Prints one line
"torch_epoch seconds=... samples=... loss=... threads=...".

  /usr/bin/python3 bench/torch_epoch.py [--threads N] [--limit SAMPLES]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--data", default=os.environ.get("SELUT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x = idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0
    y = idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    if a.limit > 0:
        x, y = x[: a.limit], y[: a.limit]
    x = (x - x.mean(dtype=np.float64)) / x.std(dtype=np.float64)
    x = torch.from_numpy(x.astype(np.float32))
    y = torch.from_numpy(y)

    layers, fan_in = [], 784
    for _ in range(8):
        layers += [torch.nn.Linear(fan_in, 512), torch.nn.SELU(), torch.nn.AlphaDropout(0.05)]
        fan_in = 512
    layers.append(torch.nn.Linear(fan_in, 10))
    net = torch.nn.Sequential(*layers)
    for m in net:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
            torch.nn.init.zeros_(m.bias)
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step(xb, yb):
        out = net(xb)
        loss = crit(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    step(x[:128], y[:128])  # warm-up
    n = x.shape[0]
    total, count = 0.0, 0
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    for i in range(0, n, 128):
        idx_b = perm[i: i + 128]
        xb, yb = x[idx_b], y[idx_b]
        total += step(xb, yb) * len(idx_b)
        count += len(idx_b)
    secs = time.perf_counter() - t0
    print("torch_epoch seconds=%.4f samples=%d loss=%.6f threads=%d" % (secs, count, total / count, a.threads))


if __name__ == "__main__":
    main()
