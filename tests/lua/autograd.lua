-- Autograd against PyTorch (tests/ref/gen_autograd_refs.py): the loss and
-- the gradient of every input for each case, to 1e-5 relative (+1e-6
-- absolute for gradients near 0); gradcheck on the same graphs; the tensor
-- fields and grad modes.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, ag = selut.tensor, selut.autograd
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/autograd_refs.lua")
local M = selut.matmul

local close = H.ref_close

local function inputs(c)
  local xs = {}
  for i, inp in ipairs(c.inputs) do
    xs[i] = T.new(inp.x):reshape(table.unpack(inp.shape)):requires_grad_()
  end
  return xs
end

local function num(t) return T.is_tensor(t) and t:totable()[1] or t end

local Square = ag.Function{
  name = "SquareBackward",
  forward = function(ctx, x) ctx:save_for_backward(x); return x * x end,
  backward = function(ctx, gy) local x = table.unpack(ctx.saved); return gy * x * 2 end,
}

local losses = {
  arith = function(a, b) return ((a + b) * (a - b) / (b * b + 1)):sum() end,
  rowbcast = function(m, r) return ((m * r) + r - m / r + (r - m) * 0.5):sum() end,
  scalar = function(a, b) return ((2 - a) * 3 + 3 / (b * b + 1) + a / 2 - (-b) + (a - 1)):sum() end,
  unary = function(a) return (a:exp() + (a:abs() + 0.5):log() + (a:abs() + 0.1):sqrt() - a):sum() end,
  matmul = function(a, b, v) return M(a, b):exp():sum() + M(M(a, b), v):sum() + M(v, M(a, b):t()):sum() end,
  reduce_dim = function(a) return (a:sum(2) * a:mean(1):sum(1)):sum() + a:mean() end,
  shape = function(a)
    return ((a:reshape(6, 4) * 2):t():sum(2) * a:narrow(2, 2, 4):clone():t():sum(2)):sum() + a:narrow(1, 3, 2):sum()
  end,
  shared_weight = function(x, w) return M(M(x, w):exp(), w):mean() end,
  two_inputs = function(x1, x2, w1, w2) return (M(x1, w1) * M(x2, w2) + M(x1, w1)):mean() end,
  residual = function(x, w1, w2)
    local r = x + M(M(x, w1):exp() - 1, w2)
    return (r * r):mean()
  end,
  bcast2d = function(a, b, c)
    return ((a * b + c) / (b * b + 1) - a + (a:sum(1, true) * b):mean(2, true)):sum()
  end,
  unary2 = function(x)
    return (x:tanh() * x:sigmoid() + x:abs():log1p() + x:sin() * x:cos() + x:expm1() + (x:abs() + 0.5):rsqrt()
      + x:floor()):sum()
  end,
  function_square = function(x) return (Square(x) * 3):sum() end,
}

for name, f in pairs(losses) do
  local c = refs[name]
  local xs = inputs(c)
  local loss = f(table.unpack(xs))
  check(loss:numel() == 1 and loss.grad_fn ~= nil, name .. ": loss records")
  H.near(num(loss), c.loss, 1e-5 * math.abs(c.loss) + 1e-6, name .. " loss")
  loss:backward()
  for i, x in ipairs(xs) do close(x.grad, c.inputs[i].grad, name .. " grad of input " .. i) end
  -- the same graph through gradcheck (fresh, small inputs in double-checked float32)
  local ok, err = pcall(ag.gradcheck, f, inputs(c))
  check(ok, name .. ": " .. tostring(err))
end

do -- a retained non-leaf gradient
  local c = refs.retain_grad
  local x, w = table.unpack(inputs(c))
  local h = M(x, w)
  check(not h.is_leaf and h.grad_fn == "MmBackward", "h is a recorded non-leaf")
  h:retain_grad()
  local loss = (h * h):sum()
  loss:backward()
  close(h.grad, c.h, "h.grad")
  close(x.grad, c.inputs[1].grad, "retain_grad x.grad")
  close(w.grad, c.inputs[2].grad, "retain_grad w.grad")
end

