#!/usr/bin/python3
"""PyTorch references for tests/lua/attention.lua.

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_attention_refs.py
It rewrites tests/ref/attention_refs.lua (committed; the tests never import torch).

MultiheadAttention cases: float32 weights, inputs and output gradient; the
expected output, weights and gradients (query, key, value, every parameter)
come from torch.nn.MultiheadAttention run in float64 on those same float32
values. torch 1.13 has no is_causal: its cases pass the causal mask
explicitly to PyTorch while selut is given is_causal = true. Masks are
written as selut takes them: MultiheadAttention's boolean 1 = masked.

scaled_dot_product_attention cases (PyTorch 2's semantics: a boolean mask's
True = attend, is_causal = tril, scale default 1/sqrt(E)): torch 1.13 has
no F.scaled_dot_product_attention, so the reference is its definition,
softmax(q k^T * scale + mask) v, in float64 with autograd for the gradients.
"""
import math
import os

import torch

torch.set_num_threads(1)
torch.manual_seed(2121)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention_refs.lua")


def flat(t, fmt="%.9g"):
    return "{" + ", ".join(fmt % v for v in t.detach().flatten().tolist()) + "}"


def tensor(t, exact=False):
    shape = "{" + ", ".join(str(s) for s in t.shape) + "}"
    return "{shape = %s, x = %s}" % (shape, flat(t, "%.9g" if exact else "%.10g"))


def f32(*shape):
    return torch.randn(*shape).float()


mha_cases = []


def mha_case(name, E, H, L, S, N, batch_first=False, bias=True, kpm=None, attn=None, causal=False,
             need_weights=True, average=True, self_attn=False, mask_type=None):
    mod = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first)
    with torch.no_grad():  # float32 values, spread wider than the default init
        for p in mod.parameters():
            p.copy_(torch.randn(p.shape) * 0.4)
    batched = N is not None

    def shp(n_seq):
        if not batched:
            return (n_seq, E)
        return (N, n_seq, E) if batch_first else (n_seq, N, E)

    q = f32(*shp(L))
    if self_attn:
        k = q
        v = q
    else:
        k = f32(*shp(S))
        v = f32(*shp(S))
    if self_attn:
        S = L
    gout = f32(*shp(L))
    # masks as selut gets them (floats) and as PyTorch gets them
    sel = {}

    def torch_mask(m):
        if mask_type != "float" and ((m == 0) | (m == 1)).all():
            return m.bool()
        return m.double()

    kpm_t = attn_t = None
    if kpm is not None:
        sel["key_padding_mask"] = kpm.float()
        kpm_t = torch_mask(kpm)
    am = attn
    if causal:
        am = torch.ones(L, S).triu(1)
    if am is not None:
        attn_t = torch_mask(am)
    if attn is not None:
        sel["attn_mask"] = attn.float()
    md = mod.double()
    qd, kd, vd = (t.double().requires_grad_(True) for t in (q, k, v))
    if self_attn:
        kd = vd = qd
    out, w = md(qd, kd, vd, key_padding_mask=kpm_t, need_weights=need_weights, attn_mask=attn_t,
                average_attn_weights=average)
    out.backward(gout.double())
    opts = []
    for key, t in sel.items():
        opts.append("%s = %s" % (key, tensor(t, exact=True)))
    if causal:
        opts.append("is_causal = true")
    if not need_weights:
        opts.append("need_weights = false")
    if not average:
        opts.append("average_attn_weights = false")
    if mask_type:
        opts.append("mask_type = %r" % mask_type)
    lines = ["  {name = %r, E = %d, H = %d, batch_first = %s, bias = %s, self_attn = %s," %
             (name, E, H, str(batch_first).lower(), str(bias).lower(), str(self_attn).lower())]
    lines.append("   opts = {%s}," % ", ".join(opts))
    params = [(n, p) for n, p in mod.named_parameters()]
    lines.append("   params = {%s}," % ", ".join("[%r] = %s" % (n, tensor(p.float(), exact=True)) for n, p in params))
    lines.append("   grads = {%s}," % ", ".join("[%r] = %s" % (n, tensor(p.grad)) for n, p in params))
    lines.append("   query = %s, key = %s, value = %s, gout = %s," %
                 (tensor(q, True), tensor(k, True), tensor(v, True), tensor(gout, True)))
    lines.append("   out = %s," % tensor(out))
    if need_weights:
        lines.append("   weights = %s," % tensor(w))
    if self_attn:
        lines.append("   gq = %s}," % tensor(qd.grad))
    else:
        lines.append("   gq = %s, gk = %s, gv = %s}," % (tensor(qd.grad), tensor(kd.grad), tensor(vd.grad)))
    mha_cases.append("\n".join(lines))


