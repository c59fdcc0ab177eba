-- selut's side of bench/ops_vs_torch: each op of cases.txt on a tensor of n
-- elements (viewed as [n/1000 x 1000] where a dim matters), best of several
-- rounds, at 1 and 2 threads. Prints "name threads seconds" lines.
--   selut bench/ops_vs_torch/ops.lua N [rounds [op,op,...]]
local T = selut.tensor
local n = math.tointeger(tonumber(arg[1] or "1000000"))
local rounds = math.tointeger(tonumber(arg[2] or "0")) or 0
local only = arg[3] and ("," .. arg[3] .. ",") -- a subset of cases.txt (memcpy is always timed)
if rounds == 0 then rounds = n >= 10000000 and 8 or 40 end
local cols = 1000
local rows = n // cols
selut.manual_seed(1)
local a = T.randn(rows, cols)
local b = T.randn(rows, cols)
local row = T.randn(cols)
local col = T.randn(rows, 1)
local dst = T.zeros(rows, cols)
local half1, half2 = T.randn(rows, cols // 2), T.randn(rows, cols // 2)
local tall = T.randn(cols, rows) -- permuted into [rows x cols]
local out, out_rows, out_cols = T.zeros(rows, cols), T.zeros(rows), T.zeros(cols)
local o = {out = out}

local ops = {
  memcpy = function() dst:copy(a) end,
  add = function() return a + b end,
  add_row = function() return a + row end,
  add_col = function() return a + col end,
  mul_scalar = function() return a * 2 end,
  maximum = function() return a:maximum(b) end,
  exp = function() return a:exp() end,
  tanh = function() return a:tanh() end,
  sigmoid = function() return a:sigmoid() end,
  abs = function() return a:abs() end,
  sum_last = function() return a:sum(2) end,
  sum_first = function() return a:sum(1) end,
  max_last = function() return (a:max(2)) end,
  softmax_last = function() return a:softmax(2) end,
  cat = function() return selut.cat({half1, half2}, 2) end,
  permute = function() return tall:permute(2, 1) end,
  add_out = function() return selut.add(a, b, o) end,
  add_row_out = function() return selut.add(a, row, o) end,
  add_col_out = function() return selut.add(a, col, o) end,
  mul_scalar_out = function() return selut.mul(a, 2, o) end,
  maximum_out = function() return a:maximum(b, o) end,
  exp_out = function() return a:exp(o) end,
  tanh_out = function() return a:tanh(o) end,
  sigmoid_out = function() return a:sigmoid(o) end,
  abs_out = function() return a:abs(o) end,
  sum_last_out = function() return a:sum(2, {out = out_rows}) end,
  sum_first_out = function() return a:sum(1, {out = out_cols}) end,
  softmax_last_out = function() return a:softmax(2, o) end,
  cat_out = function() return selut.cat({half1, half2}, 2, o) end,
  permute_out = function() return tall:permute(2, 1, o) end,
}

local order = {}
local f = assert(io.open(arg[0]:gsub("[^/]*$", "") .. "cases.txt"))
for line in f:lines() do
  local name = line:match("^%a+%s+([%w_]+)")
  if name and not line:find("^#") and (not only or name == "memcpy" or only:find("," .. name .. ",", 1, true)) then
    order[#order + 1] = name
  end
end
f:close()

for _, threads in ipairs { 1, 2 } do
  selut.set_num_threads(threads)
  for _, name in ipairs(order) do
    local op = ops[name]
    op() -- warm-up (first touch of the result's pages, caches)
    local best = math.huge
    for _ = 1, rounds do
      local t0 = selut.clock()
      local r = op()
      local dt = selut.clock() - t0
      if dt < best then best = dt end
      r = nil -- luacheck: ignore (dropped before the next round, as in PyTorch's loop)
    end
    print(string.format("%s %d %.9f", name, threads, best))
    collectgarbage()
  end
end
