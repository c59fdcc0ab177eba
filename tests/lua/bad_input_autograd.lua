-- Bad input to autograd: each gives a clear message, no crash, and the state
-- stays healthy (tests/lua/_bad.lua); error paths leak nothing.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local bad = B.bad
local T, ag = selut.tensor, selut.autograd
local M = selut.matmul

local function leaf(...) return T.randn(...):requires_grad_() end

-- a second backward after the graph was freed
local x = leaf(3, 2)
local y = (x * x):sum()
y:backward()
bad("backward: trying to backward through the graph a second time (SumBackward's saved tensors were freed after the first backward); pass retain_graph = true",
  function() y:backward() end)
local z = M(x, x:t()):exp():sum()
z:backward()
bad("trying to backward through the graph a second time", function() ag.grad(z, {x}) end)

-- an in-place write to a tensor saved for backward (the node is named)
local a = T.randn(2, 2)
local y2 = (leaf(2, 2) * a):sum()
a:add_(1)
bad("backward: a tensor [2 x 2] needed by MulBackward was modified by an in-place operation (its version is", function() y2:backward() end)
local b = T.randn(3, 2)
local y3 = M(leaf(2, 3), b):sum()
b:fill_(0)
bad("needed by MmBackward was modified by an in-place operation", function() y3:backward() end)
local c = T.randn(3)
local y4 = leaf(3):exp():sum() + (leaf(3) / c):sum()
c:set(1, 2)
bad("needed by DivBackward was modified by an in-place operation", function() y4:backward() end)

-- backward from a non-scalar without a gradient, or with a wrong one
local w = leaf(2, 3)
bad("backward: grad can be implicitly created only for a 1-element output, got [2 x 3]", function() (w * 2):backward() end)
bad("backward: gradient of shape [3 x 2] does not match the tensor's shape [2 x 3]", function() (w * 2):backward(T.ones(3, 2)) end)
bad("backward: gradient of shape [5] does not match the tensor's shape [2 x 3]", function() (w * 2):backward(T.ones(5)) end)
bad("backward: the tensor does not require grad and has no grad_fn", function() T.ones(1):backward() end)
bad("backward: the tensor does not require grad", function() selut.no_grad(function() return w * 2 end):backward(T.ones(2, 3)) end)

-- requires_grad_ on a non-leaf; in-place ops on a leaf that requires grad or on a recorded tensor
bad("requires_grad_: only leaf tensors can change requires_grad (this one is the result of MulBackward)", function() (w * 2):requires_grad_() end)
bad("only leaf tensors can change requires_grad", function() (w * 2).requires_grad = false end)
bad("add_: a leaf tensor that requires grad is used in an in-place operation", function() w:add_(1) end)
bad("mul_: a leaf tensor that requires grad is used in an in-place operation", function() w:mul_(w) end)
bad("fill_: a leaf tensor that requires grad is used in an in-place operation", function() w:fill_(0) end)
bad("zero_: a leaf tensor that requires grad", function() w:zero_() end)
bad("copy: a leaf tensor that requires grad", function() w:copy(T.ones(2, 3)) end)
bad("set: a leaf tensor that requires grad", function() w:set(1, 1, 0) end)
bad("add_: in-place operations on a tensor recorded by autograd (made by MulBackward) are not supported", function() (w * 2):add_(1) end)
bad("exp_: a leaf tensor that requires grad is used in an in-place operation", function() w:exp_() end)
bad("clamp_: a leaf tensor that requires grad", function() w:clamp_(0, 1) end)
-- in-place writes to tensors saved by the ops of autograd_ops.lua (through a
-- detached alias or a constant operand): the node is named
do
  local function stale(name, make, write)
    local p = leaf(2, 3)
    local y = make(p)
    write(p)
    bad("a tensor [2 x 3] needed by " .. name .. " was modified by an in-place operation", function() y:backward() end)
  end
  local function via_detach(p) p:detach():add_(1) end
  stale("SoftmaxBackward", function(p) return (p:softmax(2) * T.randn(2, 3)):sum() end, via_detach)
  stale("LogSoftmaxBackward", function(p) return p:log_softmax(1):sum() end, via_detach)
  stale("ProdBackward", function(p) return p:prod() end, via_detach)
  stale("StdBackward", function(p) return p:std(2):sum() end, via_detach)
  stale("NormBackward", function(p) return p:norm(3) end, via_detach)
  stale("LogsumexpBackward", function(p) return p:logsumexp(1):sum() end, via_detach)
  stale("ClampBackward", function(p) return p:clamp(-1, 1):sum() end, via_detach)
  local e = T.randn(2, 3)
  stale("PowBackward", function(p) return (p ^ e):sum() end, function() e:mul_(2) end)
  local cond = T.randn(2, 3):gt(0)
  stale("WhereBackward", function(p) return selut.where(cond, p, 0):sum() end, function() cond:fill_(1) end)
  local m = T.randn(2, 3)
  stale("MaximumBackward", function(p) return p:maximum(m):sum() end, function() m:zero_() end)
end
do -- a second backward through freed reduction nodes
  local p = leaf(3, 4)
  local y = (p:max(2)):sum() + p:var()
  y:backward()
  bad("trying to backward through the graph a second time", function() y:backward() end)
  local s = p:softmax(1):sum()
  s:backward()
  bad("(SumBackward's saved tensors were freed", function() s:backward() end)
