-- The autograd path's recycling (core/autograd/pool.h): a training step on
-- the autograd path makes no core allocation once warm; recycling never
-- touches a tensor somebody still holds (outputs kept across steps, views,
-- .grad of a non-leaf); an in-place write to a recycled tensor that a node
-- saved is still refused; the cache is not counted by selut.memory() and is
-- dropped under a memory cap; the autograd and explicit paths keep giving
-- the same bits.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim, F = selut.tensor, selut.nn, selut.optim, selut.nn.F

local function allocs() return select(2, selut.memory()) end
-- a and b hold the same values (compared outside autograd: a may be a recorded result)
local function same(a, b) return (a:detach() - b:detach()):abs():max() == 0 end

local function tiny_net(seed)
  selut.manual_seed(seed)
  local net = nn.Sequential{nn.Linear(2, 16), nn.SELU(), nn.Linear(16, 16), nn.SELU(), nn.AlphaDropout(0.1),
                            nn.Linear(16, 3)}
  local opt = optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
  return net, opt
end

local x = T.randn(8, 2)
local labels = T.new{1, 2, 3, 1, 2, 3, 1, 2}

do -- no core allocation per autograd step once warm (outputs and losses dropped each step)
  local net, opt = tiny_net(1)
  local function step()
    opt:zero_grad()
    F.cross_entropy(net(x), labels):backward()
    opt:step()
  end
  for _ = 1, 30 do step() end
  collectgarbage() -- the warm-up's dropped results come back to the pool
  local a0 = allocs()
  for _ = 1, 20 do step() end
  check(allocs() - a0 == 0, "autograd steps allocate: " .. (allocs() - a0) .. " core allocations in 20 steps")
  -- a plain MSE regression through m(x) too
  local reg = nn.Sequential{nn.Linear(2, 8), nn.SELU(), nn.Linear(8, 1)}
  local ropt = optim.SGD(reg:parameters(), {lr = 0.01})
  local y = T.randn(8, 1)
  local function rstep()
    ropt:zero_grad()
    F.mse_loss(reg(x), y):backward()
    ropt:step()
  end
  for _ = 1, 30 do rstep() end
  collectgarbage()
  a0 = allocs()
  for _ = 1, 20 do rstep() end
  check(allocs() - a0 == 0, "MSE autograd steps allocate: " .. (allocs() - a0))
end

do -- a step whose loss is written with tensor ops (their recorded results come from the pool too)
  local net = nn.Sequential{nn.Linear(2, 8), nn.SELU(), nn.Linear(8, 2)}
  local opt = optim.SGD(net:parameters(), {lr = 0.01})
  local y = T.randn(8, 2)
  local w = T.randn(2, 2):requires_grad_()
  local function step()
    opt:zero_grad()
    local out = net(x)
    local d = out - y
    local loss = (d * d):mean() + 0.1 * (out:exp():sum(2) + 1):log():mean() + d:abs():clamp(0, 1):sum() / 8
             + selut.matmul(out, w):tanh():sum(1):mean() - (-out):sigmoid():pow(2):mean()
    loss:backward()
    opt:step()
  end
  for _ = 1, 30 do step() end
  collectgarbage()
  local a0 = allocs()
  for _ = 1, 20 do step() end
  check(allocs() - a0 == 0, "a loss written with tensor ops allocates: " .. (allocs() - a0) .. " in 20 steps")
  -- the same values as without the pool: the results of recorded ops are computed by the same kernels
  local out = net(x)
  local d1 = ((out - y) * 3):exp():detach()
  local d2 = selut.no_grad(function() return ((out - y) * 3):exp() end)
  check(same(d1, d2), "a recorded op's result differs from the unrecorded one")
end

do -- the same bits as the explicit protocol, with the recycling on (dropout draws from the state's generator:
  -- each path runs alone after the same seed)
  local na, oa = tiny_net(3)
  for _ = 1, 25 do
    oa:zero_grad()
    F.cross_entropy(na(x), labels):backward()
    oa:step()
  end
  local ne, oe = tiny_net(3)
  local crit = nn.CrossEntropyLoss()
  for _ = 1, 25 do
    local out = ne:forward(x)
    crit:forward(out, labels)
    oe:zero_grad()
    ne:backward(x, crit:backward(out, labels), false)
    oe:step()
  end
  local pa, pe = na:parameters(), ne:parameters()
  for i = 1, #pa do
    check(same(pa[i].param, pe[i].param), "parameter " .. i .. " differs between the paths")
  end
end

