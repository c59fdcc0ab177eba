-- Young collections (bindings/lua_tensor.c, SL_LUA_YOUNG_STEP): in a state
-- running Lua's generational collector (the selut launcher's, and these
-- suites'), creating a tensor after 1 MB of new tensor memory first runs a
-- young collection, so the big results a loop drops come back while their
-- blocks are still in cache (PyTorch frees them at once by reference
-- counting). An incremental state keeps the full collections under
-- external-memory pressure; a state switched back to generational is seen
-- again at its next full collection; a stopped collector stays stopped.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T = selut.tensor

check(collectgarbage("generational") == "generational",
      "the Lua suites run the generational collector, as the selut launcher does")

local RESULT = 1000 * 1000 * 4 -- bytes of one [1000 x 1000] result
local a, b = T.randn(1000, 1000), T.randn(1000, 1000)
collectgarbage()
local base = selut.memory()

-- The most tensor memory held at once (beyond a and b) over n fresh results.
local function peak_of(n, make)
  local peak = 0
  for _ = 1, n do
    local r = make()
    check(r:size(1) == 1000, "a [1000 x 1000] result")
    peak = math.max(peak, selut.memory() - base)
  end
  return peak
end
local function add() return a + b end

-- generational: the result just made and the previous one (still in the
-- loop's stack slot while the next is made) are all that is held
local gen = peak_of(40, add)
io.stderr:write(string.format("gc_young: generational peak %.1f results\n", gen / RESULT))
check(gen <= 2 * RESULT, string.format("generational: at most 2 results held at once, got %.2f", gen / RESULT))

-- the same for an autograd result (from the state's pool) and an op whose
-- result the core makes before the box (permute)
local w = T.randn(1000, 1000):requires_grad_()
local ag = peak_of(40, function() return w * 2 end)
check(ag <= 3 * RESULT, string.format("autograd results: at most 2 held besides w, got %.2f", ag / RESULT))
local perm = peak_of(40, function() return a:permute(2, 1) end)
check(perm <= 3 * RESULT, string.format("permute results: at most 3 held at once, got %.2f", perm / RESULT))
w = nil

-- a stopped collector is not run by the young steps: results pile up until
-- the external-memory bound (2 x the last survivors + 16 MB) forces a full
-- collection
collectgarbage()
base = selut.memory()
collectgarbage("stop")
local stopped = peak_of(8, add)
collectgarbage("restart")
io.stderr:write(string.format("gc_young: stopped peak %.1f results\n", stopped / RESULT))
check(stopped >= 4 * RESULT, string.format("stopped collector: results pile up, got %.2f", stopped / RESULT))

-- incremental: no young collections, garbage is bounded by the full
-- collection at twice the survivors plus 16 MB (SL_LUA_GC_SLACK)
check(collectgarbage("incremental") == "generational", "switched to incremental")
collectgarbage()
base = selut.memory()
local inc = peak_of(40, add)
io.stderr:write(string.format("gc_young: incremental peak %.1f results\n", inc / RESULT))
check(inc > 3 * RESULT, string.format("incremental: garbage waits for a full collection, got %.2f results", inc / RESULT))
check(inc <= 2 * (base + 2 * RESULT) + 16 * 2 ^ 20 + RESULT,
      string.format("incremental: held memory bounded by the full collections, got %.2f results", inc / RESULT))

-- back to generational: seen at the next full collection, then young again
check(collectgarbage("generational") == "incremental", "switched back to generational")
collectgarbage()
base = selut.memory()
peak_of(20, add) -- the external-memory bound's full collection notices the mode
local again = peak_of(40, add)
check(again <= 2 * RESULT, string.format("generational again: at most 2 results held, got %.2f", again / RESULT))
-- tensors made inside finalizers that a young collection runs (the
-- collector is not re-entered: no young step there), and young collections
-- started from a coroutine
local made = 0
for _ = 1, 40 do
  setmetatable({}, {__gc = function() made = made + T.zeros(1000, 1000):size(1) // 1000 end})
  local r = add()
  check(r:size(2) == 1000, "a result while finalizers make tensors")
end
collectgarbage()
check(made == 40, "every finalizer made its tensor, got " .. made)
local co = coroutine.wrap(function()
  for _ = 1, 20 do coroutine.yield(peak_of(1, add)) end
end)
collectgarbage()
base = selut.memory()
local co_peak = 0
for _ = 1, 20 do co_peak = math.max(co_peak, co()) end
check(co_peak <= 2 * RESULT, string.format("results made in a coroutine: at most 2 held, got %.2f", co_peak / RESULT))

a, b = nil, nil
collectgarbage()
