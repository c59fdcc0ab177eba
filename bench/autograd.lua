-- bench/autograd.lua: the autograd path against the explicit protocol in one
-- run, on the same nets, seeds and batches (they give the same bits):
--   tiny : 2 -> 64 -> 64 -> 1 SELU MLP, batch 32, MSE, SGD momentum
--          (bench/tiny.lua's workload; PyTorch's autograd: bench/torch_tiny.py);
--          "closed" is the autograd step with its two results closed
--          (local loss <close> = ...), which leaves the collector nothing
--   epoch: the default recipe (784 -> 8 x 512 SELU + AlphaDropout -> 10,
--          batch 128) over LIMIT Fashion-MNIST samples
-- Each path is timed in alternating rounds (best round kept) after warm-up,
-- and the core allocations per step are counted (selut.memory()'s second
-- value) over the measured steps.
--   selut bench/autograd.lua [tiny_steps=5000] [epoch_limit=10000] [rounds=3] [torch_us]
-- torch_us: PyTorch's autograd step on the same net from the same run
-- (`/usr/bin/python3 bench/torch_tiny.py --threads 1`), to print the ratio;
-- epoch_limit < 0 skips the epoch part.
local selut = require "selut"
local nn, optim, T, F = selut.nn, selut.optim, selut.tensor, selut.nn.F
local tiny_steps = math.tointeger(tonumber(arg[1] or "5000"))
local limit = math.tointeger(tonumber(arg[2] or "10000"))
local rounds = math.tointeger(tonumber(arg[3] or "3"))
local torch_us = tonumber(arg[4] or "")

local function allocs() return select(2, selut.memory()) end

-- tiny
local function tiny(path)
  selut.manual_seed(1)
  local net = nn.Sequential{nn.Linear(2, 64), nn.SELU(), nn.Linear(64, 64), nn.SELU(), nn.Linear(64, 1)}
  local crit = nn.MSELoss()
  local opt = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  local x = T.rand(32, 2) * 4 - 2
  local y = T.zeros(32, 1)
  for i = 1, 32 do y:set(i, 1, math.sin(x:get(i, 1)) * math.cos(x:get(i, 2))) end
  if path == "explicit" then
    return function()
      local out = net:forward(x)
      crit:forward(out, y)
      opt:zero_grad()
      net:backward(x, crit:backward(out, y), false)
      opt:step()
    end
  end
  if path == "closed" then -- the same step with its results closed (<close>): nothing left for the collector
    return function()
      opt:zero_grad()
      local out <close> = net(x)
      local loss <close> = F.mse_loss(out, y)
      loss:backward()
      opt:step()
    end
  end
  return function()
    opt:zero_grad()
    F.mse_loss(net(x), y):backward()
    opt:step()
  end
end

-- Warm-up: 1000 steps, past the autograd pool's first full collection
-- (it comes once 32 MB went out: ~460 tiny steps); until then the results
-- the caller dropped (net output, loss) wait in their boxes and the pool
-- allocates.
-- Also the process CPU time (os.clock) of the same steps: on a shared
-- machine a job of another session takes half a core whatever its nice value
-- (the scheduler's autogroups), which doubles wall times, not CPU times.
local function time_steps(step, n)
  for _ = 1, 1000 do step() end
  collectgarbage()
  local a0, t0, c0 = allocs(), selut.clock(), os.clock()
  for _ = 1, n do step() end
  return selut.clock() - t0, (allocs() - a0) / n, os.clock() - c0
end

local best, per, cpu = {}, {}, {}
local paths = {"explicit", "autograd", "closed"}
local steps = {explicit = tiny("explicit"), autograd = tiny("autograd"), closed = tiny("closed")}
for _ = 1, rounds do
  for _, p in ipairs(paths) do
    local s, a, c = time_steps(steps[p], tiny_steps)
    if not best[p] or s < best[p] then best[p] = s end
    if not cpu[p] or c < cpu[p] then cpu[p] = c end
    per[p] = a
  end
end
for _, p in ipairs(paths) do
  print(string.format("tiny %-8s us_per_step=%.2f allocs_per_step=%.1f cpu_us=%.2f", p, best[p] / tiny_steps * 1e6,
                      per[p], cpu[p] / tiny_steps * 1e6))
end
print(string.format("tiny autograd/explicit=%.3f", best.autograd / best.explicit))
if torch_us then
  print(string.format("tiny torch_autograd/selut_autograd=%.2f torch/explicit=%.2f (torch %.2f us)",
                      torch_us / (best.autograd / tiny_steps * 1e6), torch_us / (best.explicit / tiny_steps * 1e6), torch_us))
end
if limit < 0 then return end

-- epoch
local train = selut.data.fashion_mnist(os.getenv("SELUT_FASHION_MNIST"))
if limit > 0 then train = train:subset(math.min(limit, train:size())) end
train:standardize()
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local function epoch(path)
  selut.manual_seed(1)
  local net, crit, opt = dofile(here .. "recipe.lua")(selut)
  local step
  if path == "explicit" then
    step = function(xb, yb)
      local out = net:forward(xb)
      crit:forward(out, yb)
      opt:zero_grad()
      net:backward(xb, crit:backward(out, yb), false)
      opt:step()
    end
  else
    step = function(xb, yb)
      opt:zero_grad()
      F.cross_entropy(net(xb), yb):backward()
      opt:step()
    end
  end
  for xb, yb in train:batches(128) do step(xb, yb) break end -- warm-up: buffers
  collectgarbage()
  local n, a0, t0 = 0, allocs(), selut.clock()
  for xb, yb in train:batches(128, {shuffle = true}) do
    step(xb, yb)
    n = n + 1
  end
  return selut.clock() - t0, (allocs() - a0) / n, net
end
local eb, ea, nets = {}, {}, {}
for _ = 1, rounds do
  for _, p in ipairs {"explicit", "autograd"} do
    local s, a, net = epoch(p)
    if not eb[p] or s < eb[p] then eb[p] = s end
    ea[p], nets[p] = a, net
  end
end
local same = true
local pe, pa = nets.explicit:parameters(), nets.autograd:parameters()
for i = 1, #pe do
  if (pe[i].param - pa[i].param):abs():max() ~= 0 then same = false end
end
for _, p in ipairs {"explicit", "autograd"} do
  print(string.format("epoch %-8s seconds=%.3f allocs_per_step=%.1f samples=%d", p, eb[p], ea[p], train:size()))
end
print(string.format("epoch autograd/explicit=%.3f same_bits=%s", eb.autograd / eb.explicit, tostring(same)))
