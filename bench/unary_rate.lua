-- bench/unary_rate.lua THREADS N: nanoseconds per float of copy, abs, exp,
-- tanh and sigmoid with `out=` on N floats (10^5 stays in cache: the
-- kernels' compute rate; 10^7 does not: their memory rate), best of 5
-- rounds of 10^8 / N calls. GB/s counts the bytes read and written.
--   build/selut bench/unary_rate.lua 1 100000
local T = selut.tensor
local n = math.tointeger(tonumber(arg[2] or "100000"))
selut.manual_seed(1)
local a = T.randn(n)
local o = {out = T.zeros(n)}
selut.set_num_threads(math.tointeger(tonumber(arg[1] or "1")))
for _, name in ipairs { "copy", "abs", "exp", "tanh", "sigmoid" } do
  local dst = o.out
  local f = name == "copy" and function() dst:copy(a) end or function() return a[name](a, o) end
  f()
  local reps = math.max(5, 10 ^ 8 // n)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = selut.clock()
    for _ = 1, reps // 5 do f() end
    local dt = (selut.clock() - t0) / (reps // 5)
    if dt < best then best = dt end
  end
  print(string.format("%-8s n=%d threads=%s %.3f ns/float  %.1f GB/s", name, n, arg[1] or "1", best / n * 1e9,
                      8 * n / best / 1e9))
end
