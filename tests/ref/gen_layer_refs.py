#!/usr/bin/python3
"""PyTorch references for the spatial layers (tests/c/test_conv.c):
Conv1d, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (tests/c/test_conv.c),
LayerNorm, GroupNorm, BatchNorm2d, Embedding (tests/c/test_norm.c).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_layer_refs.py
It rewrites tests/ref/layer_refs.h (committed; the tests never import torch).

Inputs, weights and output gradients are float32 drawn from a fixed seed and
written out; the references (output, input gradient, weight and bias
gradients) are PyTorch's, computed in float64 from those float32 values: the
exact result the float32 C kernels approximate. Sizes are odd on purpose;
the cases cover stride > 1, padding (also PyTorch's padding='same' with an
even kernel, which pads one more at the end), dilation, groups (depthwise
too), no bias, a batch large enough to be split into im2col chunks, ties in
max pooling, count_include_pad both ways and ceil_mode.
"""
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(2112)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_refs.h")
f32, f64 = torch.float32, torch.float64


def lit(v):
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        raise ValueError("non-finite reference value")
    if v == 0.0:
        return "-0.0f" if math.copysign(1.0, v) < 0 else "0.0f"
    s = "%.9g" % v
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"


lines, count = [], [0]


def array(t):
    name = "layer_ref_a%d" % count[0]
    count[0] += 1
    vals = [lit(v) for v in t.to(f32).reshape(-1).tolist()]
    lines.append("static const float %s[] = {%s};" % (name, ",".join(vals) if vals else "0.0f"))
    return name


def same_pad(k, d):
    total = d * (k - 1)
    return total // 2, total - total // 2


# ---- convolutions ----------------------------------------------------------
# (nd, n, cin, spatial, cout, kernel, stride, padding, dilation, groups, bias)
# spatial/kernel/stride/dilation are (h, w) for 2-D, (l,) for 1-D; padding is
# a tuple or "same".
CONVS = [
    (2, 2, 3, (7, 9), 5, (3, 3), (1, 1), (0, 0), (1, 1), 1, True),
    (2, 3, 4, (9, 8), 6, (3, 2), (2, 3), (1, 2), (1, 2), 2, True),
    (2, 2, 6, (5, 5), 3, (5, 5), (1, 1), (2, 2), (1, 1), 3, False),
    (2, 2, 4, (11, 10), 8, (3, 3), (2, 2), (1, 1), (2, 2), 4, True),   # depthwise, multiplier 2
    (2, 2, 3, (6, 7), 4, (4, 2), (1, 1), "same", (1, 1), 1, True),     # pads 1/2 and 0/1
    (2, 1, 5, (13, 11), 7, (3, 5), (3, 2), (2, 1), (1, 1), 1, True),   # one sample
    (2, 5, 3, (8, 6), 4, (3, 3), (2, 1), (1, 1), (1, 1), 1, True),     # also run in im2col chunks (test)
    (2, 3, 2, (1, 1), 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),     # 1 x 1 image, padding only
    (1, 3, 4, (17,), 6, (5,), (2,), (3,), (2,), 2, True),
    (1, 2, 3, (8,), 2, (3,), (1,), "same", (1,), 1, False),
    (1, 2, 3, (9,), 4, (4,), (1,), "same", (2,), 1, True),             # pads 3/3
]

