#!/usr/bin/python3
"""One training epoch of the PyTorch twins of examples/cnn.lua
(examples/cnn_torch.py's net) and examples/sequence.lua (GRU(28, 128)
batch_first over the rows + Linear(128, 64) SELU Linear(64, 10), LeCun-normal
head, Adam 0.002): same recipe as bench/layers_vs_torch/selut_epoch.lua.
Prints the epoch's wall and process CPU seconds and the mean training loss.
  /usr/bin/python3 bench/layers_vs_torch/torch_epoch.py cnn|gru [limit] [threads]
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from cnn_torch import load, make_net  # noqa: E402


class SeqNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(28, 128, batch_first=True)
        self.head = torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.SELU(), torch.nn.Linear(64, 10))
        for m in self.head:
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
                torch.nn.init.zeros_(m.bias)

    def forward(self, x):
        _, h_n = self.gru(x)
        return self.head(h_n[-1])


def main():
    which = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x, y = load(os.environ.get("SELUT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"), "train")
    if limit > 0:
        x, y = x[:limit], y[:limit]
    x = (x - x.mean()) / x.std()
    if which == "cnn":
        net = make_net()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    else:
        x = x.reshape(-1, 28, 28)
        net = SeqNet()
        opt = torch.optim.Adam(net.parameters(), lr=0.002)
    lossf = torch.nn.CrossEntropyLoss()
    net.train()
    w0, c0 = time.perf_counter(), time.process_time()
    perm = torch.randperm(x.shape[0])
    total, n = 0.0, 0
    for i in range(0, x.shape[0], 128):
        b = perm[i:i + 128]
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(x[b]), y[b])
        loss.backward()
        opt.step()
        total += loss.item() * len(b)
        n += len(b)
    print(f"torch_{which} wall={time.perf_counter() - w0:.3f} cpu={time.process_time() - c0:.3f} samples={n} "
          f"loss={total / n:.4f} threads={threads}")


if __name__ == "__main__":
    main()
