-- nn.class, nn.Parameter and nn.ModuleList against PyTorch twins
-- (tests/ref/gen_class_refs.py): PyTorch's state_dict names in order, the
-- output, and the gradients of every parameter and input (1e-5 relative);
-- registration order, checkpoints, optimizers, the explicit protocol and
-- bad input.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn = selut.tensor, selut.nn
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/class_refs.lua")

local close = H.ref_close

local function tensor(r) return T.new(r.data):reshape(table.unpack(r.shape)) end

-- The twins of the PyTorch classes.
local MyLinear = nn.class("MyLinear")
function MyLinear:init(i, o)
  self.weight = nn.Parameter(T.randn(o, i))
  self.bias = nn.Parameter(T.zeros(o))
end
function MyLinear:forward(x) return x:matmul(self.weight:t()) + self.bias end

local Block = nn.class("Block")
function Block:init(d)
  self.fc1 = MyLinear(d, d)
  self.scale = nn.Parameter(T.full(0.5, 1))
  self.fc2 = MyLinear(d, d)
end
function Block:forward(x) return x + self.fc2(self.fc1(x):tanh()) * self.scale end

local Shared = nn.class("Shared")
function Shared:init(d) self.fc = MyLinear(d, d) end
function Shared:forward(x) return self.fc(self.fc(x):tanh()) end

local TwoInputs = nn.class("TwoInputs")
function TwoInputs:init() self.fa = MyLinear(3, 4); self.fb = MyLinear(2, 4) end
function TwoInputs:forward(a, b) return self.fa(a):sigmoid() * self.fb(b) + self.fa(a) end

local Stack = nn.class("Stack")
function Stack:init(d, n)
  local layers = {}
  for i = 1, n do layers[i] = MyLinear(d, d) end
  self.layers = nn.ModuleList(layers)
  self.head = MyLinear(d, 2)
end
function Stack:forward(x)
  for _, m in ipairs(self.layers) do x = m(x):tanh() end
  return self.head(x)
end

local nets = {
  residual = function() return nn.Sequential{MyLinear(5, 4), Block(4), Block(4), MyLinear(4, 3)} end,
  shared = function() return Shared(4) end,
  two_inputs = function() return TwoInputs() end,
  module_list = function() return Stack(3, 3) end,
}

local function load_ref(net, r)
  local params = net:parameters()
  local names = {}
  for i, p in ipairs(params) do
    names[i] = p.name
    selut.no_grad(function() p.param:copy(tensor(r.state[p.name])) end)
  end
  check(table.concat(names, " ") == table.concat(r.names, " "),
        "names " .. table.concat(names, " ") .. " ~= PyTorch's " .. table.concat(r.names, " "))
  return params
end

local function run(net, r)
  local xs = {}
  for i, x in ipairs(r.inputs) do xs[i] = tensor(x):requires_grad_() end
  local y = net(table.unpack(xs))
  local loss = (y * y):mean() + y:sum()
  loss:backward()
  return y, loss, xs
end

for name, make in pairs(nets) do
  local r = refs[name]
  local net = make()
  local params = load_ref(net, r)
  local y, loss, xs = run(net, r)
  close(y, r.output.data, name .. " output")
  close(loss, { r.loss }, name .. " loss")
  for _, p in ipairs(params) do close(p.grad, r.grads[p.name].data, name .. " grad " .. p.name) end
  for i, x in ipairs(xs) do close(x.grad, r.input_grads[i].data, name .. " input grad " .. i) end
  -- The entries' grad is the tensor autograd accumulated into (optimizers
  -- made before the first backward read it).
  for _, p in ipairs(params) do check(p.grad:shares_storage(p.param.grad), name .. ": entry grad is the param's .grad") end

  -- A checkpoint round trip under PyTorch's names, strict.
  local path = os.tmpname()
  selut.save(path, net)
  local fresh = make()
  selut.load(path, fresh)
  os.remove(path)
  for i, p in ipairs(fresh:parameters()) do H.tensor_near(p.param, params[i].param, 0, name .. " reloaded " .. p.name) end

  -- One SGD step moves every parameter by -lr * grad; zero_grad zeroes the
  -- same tensors in place.
  local opt = selut.optim.SGD(net:parameters(), { lr = 0.5 })
  local before = {}
  for i, p in ipairs(params) do before[i] = p.param:clone() end
  opt:step()
  for i, p in ipairs(params) do H.tensor_near(p.param, before[i] - p.grad * 0.5, 1e-6, name .. " sgd " .. p.name) end
  net:zero_grad()
  for _, p in ipairs(params) do check(p.param.grad:abs():sum() == 0, name .. ": zero_grad") end
end

