-- net(x) on a Sequential of selut layers runs the whole chain in one C call
-- (nn._seq_call); anything else (a Lua module, a hooked __call, an in-place
-- activation, a non-tensor input) takes the Lua loop. Both must give the
-- same values, gradients and bits, the same nodes, and the same error
-- messages naming the failing layer.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, F = selut.tensor, selut.nn, selut.nn.F

local function same_bits(a, b)
  if a:numel() ~= b:numel() then return false end
  local fa, fb = a:reshape(a:numel()), b:reshape(b:numel())
  for i = 1, fa:numel() do
    if string.pack("f", fa[i]) ~= string.pack("f", fb[i]) then return false end
  end
  return true
end

-- the fast path applies to C layers only, and says so by returning nothing otherwise
local Id = nn.Module{name = "Id", forward = function(_, v) return v end, backward = function(_, _, g) return g end}
check(nn._seq_call(nn.Sequential{nn.Linear(2, 3)}, T.zeros(1, 2)) ~= nil, "C layers: one C call")
check(select("#", nn._seq_call(nn.Sequential{nn.Linear(2, 3), Id}, T.zeros(1, 2))) == 0, "a Lua module: the loop")
check(select("#", nn._seq_call(nn.Sequential{nn.SELU(true)}, T.zeros(1, 2))) == 0, "in-place: the loop")
check(select("#", nn._seq_call(nn.Sequential{nn.Linear(2, 3)}, {1, 2})) == 0, "a table input: the loop")
check(select("#", nn._seq_call(nn.Sequential{}, T.zeros(1, 2))) == 0, "empty: the loop")

-- same values, gradients and node as calling the layers one by one (what
-- the Lua loop does); b's "call" is that chain
local function chain(net)
  return setmetatable({net = net, parameters = function(self) return self.net:parameters() end}, {
    __call = function(self, v)
      for _, m in ipairs(self.net.modules) do v = m(v) end
      return v
    end})
end
local function pair()
  selut.manual_seed(7)
  local a = nn.Sequential{nn.Linear(3, 16), nn.SELU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2)}
  selut.manual_seed(7)
  local b = nn.Sequential{nn.Linear(3, 16), nn.SELU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2)}
  return a, chain(b)
end
local a, b = pair()
local x = T.randn(5, 3)
local y = T.randn(5, 2)
for step = 1, 3 do
  local ya, yb = a(x), b(x)
  check(same_bits(ya, yb), "outputs, step " .. step)
  check(tostring(ya.grad_fn) == tostring(yb.grad_fn) and tostring(ya.grad_fn):find("LinearBackward", 1, true), "node: " .. tostring(ya.grad_fn))
  F.mse_loss(ya, y):backward()
  F.mse_loss(yb, y):backward()
  local pa, pb = a:parameters(), b:parameters()
  for i = 1, #pa do check(same_bits(pa[i].grad, pb[i].grad), "gradient of " .. pa[i].name) end
end
-- input gradients flow through the fast path
local xa, xb = x:clone():requires_grad_(), x:clone():requires_grad_()
a(xa):sum():backward()
b(xb):sum():backward()
check(same_bits(xa.grad, xb.grad), "input gradient")
-- no_grad: no node, same values
selut.no_grad(function()
  local ya, yb = a(x), b(x)
  check(ya.grad_fn == nil, "no node under no_grad")
  check(same_bits(ya, yb), "values under no_grad")
end)
-- results are tensors of their own: the next call does not overwrite them
local r1 = a(x):clone()
local k1 = a(x)
a(T.randn(5, 3))
check(same_bits(k1, r1), "an earlier result is not overwritten")

-- errors name the failing layer, as on the Lua loop and forward
local bad = nn.Sequential{nn.Linear(8, 64), nn.SELU(), nn.Linear(32, 10)}
local xb8 = T.randn(4, 8)
local ok, orig = pcall(bad.modules[3].forward, bad.modules[3], T.zeros(4, 64))
check(not ok, "bare Linear fails")
local err = checkerror("Sequential: layer 2 (Linear(in_features=32, out_features=10, bias=true)): ", bad, xb8)
check(err == "Sequential: layer 2 (Linear(in_features=32, out_features=10, bias=true)): " .. orig, err)
check(bad.current_layer == nil, "counter cleared after the error")
err = checkerror("Sequential: layer 0 (Linear(in_features=8, out_features=64, bias=true)): ", bad, T.randn(4, 5))
check(bad.current_layer == nil, "counter cleared after an error in the first layer")
checkerror("one input expected", bad, xb8, xb8)
checkerror("Sequential: layer 0 (", bad, "x")
checkerror("cannot be recorded by autograd", nn.Sequential{nn.Linear(8, 4), nn.SELU(true)}, xb8)
-- the net works after an error, and nothing leaked (the suite checks core memory at the end)
bad.modules[3] = nn.Linear(64, 10)
check(bad(xb8):size(2) == 10, "works once fixed")

-- a hooked layer type (viz, nn.stats) is called through its hook
local mt = getmetatable(nn.Tanh())
local orig_call, calls = rawget(mt, "__call"), 0
mt.__call = function(self, v)
  calls = calls + 1
  return orig_call(self, v)
end
local ok2, res = pcall(function() return a(x) end)
mt.__call = orig_call
check(ok2, tostring(res))
check(calls == 1, "the hook ran once, got " .. calls)
check(same_bits(res, b(x)), "hooked: same values")
