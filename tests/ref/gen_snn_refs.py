#!/usr/bin/python3
"""PyTorch reference values for the SNN toolkit (tests/c/test_snn.c).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_snn_refs.py
It rewrites tests/ref/snn_refs.h (committed; the tests never import torch).

- BatchNorm1d: torch.nn.BatchNorm1d in float64 from float32 inputs: two
  training steps (running statistics), the second one's backward, then an
  evaluation-mode forward/backward.
- SELU with custom constants: scale * F.elu(x, alpha) in float64.
- The SELU moment map: E[selu(z)], Var[selu(z)] for z ~ N(mu*omega, nu*tau)
  by composite Simpson quadrature split at the kink z = 0 (independent of
  the closed forms in core/nn/snn.c).
"""
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(20170608)  # the SNN paper's arXiv date
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "snn_refs.h")
f32, f64 = torch.float32, torch.float64


def lit(v):
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        raise ValueError("non-finite reference value")
    s = "%.9g" % v
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"


lines = []
count = [0]


def arr(t):
    name = "snn_ref_a%d" % count[0]
    count[0] += 1
    vals = [lit(v) for v in torch.as_tensor(t).to(f32).reshape(-1).tolist()]
    lines.append("static const float %s[] = {%s};" % (name, ",".join(vals) if vals else "0.0f"))
    return name


# ---- BatchNorm1d -------------------------------------------------------------
def bn_case(n, c, l, affine, track, eps, momentum, const_channel=False):
    shape = (n, c) if l == 0 else (n, c, l)
    xs = [(torch.randn(*shape) * 1.5 + 0.7).to(f32) for _ in range(3)]
    if const_channel:
        for x in xs:
            x[:, 0] = 2.5  # zero variance: only eps keeps it finite
    gy = torch.randn(*shape).to(f32)
    gy3 = torch.randn(*shape).to(f32)
    m = torch.nn.BatchNorm1d(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track).to(f64)
    w = (torch.rand(c) + 0.5).to(f32)
    b = torch.randn(c).to(f32)
    if affine:
        with torch.no_grad():
            m.weight.copy_(w.to(f64))
            m.bias.copy_(b.to(f64))
    m.train()
    m(xs[0].to(f64))
    x2 = xs[1].to(f64).requires_grad_(True)
    y2 = m(x2)
    y2.backward(gy.to(f64))
    gw = m.weight.grad.clone() if affine else torch.zeros(c)
    gb = m.bias.grad.clone() if affine else torch.zeros(c)
    rm = m.running_mean.clone() if track else torch.zeros(c)
    rv = m.running_var.clone() if track else torch.ones(c)
    if affine:
        m.weight.grad = None
        m.bias.grad = None
    m.eval()
    x3 = xs[2].to(f64).requires_grad_(True)
    y3 = m(x3)
    y3.backward(gy3.to(f64))
    gw3 = m.weight.grad.clone() if affine else torch.zeros(c)
    gb3 = m.bias.grad.clone() if affine else torch.zeros(c)
    fields = [n, c, l, int(affine), int(track), "%.17g" % eps, "%.17g" % momentum,
              arr(w), arr(b), arr(xs[0]), arr(xs[1]), arr(y2.detach()), arr(gy), arr(x2.grad), arr(gw), arr(gb),
              arr(rm), arr(rv), arr(xs[2]), arr(y3.detach()), arr(gy3), arr(x3.grad), arr(gw3), arr(gb3)]
    return "  {" + ", ".join(str(f) for f in fields) + "},"


bn_rows = [
    bn_case(6, 4, 0, True, True, 1e-5, 0.1),
    bn_case(3, 2, 5, True, True, 1e-5, 0.1),
    bn_case(5, 3, 0, False, True, 1e-3, 0.3),
    bn_case(4, 3, 0, True, False, 1e-5, 0.1),
    bn_case(2, 3, 0, True, True, 1e-5, 0.1, const_channel=True),
]

