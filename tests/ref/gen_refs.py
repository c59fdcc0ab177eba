#!/usr/bin/python3
"""PyTorch reference values for the nn unit (tests/c/test_nn_refs.c).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_refs.py
It rewrites tests/ref/nn_refs.h (committed; the tests never import torch).

Inputs are float32 (generated here from a fixed seed and written out too);
layer and loss references are computed by PyTorch in float64 from those
float32 inputs (the exact value the float32 C kernels should approximate);
optimizer trajectories are run by torch.optim in float32, like the C code.
"""
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_refs.h")


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


def lit_d(v):
    return "%.17g" % float(v)


class Header:
    def __init__(self):
        self.lines = []
        self.n = 0

    def array(self, values):
        """Emits a static float array, returns its name."""
        name = "nn_ref_a%d" % self.n
        self.n += 1
        vals = [lit(v) for v in torch.as_tensor(values).to(torch.float32).reshape(-1).tolist()]
        body = ",".join(vals) if vals else "0.0f"
        self.lines.append("static const float %s[] = {%s};" % (name, body))
        return name


H = Header()
f32 = torch.float32
f64 = torch.float64

# ---- activations -----------------------------------------------------------
EXTREME = [-1000.0, -88.0, -20.0, -1.0, -0.5, -1e-7, -0.0, 0.0,
           1e-7, 0.5, 1.0, 2.0, 20.0, 88.0, 1000.0, 3.0]


def act_inputs():
    cases = []
    cases.append(torch.tensor(EXTREME, dtype=f32).reshape(2, 8))
    cases.append(torch.tensor(EXTREME, dtype=f32).reshape(16, 1))   # width 1
    cases.append((torch.randn(4, 5) * 2.0).to(f32))
    cases.append(torch.tensor([[0.3]], dtype=f32))                     # batch 1, width 1
    cases.append(torch.tensor([[-0.7, 0.0, 1.5]], dtype=f32))          # batch 1
    return cases


ACTS = [
    ("SELU", 0.0, lambda x: F.selu(x)),
    ("ELU", 1.0, lambda x: F.elu(x, 1.0)),
    ("ELU", 0.5, lambda x: F.elu(x, 0.5)),
    ("ReLU", 0.0, lambda x: F.relu(x)),
    ("LeakyReLU", 0.01, lambda x: F.leaky_relu(x, 0.01)),
    ("LeakyReLU", 0.2, lambda x: F.leaky_relu(x, 0.2)),
    ("Tanh", 0.0, torch.tanh),
    ("Sigmoid", 0.0, torch.sigmoid),
    ("GELU", 0.0, lambda x: F.gelu(x)),
    ("Softmax", 0.0, lambda x: F.softmax(x, dim=-1)),
    ("LogSoftmax", 0.0, lambda x: F.log_softmax(x, dim=-1)),
]

act_rows = []
inputs = act_inputs()
for name, param, fn in ACTS:
    for x in inputs:
        # gradOutput with magnitude 0.5..1.5 and random sign: never 0 at x == 0
        gy = ((torch.rand(x.shape) + 0.5) * torch.sign(torch.randn(x.shape))).to(f32)
        xd = x.to(f64).requires_grad_(True)
        y = fn(xd)
        y.backward(gy.to(f64))
        act_rows.append('  {"%s", %s, %d, %d, %s, %s, %s, %s},' % (
            name, lit_d(param), x.shape[0], x.shape[1], H.array(x), H.array(gy),
            H.array(y.detach()), H.array(xd.grad)))

# ---- linear ----------------------------------------------------------------
lin_rows = []
for (n, fin, fout, bias) in [(4, 5, 3, True), (1, 3, 1, True), (3, 1, 2, False), (2, 4, 1, True), (1, 1, 1, True)]:
    w = torch.randn(fout, fin).to(f32)
    b = torch.randn(fout).to(f32) if bias else torch.zeros(fout)
    x = torch.randn(n, fin).to(f32)
    gy = torch.randn(n, fout).to(f32)
    wd, bd, xd = (t.to(f64).requires_grad_(True) for t in (w, b, x))
    y = F.linear(xd, wd, bd if bias else None)
    y.backward(gy.to(f64))
    lin_rows.append("  {%d, %d, %d, %d, %s, %s, %s, %s, %s, %s, %s, %s}," % (
        n, fin, fout, int(bias), H.array(w), H.array(b), H.array(x), H.array(gy),
        H.array(y.detach()), H.array(xd.grad), H.array(wd.grad),
        H.array(bd.grad if bias else torch.zeros(fout))))

