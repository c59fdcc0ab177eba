#!/usr/bin/python3
"""PyTorch autograd references for tests/lua/autograd_ops.lua: the tensor ops
beyond the first batch (pow maximum minimum where clamp, prod var std max min
logsumexp norm softmax log_softmax, permute transpose expand select split
chunk cat stack, bmm and batched matmul).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_autograd_ops_refs.py
It rewrites tests/ref/autograd_ops_refs.lua (committed; the tests never import
torch). Each case: float32 inputs that require grad, constant inputs
(`consts`, no grad), a scalar loss built by the same expression as the Lua
test (named by the case), the loss value and the gradient of every input
(plus retained non-leaf gradients). New cases go at the end so the random
draws of earlier ones stay the same.
"""
import math
import os

import torch

torch.set_num_threads(1)
torch.manual_seed(2021)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograd_ops_refs.lua")
INF = float("inf")


def lua_list(t):
    return "{" + ", ".join("%.9g" % v for v in t.detach().flatten().tolist()) + "}"


def leaf(*shape, positive=False):
    t = torch.randn(*shape).float()
    if positive:
        t = t.abs() + 0.5
    return t


cases = []


def case(name, inputs, f, consts=(), extra_of=None):
    xs = [t.clone().requires_grad_(True) for t in inputs]
    extra = {}
    loss = f(*xs, *consts) if extra_of is None else extra_of(extra, *xs, *consts)
    loss.backward()
    extra = {k: (v.grad if v.grad is not None else v) for k, v in extra.items()}
    cases.append((name, xs, list(consts), loss, extra))


# ---- elementwise ----
case("pow", [leaf(3, 4, positive=True), leaf(4)],
     lambda a, b: ((a ** b) * 0.5 + a ** 2.5 + 1.5 ** b + a ** 0 + (a - 1) ** 2).sum())

a, b = leaf(3, 4), leaf(4)
a[0, 1] = b[1]        # ties between the operands
a[2, 3] = 0.5         # a tie with the number
b[2] = 0.1
case("maximum_minimum", [a, b], lambda a, b: (torch.maximum(a, b) * 2 + torch.minimum(a, b) * 3
                                              + torch.maximum(a, torch.tensor(0.5)) * a
                                              + torch.minimum(b, torch.tensor(0.1))).sum())

cond = torch.tensor([[1.0], [0.0], [1.0]])
case("where", [leaf(3, 4), leaf(4)],
     lambda a, b, c: (torch.where(c.bool(), a, b) * a).sum() + torch.where(c.bool(), a, torch.tensor(2.0)).sum()
     + torch.where(c.bool(), torch.tensor(-1.0), b).sum(), consts=[cond])

a = leaf(4, 5)
a[0, 0], a[0, 1] = 0.5, -0.5  # exactly on the bounds: the gradient passes (PyTorch)
case("clamp", [a], lambda a: (a.clamp(-0.5, 0.5) * a).sum() + a.clamp(min=0.2).sum() * 2 + a.clamp(max=-0.1).sum()
     + a.clamp(1.0, -1.0).sum())

# ---- reductions ----
z = leaf(3, 4)
z[0, 1] = 0.0               # one zero in a row
z[1, 0], z[1, 3] = 0.0, 0.0  # two zeros in a row
case("prod", [leaf(3, 4), z, leaf(5)], lambda a, z, v: a.prod(1).sum() + a.prod() + z.prod(1).sum()
     + z.prod(0, keepdim=True).sum() * 0.5 + z.prod() + v.prod())

case("var_std", [leaf(3, 5)], lambda a: a.var() + a.std(1).sum() + a.var(0, unbiased=False, keepdim=True).sum() * 2
     + a.std(unbiased=False) + a.var(-1).sum() + a.std(0, keepdim=True).sum())

a = leaf(3, 4)
a[0, 2] = a.max().item()    # a tie for the all-element max: split evenly
a[1, 1] = a[1].min().item() - 1
a[1, 3] = a[1, 1]           # a tie in a row: the first index gets it
a[2, 0] = a[2].max().item() + 1
a[2, 2] = a[2, 0]
case("max_min", [a], lambda a: a.max() * 2 + a.min() + a.max(1)[0].sum() * 3 + a.min(1)[0].sum()
     + (a.max(-1, keepdim=True)[0] * a).sum() + a.min(0)[0].sum() * 0.5 + a.max(-2, keepdim=True).values.sum())

case("logsumexp", [leaf(3, 4)], lambda a: a.logsumexp(1).sum() + a.logsumexp(0, keepdim=True).sum() * 0.5
     + a.reshape(-1).logsumexp(0) + (a * 3).logsumexp(-1).sum())

a = leaf(3, 4)
a[1, 0] = -a[0, 0]          # |x| ties for the inf-norm along dim 1 and 2
a[2, 1] = a[:, 1].abs().max() + 1
a[2, 3] = -a[2, 1]
case("norm", [a], lambda a: a.norm() + a.norm(1) + a.norm(3, 1).sum() + a.norm(INF, 0).sum() + a.norm(0.5)
     + a.norm(1.5, -1, keepdim=True).sum() + a.norm(-INF, 1).sum() + a.norm(INF) + a.norm(2, 0).sum()
     + a.norm(0, 1).sum())

