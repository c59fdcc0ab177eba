-- Per-step overhead: C layers and losses return the same Lua box
-- for their output / gradient buffers on every call (no new userdata per
-- step), a new box once the user closed the old one or the buffer changed,
-- and a training step allocates no Lua memory.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim = selut.tensor, selut.nn, selut.optim

selut.manual_seed(11)
local lin, act = nn.Linear(3, 4), nn.SELU()
local x = T.randn(5, 3)

-- forward: the same box, holding the current output
local y1 = lin:forward(x)
local want = y1:clone()
local y2 = lin:forward(x)
check(rawequal(y1, y2), "Linear:forward returns the same box for its output buffer")
H.tensor_near(y2, want, 0, "the box holds the new output")
local h = act:forward(y1)
check(rawequal(h, act:forward(y1)), "SELU:forward returns the same box")
check(not rawequal(h, y1), "each module has its own box")

-- backward: the same gradient box, and nil with need_input_grad = false
local gy = T.ones(5, 4)
local g1 = lin:backward(x, gy)
check(rawequal(g1, lin:backward(x, gy)), "Linear:backward returns the same box for dL/dx")
check(lin:backward(x, gy, false) == nil, "need_input_grad = false returns nil")
check(rawequal(g1, lin:backward(x, gy)), "and the box is still the same afterwards")
check(g1:size(1) == 5 and g1:size(2) == 3, "dL/dx has the input's shape")

-- a box the user closed is not handed out again
do
  local y <close> = lin:forward(x)
  check(rawequal(y, y1), "the cached box")
end
H.checkerror("attempt to use a closed tensor", function() return y1:sum() end)
local y3 = lin:forward(x)
check(not rawequal(y3, y1), "a new box after the old one was closed")
H.tensor_near(y3, want, 0, "holding the output")
check(rawequal(y3, lin:forward(x)), "then cached again")

-- a new batch size: the right shape (a new box when the module reallocated)
local y7 = lin:forward(T.randn(7, 3))
check(y7:size(1) == 7 and y7:size(2) == 4, "output of a batch of 7 has 7 rows")
H.tensor_near(lin:forward(x), want, 0, "back to the batch of 5")
check(lin:forward(x):size(1) == 5, "shape of the batch of 5")

-- losses: backward returns the same box; forward a number
local crit, mse = nn.CrossEntropyLoss(), nn.MSELoss()
local logits, labels = T.randn(5, 4), {1, 2, 3, 4, 1}
local gl = crit:backward(logits, labels)
check(rawequal(gl, crit:backward(logits, labels)), "CrossEntropyLoss:backward returns the same box")
local gm = mse:backward(y3, T.zeros(5, 4))
check(rawequal(gm, mse:backward(y3, T.zeros(5, 4))), "MSELoss:backward returns the same box")
check(not rawequal(gl, gm), "one box per loss")
check(math.type(mse:forward(y3, T.zeros(5, 4))) == "float", "forward returns a number")
H.checkerror("selut.nn loss expected", crit.forward, lin, logits, labels)
H.checkerror("selut.Tensor expected, got table", lin.forward, lin, {})
H.checkerror("selut.optim optimizer expected", optim.SGD(lin:parameters(), {lr = 0.1}).step, crit)

-- a whole training step allocates no Lua memory once warm
local net = nn.Sequential{nn.Linear(2, 16), nn.SELU(), nn.Linear(16, 16), nn.SELU(), nn.Linear(16, 1)}
local opt = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
local xb, yb = T.rand(8, 2), T.zeros(8, 1)
local function step()
  local out = net:forward(xb)
  local loss = mse:forward(out, yb)
  opt:zero_grad()
  net:backward(xb, mse:backward(out, yb), false)
  opt:step()
  return loss
end
for _ = 1, 3 do step() end
collectgarbage("collect")
collectgarbage("stop")
for _ = 1, 100 do step() end -- the collection shrank the stack: let it grow back
local before = collectgarbage("count")
for _ = 1, 1000 do step() end
local grown = (collectgarbage("count") - before) * 1024
collectgarbage("restart")
check(grown == 0, string.format("1000 training steps allocated %d bytes of Lua memory (expected 0)", grown))
