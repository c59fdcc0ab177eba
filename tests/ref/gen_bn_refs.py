#!/usr/bin/python3
"""BatchNorm checkpoints between selut and PyTorch (tests/lua/buffers.lua).

    /usr/bin/python3 tests/ref/gen_bn_refs.py            # (re)writes tests/data/bn-torch*.safetensors
    /usr/bin/python3 tests/ref/gen_bn_refs.py --check CKPT IO
        loads CKPT (written by selut.save of the net below) into
        torch.nn.Sequential with load_state_dict(strict=True) and compares
        its eval output on IO's "x" with IO's "y" (selut's own output)

The net: Linear(5, 4), BatchNorm1d(4), SELU(), Linear(4, 3). PyTorch trains
its running statistics on 7 batches (num_batches_tracked = 7) and writes
  bn-torch.safetensors     its state_dict (running_mean/var F32,
                           num_batches_tracked I64 with shape [], as
                           PyTorch holds it)
  bn-torch-io.safetensors  x (6 x 5) and y = the eval-mode output
The `safetensors` Python package is not installed here: files are built
byte by byte as the reference implementation writes them (tensors ordered
by dtype alignment, then name; header padded with spaces to 8 bytes).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
DT = {torch.float32: ("F32", "<f4", 4), torch.int64: ("I64", "<i8", 8)}


def make_net():
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.SELU(),
                               torch.nn.Linear(4, 3))


def st_bytes(tensors):
    order = sorted(tensors, key=lambda k: (-DT[tensors[k].dtype][2], k))
    header, off, blobs = {}, 0, []
    for name in order:
        t = tensors[name].contiguous()
        code, np_type, _ = DT[t.dtype]
        b = t.numpy().astype(np_type).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        code = e["dtype"]
        np_type = {"F32": "<f4", "I64": "<i8"}[code]
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[base + b:base + end], dtype=np_type).reshape(e["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out


def generate():
    torch.manual_seed(20240611)
    net = make_net()
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    net.train()
    for i in range(7):
        net(torch.randn(16, 5) * (1 + 0.2 * i) + 0.3)
    assert int(net[1].num_batches_tracked) == 7
    net.eval()
    x = torch.randn(6, 5)
    with torch.no_grad():
        y = net(x)
    sd = net.state_dict()
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, "bn-torch.safetensors"), "wb") as f:
        f.write(st_bytes(dict(sd)))
    with open(os.path.join(ROOT, "bn-torch-io.safetensors"), "wb") as f:
        f.write(st_bytes({"x": x, "y": y}))
    # the file reads back into a fresh PyTorch net strictly, same output
    net2 = make_net()
    net2.load_state_dict(st_read(os.path.join(ROOT, "bn-torch.safetensors")), strict=True)
    net2.eval()
    with torch.no_grad():
        assert torch.equal(net2(x), y)
    print("wrote bn-torch.safetensors (%s) and bn-torch-io.safetensors" % ", ".join(sd.keys()))


def check(ckpt, io):
    sd = st_read(ckpt)
    for k, v in sd.items():
        print("  %-24s %-5s %s" % (k, str(v.dtype).replace("torch.", ""), list(v.shape)))
    net = make_net()
    net.load_state_dict(sd, strict=True)
    assert net[1].num_batches_tracked.dtype == torch.int64
    net.eval()
    ref = st_read(io)
    with torch.no_grad():
        y = net(ref["x"])
    err = (y - ref["y"]).abs().max().item()
    print("load_state_dict(strict=True): ok; num_batches_tracked = %d; max |torch - selut| = %.3g"
          % (int(net[1].num_batches_tracked), err))
    assert err <= 1e-5, err


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        generate()