def kpm_rows(N, S, lens):
    m = torch.zeros(N, S)
    for n, ln in enumerate(lens):
        m[n, ln:] = 1
    return m


mha_case("self_seq_first_h1", 8, 1, 5, 5, 2, self_attn=True)
mha_case("cross_seq_first_h4", 8, 4, 3, 6, 2)
mha_case("cross_batch_first_h4", 8, 4, 4, 5, 3, batch_first=True)
mha_case("cross_batch_first_h1_nobias", 6, 1, 4, 3, 2, batch_first=True, bias=False)
mha_case("kpm_bool", 8, 4, 3, 5, 2, kpm=kpm_rows(2, 5, [5, 3]))
mha_case("kpm_float", 8, 2, 3, 5, 2, batch_first=True, kpm=torch.randn(2, 5) * 0.5)
mha_case("attn_bool_2d", 8, 4, 4, 4, 2, attn=(torch.rand(4, 4) < 0.3).float().fill_diagonal_(0))
mha_case("attn_float_3d", 8, 2, 3, 4, 2, attn=torch.randn(4, 3, 4) * 0.7)
mha_case("attn_bool_and_kpm", 8, 4, 3, 5, 2, attn=torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0.]]),
         kpm=kpm_rows(2, 5, [5, 4]))
mha_case("causal", 8, 4, 5, 5, 2, causal=True, batch_first=True)
mha_case("no_weights", 8, 4, 3, 4, 2, need_weights=False)
mha_case("per_head_weights", 8, 4, 3, 4, 2, average=False)
mha_case("unbatched", 8, 2, 3, 4, None, kpm=torch.tensor([0, 0, 1, 0.]))
mha_case("unbatched_per_head", 8, 2, 3, 4, None, average=False)
mha_case("float_mask_of_ones", 8, 2, 3, 4, 2, attn=torch.tensor([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 1.]]),
         mask_type="float")

sdpa_cases = []


def sdpa_case(name, qs, ks, vs, mask=None, causal=False, scale=None, mask_type=None, boolean=False):
    q, k, v = f32(*qs), f32(*ks), f32(*vs)
    L, S, E = qs[-2], ks[-2], qs[-1]
    gout = f32(*(qs[:-1] + (vs[-1],)))
    qd, kd, vd = (t.double().requires_grad_(True) for t in (q, k, v))
    sc = scale if scale is not None else 1.0 / math.sqrt(E)
    s = qd @ kd.transpose(-2, -1) * sc
    if causal:
        s = s.masked_fill(torch.ones(L, S).tril().logical_not(), float("-inf"))
    if mask is not None:
        if boolean:
            s = s.masked_fill(mask.logical_not(), float("-inf"))
        else:
            s = s + mask.double()
    w = s.softmax(-1)
    out = w @ vd
    out.backward(gout.double())
    opts = []
    if mask is not None:
        opts.append("attn_mask = %s" % tensor(mask.float(), True))
    if causal:
        opts.append("is_causal = true")
    if scale is not None:
        opts.append("scale = %.17g" % scale)
    if mask_type:
        opts.append("mask_type = %r" % mask_type)
    sdpa_cases.append("  {name = %r, opts = {%s},\n   q = %s, k = %s, v = %s, gout = %s,\n   out = %s,\n"
                      "   gq = %s, gk = %s, gv = %s}," %
                      (name, ", ".join(opts), tensor(q, True), tensor(k, True), tensor(v, True), tensor(gout, True),
                       tensor(out), tensor(qd.grad), tensor(kd.grad), tensor(vd.grad)))


sdpa_case("plain_3d", (2, 3, 4), (2, 5, 4), (2, 5, 6))
sdpa_case("plain_2d", (3, 4), (5, 4), (5, 2))
sdpa_case("scale", (2, 3, 4), (2, 5, 4), (2, 5, 3), scale=0.9)
sdpa_case("causal_4d", (2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3), causal=True)
sdpa_case("bool_mask_broadcast", (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4),
          mask=torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0.]]).bool(), boolean=True)
sdpa_case("float_mask_batch1", (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), mask=torch.randn(2, 1, 3, 5))
sdpa_case("float_mask_of_ones", (3, 4), (4, 4), (4, 4), mask=torch.tensor([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 1.]]),
          mask_type="float")

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_attention_refs.py (torch %s); do not edit\n" % torch.__version__)
    f.write("return {\nmha = {\n%s\n},\nsdpa = {\n%s\n},\n}\n" % ("\n".join(mha_cases), "\n".join(sdpa_cases)))
print("wrote", OUT, len(mha_cases), "MultiheadAttention cases,", len(sdpa_cases), "sdpa cases")
