#!/usr/bin/python3
"""PyTorch reference values for the recurrent layers (tests/lua/rnn_layers.lua).

Run with Debian's interpreter:  /usr/bin/python3 tests/ref/gen_rnn_refs.py
It rewrites tests/ref/rnn_refs.lua (committed; the tests never import torch).

Each case builds a GRU, LSTM, GRUCell or LSTMCell with float32 weights, runs
it in float64 from those same weights and float32 inputs, and takes the
gradients of L = sum(out * gout) + sum(h_n * ghn) + sum(c_n * gcn) (the
upstream gradients given, absent ones are zeros) w.r.t. the input, the
initial states and every parameter (state_dict names). selut's float32
results must match to 1e-5 relative (+ 1e-6 absolute).
"""
import os

import torch

torch.set_num_threads(1)
torch.manual_seed(2121)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn_refs.lua")


def lua_tensor(t):
    t = t.float().contiguous()
    shape = list(t.shape) if t.dim() > 0 else [1]
    vals = ", ".join("%.9g" % v for v in t.flatten().tolist())
    return "{shape = {%s}, data = {%s}}" % (", ".join(str(s) for s in shape), vals)


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


cases = []


def case(name, kind, I, H, T=4, N=3, num_layers=1, batch_first=False, bias=True, state=True, batched=True,
         gout=True, ghn=True, gcn=True):
    cell = kind.endswith("Cell")
    lstm = kind.startswith("LSTM")
    opts = {}
    if cell:
        mod = getattr(torch.nn, kind)(I, H, bias=bias)
        if not bias:
            opts["bias"] = False
    else:
        mod = getattr(torch.nn, kind)(I, H, num_layers=num_layers, bias=bias, batch_first=batch_first)
        for k, v, d in (("num_layers", num_layers, 1), ("bias", bias, True), ("batch_first", batch_first, False)):
            if v != d:
                opts[k] = v
    # float32 weights (PyTorch's init drawn in float32), then the float64 run from them
    params32 = {k: v.detach().float().clone() for k, v in mod.state_dict().items()}
    mod = mod.double()
    if cell:
        xshape = (N, I) if batched else (I,)
        sshape = (N, H) if batched else (H,)
    else:
        xshape = ((N, T, I) if batch_first else (T, N, I)) if batched else (T, I)
        sshape = (num_layers, N, H) if batched else (num_layers, H)
    x = torch.randn(*xshape).float().double().requires_grad_()
    h0 = torch.randn(*sshape).float().double().requires_grad_() if state else None
    c0 = torch.randn(*sshape).float().double().requires_grad_() if state and lstm else None
    if cell:
        if lstm:
            res = mod(x, (h0, c0)) if state else mod(x)
            out, hn, cn = res[0], None, res[1]
        else:
            out, hn, cn = (mod(x, h0) if state else mod(x)), None, None
    else:
        if lstm:
            out, (hn, cn) = mod(x, (h0, c0)) if state else mod(x)
        else:
            out, hn = mod(x, h0) if state else mod(x)
            cn = None
    g_out = torch.randn(*out.shape).float().double() if gout else None
    g_hn = torch.randn(*hn.shape).float().double() if (ghn and hn is not None) else None
    g_cn = torch.randn(*cn.shape).float().double() if (gcn and cn is not None) else None
    loss = 0
    for y, g in ((out, g_out), (hn, g_hn), (cn, g_cn)):
        if g is not None:
            loss = loss + (y * g).sum()
    names = [k for k, _ in mod.named_parameters()]
    wrt = [x] + ([h0] if state else []) + ([c0] if c0 is not None else []) + [p for _, p in mod.named_parameters()]
    grads = torch.autograd.grad(loss, wrt)
    gx, rest = grads[0], list(grads[1:])
    gh0 = rest.pop(0) if state else None
    gc0 = rest.pop(0) if c0 is not None else None
    lines = ["  {name = %r, kind = %r, input_size = %d, hidden_size = %d," % (name, kind, I, H)]
    lines.append("   opts = {%s}," % ", ".join("%s = %s" % (k, lua_value(v)) for k, v in opts.items()))
    lines.append("   names = {%s}," % ", ".join(repr(n) for n in names))
    lines.append("   params = {")
    for n in names:
        lines.append("    %s = %s," % (n, lua_tensor(params32[n])))
    lines.append("   },")
    lines.append("   x = %s," % lua_tensor(x.detach()))
    if state:
        lines.append("   h0 = %s," % lua_tensor(h0.detach()))
    if c0 is not None:
        lines.append("   c0 = %s," % lua_tensor(c0.detach()))
    for key, v in (("gout", g_out), ("ghn", g_hn), ("gcn", g_cn), ("out", out.detach()),
                   ("hn", None if hn is None else hn.detach()), ("cn", None if cn is None else cn.detach()),
                   ("gx", gx), ("gh0", gh0), ("gc0", gc0)):
        if v is not None:
            lines.append("   %s = %s," % (key, lua_tensor(v)))
    lines.append("   grads = {")
    for n, g in zip(names, rest):
        lines.append("    %s = %s," % (n, lua_tensor(g)))
    lines.append("   },")
    lines.append("  },")
    cases.append("\n".join(lines))


# odd sizes throughout: input 5, hidden 7, 4 steps, batch 3
case("gru l1 h0", "GRU", 5, 7, state=True)
case("gru l2 batch_first no h0", "GRU", 5, 7, num_layers=2, batch_first=True, state=False)
case("gru l2 h0", "GRU", 5, 7, num_layers=2, state=True)
case("gru l1 batch_first h0 no bias", "GRU", 5, 7, batch_first=True, bias=False)
case("gru l2 out only", "GRU", 5, 7, num_layers=2, ghn=False)
case("gru l2 h_n only", "GRU", 5, 7, num_layers=2, batch_first=True, gout=False, T=6, N=2)
case("gru unbatched l2 h0", "GRU", 5, 7, num_layers=2, batched=False)
case("lstm l1 h0 c0", "LSTM", 5, 7, state=True)
case("lstm l2 batch_first no state", "LSTM", 5, 7, num_layers=2, batch_first=True, state=False)
case("lstm l2 h0 c0", "LSTM", 5, 7, num_layers=2, state=True)
case("lstm l1 batch_first no bias", "LSTM", 5, 7, batch_first=True, bias=False)
case("lstm l2 c_n only", "LSTM", 5, 7, num_layers=2, gout=False, ghn=False)
case("lstm unbatched no state", "LSTM", 5, 7, batched=False, state=False)
case("grucell h", "GRUCell", 5, 7)
case("grucell unbatched no h", "GRUCell", 5, 7, batched=False, state=False)
case("grucell no bias", "GRUCell", 5, 7, bias=False)
case("lstmcell h c", "LSTMCell", 5, 7)
case("lstmcell no state", "LSTMCell", 5, 7, state=False)
case("lstmcell unbatched h c, h' only", "LSTMCell", 5, 7, batched=False, gcn=False)

with open(OUT, "w") as f:
    f.write("-- generated by tests/ref/gen_rnn_refs.py (torch %s); do not edit\n" % torch.__version__)
    f.write("return {\n")
    f.write("\n".join(cases))
    f.write("\n}\n")
print("wrote", OUT, len(cases), "cases")