# ---- SELU with custom constants ----------------------------------------------
selu_rows = []
for alpha, scale in [(1.97690219542420, 1.07385123961605), (1.0, 1.0), (2.5, 0.8)]:
    x = (torch.randn(4, 5) * 2.0).to(f32)
    x[0, 0] = 0.0
    gy = torch.randn(4, 5).to(f32)
    xd = x.to(f64).requires_grad_(True)
    y = scale * F.elu(xd, alpha)
    y.backward(gy.to(f64))
    selu_rows.append("  {%.17g, %.17g, %s, %s, %s, %s}," % (alpha, scale, arr(x), arr(gy), arr(y.detach()),
                                                            arr(xd.grad)))


# ---- moment map by quadrature ------------------------------------------------
def simpson(f, a, b, n=200000):
    xs = torch.linspace(a, b, n + 1, dtype=f64)
    w = torch.ones(n + 1, dtype=f64)
    w[1:-1:2] = 4
    w[2:-1:2] = 2
    return float((f(xs) * w).sum() * (b - a) / (3 * n))


def moments(mu, nu, omega, tau, alpha, scale):
    m, v = mu * omega, nu * tau
    s = math.sqrt(v)
    lo, hi = m - 16 * s, m + 16 * s

    def pdf(z):
        return torch.exp(-(z - m) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)

    def neg(z):
        return scale * alpha * torch.expm1(z)

    def pos(z):
        return scale * z

    e1 = e2 = 0.0
    if lo < 0:
        e1 += simpson(lambda z: neg(z) * pdf(z), lo, min(0.0, hi))
        e2 += simpson(lambda z: neg(z) ** 2 * pdf(z), lo, min(0.0, hi))
    if hi > 0:
        e1 += simpson(lambda z: pos(z) * pdf(z), max(0.0, lo), hi)
        e2 += simpson(lambda z: pos(z) ** 2 * pdf(z), max(0.0, lo), hi)
    return e1, e2 - e1 * e1


SA, SL = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
points = [(0.0, 1.0, 0.0, 1.0, SA, SL), (0.1, 1.2, 0.05, 1.02, SA, SL), (-0.1, 0.8, -0.1, 0.95, SA, SL),
          (0.5, 2.0, 1.0, 1.0, SA, SL), (-0.1, 2.0, 1.0, 1.0, 1.97690219542420, 1.07385123961605),
          (3.0, 0.5, 1.0, 1.0, SA, SL), (-4.0, 0.25, 1.0, 1.0, SA, SL), (0.0, 9.0, 0.0, 1.0, 1.0, 1.0)]
mom_rows = []
for p in points:
    mean, var = moments(*p)
    mom_rows.append("  {%s, %.17g, %.17g}," % (", ".join("%.17g" % v for v in p), mean, var))

with open(OUT, "w") as f:
    f.write("/* Generated by tests/ref/gen_snn_refs.py with torch %s -- do not edit. */\n" % torch.__version__)
    f.write("#ifndef SNN_REFS_H\n#define SNN_REFS_H\n\n")
    f.write("\n".join(lines) + "\n\n")
    f.write("typedef struct snn_ref_bn {\n  int n, c, l, affine, track;\n  double eps, momentum;\n"
            "  const float *w, *b, *x1, *x2, *y2, *gy, *gx, *gw, *gb, *rm, *rv, *x3, *y3, *gy3, *gx3, *gw3, *gb3;\n"
            "} snn_ref_bn;\n")
    f.write("static const snn_ref_bn snn_ref_bns[] = {\n" + "\n".join(bn_rows) + "\n};\n\n")
    f.write("typedef struct snn_ref_selu {\n  double alpha, scale;\n  const float *x, *gy, *y, *gx; /* [4 x 5] */\n"
            "} snn_ref_selu;\n")
    f.write("static const snn_ref_selu snn_ref_selus[] = {\n" + "\n".join(selu_rows) + "\n};\n\n")
    f.write("typedef struct snn_ref_moments {\n  double mu, nu, omega, tau, alpha, scale, mean, var;\n"
            "} snn_ref_moments;\n")
    f.write("static const snn_ref_moments snn_ref_moment_points[] = {\n" + "\n".join(mom_rows) + "\n};\n\n")
    f.write("#define SNN_REF_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))\n\n#endif\n")
print("wrote", OUT)