end
do -- shape ops and batched products
  local p = leaf(2, 3, 4)
  local b = T.randn(2, 4, 5)
  local y = selut.bmm(p, b):sum()
  b:mul_(2)
  bad("a tensor [2 x 4 x 5] needed by BmmBackward was modified by an in-place operation", function() y:backward() end)
  local m = T.randn(3, 4, 2)
  local y2 = M(leaf(2, 1, 3, 4), m):sum()
  m:detach():zero_()
  bad("a tensor [3 x 4 x 2] needed by MatmulBackward was modified by an in-place operation", function() y2:backward() end)
  local q = p:permute(3, 1, 2)
  q:backward(T.ones(4, 2, 3))
  bad("trying to backward through the graph a second time (PermuteBackward's saved tensors were freed",
    function() q:backward(T.ones(4, 2, 3)) end)
  local c = selut.cat({p, p}, 2)
  c:backward(T.ones(2, 6, 4))
  bad("(CatBackward's saved tensors were freed", function() c:backward(T.ones(2, 6, 4)) end)
  bad("add_: in-place operations on a tensor recorded by autograd (made by SplitBackward) are not supported",
    function() p:split(1, 1)[2]:add_(1) end)
  bad("backward: gradient of shape [2 x 3 x 4] does not match the tensor's shape [4 x 3 x 2]",
    function() p:transpose(1, 3):backward(T.ones(2, 3, 4)) end)
end
bad("bad argument #1 to 'softmax' (dimension 3 out of range 1..2)", function() return w:softmax(3) end)
bad("bad argument #1 to 'logsumexp' (dimension -3 out of range -2..-1)", function() return w:logsumexp(-3) end)
bad("bad argument #1 to 'norm' (norm order p must not be NaN)", function() return w:norm(0 / 0) end)
bad("in-place operations on a tensor recorded by autograd (made by ClampBackward) are not supported",
  function() w:clamp(0, 1):mul_(2) end)
selut.no_grad(function() w:add_(1) end) -- allowed under no_grad (an optimizer step)

-- grad assignment and fields
bad("grad: assigned gradient has shape [2], expected the tensor's [2 x 3]", function() w.grad = T.ones(2) end)
bad("requires_grad must be a boolean, got number", function() w.requires_grad = 1 end)
bad("cannot set field 'grads' of a tensor", function() w.grads = 1 end)

-- autograd.grad arguments
bad("bad argument #2 to 'grad' (input 1 does not require grad)", function() ag.grad((w * 2):sum(), {T.ones(2)}) end)
bad("bad argument #2 to 'grad' (entry 2 is not a tensor)", function() ag.grad((w * 2):sum(), {w, 3}) end)

-- a Function whose backward returns the wrong number or shape of gradients
local Two = ag.Function{name = "TwoBackward", forward = function(_, p) return p * 2 end,
  backward = function(_, gy) return gy * 2, gy end}
bad("TwoBackward: error in backward: backward returned 2 gradients, expected 1 (one per argument of forward)",
  function() Two(w):sum():backward() end)
local Shape = ag.Function{name = "ShapeBackward", forward = function(_, p) return p * 2 end,
  backward = function(_, gy) return gy:t() end}
bad("ShapeBackward: backward returned a gradient of shape [3 x 2] for input 1 of shape [2 x 3]",
  function() Shape(w):sum():backward() end)
local Num = ag.Function{name = "NumBackward", forward = function(_, p) return p * 2 end,
  backward = function() return 1 end}
bad("NumBackward: backward returned a number for input 1, expected a tensor or nil", function() Num(w):sum():backward() end)
bad("bad argument #1 to 'Function' (table with forward and backward functions expected)", function() ag.Function{} end)
local NotT = ag.Function{forward = function() return 1 end, backward = function() end}
bad("FunctionBackward: forward must return one tensor, got number", function() NotT(w) end)

-- an error raised inside a Lua backward: the graph stays consistent and the next step works
local calls = 0
local Flaky = ag.Function{name = "FlakyBackward", forward = function(_, p) return p * 3 end,
  backward = function(_, gy) calls = calls + 1; if calls == 1 then error("boom") end; return gy * 3 end}
local v = leaf(4)
local out = (Flaky(v) * v):sum()
bad("FlakyBackward: error in backward: ", function() out:backward() end)
out:backward() -- the graph was not freed by the failed pass
H.check(v.grad ~= nil and calls == 2, "the next backward works after an error in a Lua backward")

-- exceeding the memory cap in the middle of backward: the error reaches the host, nothing leaks
do
  local p = leaf(256, 256)
  local q = M(p, p):exp():mean()
  collectgarbage()
  local used = selut.memory()
  selut.set_memory_limit(used + 1024)
  local ok, err = pcall(q.backward, q)
  selut.set_memory_limit(0)
  H.check(not ok and tostring(err):find("limit", 1, true), "memory cap mid-backward: " .. tostring(err))
  B.count = B.count + 1
  q:backward() -- the graph is intact after the failure
  H.check(p.grad ~= nil, "backward works once memory is available")
  local r = M(p, p):exp():mean()
  B.no_leak(function()
    selut.set_memory_limit(selut.memory() + 1024)
    local ok2, e2 = pcall(r.backward, r, nil, true)
    selut.set_memory_limit(0)
    error(e2 or ok2)
  end)
end

B.no_leak(function() (w * 2):backward() end)
B.no_leak(function() Shape(w):sum():backward() end)
B.done(30)
