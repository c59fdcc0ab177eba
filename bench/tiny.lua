-- bench/tiny.lua: the tiny-net case (the embedded-in-a-game workload, where
-- per-step overhead dominates): 2 -> 64 -> 64 -> 1 SELU MLP, batch 32 (one
-- fixed batch), MSE, SGD lr 0.01 momentum 0.9, STEPS steps after 100 warm-up
-- steps, through the public Lua API. Same as bench/torch_tiny.py.
-- A second argument "inplace" uses nn.SELU(true) (PyTorch's inplace=True);
-- "autograd" runs the step on the autograd path (net(x), nn.F.mse_loss,
-- loss:backward()) instead of forward/backward.
--   selut bench/tiny.lua [steps] [inplace|autograd]
local selut = require "selut"
local nn, optim, T = selut.nn, selut.optim, selut.tensor
local steps = tonumber(arg and arg[1]) or 10000
local inplace = (arg and arg[2]) == "inplace"
local autograd = (arg and arg[2]) == "autograd"
selut.manual_seed(1)
local net = nn.Sequential{nn.Linear(2, 64), nn.SELU(inplace), nn.Linear(64, 64), nn.SELU(inplace), nn.Linear(64, 1)}
local crit = nn.MSELoss()
local opt = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
local x = T.rand(32, 2) * 4 - 2
local y = T.zeros(32, 1)
for i = 1, 32 do y:set(i, 1, math.sin(x:get(i, 1)) * math.cos(x:get(i, 2))) end

local function step()
  local out = net:forward(x)
  local loss = crit:forward(out, y)
  opt:zero_grad()
  net:backward(x, crit:backward(out, y), false) -- x is data: no input gradient
  opt:step()
  return loss
end

if autograd then
  step = function()
    local loss = nn.F.mse_loss(net(x), y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    return loss:get(1)
  end
end

for _ = 1, 100 do step() end
local loss
local t0 = selut.clock()
for _ = 1, steps do loss = step() end
local secs = selut.clock() - t0
print(string.format("selut_tiny us_per_step=%.2f steps=%d loss=%.6f threads=%d inplace=%d autograd=%d",
                    secs / steps * 1e6, steps, loss, selut.get_num_threads(), inplace and 1 or 0, autograd and 1 or 0))
