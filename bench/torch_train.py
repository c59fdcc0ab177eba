"""bench/torch_train.py: examples/train.lua's default recipe in PyTorch, for an
accuracy comparison on the same machine (not a timing benchmark).

784 -> 8 x 512 SELU + AlphaDropout(0.05) -> 10, LeCun-normal weights
(kaiming_normal_ fan_in, linear) and zero biases, inputs standardized with the
training set's scalar mean/std, SGD(lr=0.01, momentum=0.9), batch 128,
shuffled, cross entropy, 10 epochs; prints the test accuracy after each epoch.

  /usr/bin/python3 bench/torch_train.py [--seeds 1,2,3] [--epochs 10]
"""
import argparse
import gzip
import os

import numpy as np
import torch


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d, split):
    x = torch.tensor(idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz")).reshape(-1, 784), dtype=torch.float32) / 255
    y = torch.tensor(idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz")), dtype=torch.int64)
    return x, y


def run(seed, epochs, xtr, ytr, xte, yte):
    torch.manual_seed(seed)
    layers, fan_in = [], 784
    for _ in range(8):
        lin = torch.nn.Linear(fan_in, 512)
        torch.nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="linear")
        torch.nn.init.zeros_(lin.bias)
        layers += [lin, torch.nn.SELU(), torch.nn.AlphaDropout(0.05)]
        fan_in = 512
    out = torch.nn.Linear(fan_in, 10)
    torch.nn.init.kaiming_normal_(out.weight, mode="fan_in", nonlinearity="linear")
    torch.nn.init.zeros_(out.bias)
    net = torch.nn.Sequential(*layers, out)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    accs = []
    for epoch in range(1, epochs + 1):
        net.train()
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], 128):
            b = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            lossf(net(xtr[b]), ytr[b]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item()
        accs.append(acc)
        print(f"torch seed {seed} epoch {epoch} test acc {100 * acc:.2f}%", flush=True)
    return accs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(1)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    mean, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    final = [run(int(s), a.epochs, xtr, ytr, xte, yte)[-1] for s in a.seeds.split(",")]
    print("torch final test acc: " + " ".join(f"{100 * f:.2f}%" for f in final) +
          f"  mean {100 * sum(final) / len(final):.2f}%")


if __name__ == "__main__":
    main()
