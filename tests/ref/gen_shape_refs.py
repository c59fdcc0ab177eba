#!/usr/bin/python3
"""PyTorch reference values for the shape, indexing and matmul ops
(tests/lua/ops_shape.lua, ops_index.lua, ops_matmul.lua).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_shape_refs.py
It rewrites tests/ref/shape_refs.lua (committed; the tests never import torch).
Each case is a Lua expression over the named float32 inputs (selut's 1-based
dims and indices) and PyTorch's result for the same call (0-based): a tensor,
a list of tensors (split/chunk) or a number. Copies and indexing are exact;
matmul results are compared to 1e-6 relative by the tests.
"""
import os

import torch

torch.set_num_threads(1)
torch.manual_seed(1919)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shape_refs.lua")

inputs = {}
cases = []


def inp(name, t):
    inputs[name] = t.float().contiguous()
    return inputs[name]


def lua_tensor(t):
    t = t.float().contiguous()
    shape = list(t.shape) if t.dim() > 0 else [1]
    vals = ", ".join("%.9g" % v for v in t.flatten().tolist())
    return "{shape = {%s}, data = {%s}}" % (", ".join(str(s) for s in shape), vals)


def case(group, expr, result, exact=True):
    if isinstance(result, (tuple, list)):
        res = "{list = {%s}}" % ", ".join(lua_tensor(r) for r in result)
    else:
        res = lua_tensor(result)
    cases.append('  {group = "%s", expr = %r, exact = %s, want = %s},' % (group, expr, "true" if exact else "false", res))


# ---- inputs ----
a = inp("a", torch.randn(2, 3, 4))
b = inp("b", torch.randn(3, 1, 5))
c = inp("c", torch.randn(4, 3))
e = inp("e", torch.randn(2, 0, 3))  # size-0 dim
v = inp("v", torch.randn(4))
w = inp("w", torch.randn(5, 2, 3, 4))

# ---- shape ops ----
case("shape", "a:view(4, -1)", a.view(4, -1))
case("shape", "a:reshape({3, 8})", a.reshape(3, 8))
case("shape", "a:permute(3, 1, 2)", a.permute(2, 0, 1))
case("shape", "a:permute(-1, -3, -2)", a.permute(-1, -3, -2))
case("shape", "w:permute(1, 3, 4, 2)", w.permute(0, 2, 3, 1))
case("shape", "w:permute({4, 3, 2, 1})", w.permute(3, 2, 1, 0))
case("shape", "e:permute(3, 2, 1)", e.permute(2, 1, 0))
case("shape", "a:transpose(1, 3)", a.transpose(0, 2))
case("shape", "a:transpose(-1, 2)", a.transpose(-1, 1))
case("shape", "c:t()", c.t())
case("shape", "b:squeeze()", b.squeeze())
case("shape", "b:squeeze(2)", b.squeeze(1))
case("shape", "b:squeeze(-1)", b.squeeze(-1))
case("shape", "a:unsqueeze(1)", a.unsqueeze(0))
case("shape", "a:unsqueeze(-1)", a.unsqueeze(-1))
case("shape", "a:unsqueeze(3)", a.unsqueeze(2))
case("shape", "b:expand(2, 3, 4, 5)", b.expand(2, 3, 4, 5))
case("shape", "b:expand(-1, 6, -1)", b.expand(-1, 6, -1))
case("shape", "v:expand(3, 4)", v.expand(3, 4))
case("shape", "e:expand(2, 2, 0, 3)", e.expand(2, 2, 0, 3))
case("shape", "w:flatten()", w.flatten())
case("shape", "w:flatten(2)", w.flatten(1))
case("shape", "w:flatten(2, 3)", w.flatten(1, 2))
case("shape", "w:flatten(-2, -1)", w.flatten(-2, -1))
case("shape", "a:narrow(3, 2, 2)", a.narrow(2, 1, 2))
case("shape", "a:narrow(-2, 1, 2)", a.narrow(-2, 0, 2))
case("shape", "a:select(1, 2)", a.select(0, 1))
case("shape", "a:select(3, -1)", a.select(2, -1))
case("shape", "a:select(-2, 2)", a.select(-2, 1))
case("shape", "a:split(2, 3)", a.split(2, 2))
case("shape", "a:split(2)", a.split(2, 0))
case("shape", "a:split({1, 2}, -2)", a.split([1, 2], -2))
case("shape", "w:split(3, 4)", w.split(3, 3))
case("shape", "a:chunk(2, 3)", a.chunk(2, 2))
case("shape", "w:chunk(4, 1)", w.chunk(4, 0))
case("shape", "w:chunk(3, -1)", w.chunk(3, -1))
case("shape", "e:chunk(2, 2)", e.chunk(2, 1))
case("shape", "selut.cat({a, a}, 1)", torch.cat([a, a], 0))
case("shape", "selut.cat({a, a:narrow(2, 1, 1)}, 2)", torch.cat([a, a.narrow(1, 0, 1)], 1))
case("shape", "selut.cat({a, a, a}, -1)", torch.cat([a, a, a], -1))
case("shape", "selut.cat({e, e}, 2)", torch.cat([e, e], 1))
case("shape", "selut.cat({a, T.zeros(0)}, 3)", torch.cat([a, torch.zeros(0)], 2))
case("shape", "selut.stack({c, c})", torch.stack([c, c]))
case("shape", "selut.stack({c, c, c}, 2)", torch.stack([c, c, c], 1))
case("shape", "selut.stack({c, c}, -1)", torch.stack([c, c], -1))
case("shape", "selut.permute(a, 2, 3, 1)", a.permute(1, 2, 0))
case("shape", "selut.transpose(c, 1, 2)", c.transpose(0, 1))
case("shape", "selut.squeeze(b, 2)", b.squeeze(1))
case("shape", "selut.flatten(a, 1, 2)", a.flatten(0, 1))