conv_rows = []
for nd, n, cin, sp, cout, k, st, pad, dil, groups, bias in CONVS:
    x = torch.randn((n, cin) + sp, dtype=f32)
    w = (torch.randn((cout, cin // groups) + k, dtype=f32) * 0.5)
    b = torch.randn(cout, dtype=f32) if bias else None
    conv = F.conv2d if nd == 2 else F.conv1d
    x64 = x.to(f64).requires_grad_()
    w64 = w.to(f64).requires_grad_()
    b64 = b.to(f64).requires_grad_() if bias else None
    y = conv(x64, w64, b64, stride=st, padding=pad, dilation=dil, groups=groups)
    gy = torch.randn(y.shape, dtype=f32)
    y.backward(gy.to(f64))
    if pad == "same":
        lo_hi = [same_pad(kk, dd) for kk, dd in zip(k, dil)]
    else:
        lo_hi = [(p, p) for p in pad]
    two = lambda v: tuple(v) if nd == 2 else (1,) + tuple(v)   # (h, w); 1-D: h = 1
    kh, kw = two(k)
    sh, sw = two(st)
    dh, dw = two(dil)
    (ph, peh), (pw, pew) = lo_hi if nd == 2 else [(0, 0)] + lo_hi
    h, wd = two(sp)
    conv_rows.append("  {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
                     "%s, %s, %s, %s, %s, %s, %s, %s}" % (
                         nd, n, cin, h, wd, cout, kh, kw, sh, sw, ph, pw, peh, pew, dh, dw, groups, int(bias),
                         y.numel(), array(x), array(w), array(b) if bias else "NULL", array(y.detach()), array(gy),
                         array(x64.grad), array(w64.grad), array(b64.grad) if bias else "NULL"))

# ---- pooling ---------------------------------------------------------------
# (kind, n, c, h, w, kernel, stride (None = kernel), padding, dilation, ceil_mode, count_include_pad, ties)
POOLS = [
    ("max", 2, 3, 9, 7, (3, 3), (2, 2), (1, 1), (1, 1), False, True, False),
    ("max", 2, 2, 8, 9, (2, 3), None, (0, 0), (1, 1), False, True, False),
    ("max", 1, 3, 10, 9, (3, 3), (2, 2), (1, 1), (2, 2), True, True, False),
    ("max", 2, 2, 5, 6, (2, 2), (1, 1), (0, 0), (1, 1), False, True, True),   # ties: the first maximum
    ("avg", 2, 3, 9, 7, (3, 3), (2, 2), (1, 1), (1, 1), False, True, False),
    ("avg", 2, 3, 9, 7, (3, 3), (2, 2), (1, 1), (1, 1), False, False, False),
    ("avg", 1, 2, 8, 10, (3, 2), (2, 3), (1, 1), (1, 1), True, True, False),
    ("avg", 2, 2, 7, 9, (2, 3), None, (0, 0), (1, 1), False, True, False),
    ("adaptive", 2, 3, 10, 9, (4, 5), None, (0, 0), (1, 1), False, True, False),
    ("adaptive", 2, 2, 7, 5, (1, 1), None, (0, 0), (1, 1), False, True, False),
    ("adaptive", 1, 2, 3, 4, (5, 7), None, (0, 0), (1, 1), False, True, False),  # more outputs than inputs
]
KIND = {"max": 0, "avg": 1, "adaptive": 2}

pool_rows = []
for kind, n, c, h, w, k, st, pad, dil, ceil, cip, ties in POOLS:
    x = (torch.randint(0, 3, (n, c, h, w)).to(f32) if ties else torch.randn(n, c, h, w, dtype=f32))
    x64 = x.to(f64).requires_grad_()
    if kind == "max":
        y = F.max_pool2d(x64, k, st, pad, dil, ceil_mode=ceil)
    elif kind == "avg":
        y = F.avg_pool2d(x64, k, st, pad, ceil_mode=ceil, count_include_pad=cip)
    else:
        y = F.adaptive_avg_pool2d(x64, k)
    gy = torch.randn(y.shape, dtype=f32)
    y.backward(gy.to(f64))
    s = st if st is not None else (0, 0)
    pool_rows.append("  {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s, %s, %s, %s}" % (
        KIND[kind], n, c, h, w, k[0], k[1], s[0], s[1], pad[0], pad[1], dil[0], dil[1], int(ceil), int(cip),
        y.shape[2], y.shape[3], array(x), array(y.detach()), array(gy), array(x64.grad)))

# ---- normalization (drawn after the cases above: their arrays stay the same) ----
# (kind, shape, param): LayerNorm param = normalized dims (trailing), GroupNorm
# param = groups, BatchNorm2d param = 1 training (rm/rv: the running statistics
# after the step) / 0 evaluation (rm/rv: the running statistics it uses)
NORMS = [
    ("layer", (3, 4, 5), 1, True),
    ("layer", (2, 3, 4, 5), 2, True),
    ("layer", (3, 7), 1, False),
    ("group", (2, 6, 5, 3), 3, True),
    ("group", (3, 4, 7), 2, False),
    ("group", (2, 6), 2, True),
    ("batch2d", (4, 3, 5, 6), 1, True),
    ("batch2d", (3, 2, 3, 5), 0, True),
]
NKIND = {"layer": 0, "group": 1, "batch2d": 2}
norm_rows = []
for kind, shape, param, affine in NORMS:
    x = torch.randn(shape, dtype=f32) * 2 + 0.5
    if kind == "layer":
        pshape = shape[len(shape) - param:]
    else:
        pshape = (shape[1],)
    w = torch.rand(pshape, dtype=f32) + 0.5 if affine else None
    b = torch.randn(pshape, dtype=f32) if affine else None
    x64 = x.to(f64).requires_grad_()
    w64 = w.to(f64).requires_grad_() if affine else None
    b64 = b.to(f64).requires_grad_() if affine else None
    rm = rv = None
    if kind == "layer":
        y = F.layer_norm(x64, pshape, w64, b64, 1e-5)
    elif kind == "group":
        y = F.group_norm(x64, param, w64, b64, 1e-5)
    else:
        if param:
            rm64, rv64 = torch.zeros(shape[1], dtype=f64), torch.ones(shape[1], dtype=f64)
            y = F.batch_norm(x64, rm64, rv64, w64, b64, True, 0.1, 1e-5)
            rm, rv = rm64, rv64
        else:
            rm, rv = torch.randn(shape[1], dtype=f32) * 0.3, torch.rand(shape[1], dtype=f32) + 0.5
            y = F.batch_norm(x64, rm.to(f64), rv.to(f64), w64, b64, False, 0.1, 1e-5)
    gy = torch.randn(y.shape, dtype=f32)
    y.backward(gy.to(f64))
    dims = list(shape) + [0] * (4 - len(shape))
    norm_rows.append("  {%d, %d, {%s}, %d, %d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s}" % (
        NKIND[kind], len(shape), ", ".join(str(d) for d in dims), param, int(affine), array(x),
        array(w) if affine else "NULL", array(b) if affine else "NULL", array(y.detach()), array(gy), array(x64.grad),
        array(w64.grad) if affine else "NULL", array(b64.grad) if affine else "NULL",
        array(rm) if rm is not None else "NULL", array(rv) if rv is not None else "NULL"))

# ---- embedding: repeated indices, padding_idx (0-based here) ----
EMBS = [(11, 4, 3, (3, 5)), (7, 3, None, (8,)), (5, 2, 0, (2, 2, 3))]
emb_rows = []
for num, dim, pad, ishape in EMBS:
    idx = torch.randint(0, num, ishape)
    if pad is not None:
        idx.view(-1)[1] = pad
        idx.view(-1)[-1] = pad
    idx.view(-1)[0] = idx.view(-1)[2]  # a repeated index
    w = torch.randn(num, dim, dtype=f32)
    if pad is not None:
        w[pad] = 0
    w64 = w.to(f64).requires_grad_()
    y = F.embedding(idx, w64, padding_idx=pad)
    gy = torch.randn(y.shape, dtype=f32)
    y.backward(gy.to(f64))
    emb_rows.append("  {%d, %d, %d, %d, %d, %s, %s, %s, %s, %s}" % (
        num, dim, -1 if pad is None else pad, idx.numel(), len(ishape), array(idx.to(f32)), array(w),
        array(y.detach()), array(gy), array(w64.grad)))

with open(OUT, "w") as f:
    f.write("/* Generated by tests/ref/gen_layer_refs.py with torch %s -- do not edit. */\n" % torch.__version__)
    f.write("#ifndef LAYER_REFS_H\n#define LAYER_REFS_H\n#include <stddef.h>\n\n")
    f.write("\n".join(lines) + "\n\n")
    f.write("typedef struct layer_ref_conv {\n"
            "  int nd, n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, peh, pew, dh, dw, groups, bias, ynumel;\n"
            "  const float *x, *wt, *b, *y, *gy, *gx, *gw, *gb;\n} layer_ref_conv;\n\n")
    f.write("static const layer_ref_conv layer_ref_convs[] = {\n%s};\n\n" % ",\n".join(conv_rows))
    f.write("/* kind: 0 max, 1 avg, 2 adaptive avg (kh, kw = the output size); stride 0 = the kernel */\n"
            "typedef struct layer_ref_pool {\n"
            "  int kind, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, count_include_pad, oh, ow;\n"
            "  const float *x, *y, *gy, *gx;\n} layer_ref_pool;\n\n")
    f.write("static const layer_ref_pool layer_ref_pools[] = {\n%s};\n\n" % ",\n".join(pool_rows))
    f.write("/* kind: 0 LayerNorm (param: normalized dims), 1 GroupNorm (param: groups), 2 BatchNorm2d\n"
            " * (param: 1 training, rm/rv the running statistics after; 0 evaluation, rm/rv used) */\n"
            "typedef struct layer_ref_norm {\n  int kind, ndim, shape[4], param, affine;\n"
            "  const float *x, *wt, *b, *y, *gy, *gx, *gw, *gb, *rm, *rv;\n} layer_ref_norm;\n\n")
    f.write("static const layer_ref_norm layer_ref_norms[] = {\n%s};\n\n" % ",\n".join(norm_rows))
    f.write("/* idx 0-based; pad -1 = none */\ntypedef struct layer_ref_emb {\n  int num, dim, pad, nidx, ndim;\n"
            "  const float *idx, *wt, *y, *gy, *gw;\n} layer_ref_emb;\n\n")
    f.write("static const layer_ref_emb layer_ref_embs[] = {\n%s};\n\n" % ",\n".join(emb_rows))
    f.write("#define LAYER_REF_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))\n#endif\n")
print("wrote", OUT, os.path.getsize(OUT), "bytes")
