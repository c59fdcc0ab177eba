-- Modules on the autograd path (m(x)) against PyTorch twins
-- (tests/ref/gen_module_refs.py, float64 on the float32 data): the loss, the
-- gradient of every input and of every parameter, to 1e-5 relative (+1e-6
-- absolute near 0); .grad, optimizers and zero_grad agree; the explicit
-- protocol gives the same bits as the autograd path for a training step.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/module_refs.lua")
local M = selut.matmul

local close = H.ref_close

local function tensor(e) return T.new(e.x):reshape(table.unpack(e.shape)) end

-- Builds the case's inputs (leaves) and loads its parameter values into the
-- modules (listed in the generator's order), runs f, and compares.
local function run(name, mods, f)
  local c = refs[name]
  local xs = {}
  for i, e in ipairs(c.inputs) do xs[i] = tensor(e):requires_grad_() end
  local k = 0
  for _, m in ipairs(mods) do
    for _, p in ipairs(m:parameters()) do
      k = k + 1
      p.param:copy(tensor(c.params[k]))
      p.grad:zero_()
    end
  end
  check(k == #c.params, name .. ": " .. k .. " parameters, expected " .. #c.params)
  local loss = f(table.unpack(xs))
  check(T.is_tensor(loss) and loss:numel() == 1, name .. ": loss is a 1-element tensor")
  close(loss, c.loss, name .. " loss")
  loss:backward()
  for i, e in ipairs(c.inputs) do close(xs[i].grad, e.grad, name .. " input " .. i .. " grad") end
  k = 0
  for _, m in ipairs(mods) do
    for _, p in ipairs(m:parameters()) do
      k = k + 1
      close(p.grad, c.params[k].grad, name .. " param " .. k .. " (" .. p.name .. ") grad")
    end
  end
  return c, xs
end

-- cross entropy from recorded ops: LogSoftmax (a C layer) and a one-hot mask
local function ce(logits, labels)
  local n, k = logits:size(1), logits:size(2)
  local onehot = T.zeros(n, k)
  for i = 1, n do onehot:set(i, labels[i], 1) end
  return -(nn.LogSoftmax()(logits) * onehot):sum() / n
end

-- a Sequential MLP
do
  local net = nn.Sequential{nn.Linear(6, 8), nn.SELU(), nn.Linear(8, 7), nn.SELU(), nn.Linear(7, 3)}
  local mods = { net.modules[1], net.modules[3], net.modules[5] }
  local c = run("mlp", mods, function(x) return ce(net(x), refs.mlp.labels) end)
  check(net(T.randn(2, 6)).grad_fn == "LinearBackward", "grad_fn of a Linear's output")
  check(#c.params == 6, "mlp params")
end

-- a residual block made with tensor ops around C layers
do
  local l1, l2, act = nn.Linear(4, 4), nn.Linear(4, 4), nn.SELU()
  run("residual", { l1, l2 }, function(x)
    local y = x + l2(act(l1(x)))
    return (y * y):mean()
  end)
end

-- two inputs
do
  local a1, a2, a3 = nn.Linear(3, 4), nn.Linear(2, 4), nn.Linear(4, 2)
  local tanh, sig = nn.Tanh(), nn.Sigmoid()
  run("two_inputs", { a1, a2, a3 }, function(x1, x2)
    local y = a3(tanh(a1(x1)) * sig(a2(x2)))
    return (y * y):sum()
  end)
end

-- one Linear used twice: the gradients add
do
  local sh, elu = nn.Linear(4, 4), nn.ELU()
  run("shared", { sh }, function(x) return (sh(elu(sh(x))) * x):sum() end)
end

-- BatchNorm1d with batch statistics and Dropout(0) in training mode;
-- BatchNorm1d with running statistics and AlphaDropout in evaluation mode
do
  local b1, bn, b2 = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
  local net = nn.Sequential{b1, bn, nn.Dropout(0), nn.SELU(), b2}
  run("bn_train", { b1, bn, b2 }, function(x)
    local y = net(x)
    return (y * y):mean()
  end)
  local c1, bne, c2 = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
  bne.running_mean:copy(T.new(refs.bn_eval.running_mean))
  bne.running_var:copy(T.new(refs.bn_eval.running_var))
  local ev = nn.Sequential{c1, bne, nn.AlphaDropout(0.2), c2}:evaluate()
  run("bn_eval", { c1, bne, c2 }, function(x)
    local y = ev(x)
    return (y * y):sum()
  end)
end

-- no_grad inside a recorded region: the inner result is a constant
do
  local n1, n2 = nn.Linear(4, 3), nn.Linear(3, 3)
  run("nograd", { n1, n2 }, function(x)
    local h = n1(x)
    local c = selut.no_grad(function() return n2(h) end)
    check(not c.requires_grad and c.grad_fn == nil, "no_grad: m(x) records nothing")
    return (h * c):sum() + n2(h):sum()
  end)
end

-- the other layers through m(x)
do
  local z1, ln, z2 = nn.Linear(5, 6), nn.LayerNorm(6), nn.Linear(6, 6)
  local tanh, gelu, leaky, lsm, sm = nn.Tanh(), nn.GELU(), nn.LeakyReLU(0.1), nn.LogSoftmax(), nn.Softmax()
  local sig, relu, ht = nn.Sigmoid(), nn.ReLU(), nn.Hardtanh()
  run("activations", { z1, ln, z2 }, function(x)
    local s = sm(M(x, T.ones(5, 6)) * 0.1)
    return (lsm(leaky(gelu(z2(tanh(ln(z1(x))))))) * s):sum() + sig(relu(z1(x))):sum() + ht(z1(x) * 2):sum()
  end)
  local cv, fc = nn.Conv2d(2, 3, 3, {padding = 1}), nn.Linear(12, 2)
  local net = nn.Sequential{cv, nn.SELU(), nn.MaxPool2d(2), nn.Flatten(), fc}
  local avg = nn.AvgPool2d(2)
  run("conv", { cv, fc }, function(x)
    local y = net(x)
    return (y * y):sum() + avg(cv(x)):sum()
  end)
end

-- nn.functional: every function's value and gradient
do
  local F = nn.F
  check(nn.F == nn.functional, "nn.F is nn.functional")
  local function weighted(name, f)
    local c = refs[name]
    run(name, {}, function(...)
      local y = f(...)
      return (y * T.new(c.r):reshape(table.unpack(y:shape()))):sum()
    end)
  end
  weighted("F_selu", F.selu)
  weighted("F_relu", F.relu)
  weighted("F_tanh", F.tanh)
  weighted("F_sigmoid", F.sigmoid)
  weighted("F_gelu", F.gelu)
  weighted("F_elu", function(x) return F.elu(x, 0.7) end)
  weighted("F_leaky_relu", function(x) return F.leaky_relu(x, {negative_slope = 0.2}) end)
  weighted("F_softmax", function(x) return F.softmax(x, 2) end)
  weighted("F_log_softmax", function(x) return F.log_softmax(x, -1) end)
  weighted("F_softmax_dim1", function(x) return F.softmax(x, {dim = 1}) end)
  weighted("F_linear", F.linear)
  weighted("F_linear_3d", F.linear)
  weighted("F_dropout", function(x) return F.dropout(x, 0, true) + F.dropout(x, 0.5, false) * 2 end)
  weighted("F_alpha_dropout", function(x) return F.alpha_dropout(x, 0.3, false) end)
  local c = refs.F_batch_norm_train
  local rm, rv = T.new(c.running_mean), T.new(c.running_var)
  weighted("F_batch_norm_train", function(x, w, b)
    return F.batch_norm(x, rm, rv, w, b, {training = true, momentum = 0.2, eps = 1e-3})
  end)
  close(rm, c.new_mean, "F.batch_norm updates running_mean")
  close(rv, c.new_var, "F.batch_norm updates running_var")
  c = refs.F_batch_norm_eval
  weighted("F_batch_norm_eval", function(x, w, b)
    return F.batch_norm(x, T.new(c.running_mean), T.new(c.running_var), w, b)
  end)
  weighted("F_batch_norm_nostats", function(x) return F.batch_norm(x, nil, nil, {training = true}) end)
  weighted("F_layer_norm", function(x, w, b) return F.layer_norm(x, {2, 4}, w, b, 1e-4) end)
  run("F_cross_entropy", {}, function(x) return F.cross_entropy(x, refs.F_cross_entropy.labels) end)
  run("F_cross_entropy_sum", {}, function(x)
    return F.cross_entropy(x, T.new(refs.F_cross_entropy_sum.labels), {reduction = "sum"}) * 0.5
  end)
  run("F_nll_loss", {}, function(x) return F.nll_loss(F.log_softmax(x, 2), refs.F_nll_loss.labels) * 3 end)
  run("F_mse_loss", {}, function(x, t) return F.mse_loss(x, t) * 2 end)
  run("F_mse_loss_sum", {}, function(x, t) return F.mse_loss(x, t, {reduction = "sum"}) end)
  weighted("F_conv2d", function(x, w, b) return F.conv2d(x, w, b, 2, 1) end)
  weighted("F_conv2d_nobias", function(x, w) return F.conv2d(x, w, nil, {padding = 1, groups = 2}) end)
  weighted("F_max_pool2d", function(x) return F.max_pool2d(x, 2) end)
  weighted("F_avg_pool2d", function(x) return F.avg_pool2d(x, 3, {stride = 2, padding = 1}) end)
  -- F.conv2d does not touch the generator; F.dropout draws like nn.Dropout
  local state = selut.sys.get_rng_state()
  F.conv2d(T.ones(1, 1, 3, 3), T.ones(1, 1, 2, 2))
  local a = T.rand(3)
  selut.sys.set_rng_state(state)
  H.tensor_near(a, T.rand(3), 0, "F.conv2d leaves the generator alone")
  local x = T.randn(8, 16)
  selut.manual_seed(11)
  local d1 = F.dropout(x, 0.3)
  selut.manual_seed(11)
  local d2 = nn.Dropout(0.3)(x)
  H.tensor_near(d1, d2, 0, "F.dropout draws like nn.Dropout")
  check((d1:eq(0)):sum() > 0, "F.dropout drops")
  -- losses are 1-element tensors; under no_grad nothing records
  local l = selut.no_grad(function() return F.mse_loss(T.ones(2):requires_grad_(), T.zeros(2)) end)
  check(l:numel() == 1 and l.grad_fn == nil and l:get(1) == 1, "mse_loss under no_grad")
end

-- m(x) returns a tensor of its own; m:forward keeps returning the buffer
do
  local lin = nn.Linear(3, 2)
  local x = T.randn(4, 3)
  local a, b = lin(x), lin(x * 2)
  H.tensor_near(a * 2 - lin.bias:reshape(1, 2), b, 1e-5, "m(x) results are independent")
  local y1 = lin:forward(x)
  check(rawequal(y1, lin:forward(x)), "forward still returns the cached buffer box")
end

-- .grad, optimizers and zero_grad see one gradient tensor
do
  local lin = nn.Linear(3, 2)
  local ps = lin:parameters()
  local opt = optim.SGD(ps, {lr = 0.5})
  local x = T.randn(4, 3)
  lin(x):sum():backward()
  check(lin.weight.grad ~= nil, "m.weight.grad is set")
  H.tensor_near(lin.weight.grad, ps[1].grad, 0, "m.weight.grad is the module's gradient")
  H.tensor_near(lin.bias.grad, {4, 4}, 1e-6, "bias gradient of a sum over 4 rows")
  local w0 = lin.weight:clone()
  opt:step()
  H.tensor_near(lin.weight, w0 - ps[1].grad * 0.5, 1e-6, "SGD stepped with the recorded gradient")
  opt:zero_grad()
  check(lin.weight.grad:abs():max() == 0, "opt:zero_grad clears m.weight.grad")
  lin(x):sum():backward()
  lin:zero_grad()
  check(lin.bias.grad:abs():max() == 0, "m:zero_grad clears m.bias.grad")
  -- a parameter made to require grad and used in tensor ops adds into the same gradient
  lin.weight:requires_grad_()
  local y = lin(x):sum() + M(x, lin.weight:t()):sum()
  y:backward()
  H.tensor_near(ps[1].grad, (x:sum(1) * 2):reshape(1, 3):expand(2, 3):clone(), 1e-5, "both routes add")
  lin.weight:requires_grad_(false)
end

-- a Lua module with a hand-written backward records one node
do
  local Square = nn.Module{
    forward = function(self, x) self.output = x * x; return self.output end,
    backward = function(self, x, gy) return gy * x * 2 end,
  }
  local x = T.randn(3, 2):requires_grad_()
  local lin = nn.Linear(2, 2)
  local y = lin(Square(x)):sum()
  y:backward()
  local w = lin.weight:totable()
  for i = 1, 3 do
    for j = 1, 2 do
      H.near(x.grad:get(i, j), 2 * x:get(i, j) * (w[1][j] + w[2][j]), 1e-5, "Lua module gradient")
    end
  end
  local z = Square(x)
  Square(x)
  checkerror("was called again before the backward of an earlier call", function() z:sum():backward() end)
end

-- the explicit protocol and the autograd path give the same bits for one
-- training step of the default MLP (Linear-SELU-...-Linear, cross entropy, SGD)
do
  local function mlp()
    selut.manual_seed(7)
    local net = nn.Sequential{nn.Linear(20, 16), nn.SELU(), nn.Linear(16, 16), nn.SELU(), nn.Linear(16, 10)}
    nn.init.lecun_normal(net)
    return net
  end
  selut.manual_seed(3)
  local x = T.randn(32, 20)
  local labels = {}
  for i = 1, 32 do labels[i] = (i * 7) % 10 + 1 end
  local crit = nn.CrossEntropyLoss()
  local e = mlp()
  local eopt = optim.SGD(e:parameters(), {lr = 0.1, momentum = 0.9})
  eopt:zero_grad()
  local ey = e:forward(x)
  crit:forward(ey, labels)
  e:backward(x, crit:backward(ey, labels), false)
  eopt:step()
  local a = mlp()
  local aopt = optim.SGD(a:parameters(), {lr = 0.1, momentum = 0.9})
  aopt:zero_grad()
  local loss = nn.F.cross_entropy(a(x), labels)
  loss:backward()
  aopt:step()
  local ep, ap = e:parameters(), a:parameters()
  check(#ep == 6 and #ap == 6, "6 parameters")
  for i = 1, #ep do
    local dg = (ep[i].grad - ap[i].grad):abs():max()
    local dp = (ep[i].param - ap[i].param):abs():max()
    check(dg == 0 and dp == 0, string.format("explicit vs autograd %s: grad differs by %g, param by %g", ep[i].name, dg, dp))
  end
  -- a second step (momentum buffers, gradients accumulated after zero_grad)
  eopt:zero_grad()
  ey = e:forward(x)
  e:backward(x, crit:backward(ey, labels), false)
  eopt:step()
  aopt:zero_grad()
  nn.F.cross_entropy(a(x), labels):backward()
  aopt:step()
  for i = 1, #ep do
    check((ep[i].param - ap[i].param):abs():max() == 0, "second step: same bits for " .. ep[i].name)
  end
end