# ---- matmul: 1-D, 2-D, batched with broadcast batch dims ----
m1 = inp("m1", torch.randn(3, 4))
m2 = inp("m2", torch.randn(4, 5))
p3 = inp("p3", torch.randn(2, 3, 4))
q3 = inp("q3", torch.randn(2, 4, 5))
r4 = inp("r4", torch.randn(3, 1, 3, 4))
s3 = inp("s3", torch.randn(2, 4, 2))
u4 = inp("u4", torch.randn(4))
z0 = inp("z0", torch.randn(2, 0, 4))
k0 = inp("k0", torch.randn(2, 3, 0))
k1 = inp("k1", torch.randn(0, 5))
for expr, r in [
    ("selut.matmul(m1, m2)", m1 @ m2),
    ("m1:matmul(u4)", m1 @ u4),
    ("selut.matmul(u4, m2)", u4 @ m2),
    ("selut.matmul(u4, u4)", (u4 @ u4).reshape(1)),
    ("selut.matmul(p3, q3)", p3 @ q3),
    ("selut.matmul(p3, m2)", p3 @ m2),
    ("selut.matmul(m1, q3)", m1 @ q3),
    ("selut.matmul(r4, s3)", r4 @ s3),
    ("selut.matmul(p3, u4)", p3 @ u4),
    ("selut.matmul(u4, q3)", u4 @ q3),
    ("selut.matmul(r4, q3)", r4 @ q3),
    ("selut.matmul(z0, q3)", z0 @ q3),
    ("selut.matmul(k0, k1)", k0 @ k1),
    ("selut.bmm(p3, q3)", torch.bmm(p3, q3)),
    ("p3:bmm(s3:narrow(3, 1, 1):expand(2, 4, 5))", torch.bmm(p3, s3.narrow(2, 0, 1).expand(2, 4, 5))),
]:
    case("matmul", expr, r, exact=False)

# ---- indexing: 1-based indices in float tensors ----
g = inp("g", torch.randn(3, 4))
gi = torch.tensor([[0, 3, 3, 1], [2, 2, 0, 0], [1, 0, 3, 2]])
ii = torch.tensor([2, 0, 2, 1])
inputs["gi"] = (gi + 1).float()
inputs["ii"] = (ii + 1).float()
inputs["gj"] = (gi[:, :3] % 3 + 1).float()
gj = gi[:, :3] % 3
src = inp("src", torch.randn(3, 4))
mk = inp("mk", (torch.rand(3, 4) > 0.5).float())
mrow = inp("mrow", torch.tensor([1.0, 0.0, 0.0, 1.0]))
mcol = inp("mcol", torch.tensor([[0.0], [1.0], [0.0]]))
lab = torch.tensor([2, 0, 1, 4, 4])
inputs["lab"] = (lab + 1).float()
case("index", "g:index_select(2, ii)", g.index_select(1, ii))
case("index", "g:index_select(-2, ii:narrow(1, 1, 3))", g.index_select(-2, ii[:3]))
case("index", "a:index_select(3, ii)", a.index_select(2, ii))
case("index", "selut.index_select(g, 1, T.zeros(0))", g.index_select(0, torch.zeros(0, dtype=torch.long)))
case("index", "g:gather(2, gi)", g.gather(1, gi))
case("index", "g:gather(1, gj)", g.gather(0, gj))
case("index", "g:gather(-1, gi:narrow(2, 1, 2))", g.gather(-1, gi[:, :2]))
case("index", "selut.gather(g, 1, gj:narrow(1, 1, 2))", g.gather(0, gj[:2]))
case("index", "T.zeros(3, 4):scatter_add(2, gi, src)", torch.zeros(3, 4).scatter_add(1, gi, src))
case("index", "g:scatter_add(1, gj, src)", g.scatter_add(0, gj, src))
case("index", "g:clone():scatter_add_(2, gi:narrow(2, 1, 2), src)", g.clone().scatter_add_(1, gi[:, :2], src))
case("index", "g:masked_fill(mk, -7.5)", g.masked_fill(mk.bool(), -7.5))
case("index", "g:masked_fill(mrow, 0)", g.masked_fill(mrow.bool(), 0))
case("index", "g:masked_fill(mcol, 1e9)", g.masked_fill(mcol.bool(), 1e9))
case("index", "g:clone():masked_fill_(mk, 2)", g.clone().masked_fill_(mk.bool(), 2))
case("index", "selut.one_hot(lab, 6)", torch.nn.functional.one_hot(lab, 6))
case("index", "selut.one_hot(lab)", torch.nn.functional.one_hot(lab))
case("index", "selut.one_hot(gi, 4)", torch.nn.functional.one_hot(gi, 4))

