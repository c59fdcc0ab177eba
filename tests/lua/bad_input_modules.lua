-- Bad input to modules on the autograd path (m(x)) and to nn.functional:
-- each gives a clear message naming the layer or function, no crash, and the
-- state stays healthy (tests/lua/_bad.lua); error paths leak nothing.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, nn = selut.tensor, selut.nn
local F = nn.F

local function leaf(...) return T.randn(...):requires_grad_() end

-- m(x) with a wrong shape names the layer and the shapes
local lin = nn.Linear(4, 3)
bad("Linear", function() return lin(T.randn(2, 5)) end)
bad("[2 x 5]", function() return lin(T.randn(2, 5)) end)
local net = nn.Sequential{nn.Linear(4, 3), nn.SELU(), nn.Linear(5, 2)}
bad("Sequential: layer 2 (Linear(in_features=5, out_features=2, bias=true)): ", function() return net(leaf(2, 4)) end)
bad("bad argument #2 to 'lin' (selut.Tensor expected, got string)", function() return lin("x") end)
bad("Linear(x) takes one tensor", function() return lin(T.randn(2, 4), T.randn(2, 4)) end)

-- backward twice through a layer node
local y = lin(leaf(2, 4)):sum()
y:backward()
bad("trying to backward through the graph a second time", function() y:backward() end)
local y2 = nn.SELU()(leaf(3))
y2:backward(T.ones(3))
bad("SELUBackward's saved tensors were freed", function() y2:backward(T.ones(3)) end)

-- a layer with per-forward state called again before the backward of the first call
local bn = nn.BatchNorm1d(3)
local a = bn(leaf(4, 3))
bn(leaf(4, 3))
bad("backward: BatchNorm1d ran forward again before the backward of an earlier call recorded by autograd, and this backward needs its normalization statistics",
  function() a:sum():backward() end)
local pool = nn.MaxPool2d(2)
local p1 = pool(leaf(1, 1, 4, 4))
pool:forward(T.randn(1, 1, 4, 4)) -- the explicit path overwrites the state too
bad("MaxPool2d ran forward again", function() p1:sum():backward() end)
local drop = nn.Dropout(0.5)
local d1 = drop(leaf(5))
drop(leaf(5))
bad("needs its dropout mask from that call; use one Dropout per call", function() d1:sum():backward() end)

-- an in-place activation cannot record
bad("ReLU(inplace=true) cannot be recorded by autograd (it overwrites its input); construct it with inplace=false",
  function() return nn.ReLU(true)(leaf(3)) end)
local hh = leaf(3) * 1
local sq = (hh * hh):sum()
selut.no_grad(function() nn.ReLU(true)(hh) end) -- an in-place module bumps the version like any in-place op
bad("needed by MulBackward was modified by an in-place operation", function() sq:backward() end)

-- an in-place write to the input a layer node saved
local xin = T.randn(2, 4)
local ly = lin(xin):sum()
xin:add_(1)
bad("needed by LinearBackward was modified by an in-place operation", function() ly:backward() end)

-- a Lua module called twice before backward
local Sq = nn.Module{ forward = function(_, x) return x * x end, backward = function(_, x, gy) return gy * x * 2 end }
local s1 = Sq(leaf(3))
Sq(leaf(3))
bad("was called again before the backward of an earlier call", function() s1:sum():backward() end)

-- nn.functional: wrong arguments
bad("bad argument #2 to 'cross_entropy' (3 labels expected (one per row of logits), got 2)",
  function() return F.cross_entropy(leaf(3, 4), {1, 2}) end)
bad("label 5.0 at position 2 out of range 1..4", function() return F.cross_entropy(leaf(3, 4), {1, 5, 2}) end)
bad("logits of shape [N x C] expected, got [12]", function() return F.cross_entropy(leaf(12), {1}) end)
bad("reduction must be 'mean' or 'sum', got 'none'",
  function() return F.cross_entropy(leaf(3, 4), {1, 2, 3}, {reduction = "none"}) end)
bad("unknown option 'weight' (only reduction)", function() return F.nll_loss(leaf(2, 2), {1, 2}, {weight = 1}) end)
bad("mse.forward: input shape [3] does not match target shape [4]", function() return F.mse_loss(leaf(3), T.zeros(4)) end)
bad("bad argument #1 to 'linear' (input's last dim is 5, weight expects 4 (weight [3 x 4]))",
  function() return F.linear(leaf(2, 5), leaf(3, 4)) end)
bad("bad argument #2 to 'linear' (weight expected)", function() return F.linear(leaf(2, 5)) end)
bad("bad argument #2 to 'softmax' (dim: integer expected (which dim to normalize over), got nil)",
  function() return F.softmax(leaf(2, 3)) end)
bad("bad argument #2 to 'dropout' (p: probability in [0, 1) expected, got 1.0)", function() return F.dropout(leaf(3), 1.0) end)
bad("bad argument #3 to 'dropout' (training: boolean expected, got number)", function() return F.dropout(leaf(3), 0.5, 1) end)
bad("bad argument #2 to 'batch_norm' (running_mean and running_var are required when training is false)",
  function() return F.batch_norm(leaf(4, 3)) end)
bad("bad argument #2 to 'batch_norm' (running_mean and running_var go together",
  function() return F.batch_norm(leaf(4, 3), T.zeros(3), nil, {training = true}) end)
bad("BatchNorm1d: weight has shape [4], expected [3]",
  function() return F.batch_norm(leaf(4, 3), nil, nil, leaf(4), nil, true) end)
bad("bad argument #2 to 'elu' (alpha: number expected, got string)", function() return F.elu(leaf(3), "x") end)
bad("bad argument #2 to 'relu' (inplace is not supported", function() return F.relu(leaf(3), true) end)
bad("bad argument #2 to 'gelu' (approximate: only 'none' is supported, got tanh)", function() return F.gelu(leaf(3), "tanh") end)
bad("bad argument #3 to 'layer_norm' (unknown option 'epsilon')", function() return F.layer_norm(leaf(2, 3), 3, {epsilon = 1}) end)
bad("bad argument #6 to 'layer_norm' (option 'eps' also given by position)",
  function() return F.layer_norm(leaf(2, 3), 3, nil, nil, 1e-3, {eps = 1}) end)
bad("bad argument #2 to 'conv2d' (weight of shape [out x in/groups x kH x kW] expected, got 2 dims)",
  function() return F.conv2d(leaf(1, 1, 4, 4), leaf(2, 2)) end)
bad("Conv2d", function() return F.conv2d(leaf(1, 3, 4, 4), leaf(2, 2, 3, 3)) end)
bad("max_pool2d: ", function() return F.max_pool2d(leaf(1, 1, 4, 4), 0) end)

-- release the graphs above first; the Lua module's freed node releases its
-- closure at the next backward
a, p1, d1, s1, y, y2, ly, sq, hh = nil, nil, nil, nil, nil, nil, nil, nil, nil
collectgarbage()
local _ = (leaf(1) * 1):sum():backward()
collectgarbage()
B.no_leak(function() return lin(T.randn(2, 5)) end)
B.no_leak(function() return F.cross_entropy(leaf(3, 4), {1, 9, 2}) end)
B.no_leak(function()
  local z = bn(leaf(4, 3))
  bn(leaf(4, 3))
  z:sum():backward()
end)
B.done(30)
