#!/usr/bin/python3
"""The PyTorch twin of examples/resnet_mlp.lua (same module tree, so the same
state_dict names), used to check that selut's checkpoint loads with
strict=True and computes the same logits.
  build/selut examples/resnet_mlp.lua --save runs/resmlp.safetensors
  /usr/bin/python3 examples/resnet_mlp_torch.py --check runs/resmlp.safetensors
The safetensors package is not installed here: the file is parsed by hand
(cnn_torch.py's reader)."""
import argparse
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnn_torch import load, st_read  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, p):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.AlphaDropout(p)

    def forward(self, x):
        h = self.fc2(self.drop(torch.selu(self.fc1(x))))
        return (x + torch.selu(h)) * (1 / math.sqrt(2))


class ResMLP(nn.Module):
    def __init__(self, blocks, width, p):
        super().__init__()
        self.stem = nn.Linear(784, width)
        self.blocks = nn.ModuleList([Block(width, p) for _ in range(blocks)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        h = torch.selu(self.stem(x))
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", required=True, help="a checkpoint written by resnet_mlp.lua --save")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    tensors, _ = st_read(a.check)
    net = ResMLP(a.blocks, a.width, 0.05)
    net.load_state_dict({k: torch.from_numpy(v) if not torch.is_tensor(v) else v for k, v in tensors.items()},
                        strict=True)
    net.eval()
    xtr, _ = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    xtr, xte = xtr.reshape(-1, 784), xte.reshape(-1, 784)
    mean, std = xtr.mean(), xtr.std()
    with torch.no_grad():
        pred = net((xte - mean) / std).argmax(1)
    print("strict=True load: ok; PyTorch test accuracy of the selut checkpoint: %.2f %%"
          % (100.0 * (pred == yte).float().mean().item()))


if __name__ == "__main__":
    main()