# ---- indexing, more: 3-D, negative dims, permuted/transposed inputs, src
# larger than the index, long accumulations (PyTorch adds in index order) ----
h = inp("h", torch.randn(2, 3, 5))
hi = torch.tensor([[[4, 0, 2], [1, 1, 3]], [[0, 0, 0], [2, 4, 1]]])  # [2 x 2 x 3], values < 5
inputs["hi"] = (hi + 1).float()
hs = inp("hs", torch.randn(2, 3, 4))
bins = torch.randint(0, 3, (64,))
inputs["bins"] = (bins + 1).float()
many = inp("many", torch.randn(64))
case("index", "h:gather(3, hi)", h.gather(2, hi))
case("index", "h:gather(-1, hi)", h.gather(-1, hi))
hp = hi.permute(2, 0, 1) % 2  # [3 x 2 x 2], values < 2
inputs["hp"] = (hp + 1).float()
case("index", "h:permute(3, 1, 2):gather(2, hp)", h.permute(2, 0, 1).gather(1, hp))
case("index", "h:transpose(1, 3):index_select(2, T.new({2, 2, 1}))", h.transpose(0, 2).index_select(1, torch.tensor([1, 1, 0])))
case("index", "h:index_select(1, T.new({2, 1, 2}))", h.index_select(0, torch.tensor([1, 0, 1])))
case("index", "h:index_select(-1, T.new({5, 1}))", h.index_select(-1, torch.tensor([4, 0])))
case("index", "h:scatter_add(3, hi, hs)", h.scatter_add(2, hi, hs))
case("index", "h:scatter_add(-1, hi, hs:narrow(3, 1, 3))", h.scatter_add(-1, hi, hs[:, :, :3]))
case("index", "h:transpose(1, 2):scatter_add(1, hp:narrow(3, 1, 1):permute(2, 3, 1), hs:transpose(1, 2))",
     h.transpose(0, 1).scatter_add(0, hp[:, :, :1].permute(1, 2, 0), hs.transpose(0, 1)))
case("index", "selut.scatter_add(T.zeros(3), 1, bins, many)", torch.zeros(3).scatter_add(0, bins, many))
case("index", "T.ones(3):scatter_add_(1, bins, many)", torch.ones(3).scatter_add_(0, bins, many))
case("index", "selut.gather(many, 1, bins)", many.gather(0, bins))
case("index", "h:gather(2, T.zeros(2, 0, 5))", h.gather(1, torch.zeros(2, 0, 5, dtype=torch.long)))
case("index", "v:masked_fill(mk, 3)", v.masked_fill(mk.bool(), 3))
case("index", "selut.masked_fill(g, g:gt(0), 0)", g.masked_fill(g > 0, 0))
m3 = inp("m3", torch.tensor([[1.0], [0.0], [1.0], [0.0], [0.0]]))  # [5 x 1]
case("index", "h:permute(2, 3, 1):masked_fill(m3, -1)", h.permute(1, 2, 0).masked_fill(m3.bool(), -1))
case("index", "h:transpose(2, 3):masked_fill(mcol:view(1, 1, 3), 4)", h.transpose(1, 2).masked_fill(mcol.view(1, 1, 3).bool(), 4))
case("index", "selut.one_hot(hi:view(-1))", torch.nn.functional.one_hot(hi.view(-1)))
case("index", "selut.one_hot(T.zeros(0), 3)", torch.nn.functional.one_hot(torch.zeros(0, dtype=torch.long), 3))
case("index", "bins:one_hot(3)", torch.nn.functional.one_hot(bins, 3))

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_shape_refs.py (torch %s); do not edit\n" % torch.__version__)
    f.write("return {\n inputs = {\n")
    for name in sorted(inputs):
        f.write("  %s = %s,\n" % (name, lua_tensor(inputs[name])))
    f.write(" },\n cases = {\n")
    f.write("\n".join(cases))
    f.write("\n },\n}\n")
