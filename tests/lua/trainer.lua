-- selut.Trainer: counters and epochs exact, training equal to the same loop
-- written by hand (bit for bit), step_for pacing, data functions, and the
-- error messages of every bad argument.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, optim = selut.tensor, selut.nn, selut.optim

local function make_data()
  selut.manual_seed(11)
  local x = T.randn(40, 3)
  local y = T.zeros(40)
  for i = 1, 40 do y[i] = x:get(i, 1) - x:get(i, 3) > 0 and 2 or 1 end
  return x, y
end
local function make_net()
  selut.manual_seed(12)
  return nn.Sequential { nn.Linear(3, 6), nn.SELU(), nn.Linear(6, 2) }
end

-- 1. the trainer does exactly what the hand-written loop does
local x, y = make_data()
local net_a = make_net()
local tr = selut.Trainer { net = net_a, loss = nn.CrossEntropyLoss(), optim = optim.SGD(net_a:parameters(), { lr = 0.1 }),
  data = selut.data.Dataset(x, y), batch_size = 16, shuffle = false, epochs = 2 }
local p = tr:step(5)
H.check(p.ran == 5 and p.steps == 5 and p.epoch == 2 and p.batch == 2, "5 batches of 16 over 40 samples: epoch 2, batch 2")
H.check(p.samples == 16 + 16 + 8 + 16 + 16, "samples counted per batch (last batch of an epoch is 8)")
p = tr:step(10)
H.check(p.ran == 1 and p.done and p.epoch == 2 and p.batch == 3, "stops at the end of epoch 2")
H.check(tr:step(3).ran == 0 and tr:step_for(5).ran == 0, "nothing runs once done")

