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
