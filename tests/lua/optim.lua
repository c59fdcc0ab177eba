-- Optimizers: update rules by hand (PyTorch's formulas), options, lr and
-- step access, state for checkpoints, Lua-module parameters.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, near, tnear = H.check, H.near, H.tensor_near
local T, nn, optim = selut.tensor, selut.nn, selut.optim

local function entry(p, g, name) return { param = T.new(p), grad = T.new(g), name = name } end

-- plain SGD: p -= lr * g
local e = entry({ 1, 2 }, { 0.5, -1 }, "w")
local sgd = optim.SGD({ e }, { lr = 0.1 })
check(sgd:step() == sgd, "step returns the optimizer")
tnear(e.param, { 0.95, 2.1 }, 1e-6, "SGD step")
check(sgd:get_step() == 1, "get_step counts steps")

-- momentum: buf = g, then buf = 0.9 buf + g
e = entry({ 0, 0 }, { 1, 2 }, "w")
local mom = optim.SGD({ e }, { lr = 0.1, momentum = 0.9 })
mom:step()
tnear(e.param, { -0.1, -0.2 }, 1e-6, "momentum step 1")
mom:step()
tnear(e.param, { -0.1 - 0.19, -0.2 - 0.38 }, 1e-6, "momentum step 2")
local st = mom:state()
check(T.is_tensor(st["w.momentum_buffer"]), "state named after the entry")
tnear(st["w.momentum_buffer"], { 1.9, 3.8 }, 1e-6, "momentum buffer")

-- weight decay adds wd * p to the gradient
e = entry({ 1 }, { 0 }, "w")
optim.SGD({ e }, { lr = 0.5, weight_decay = 0.1 }):step()
tnear(e.param, { 0.95 }, 1e-6, "SGD weight decay")

-- nesterov: p -= lr * (g + m * buf)
e = entry({ 0 }, { 1 }, "w")
optim.SGD({ e }, { lr = 0.1, momentum = 0.9, nesterov = true }):step()
tnear(e.param, { -0.19 }, 1e-6, "nesterov step 1")

-- Adam's first step moves each weight by lr * g / (|g| + eps)
e = entry({ 1, 1, 1 }, { 0.3, -2, 1e-3 }, "w")
local adam = optim.Adam({ e }, { lr = 0.01 })
adam:step()
tnear(e.param, { 0.99, 1.01, 0.99 }, 1e-5, "Adam step 1")
local ast = adam:state()
check(T.is_tensor(ast["w.exp_avg"]) and T.is_tensor(ast["w.exp_avg_sq"]), "Adam state names")
tnear(ast["w.exp_avg"], { 0.03, -0.2, 1e-4 }, 1e-7, "exp_avg = (1 - beta1) g")
-- AdamW decays the weight first: p *= 1 - lr * wd (default wd 0.01)
e = entry({ 2 }, { 0 }, "w")
optim.AdamW({ e }, { lr = 0.1 }):step()
tnear(e.param, { 2 * (1 - 0.1 * 0.01) }, 1e-6, "AdamW decoupled decay")
-- betas and eps options
e = entry({ 0 }, { 1 }, "w")
optim.Adam({ e }, { lr = 0.1, betas = { 0.5, 0.5 }, eps = 1 }):step()
tnear(e.param, { -0.05 }, 1e-6, "betas/eps: 0.1 * 1 / (1 + 1)")

-- lr: field and methods; zero_grad
e = entry({ 1 }, { 1 }, "w")
local o = optim.SGD({ e }, { lr = 0.1 })
check(o.lr == 0.1 and o:get_lr() == 0.1, "lr readable")
o.lr = 0.5
check(o:get_lr() == 0.5, "opt.lr = v")
check(o:set_lr(1) == o and o.lr == 1, "set_lr")
o:step()
tnear(e.param, { 0 }, 1e-6, "new lr used")
o:zero_grad()
check(e.grad[1] == 0, "zero_grad")
o:set_step(41)
o:step()
check(o:get_step() == 42, "set_step")
check(tostring(o) == "SGD(1 parameters, lr=1.0)", "tostring: " .. tostring(o))

-- state tensors share the optimizer's buffers: copying into them restores
e = entry({ 0 }, { 1 }, "w")
local m1 = optim.SGD({ e }, { lr = 1, momentum = 1 })
m1:step()                                   -- buf = 1, p = -1
m1:state()["w.momentum_buffer"]:fill_(10)   -- restore a "checkpoint"
m1:step()                                   -- buf = 10 + 1, p = -1 - 11
tnear(e.param, { -12 }, 1e-6, "restored state is used")

-- the optimizer keeps its tensors alive when the entries are dropped
local net = nn.Sequential { nn.Linear(3, 2) }
local opt = optim.SGD(net:parameters(), { lr = 0.1 })
collectgarbage()
collectgarbage()
net.modules[1].weight:fill_(1)
opt:zero_grad()
net:forward(T.ones(1, 3))
net:backward(T.ones(1, 3), T.ones(1, 2))
opt:step()
tnear(net.modules[1].weight, { { 0.9, 0.9, 0.9 }, { 0.9, 0.9, 0.9 } }, 1e-6, "optimizer updates the module's weights")

-- a Lua module's parameters are optimized like C ones: fit y = 3x
local Scale = nn.Module { w = T.zeros(1), gw = T.zeros(1) }
function Scale:forward(x) return x * self.w end
function Scale:backward(x, gy)
  self.gw:add_((gy * x):sum(1))
  return gy * self.w
end
function Scale:parameters() return { { param = self.w, grad = self.gw, name = "w" } } end
local model = nn.Sequential { Scale }
local names = model:parameters()
check(names[1].name == "0.w", "Lua parameter named in Sequential")
local fit = optim.Adam(model:parameters(), { lr = 0.1 })
local crit = nn.MSELoss()
selut.manual_seed(1)
local x = T.randn(32, 1)
local y = x * 3
local first, last
for i = 1, 300 do
  local out = model:forward(x)
  local l = crit:forward(out, y)
  first = first or l
  last = l
  fit:zero_grad()
  model:backward(x, crit:backward(out, y))
  fit:step()
end
near(Scale.w[1], 3, 0.05, "Lua parameter learned")
check(last < first * 1e-3, "loss decreased")
