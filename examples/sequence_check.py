#!/usr/bin/python3
"""Loads examples/sequence.lua's checkpoint into its PyTorch twin with
load_state_dict(strict=True) and compares the logits of the 64 test images in
sequence-io.safetensors (written beside it) with selut's.

  /usr/bin/python3 examples/sequence_check.py runs/sequence/sequence.safetensors

The twin: a module with fields gru = nn.GRU(28, hidden, num_layers=layers,
batch_first=True) and head = nn.Sequential(Linear(hidden, head), SELU,
Linear(head, 10)) applied to the top layer's final hidden state.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnn_torch import st_read  # noqa: E402 (the hand-written safetensors reader)


class SeqNet(torch.nn.Module):
    def __init__(self, hidden, layers, head):
        super().__init__()
        self.gru = torch.nn.GRU(28, hidden, num_layers=layers, batch_first=True)
        self.head = torch.nn.Sequential(torch.nn.Linear(hidden, head), torch.nn.SELU(), torch.nn.Linear(head, 10))

    def forward(self, x):
        _, h_n = self.gru(x)
        return self.head(h_n[-1])


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "runs/sequence/sequence.safetensors"
    state, meta = st_read(path)
    net = SeqNet(int(meta["hidden"]), int(meta["layers"]), int(meta["head"]))
    net.load_state_dict(state, strict=True)
    net.eval()
    io, _ = st_read(os.path.join(os.path.dirname(path), "sequence-io.safetensors"))
    with torch.no_grad():
        logits = net(io["x"])
    want = io["logits"]
    err = (logits - want).abs().max().item()
    ok = torch.allclose(logits, want, rtol=1e-5, atol=1e-5)
    same = (logits.argmax(1) == want.argmax(1)).float().mean().item()
    print(f"checkpoint {path}: loaded with strict=True; {want.shape[0]} images: max |logit difference| {err:.3g}, "
          f"predictions agree on {100 * same:.0f}%: {'OK' if ok else 'MISMATCH'} (rtol 1e-5, atol 1e-5)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