case("softmax", [leaf(3, 4)], lambda a, w: (a.softmax(1) * w).sum() + (a.log_softmax(0) * w).sum()
     + (a.softmax(-1) * a).sum() + (a.log_softmax(-1) ** 2).sum(), consts=[leaf(3, 4)])


# a chain through several of these ops, with a retained non-leaf
def chain(extra, a, b):
    h = torch.maximum(a ** 2, b).softmax(-1)
    h.retain_grad()
    extra["h"] = h
    return (h.log().clamp(-3, 0) * a).logsumexp(0).sum() + a.std(0).prod() + h.norm() + a.max(1)[0].var()


case("chain_ew_red", [leaf(4, 3), leaf(3)], None, extra_of=chain)

# ---- shape ops and batched products ----
case("permute_transpose", [leaf(2, 3, 4)],
     lambda a, w1, w2: (a.permute(2, 0, 1) * w1).sum() + (a.transpose(0, 2) * w2).sum()
     + (a.transpose(-1, -2).sum(1) ** 2).sum(), consts=[leaf(4, 2, 3), leaf(4, 3, 2)])

case("expand", [leaf(3, 1), leaf(4)],
     lambda a, b: (a.expand(3, 4) * b.expand(2, 3, 4)).sum() + (a.expand(-1, 5) ** 2).sum() + b.expand(1, 4).exp().sum())

case("select", [leaf(3, 4, 2), leaf(5)],
     lambda a, v, w: (a.select(1, 2) * w).sum() + (a.select(-1, 0) ** 2).sum() + a.select(0, -1).sum() * 3
     + v.select(0, 1) * 2 + v.select(0, -1) ** 2, consts=[leaf(3, 2)])


def split_chunk(a):
    p = a.split(2, 0)
    q = a.split([1, 3], 1)
    r = a.chunk(3, 1)
    return p[0].sum() + (p[2] * 3).sum() + (q[1] ** 2).sum() + (r[0] * r[1]).sum()


case("split_chunk", [leaf(5, 4)], split_chunk)

case("cat_stack", [leaf(2, 3), leaf(4, 3), leaf(2, 3)],
     lambda a, b, c, w: (torch.cat([a, b, a], 0) * w).sum() + (torch.stack([a, c], 1) ** 2).sum()
     + (torch.cat([a, c], -1).sum(0) ** 3).sum() + torch.stack([a, c, a], -1).sum(-1).prod(), consts=[leaf(8, 3)])


def cat_many(*xs):
    w = torch.arange(33.0).reshape(11, 3) / 10
    return (torch.cat(xs, 0) * w).sum() + (torch.stack(xs, 1) ** 2).sum() + torch.stack(xs[:9], -1).sum()


case("cat_many", [leaf(1, 3) for _ in range(11)], cat_many)

case("bmm", [leaf(2, 3, 4), leaf(2, 4, 5)], lambda a, b, w: (torch.bmm(a, b) * w).sum(), consts=[leaf(2, 3, 5)])

case("matmul_batched", [leaf(2, 1, 3, 4), leaf(3, 4, 2), leaf(4), leaf(4, 2)],
     lambda a, b, v, m: ((a @ b) ** 2).sum() + (a @ v).sum() + (v @ b).exp().sum()
     + (b @ b.transpose(-1, -2)).sum() + ((a @ m) * 0.5).sum() + (m.t() @ b).sum())


def chain_shape(extra, a, b):
    h = torch.matmul(a, b).softmax(-1)
    parts = h.split(1, 0)
    s = torch.stack([p.squeeze(0) for p in parts], 2)
    s.retain_grad()
    extra["h"] = s
    return s.expand(2, 3, 3, 2).logsumexp(1).sum() + s.select(2, 0).max() + s.permute(2, 0, 1).norm()


case("chain_shape", [leaf(2, 3, 4), leaf(4, 3)], None, extra_of=chain_shape)

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_autograd_ops_refs.py (torch %s); do not edit\nreturn {\n" % torch.__version__)
    for name, inputs, consts, loss, extra in cases:
        f.write("  %s = {\n    loss = %.9g,\n" % (name, loss.item()))
        f.write("    inputs = {\n")
        for t in inputs:
            f.write("      {shape = {%s}, x = %s, grad = %s},\n" % (", ".join(str(s) for s in t.shape), lua_list(t),
                                                               lua_list(t.grad)))
        f.write("    },\n")
        f.write("    consts = {\n")
        for t in consts:
            f.write("      {shape = {%s}, x = %s},\n" % (", ".join(str(s) for s in t.shape), lua_list(t)))
        f.write("    },\n")
        for k, v in extra.items():
            f.write("    %s = %s,\n" % (k, lua_list(v)))
        f.write("  },\n")
    f.write("}\n")