local net_b = make_net()
local crit, opt = nn.CrossEntropyLoss(), optim.SGD(net_b:parameters(), { lr = 0.1 })
local losses = {}
for _ = 1, 2 do
  for i = 1, 40, 16 do
    local n = math.min(16, 41 - i)
    local xb, yb = x:narrow(1, i, n), y:narrow(1, i, n)
    opt:zero_grad()
    local out = net_b:forward(xb)
    losses[#losses + 1] = crit:forward(out, yb)
    net_b:backward(xb, crit:backward(out, yb))
    opt:step()
  end
end
local pa, pb = net_a:parameters(), net_b:parameters()
for i = 1, #pa do
  H.tensor_near(pa[i].param, pb[i].param:totable(), 0, "parameter " .. pa[i].name .. " equals the hand loop's")
end
H.check(tr:progress().loss == losses[#losses], "last loss equals the hand loop's")
H.near(tr:progress().epoch_loss, (losses[4] + losses[5] + losses[6]) / 3, 1e-12, "epoch_loss is the epoch's mean")

-- 1b. a loss function (nn.F.cross_entropy) takes the autograd path: the same
-- bits as the explicit path for C layers, and nn.class nets train through it
local net_c = make_net()
local tr_c = selut.Trainer { net = net_c, loss = nn.F.cross_entropy, optim = optim.SGD(net_c:parameters(), { lr = 0.1 }),
  data = selut.data.Dataset(x, y), batch_size = 16, shuffle = false, epochs = 2 }
tr_c:fit()
local pc = net_c:parameters()
for i = 1, #pa do
  H.tensor_near(pc[i].param, pa[i].param:totable(), 0, "autograd path: " .. pc[i].name .. " equals the explicit path's")
end
-- (the loss value: F.cross_entropy's float32 [1] tensor vs the criterion's double)
H.near(tr_c:progress().loss, tr:progress().loss, 1e-6 * tr:progress().loss, "autograd path: the same last loss")
do
  local Res = nn.class("Res")
  function Res:init() self.inp = nn.Linear(3, 6); self.hid = nn.Linear(6, 6); self.out = nn.Linear(6, 2) end
  function Res:forward(v)
    local h = nn.F.selu(self.inp(v))
    return self.out(h + nn.F.selu(self.hid(h)))
  end
  selut.manual_seed(12)
  local res = Res()
  local w0 = res.hid.weight:clone()
  local trr = selut.Trainer { net = res, loss = nn.F.cross_entropy, optim = optim.SGD(res:parameters(), { lr = 0.1 }),
    data = selut.data.Dataset(x, y), batch_size = 8, epochs = 3 }
  trr:fit()
  H.check((res.hid.weight - w0):abs():sum() > 0, "a class net trains through the Trainer")
  H.check(trr:progress().loss < 0.69, "and its loss drops below chance: " .. trr:progress().loss)
  H.checkerror("the loss function must return a 1-element tensor, got number", function()
    selut.Trainer { net = res, loss = function() return 1 end, optim = optim.SGD(res:parameters(), { lr = 0.1 }),
      data = selut.data.Dataset(x, y), batch_size = 8, epochs = 1 }:fit()
  end)
end

-- 2. step_for: at least one batch, and roughly within the budget
local net = make_net()
local endless = selut.Trainer { net = net, loss = nn.CrossEntropyLoss(), optim = optim.SGD(net:parameters(), { lr = 0.01 }),
  data = selut.data.Dataset(x, y), batch_size = 8 }
H.check(endless:step_for(0).ran == 0, "step_for(0) runs nothing")
H.check(endless:step_for(1e-6).ran == 1, "a tiny budget still runs one batch")
local t0 = selut.clock()
p = endless:step_for(30)
local dt = selut.clock() - t0
H.check(p.ran > 1 and dt < 0.5, string.format("step_for(30) ran %d batches in %.3f s", p.ran, dt))
H.check(not p.done and p.epoch > 1, "without epochs= the trainer cycles")

-- 3. data as a function; nil ends an epoch
local calls = 0
local fn = selut.Trainer { net = net, loss = nn.CrossEntropyLoss(), optim = optim.SGD(net:parameters(), { lr = 0.01 }),
  data = function(self)
    calls = calls + 1
    if calls % 3 == 0 then return nil end
    return x, y
  end, epochs = 2 }
p = fn:step(100)
H.check(p.ran == 4 and p.done and p.samples == 160, "two epochs of two batches from the function")
local empty = selut.Trainer { net = net, loss = nn.CrossEntropyLoss(), optim = optim.SGD(net:parameters(), { lr = 0.01 }),
  data = function() return nil end }
H.checkerror("Trainer: the data produced no batch in a whole epoch", empty.step, empty)

-- 4. errors name the field, the value and what was expected
local ok_opts = { net = net, loss = nn.MSELoss(), optim = optim.SGD(net:parameters(), { lr = 0.01 }), data = selut.data.Dataset(x, y) }
local function with(k, v)
  local t = {}
  for kk, vv in pairs(ok_opts) do t[kk] = vv end
  t[k] = v
  return t
end
H.checkerror("bad argument #1 to 'Trainer' (table expected, got number)", selut.Trainer, 3)
H.checkerror("field 'net' must be a module with forward/backward/train, got nil", selut.Trainer, with("net", nil))
H.checkerror("field 'loss' must be a loss with forward/backward or a function (out, y) -> 1-element tensor (nn.F.cross_entropy), got string", selut.Trainer, with("loss", "mse"))
H.checkerror("field 'optim' must be an optimizer with step/zero_grad, got table", selut.Trainer, with("optim", {}))
H.checkerror("field 'data' must be a dataset (with :batches) or a function returning x, y, got selut.Tensor",
  selut.Trainer, with("data", x))
H.checkerror("field 'batch_size' must be a positive integer, got 0", selut.Trainer, with("batch_size", 0))
H.checkerror("field 'batch_size' must be a positive integer, got 2.5", selut.Trainer, with("batch_size", 2.5))
H.checkerror("field 'epochs' must be a positive integer or nil, got -1", selut.Trainer, with("epochs", -1))
H.checkerror("field 'shuffle' must be a boolean, got string", selut.Trainer, with("shuffle", "yes"))
H.checkerror("unknown field 'lr' (expected net, loss, optim, data, batch_size, shuffle, drop_last, epochs, scheduler,",
  selut.Trainer, with("lr", 0.1))
local t = selut.Trainer(ok_opts)
H.checkerror("bad argument #1 to 'step' (number of batches must be a non-negative integer, got -1)", t.step, t, -1)
H.checkerror("bad argument #1 to 'step' (number of batches must be a non-negative integer, got 1.5)", t.step, t, 1.5)
H.checkerror("bad argument #1 to 'step_for' (milliseconds must be a number >= 0, got " .. tostring(0 / 0) .. ")",
  t.step_for, t, 0 / 0)
H.checkerror("bad argument #1 to 'step_for' (milliseconds must be a number >= 0, got x)", t.step_for, t, "x")
H.checkerror("bad argument #1 to 'step' (selut.Trainer expected, got table)", t.step, {})
-- shape errors inside a step come back as Lua errors and the trainer goes on
local bad = selut.Trainer(with("loss", nn.CrossEntropyLoss()))
bad.data = function() return x, T.zeros(3) end
H.checkerror("bad argument #2 to 'forward' (40 labels expected (one per row of logits), got 3)", bad.step, bad)
bad.data = function() return x, y end
H.check(bad:step(1).ran == 1, "the trainer keeps working after an error")