do -- retain_graph: the second backward adds the same gradient again
  local c = refs.retain_graph
  local x = inputs(c)[1]
  local loss = (x * x):exp():sum()
  loss:backward(true)
  loss:backward({retain_graph = false})
  close(x.grad, c.inputs[1].grad, "retain_graph x.grad")
end

do -- no_grad inside a recorded region
  local c = refs.no_grad_inside
  local x = inputs(c)[1]
  local y = x * 2
  local k = selut.no_grad(function() return x * 3 + 1 end)
  check(not k.requires_grad and k.grad_fn == nil, "no_grad result records nothing")
  check(selut.is_grad_enabled(), "grad mode back on after no_grad")
  local loss = (y * k):sum()
  loss:backward()
  close(x.grad, c.inputs[1].grad, "no_grad_inside x.grad")
end

do -- backward from a non-scalar with a gradient
  local c = refs.nonscalar
  local x = inputs(c)[1]
  local gy = T.new(c.gy):reshape(2, 3)
  ;(x * x):backward(gy)
  close(x.grad, c.inputs[1].grad, "nonscalar x.grad")
end

do -- selut.autograd.grad returns gradients and leaves .grad alone
  local c = refs.arith
  local a, b = table.unpack(inputs(c))
  local g = ag.grad(losses.arith(a, b), {a, b})
  close(g[1], c.inputs[1].grad, "autograd.grad a")
  close(g[2], c.inputs[2].grad, "autograd.grad b")
  check(a.grad == nil and b.grad == nil, ".grad untouched by autograd.grad")
  local gx = ag.grad(M(a, a:t()):sum(), a)
  check(gx[1]:numel() == 12, "one input as a tensor")
end

do -- fields, detach, grad accumulation, grad assignment
  local x = T.randn(2, 2)
  check(x.requires_grad == false and x.is_leaf and x.grad == nil and x.grad_fn == nil, "a plain tensor")
  check(x:requires_grad_() == x and x.requires_grad, "requires_grad_ returns the tensor")
  local y = (x * 2):sum()
  check(y.grad_fn == "SumBackward", "grad_fn names the node")
  check((x * 2).grad_fn == "MulBackward" and (x + x).grad_fn == "AddBackward", "node names")
  y:backward()
  y = (x * 2):sum()
  y:backward()
  H.tensor_near(x.grad, {{4, 4}, {4, 4}}, 0, ".grad accumulates")
  x.grad = nil
  check(x.grad == nil, "x.grad = nil clears")
  local d = (x * 3):detach()
  check(d.is_leaf and not d.requires_grad, "detach: no history")
  local e = x:detach()
  e:set(1, 1, 42)
  check(x:get(1, 1) == 42, "detach shares storage")
  x.requires_grad = false
  check(not x.requires_grad, "requires_grad field assignment")
  check(type(x:sum()) == "number", "a reduction of a tensor that does not record stays a number")
  selut.set_grad_enabled(false)
  local z = T.ones(2):requires_grad_() * 2
  selut.set_grad_enabled(true)
  check(z.grad_fn == nil, "set_grad_enabled(false) stops recording")
  check(select("#", selut.no_grad(function() return 1, 2, 3 end)) == 3, "no_grad returns fn's results")
end

do -- a Lua Function's ctx.needs_input_grad and a non-tensor argument
  local Scale = ag.Function{
    forward = function(ctx, x, s) ctx.s = s; return x * s end,
    backward = function(ctx, gy) return gy * ctx.s, nil end,
  }
  local x = T.ones(3):requires_grad_()
  local y = Scale(x, 5)
  check(y.grad_fn == "FunctionBackward", "default Function node name")
  y:sum():backward()
  H.tensor_near(x.grad, {5, 5, 5}, 0, "Function with a number argument")
end

do -- memory: a graph goes with its tensors; backward frees saved tensors
  collectgarbage()
  collectgarbage()
  local before = selut.memory()
  for _ = 1, 50 do
    local w = T.randn(8, 8):requires_grad_()
    local l = M(T.randn(4, 8), w):exp():mean()
    l:backward()
    local l2 = M(T.randn(4, 8), w):exp():mean() -- never backwarded
    local _ = l2
  end
  collectgarbage()
  collectgarbage()
  check(selut.memory() <= before, "graphs freed: " .. selut.memory() .. " > " .. before)
end