# ---- losses ----------------------------------------------------------------
ce_rows = []
ce_cases = [
    ((torch.randn(4, 5) * 3.0).to(f32), [0, 4, 2, 2]),
    (torch.tensor([[1000.0, -1000.0, 0.0]], dtype=f32), [1]),
    (torch.tensor([[88.0, -88.0, 1000.0, -1000.0], [0.0, -0.0, 1e-7, -1.0]], dtype=f32), [3, 0]),
    (torch.tensor([[2.5], [-1.0], [0.0]], dtype=f32), [0, 0, 0]),
    ((torch.randn(1, 10)).to(f32), [9]),
]
for logits, labels in ce_cases:
    ld = logits.to(f64).requires_grad_(True)
    lab = torch.tensor(labels)
    loss = F.cross_entropy(ld, lab)
    loss.backward()
    ce_rows.append("  {%d, %d, %s, %s, %s, %s}," % (
        logits.shape[0], logits.shape[1], H.array(logits), H.array(torch.tensor(labels, dtype=f32)),
        lit_d(loss.item()), H.array(ld.grad)))

mse_rows = []
for shape in [(3, 4), (1, 1), (5, 1)]:
    p = torch.randn(*shape).to(f32)
    t = torch.randn(*shape).to(f32)
    pd = p.to(f64).requires_grad_(True)
    loss = F.mse_loss(pd, t.to(f64))
    loss.backward()
    mse_rows.append("  {%d, %d, %s, %s, %s, %s}," % (
        shape[0], shape[1], H.array(p), H.array(t), lit_d(loss.item()), H.array(pd.grad)))