-- Registration order is first assignment; reassignment keeps the place; a
-- field set to nil and assigned again goes last (Python's del + setattr).
do
  local C = nn.class("Order")
  function C:init()
    self.b = nn.Parameter(T.ones(1))
    self.a = MyLinear(2, 2)
    self.c = nn.Parameter(T.ones(2))
    self.note = "not registered"
    self.plain = T.ones(3) -- a plain tensor is not a parameter
  end
  function C:forward(x) return x end
  local m = C()
  local function names()
    local out = {}
    for _, p in ipairs(m:parameters()) do out[#out + 1] = p.name end
    return table.concat(out, " ")
  end
  check(names() == "b c a.weight a.bias", names())
  m.b = nn.Parameter(T.zeros(1))
  check(names() == "b c a.weight a.bias", "reassigned: " .. names())
  m.b = nil
  check(names() == "c a.weight a.bias", "removed: " .. names())
  m.b = nn.Parameter(T.zeros(1))
  check(names() == "c b a.weight a.bias", "re-added: " .. names())
  check(tostring(m) == "Order(\n  (a): MyLinear()\n)", tostring(m))
  m:register_buffer("running", T.zeros(2))
  local bufs = m:buffers()
  check(#bufs == 1 and bufs[1].name == "running", "register_buffer")
  check(nn.is_parameter(m.c) and not nn.is_parameter(m.plain), "is_parameter")
  check(m(7) == 7, "m(x) calls forward")
end

-- Inheritance: a subclass keeps the parent's methods and can call its init.
do
  local Scaled = nn.class("Scaled", MyLinear)
  function Scaled:init(i, o)
    MyLinear.init(self, i, o)
    self.gain = nn.Parameter(T.full(2, 1))
  end
  function Scaled:forward(x) return MyLinear.forward(self, x) * self.gain end
  local s = Scaled(3, 2)
  check(#s:parameters() == 3 and s:parameters()[3].name == "gain", "subclass parameters")
  check(s.super == MyLinear, "super")
  local y = s(T.ones(1, 3))
  check(y:size(2) == 2 and y.requires_grad, "subclass forward records")
end

-- The explicit protocol: m:backward(x, gy) on a class module gives the same
-- gradients as loss:backward().
do
  local r = refs.residual
  local a, b = nets.residual(), nets.residual()
  load_ref(a, r)
  load_ref(b, r)
  local x = tensor(r.inputs[1])
  local y = a(x:detach():requires_grad_())
  local gy = T.ones(y:size()) + y * (2 / y:numel())
  b:forward(x)
  local gx = b:backward(x, gy:detach())
  local xa = x:detach():requires_grad_()
  a:zero_grad()
  ya = a(xa)
  ya:backward(gy:detach())
  for i, p in ipairs(a:parameters()) do H.tensor_near(b:parameters()[i].grad, p.grad, 1e-6, "explicit " .. p.name) end
  H.tensor_near(gx, xa.grad, 1e-6, "explicit dL/dx")
  close(gx, r.input_grads[1].data, "explicit dL/dx vs PyTorch")
  -- inside no_grad a class module computes without recording
  local z = selut.no_grad(function() return a(x) end)
  check(not z.requires_grad, "no_grad: nothing records")
end

-- Bad input.
checkerror("bad argument #1 to 'class' (class name (string) expected, got number)", nn.class, 1)
checkerror("parent must be a class made by nn.class, got table", nn.class, "X", {})
checkerror("bad argument #1 to 'Parameter' (tensor expected, got string)", nn.Parameter, "w")
checkerror("requires_grad must be a boolean, got number", nn.Parameter, T.ones(2), 1)
do
  local NoFwd = nn.class("NoForward")
  function NoFwd:init() end
  checkerror("nn.class 'NoForward' has no forward method", NoFwd)
end
checkerror("element 2 is not a module (got number)", nn.ModuleList, { MyLinear(2, 2), 5 })
checkerror("append' (module expected, got string)", function() nn.ModuleList{}:append("x") end)
checkerror("ModuleList has no forward", function() nn.ModuleList{}:forward(T.ones(1)) end)
checkerror("register_buffer' (tensor expected, got nil)", function() MyLinear(2, 2):register_buffer("b") end)
checkerror("MyLinear:backward needs grad mode", function()
  local m = MyLinear(2, 2)
  selut.no_grad(function() m:backward(T.ones(1, 2), T.ones(1, 2)) end)
end)
checkerror("forward's result does not depend on anything that requires grad", function()
  local C = nn.class("Const")
  function C:forward() return T.ones(2) end
  C():backward(T.ones(2), T.ones(2))
end)
do -- a frozen Parameter has no grad and is still registered
  local p = nn.Parameter(T.ones(2), false)
  check(not p.requires_grad and nn.is_parameter(p), "Parameter(t, false)")
end
