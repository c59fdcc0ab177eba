#!/usr/bin/python3
"""examples/cnn.lua's recipe in PyTorch (its twin), for an accuracy and speed
comparison on the same machine, and the checkpoint check.

  /usr/bin/python3 examples/cnn_torch.py [--seeds 1,2,3] [--epochs 12] [--threads 1]
      trains the same net the same way: Conv2d(1, 32, 3, padding=1) SELU
      MaxPool2d(2), Conv2d(32, 64, 3, padding=1) SELU MaxPool2d(2), Flatten,
      Linear(3136, 128) SELU AlphaDropout(0.05), Linear(128, 10); LeCun-normal
      weights (kaiming_normal_ fan_in, linear), zero biases; input
      standardized with the training set's scalar mean/std; SGD lr 0.01
      momentum 0.9, cosine-annealed per epoch; batch 128, shuffled; prints
      the test accuracy and the training seconds of each epoch.
  /usr/bin/python3 examples/cnn_torch.py --check runs/cnn/cnn.safetensors
      builds the net from the checkpoint's metadata, loads it with
      load_state_dict(strict=True) and compares the logits of the images in
      cnn-io.safetensors (written beside it by cnn.lua) with selut's.
The safetensors package is not installed here: the file is parsed by hand.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d, split):
    x = torch.tensor(idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz")).reshape(-1, 1, 28, 28),
                     dtype=torch.float32) / 255
    y = torch.tensor(idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz")), dtype=torch.int64)
    return x, y


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        np_type = {"F32": "<f4", "I64": "<i8"}[e["dtype"]]
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + end], dtype=np_type).reshape(e["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out, meta


def make_net(c1=32, c2=64, hidden=128, dropout=0.05):
    nn = torch.nn
    layers = [nn.Conv2d(1, c1, 3, padding=1), nn.SELU(), nn.MaxPool2d(2),
              nn.Conv2d(c1, c2, 3, padding=1), nn.SELU(), nn.MaxPool2d(2),
              nn.Flatten(),
              nn.Linear(c2 * 49, hidden), nn.SELU()]
    if dropout > 0:
        layers.append(nn.AlphaDropout(dropout))
    layers.append(nn.Linear(hidden, 10))
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")  # LeCun normal
            nn.init.zeros_(m.bias)
    return net


def run(seed, a, xtr, ytr, xte, yte):
    torch.manual_seed(seed)
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    acc, secs = 0.0, []
    for epoch in range(1, a.epochs + 1):
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / a.epochs))
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(xtr.shape[0])
        total, n = 0.0, 0
        for i in range(0, xtr.shape[0], a.batch):
            b = perm[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            n += len(b)
        secs.append(time.perf_counter() - t0)
        net.eval()
        with torch.no_grad():
            acc = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                      for i in range(0, xte.shape[0], 1000)) / xte.shape[0]
        print(f"torch seed {seed} epoch {epoch:2d}/{a.epochs}  train loss {total / n:.4f}  test acc {100 * acc:.2f}%  "
              f"train {secs[-1]:.1f} s ({n / secs[-1]:.0f} samples/s)", flush=True)
    return acc, secs


def check(path):
    state, meta = st_read(path)
    net = make_net(int(meta.get("c1", 32)), int(meta.get("c2", 64)), int(meta.get("hidden", 128)),
                   float(meta.get("dropout", 0.05)))
    net.load_state_dict(state, strict=True)
    net.eval()
    io, _ = st_read(os.path.join(os.path.dirname(path), "cnn-io.safetensors"))
    with torch.no_grad():
        logits = net(io["x"])
    want = io["logits"]
    rel = ((logits - want).abs() / want.abs().clamp_min(1e-6)).max().item()
    err = (logits - want).abs().max().item()
    ok = torch.allclose(logits, want, rtol=1e-5, atol=1e-5)
    same = (logits.argmax(1) == want.argmax(1)).float().mean().item()
    print(f"checkpoint {path}: loaded with strict=True; {want.shape[0]} images: max |logit difference| {err:.3g} "
          f"(max relative {rel:.3g}), predictions agree on {100 * same:.0f}%: {'OK' if ok else 'MISMATCH'} "
          f"(rtol 1e-5, atol 1e-5)")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--check", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.check:
        sys.exit(check(a.check))
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    mean, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    res = [run(int(s), a, xtr, ytr, xte, yte) for s in a.seeds.split(",")]
    final = [r[0] for r in res]
    print("torch final test acc: " + " ".join(f"{100 * f:.2f}%" for f in final) +
          f"  mean {100 * sum(final) / len(final):.2f}%  (threads {a.threads}, mean epoch "
          f"{sum(sum(r[1]) for r in res) / sum(len(r[1]) for r in res):.1f} s)")


if __name__ == "__main__":
    main()