# ---- optimizers (float32, torch.optim, 3 steps with given gradients) --------
P0_SHAPE, P1_SHAPE = (2, 3), (3,)
p0 = torch.randn(*P0_SHAPE).to(f32)
p1 = torch.randn(*P1_SHAPE).to(f32)
grads = [(torch.randn(*P0_SHAPE).to(f32), torch.randn(*P1_SHAPE).to(f32)) for _ in range(3)]
OPTS = [
    # name, kind, lr, momentum, dampening, wd, nesterov, beta1, beta2, eps
    ("sgd", "SGD", 0.1, 0.0, 0.0, 0.0, False, 0, 0, 0),
    ("sgd_momentum", "SGD", 0.1, 0.9, 0.0, 0.0, False, 0, 0, 0),
    ("sgd_nesterov_wd", "SGD", 0.1, 0.9, 0.0, 0.01, True, 0, 0, 0),
    ("sgd_dampening_wd", "SGD", 0.05, 0.5, 0.3, 0.1, False, 0, 0, 0),
    ("adam", "Adam", 0.01, 0, 0, 0.0, False, 0.9, 0.999, 1e-8),
    ("adam_wd", "Adam", 0.01, 0, 0, 0.1, False, 0.8, 0.99, 1e-6),
    ("adamw", "AdamW", 0.01, 0, 0, 0.01, False, 0.9, 0.999, 1e-8),
    ("adamw_wd", "AdamW", 0.05, 0, 0, 0.1, False, 0.9, 0.99, 1e-8),
]
opt_rows = []
for name, kind, lr, mom, damp, wd, nest, b1, b2, eps in OPTS:
    q0 = p0.clone().requires_grad_(True)
    q1 = p1.clone().requires_grad_(True)
    if kind == "SGD":
        opt = torch.optim.SGD([q0, q1], lr=lr, momentum=mom, dampening=damp, weight_decay=wd, nesterov=nest)
    elif kind == "Adam":
        opt = torch.optim.Adam([q0, q1], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    else:
        opt = torch.optim.AdamW([q0, q1], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    traj = []
    for g0, g1 in grads:
        q0.grad = g0.clone()
        q1.grad = g1.clone()
        opt.step()
        traj.append(torch.cat([q0.detach().reshape(-1), q1.detach().reshape(-1)]))
    opt_rows.append('  {"%s", "%s", %s, %s, %s, %s, %d, %s, %s, %s, %s},' % (
        name, kind, lit_d(lr), lit_d(mom), lit_d(damp), lit_d(wd), int(nest), lit_d(b1), lit_d(b2),
        lit_d(eps), H.array(torch.stack(traj))))
opt_p0 = H.array(p0)
opt_p1 = H.array(p1)
opt_g = H.array(torch.stack([torch.cat([g0.reshape(-1), g1.reshape(-1)]) for g0, g1 in grads]))

# ---- AlphaDropout constants as PyTorch computes them ------------------------
ad_rows = []
for p in [0.05, 0.1, 0.2, 0.5]:
    torch.manual_seed(7)
    y0 = F.alpha_dropout(torch.zeros(20000), p, True)   # kept -> b, dropped -> a*alpha' + b
    torch.manual_seed(7)
    y1 = F.alpha_dropout(torch.ones(20000), p, True)    # kept -> a + b
    keep = y0 != y0.min()
    b = y0[keep][0].item()
    dropped = y0.min().item()
    a = y1[keep][0].item() - b
    ad_rows.append("  {%s, %s, %s, %s}," % (lit_d(p), lit_d(a), lit_d(b), lit_d(dropped)))

# ---- in-place activations (inplace=True): float32, PyTorch's own kernels ---
# Their backward works from the result (elu_backward with is_result=True), so
# the reference is what PyTorch computes in float32, cancellation included.
# Drawn last, from their own generator: the arrays above stay as they were.
gen = torch.Generator().manual_seed(7)
INPLACE = [
    ("SELU", 0.0, lambda t: F.selu(t, inplace=True)),
    ("ELU", 1.0, lambda t: F.elu(t, 1.0, inplace=True)),
    ("ELU", 0.5, lambda t: F.elu(t, 0.5, inplace=True)),
    ("ReLU", 0.0, lambda t: F.relu(t, inplace=True)),
]
inplace_rows = []
for name, param, fn in INPLACE:
    for x in inputs + [torch.linspace(-20.0, 3.0, 24, dtype=f32).reshape(3, 8)]:
        gy = ((torch.rand(x.shape, generator=gen) + 0.5)
              * torch.sign(torch.randn(x.shape, generator=gen))).to(f32)
        xl = x.clone().requires_grad_(True)
        y = fn(xl * 1.0)  # in place on a non-leaf copy; x * 1.0 is exact
        y.backward(gy)
        inplace_rows.append('  {"%s", %s, %d, %d, %s, %s, %s, %s},' % (
            name, lit_d(param), x.shape[0], x.shape[1], H.array(x), H.array(gy),
            H.array(y.detach()), H.array(xl.grad)))

with open(OUT, "w") as f:
    f.write("/* Generated by tests/ref/gen_refs.py with torch %s -- do not edit. */\n" % torch.__version__)
    f.write("#ifndef NN_REFS_H\n#define NN_REFS_H\n\n")
    f.write("\n".join(H.lines) + "\n\n")
    f.write("typedef struct { const char *name; double param; int rows, cols;\n"
            "  const float *x, *gy, *y, *gx; } nn_ref_act;\n")
    f.write("static const nn_ref_act nn_ref_acts[] = {\n%s\n};\n\n" % "\n".join(act_rows))
    f.write("/* inplace=True, in float32: y and the gradient PyTorch computes from y */\n")
    f.write("static const nn_ref_act nn_ref_inplace[] = {\n%s\n};\n\n" % "\n".join(inplace_rows))
    f.write("typedef struct { int n, in, out, bias; const float *w, *b, *x, *gy, *y, *gx, *gw, *gb; } nn_ref_linear;\n")
    f.write("static const nn_ref_linear nn_ref_linears[] = {\n%s\n};\n\n" % "\n".join(lin_rows))
    f.write("typedef struct { int n, c; const float *logits, *labels; double loss; const float *grad; } nn_ref_ce;\n")
    f.write("static const nn_ref_ce nn_ref_ces[] = {\n%s\n};\n\n" % "\n".join(ce_rows))
    f.write("typedef struct { int rows, cols; const float *pred, *target; double loss; const float *grad; } nn_ref_mse;\n")
    f.write("static const nn_ref_mse nn_ref_mses[] = {\n%s\n};\n\n" % "\n".join(mse_rows))
    f.write("/* Two parameters [2 x 3] and [3]; grads and trajectories are 3 x 9, p0 then p1 flattened. */\n")
    f.write("static const float *const nn_ref_opt_p0 = %s, *const nn_ref_opt_p1 = %s, *const nn_ref_opt_grads = %s;\n"
            % (opt_p0, opt_p1, opt_g))
    f.write("typedef struct { const char *name, *kind; double lr, momentum, dampening, weight_decay; int nesterov;\n"
            "  double beta1, beta2, eps; const float *traj; } nn_ref_optim;\n")
    f.write("static const nn_ref_optim nn_ref_optims[] = {\n%s\n};\n\n" % "\n".join(opt_rows))
    f.write("typedef struct { double p, a, b, dropped; } nn_ref_alpha_dropout;\n")
    f.write("static const nn_ref_alpha_dropout nn_ref_alpha_dropouts[] = {\n%s\n};\n\n" % "\n".join(ad_rows))
    f.write("#define NN_REF_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))\n\n#endif\n")
print("wrote", OUT)
