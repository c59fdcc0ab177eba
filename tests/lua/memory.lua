-- Acceptance: 10^6 tensor creations in a loop keep memory flat (the GC frees
-- them), and large tensors do not pile up either (tensor creation forces a
-- collection under external-memory pressure). Numbers go to stderr.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T = selut.tensor

local function rss_mb()
  local f = io.open("/proc/self/statm")
  if not f then return 0 end
  local _, res = f:read("n", "n")
  f:close()
  return res * 4096 / 2 ^ 20
end
-- ASan's quarantine and valgrind's replacement allocator (make valgrind sets
-- SELUT_VALGRIND) hold freed memory: RSS is not meaningful there, and 10^6
-- iterations under memcheck take minutes; the byte counts still are checked
local sanitized = os.getenv("ASAN_OPTIONS") ~= nil or os.getenv("SELUT_VALGRIND") ~= nil

collectgarbage()
local base_bytes = selut.memory()
local function report(label, i)
  local bytes = selut.memory()
  io.stderr:write(string.format("memory: %-22s %8d  rss %7.1f MB  lua heap %7.1f KB  core %9d bytes\n", label, i,
                                rss_mb(), collectgarbage("count"), bytes - base_bytes))
  return rss_mb(), collectgarbage("count"), bytes - base_bytes
end

local N = os.getenv("SELUT_VALGRIND") and 100000 or 1000000
local rss_half, heap_max, core_max, rss_max = 0, 0, 0, 0
for i = 1, N do
  local t = T.zeros(16)
  t[1] = i
  if i % (N // 10) == 0 then
    local rss, heap, core = report("small tensors created", i)
    heap_max, core_max, rss_max = math.max(heap_max, heap), math.max(core_max, core), math.max(rss_max, rss)
    if i == N // 2 then rss_half = rss end
  end
end
local rss_end = report("after the loop", N)
check(heap_max < 16 * 1024, "Lua heap stays bounded: " .. heap_max .. " KB")
check(core_max < 32 * 2 ^ 20, "live tensor memory stays bounded: " .. core_max .. " bytes")
if not sanitized then
  -- unfreed, 10^6 tensors would hold >= 216 MB of tensor memory (~600 MB RSS);
  -- collected, RSS saw-tooths below a bound and the second half adds little
  check(rss_max < 128, string.format("RSS peak %.1f MB", rss_max))
  check(rss_end - rss_half < 32, string.format("RSS in the second half: %.1f MB -> %.1f MB", rss_half, rss_end))
end

-- large tensors: 4000 x 400 KB = 1.6 GB if nothing were freed
local rss_big_start = rss_mb()
for i = 1, 4000 do
  local t = T.zeros(128, 784)
  t[1][1] = i
end
local rss_big = report("large tensors created", 4000)
if not sanitized then
  check(rss_big - rss_big_start < 400, string.format("large tensors do not pile up: %.1f MB -> %.1f MB", rss_big_start, rss_big))
end

collectgarbage()
collectgarbage()
local _, _, left = report("after collectgarbage", 0)
check(left == 0, "every tensor freed after a collection: " .. left .. " bytes left")

-- autograd steps (net(x), loss:backward(), opt:step()): once warm a step
-- allocates nothing (its nodes, results and gradient buffers come from the
-- state's autograd pool and go back there when backward frees the graph or
-- the collector takes the boxes of the dropped net output and loss;
-- tests/lua/autograd_pool.lua asserts 0, bench/autograd.lua counts them);
-- resident memory stays flat (docs/autograd.md)
do
  local nn, F = selut.nn, selut.nn.F
  selut.manual_seed(1)
  local net = nn.Sequential{nn.Linear(2, 64), nn.SELU(), nn.Linear(64, 64), nn.SELU(), nn.Linear(64, 1)}
  local opt = selut.optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  local x, y = T.rand(32, 2), T.zeros(32, 1)
  local function steps(n)
    for _ = 1, n do
      opt:zero_grad()
      F.mse_loss(net(x), y):backward()
      opt:step()
    end
  end
  local S = os.getenv("SELUT_VALGRIND") and 200 or 2000
  steps(S)
  local rss0, _, core0 = report("autograd steps", S)
  local core_peak = core0
  for k = 1, 5 do
    steps(S)
    local _, _, c = report("autograd steps", S * (k + 1))
    core_peak = math.max(core_peak, c)
  end
  local rss1 = report("autograd steps done", S * 6)
  check(core_peak < 32 * 2 ^ 20, "autograd: live tensor memory stays bounded: " .. core_peak .. " bytes")
  if not sanitized then
    check(rss1 - rss0 < 1, string.format("autograd: RSS flat within 1 MB over %d steps: %.2f MB -> %.2f MB", 5 * S, rss0, rss1))
  end
  net, opt = nil, nil
end
collectgarbage()
collectgarbage()
local _, _, left2 = report("after collectgarbage", 0)
check(left2 == 0, "every tensor freed after the autograd steps: " .. left2 .. " bytes left")
