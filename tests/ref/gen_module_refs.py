#!/usr/bin/python3
"""PyTorch twins for tests/lua/autograd_modules.lua (modules called as m(x)).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_module_refs.py
It rewrites tests/ref/module_refs.lua (committed; the tests never import torch).
Each case: float32-rounded inputs and parameters, the net evaluated in
float64 (the exact gradient of the float32 data), the loss, the gradient of
every input and of every parameter, parameters listed module by module in
the order the Lua test lists its modules (weight before bias).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(2021)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "module_refs.lua")


def lua_list(t):
    return "{" + ", ".join("%.17g" % v for v in t.detach().flatten().tolist()) + "}"


def rnd(*shape, positive=False):
    t = torch.randn(*shape).float()
    if positive:
        t = t.abs() + 0.5
    return t.double()


def leaf(*shape, **kw):
    return rnd(*shape, **kw).requires_grad_(True)


cases = []


def case(name, inputs, mods, f, extra=None):
    for m in mods:
        m.double()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.float().double())  # float32-representable values
    loss = f(*inputs)
    loss.backward()
    params = [p for m in mods for p in m.parameters()]
    cases.append((name, inputs, params, loss, extra or {}))


def ce(logits, labels):
    return F.cross_entropy(logits, labels)


# Sequential MLP of the default recipe's shape (Linear-SELU-...-Linear), loss
# cross entropy written with tensor ops the tape records
labels = torch.tensor([2, 0, 1, 2, 1])
mlp = [nn.Linear(6, 8), nn.SELU(), nn.Linear(8, 7), nn.SELU(), nn.Linear(7, 3)]
case("mlp", [leaf(5, 6)], [mlp[0], mlp[2], mlp[4]], lambda x: ce(nn.Sequential(*mlp)(x), labels),
     {"labels": labels + 1})

# a residual block around C layers, with tensor ops
l1, l2 = nn.Linear(4, 4), nn.Linear(4, 4)
case("residual", [leaf(3, 4)], [l1, l2], lambda x: ((x + l2(F.selu(l1(x)))) ** 2).mean())

# two inputs
a1, a2, a3 = nn.Linear(3, 4), nn.Linear(2, 4), nn.Linear(4, 2)
case("two_inputs", [leaf(5, 3), leaf(5, 2)], [a1, a2, a3],
     lambda x1, x2: (a3(torch.tanh(a1(x1)) * torch.sigmoid(a2(x2))) ** 2).sum())

# one Linear used twice: the gradients add
sh = nn.Linear(4, 4)
case("shared", [leaf(3, 4)], [sh], lambda x: (sh(F.elu(sh(x))) * x).sum())

# BatchNorm1d in training mode (batch statistics), Dropout(p=0) in training
# mode, AlphaDropout in evaluation mode
b1, bn, b2 = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
with torch.no_grad():
    bn.weight.copy_(torch.rand(6) + 0.5)
    bn.bias.copy_(torch.randn(6))
case("bn_train", [leaf(7, 5)], [b1, bn, b2],
     lambda x: (b2(F.selu(nn.Dropout(0.0)(bn(b1(x))))) ** 2).mean())
c1, bne, c2 = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
with torch.no_grad():
    bne.weight.copy_(torch.rand(6) + 0.5)
    bne.bias.copy_(torch.randn(6))
    bne.running_mean.copy_(torch.randn(6).float().double())
    bne.running_var.copy_((torch.rand(6) + 0.5).float().double())
bne.eval()
case("bn_eval", [leaf(4, 5)], [c1, bne, c2], lambda x: (c2(nn.AlphaDropout(0.2).eval()(bne(c1(x)))) ** 2).sum(),
     {"running_mean": bne.running_mean, "running_var": bne.running_var})

# no_grad inside a recorded region: the inner result is a constant
n1, n2 = nn.Linear(4, 3), nn.Linear(3, 3)


def nograd(x):
    h = n1(x)
    with torch.no_grad():
        c = n2(h)
    return (h * c).sum() + n2(h).sum()


case("nograd", [leaf(2, 4)], [n1, n2], nograd)

# the other layers through m(x): activations, LayerNorm, Conv2d, pools, Flatten
z1, ln, z2 = nn.Linear(5, 6), nn.LayerNorm(6), nn.Linear(6, 6)
with torch.no_grad():
    ln.weight.copy_(torch.rand(6) + 0.5)
    ln.bias.copy_(torch.randn(6))
case("activations", [leaf(4, 5)], [z1, ln, z2],
     lambda x: (torch.log_softmax(F.leaky_relu(F.gelu(z2(torch.tanh(ln(z1(x))))), 0.1), -1) * torch.softmax(x @ torch.ones(5, 6, dtype=torch.float64) * 0.1, -1)).sum()
     + torch.sigmoid(F.relu(z1(x))).sum() + F.hardtanh(z1(x) * 2).sum())
cv, fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3 * 2 * 2, 2)
case("conv", [leaf(2, 2, 4, 4)], [cv, fc],
     lambda x: (fc(torch.flatten(F.max_pool2d(F.selu(cv(x)), 2), 1)) ** 2).sum() + F.avg_pool2d(cv(x), 2).sum())


# nn.functional: each function's value and gradient, the output weighted by
# a constant r so every element's gradient differs
def fcase(name, inputs, f, extra=None, shape=None):
    r = rnd(*(shape or f(*inputs).shape))
    ex = dict(extra or {})
    ex["r"] = r
    case(name, inputs, [], lambda *xs: (f(*xs) * r).sum(), ex)


fcase("F_selu", [leaf(3, 4)], F.selu)
fcase("F_relu", [leaf(3, 4)], F.relu)
fcase("F_tanh", [leaf(3, 4)], torch.tanh)
fcase("F_sigmoid", [leaf(3, 4)], torch.sigmoid)
fcase("F_gelu", [leaf(3, 4)], F.gelu)
fcase("F_elu", [leaf(3, 4)], lambda x: F.elu(x, 0.7))
fcase("F_leaky_relu", [leaf(3, 4)], lambda x: F.leaky_relu(x, 0.2))
fcase("F_softmax", [leaf(3, 4)], lambda x: F.softmax(x, 1))
fcase("F_log_softmax", [leaf(3, 4)], lambda x: F.log_softmax(x, -1))
fcase("F_softmax_dim1", [leaf(3, 4)], lambda x: F.softmax(x, 0))
fcase("F_linear", [leaf(3, 4), leaf(5, 4), leaf(5)], F.linear)
fcase("F_linear_3d", [leaf(2, 3, 4), leaf(5, 4)], F.linear)
fcase("F_dropout", [leaf(3, 4)], lambda x: F.dropout(x, 0.0, True) + F.dropout(x, 0.5, False) * 2)
fcase("F_alpha_dropout", [leaf(3, 4)], lambda x: F.alpha_dropout(x, 0.3, False))
rm, rv = rnd(4), rnd(4, positive=True)
bn_rm, bn_rv = rm.clone(), rv.clone()
fcase("F_batch_norm_train", [leaf(6, 4), leaf(4, positive=True), leaf(4)],
      lambda x, w, b: F.batch_norm(x, bn_rm, bn_rv, w, b, training=True, momentum=0.2, eps=1e-3),
      {"running_mean": rm, "running_var": rv, "new_mean": bn_rm, "new_var": bn_rv}, shape=(6, 4))
fcase("F_batch_norm_eval", [leaf(5, 4, 3), leaf(4, positive=True), leaf(4)],
      lambda x, w, b: F.batch_norm(x, rm, rv, w, b), {"running_mean": rm, "running_var": rv})
fcase("F_batch_norm_nostats", [leaf(2, 3, 2, 2)], lambda x: F.batch_norm(x, None, None, training=True))
fcase("F_layer_norm", [leaf(3, 2, 4), leaf(2, 4, positive=True), leaf(2, 4)],
      lambda x, w, b: F.layer_norm(x, (2, 4), w, b, eps=1e-4))
labels5 = torch.tensor([3, 0, 1, 3, 2])
case("F_cross_entropy", [leaf(5, 4)], [], lambda x: F.cross_entropy(x, labels5), {"labels": labels5 + 1})
case("F_cross_entropy_sum", [leaf(5, 4)], [], lambda x: F.cross_entropy(x, labels5, reduction="sum") * 0.5,
     {"labels": labels5 + 1})
case("F_nll_loss", [leaf(5, 4)], [], lambda x: F.nll_loss(F.log_softmax(x, 1), labels5) * 3, {"labels": labels5 + 1})
case("F_mse_loss", [leaf(3, 4), leaf(3, 4)], [], lambda x, t: F.mse_loss(x, t) * 2)
case("F_mse_loss_sum", [leaf(3, 4), leaf(3, 4)], [], lambda x, t: F.mse_loss(x, t, reduction="sum"))
fcase("F_conv2d", [leaf(2, 2, 5, 5), leaf(3, 2, 3, 3), leaf(3)], lambda x, w, b: F.conv2d(x, w, b, 2, 1))
fcase("F_conv2d_nobias", [leaf(1, 4, 4, 4), leaf(4, 2, 3, 3)], lambda x, w: F.conv2d(x, w, None, padding=1, groups=2))
fcase("F_max_pool2d", [leaf(2, 2, 4, 4)], lambda x: F.max_pool2d(x, 2))
fcase("F_avg_pool2d", [leaf(2, 2, 5, 5)], lambda x: F.avg_pool2d(x, 3, stride=2, padding=1))

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_module_refs.py (torch %s); do not edit\nreturn {\n" % torch.__version__)
    for name, inputs, params, loss, extra in cases:
        f.write("  %s = {\n    loss = %.17g,\n    inputs = {\n" % (name, loss.item()))
        for t in inputs:
            f.write("      {shape = {%s}, x = %s, grad = %s},\n" % (", ".join(str(s) for s in t.shape), lua_list(t),
                                                                   lua_list(t.grad)))
        f.write("    },\n    params = {\n")
        for p in params:
            f.write("      {shape = {%s}, x = %s, grad = %s},\n" % (", ".join(str(s) for s in p.shape), lua_list(p),
                                                                   lua_list(p.grad)))
        f.write("    },\n")
        for k, v in extra.items():
            f.write("    %s = %s,\n" % (k, lua_list(v)))
        f.write("  },\n")
    f.write("}\n")
print("wrote", OUT, len(cases), "cases")
