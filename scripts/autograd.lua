-- selut.autograd, the Lua half: Function (an op whose forward and backward
-- are Lua functions) and gradcheck (central differences). The tape, grad
-- and the tensor methods are C (core/autograd, bindings/lua_autograd.c).
local selut = require "selut"
local autograd = selut.autograd
local T = selut.tensor

local Ctx = {}
Ctx.__index = Ctx
-- ctx:save_for_backward(...): tensors (or anything) the backward reads back
-- as ctx.saved, in order.
function Ctx:save_for_backward(...)
  self.saved = table.pack(...)
end

-- autograd.Function{forward = f(ctx, ...), backward = b(ctx, gy)[, name =]}
-- returns a callable op. forward runs under no_grad and returns one tensor;
-- backward returns one gradient (tensor or nil) per argument of forward.
function autograd.Function(def)
  if type(def) ~= "table" or type(def.forward) ~= "function" or type(def.backward) ~= "function" then
    error("bad argument #1 to 'Function' (table with forward and backward functions expected)", 2)
  end
  local name = def.name or "FunctionBackward"
  local fn = {}
  return setmetatable(fn, {
    __name = "selut.autograd.Function",
    __call = function(_, ...)
      local args = table.pack(...)
      local ctx = setmetatable({saved = {}}, Ctx)
      local tensors, pos, needs = {}, {}, false
      ctx.needs_input_grad = {}
      for i = 1, args.n do
        local a = args[i]
        local is_t = T.is_tensor(a)
        ctx.needs_input_grad[i] = is_t and a.requires_grad or false
        if is_t then
          tensors[#tensors + 1] = a
          pos[#pos + 1] = i
          needs = needs or a.requires_grad
        end
      end
      local y = selut.no_grad(def.forward, ctx, ...)
      if not T.is_tensor(y) then
        error(string.format("%s: forward must return one tensor, got %s", name, type(y)), 2)
      end
      if not (needs and selut.is_grad_enabled()) then return y end
      y = y:detach() -- a header of its own: the node must not land on an input or a shared buffer
      local nargs = args.n
      autograd._record(name, y, tensors, function(gy)
        local g = table.pack(def.backward(ctx, gy))
        if g.n ~= nargs then
          error(string.format("backward returned %d gradients, expected %d (one per argument of forward)", g.n, nargs), 0)
        end
        local out = {}
        for k = 1, #pos do out[k] = g[pos[k]] end
        return table.unpack(out, 1, #pos)
      end)
      return y
    end,
  })
end

-- Flat element access through a detached view (shares storage).
local function flat(t) return t:detach():reshape(t:numel()) end

-- autograd.gradcheck(f, inputs[, {eps =, atol =, rtol =}]) -> true, or an
-- error naming the input, element, output element, analytic and numeric
-- values. The whole Jacobian is compared: one backward per output element,
-- then f evaluated at x +- eps per input element (float32 defaults: eps
-- 1e-2, atol 1e-2, rtol 1e-2; see docs/autograd.md).
function autograd.gradcheck(f, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-2, opts.atol or 1e-2, opts.rtol or 1e-2
  if type(f) ~= "function" then error("bad argument #1 to 'gradcheck' (function expected)", 2) end
  if type(inputs) ~= "table" then error("bad argument #2 to 'gradcheck' (table of tensors expected)", 2) end
  local function eval()
    local y = f(table.unpack(inputs))
    if type(y) == "number" then y = T.new{y} end -- a reduction that did not record (under no_grad)
    if not T.is_tensor(y) then error("gradcheck: f must return a tensor, got " .. type(y), 3) end
    return y
  end
  local y = eval()
  local m = y:numel()
  local wrt, which = {}, {}
  for i, x in ipairs(inputs) do
    if T.is_tensor(x) and x.requires_grad then
      wrt[#wrt + 1] = x
      which[#wrt] = i
    end
  end
  if #wrt == 0 then error("gradcheck: no input requires grad", 2) end
  -- analytic: row j of the Jacobian is the gradient of y[j]
  local ana = {}
  for j = 1, m do
    local g = T.zeros(table.unpack(y:shape()))
    flat(g):set(j, 1)
    ana[j] = autograd.grad(y, wrt, g, {retain_graph = true})
  end
  local yf = flat(y)
  for k, x in ipairs(wrt) do
    local xf = flat(x)
    for e = 1, x:numel() do
      local v = xf[e]
      xf:set(e, v + eps)
      local yp = flat(selut.no_grad(eval))
      xf:set(e, v - eps)
      local ym = flat(selut.no_grad(eval))
      xf:set(e, v)
      for j = 1, m do
        local num = (yp[j] - ym[j]) / (2 * eps)
        local gk = ana[j][k]
        local a = gk and flat(gk)[e] or 0
        if math.abs(a - num) > atol + rtol * math.abs(num) then
          error(string.format("gradcheck: input %d, element %d, output element %d: analytic %.8g, numeric %.8g "
            .. "(eps %g, atol %g, rtol %g)", which[k], e, j, a, num, eps, atol, rtol), 2)
        end
      end
    end
  end
  local _ = yf
  return true
end

return autograd