do -- results held across steps are never overwritten
  local net, opt = tiny_net(5)
  local kept, copies, losses, lcopies = {}, {}, {}, {}
  for i = 1, 40 do
    opt:zero_grad()
    local out = net(x)
    local loss = F.cross_entropy(out, labels)
    loss:backward()
    opt:step()
    if i % 4 == 0 then
      kept[#kept + 1], copies[#copies + 1] = out, out:clone()
      losses[#losses + 1], lcopies[#lcopies + 1] = loss, loss[1]
    end
    if i % 10 == 0 then collectgarbage() end
  end
  for k = 1, #kept do
    check(same(kept[k], copies[k]), "output kept from step " .. 4 * k .. " was overwritten")
    check(losses[k][1] == lcopies[k], "loss kept from step " .. 4 * k .. " was overwritten")
  end
  -- a layer's output held while the same layer runs again (a module used twice)
  local lin = nn.Linear(2, 2)
  local a = lin(x)
  local a0 = a:clone()
  local b = lin(x * 2)
  check(same(a, a0), "the first call's output changed when the layer ran again")
  check(same(b, lin:forward(x * 2)), "the second call's output")
  -- a view of an output keeps its storage out of the pool
  local v
  do
    local o = lin(x)
    v = o:detach():reshape(16)
  end
  local v0 = v:clone()
  for _ = 1, 5 do
    collectgarbage()
    local _ = lin(x * 3)
  end
  check(same(v, v0), "a view of a dropped output was overwritten")
  -- explicit forward after m(x): the kept result is not the module's buffer
  local relu = nn.ReLU()
  local r = relu(x)
  local r0 = r:clone()
  relu:forward(x * -1)
  check(same(r, r0), "m:forward overwrote the result of an earlier m(x)")
end

do -- an in-place write to a recycled tensor saved by a node is still caught
  local net = nn.Sequential{nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)}
  for _ = 1, 10 do -- cycle outputs through the pool
    F.mse_loss(net(x), T.zeros(8, 1)):backward()
    collectgarbage()
  end
  local h = nn.Linear(2, 4)(x) -- most likely a recycled buffer
  local l = h:tanh():sum() -- TanhBackward saves h
  h:detach():add_(1) -- in place on the saved tensor's storage
  local ok, err = pcall(l.backward, l)
  check(not ok and tostring(err):find("modified by an in-place operation", 1, true),
        "in-place write on a saved recycled tensor: " .. tostring(err))
  -- and a tensor taken from the pool after that is a fresh result
  local l2 = nn.Linear(2, 4)(x):tanh():sum()
  l2:backward()
end

do -- .grad of a non-leaf (retain_grad) and autograd.grad's results survive the recycling
  local w = T.randn(2, 3):requires_grad_()
  local h = selut.matmul(x, w)
  h:retain_grad()
  local l = h:exp():sum()
  l:backward()
  local g = h.grad
  local g0 = g:clone()
  for _ = 1, 5 do
    local l2 = selut.matmul(x, w):exp():sum()
    l2:backward()
    collectgarbage()
  end
  check(same(g, g0), "a retained .grad was overwritten")
  local lin = nn.Linear(2, 3)
  local xin = x:clone():requires_grad_()
  local gs = selut.autograd.grad(F.mse_loss(lin(xin), T.zeros(8, 3)), {xin})
  local gs0 = gs[1]:clone()
  for _ = 1, 5 do
    F.mse_loss(lin(xin), T.zeros(8, 3)):backward()
    collectgarbage()
  end
  check(same(gs[1], gs0), "autograd.grad's result was overwritten")
end

do -- the cache is not "in use": memory returns to its level; a cap drops it
  local net, opt = tiny_net(9)
  local function step()
    opt:zero_grad()
    F.cross_entropy(net(x), labels):backward()
    opt:step()
  end
  step() -- the modules' own buffers and the optimizer's state
  collectgarbage()
  collectgarbage()
  local before = selut.memory()
  for _ = 1, 20 do step() end
  collectgarbage()
  collectgarbage()
  check(selut.memory() <= before, "memory after autograd steps: " .. selut.memory() .. " > " .. before)
  -- under a cap, nothing is cached and steps still work; then the cap goes
  selut.set_memory_limit(selut.memory() + (8 << 20))
  for _ = 1, 5 do step() end
  selut.set_memory_limit(0)
end

do -- no_grad: m(x) hands out its result without recording, and it is kept intact too
  local lin = nn.Linear(2, 2)
  local a = selut.no_grad(function() return lin(x) end)
  local a0 = a:clone()
  check(a.grad_fn == nil, "no_grad result has no grad_fn")
  selut.no_grad(function() return lin(x * 5) end)
  check(same(a, a0), "a no_grad result was overwritten by the next call")
end
