-- bench/epoch.lua: one training epoch of the default recipe (examples/train.lua:
-- 784 -> 8 x 512 SELU + AlphaDropout 0.05 -> 10, LeCun init, SGD lr 0.01
-- momentum 0.9, batch 128, shuffled) through the public Lua API. Run by
-- bench/epoch.c, which provides the global `bench` (sgemm timing hooks);
-- standalone (`selut bench/epoch.lua [limit] [threads]`) it just times the epoch.
local selut = require "selut"
local limit = tonumber(arg and arg[1]) or 0
local threads = tonumber(arg and arg[2]) or 0
local hooks = rawget(_G, "bench") or {sgemm_reset = function() end, sgemm_seconds = function() return 0 end,
                                        record = function() end}

if threads > 0 then selut.set_num_threads(threads) end
selut.manual_seed(1)
local train = selut.data.fashion_mnist(os.getenv("SELUT_FASHION_MNIST"))
if limit > 0 then train = train:subset(math.min(limit, train:size())) end
train:standardize()

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local net, crit, opt = dofile(here .. "recipe.lua")(selut)

local function step(xb, yb)
  local out = net:forward(xb)
  local loss = crit:forward(out, yb)
  opt:zero_grad()
  net:backward(xb, crit:backward(out, yb), false)
  opt:step()
  return loss
end

-- BENCH_PHASES=1: the same step with the wall time and sgemm time of each
-- phase accumulated (5 clock reads per step), printed as one line at the end
local phase_names = {"forward", "loss", "zero_grad", "backward", "step", "batch"}
local wall, gemm = {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}
local clock, sgemm_s = selut.clock, hooks.sgemm_seconds
local tp, gp = 0, 0
local function mark(i)
  local t, g = clock(), sgemm_s()
  wall[i], gemm[i] = wall[i] + (t - tp), gemm[i] + (g - gp)
  tp, gp = t, g
end
if os.getenv("BENCH_PHASES") == "1" then
  step = function(xb, yb)
    mark(6)
    local out = net:forward(xb)
    mark(1)
    local loss = crit:forward(out, yb)
    mark(2)
    opt:zero_grad()
    mark(3)
    net:backward(xb, crit:backward(out, yb), false)
    mark(4)
    opt:step()
    mark(5)
    return loss
  end
end

-- one warm-up step on the first batch (buffers are allocated there), then
-- the measured epoch; step 2 of the epoch records the sgemm shapes
for xb, yb in train:batches(128) do step(xb, yb) break end
collectgarbage()
hooks.sgemm_reset()
local sum, count, b = 0, 0, 0
local t0 = selut.clock()
tp, gp = t0, hooks.sgemm_seconds()
for i = 1, #wall do wall[i], gemm[i] = 0, 0 end
for xb, yb in train:batches(128, {shuffle = true}) do
  b = b + 1
  if b == 2 then hooks.record(true) end
  local loss = step(xb, yb)
  if b == 2 then hooks.record(false) end
  local n = #yb
  sum, count = sum + loss * n, count + n
end
local secs = selut.clock() - t0
local mem = 0
local f = io.open("/proc/self/status")
if f then
  mem = tonumber(f:read("a"):match("VmHWM:%s*(%d+)")) or 0
  f:close()
end
if os.getenv("BENCH_PHASES") == "1" then
  mark(6)
  local parts = {}
  for i, name in ipairs(phase_names) do
    parts[#parts + 1] = string.format("%s=%.4f/%.4f", name, wall[i], gemm[i])
  end
  print("selut_phases (wall/sgemm seconds) " .. table.concat(parts, " "))
end
-- one line the C harness and bench/vs_torch.sh parse
print(string.format("selut_epoch seconds=%.4f samples=%d batches=%d loss=%.6f sgemm=%.4f threads=%d peak_rss_kb=%d",
                    secs, count, b, sum / count, hooks.sgemm_seconds(), selut.get_num_threads and
                    selut.get_num_threads() or threads, mem))
