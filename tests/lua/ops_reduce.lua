-- Reductions against PyTorch (tests/ref/gen_ops_refs.py): sum mean prod var
-- std (unbiased both ways) max min (values and 1-based indices, ties -> the
-- first) argmax argmin logsumexp norm(p) softmax log_softmax, over every dim
-- (positive and negative), keepdim both ways, and over all elements. Values
-- to 1e-6 relative (sums are taken in another order than PyTorch's), indices
-- exact (logs near 0: plus 1e-7 absolute). Then 1 vs 2 threads on large inputs, over the last and first dims.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/ops_reduce_refs.lua")

local function f32(v) return string.unpack("f", string.pack("f", v)) end
local function mk(r) return T.new(r.data):reshape(r.shape) end

-- logs near 0 (logsumexp, log_softmax) cancel: PyTorch itself is off by ~1 ulp of the terms there
local abs_tol = 0
local function same(got, want, rel, what)
  local wshape = want.shape
  if T.is_tensor(got) then
    H.check(got:dim() == #wshape, what .. ": rank " .. got:dim() .. " vs " .. #wshape)
    for d, s in ipairs(wshape) do H.check(got:size(d) == s, what .. ": size of dim " .. d) end
    got = H.flatten(got:totable(), {})
  else
    got = { got }
  end
  H.check(#got == #want.data, what .. ": element count")
  for i, wv in ipairs(want.data) do
    local a, b = got[i], f32(wv)
    local ok = (b ~= b and a ~= a) or a == b or (rel > 0 and math.abs(a - b) <= rel * math.abs(b) + abs_tol)
    if not ok then error(string.format("%s: element %d is %.9g, PyTorch %.9g", what, i, a, b), 2) end
  end
end

local xs = {}
local function input(r)
  xs[r] = xs[r] or mk(r)
  return xs[r]
end

local n = 0
for i, c in ipairs(refs) do
  local x = input(c.x)
  local what = string.format("case %d (%s dim %s keepdim %s)", i, c.op, tostring(c.dim), tostring(c.keepdim))
  local opts = { keepdim = c.keepdim, unbiased = c.unbiased }
  abs_tol = (c.op == "logsumexp" or c.op == "log_softmax") and 1e-7 or 0
  if c.op == "max" or c.op == "min" then
    if c.dim then
      local v, idx = x[c.op](x, c.dim, c.keepdim)
      same(v, c.want, 0, what)
      same(idx, c.index, 0, what .. " indices")
    else
      same(x[c.op](x), c.want, 0, what)
    end
  elseif c.op == "argmax" or c.op == "argmin" then
    same(c.dim and x[c.op](x, c.dim, c.keepdim) or x[c.op](x), c.want, 0, what)
  elseif c.op == "norm" then
    same(c.dim and x:norm(c.p, c.dim, c.keepdim) or x:norm(), c.want, 1e-6, what)
  elseif c.op == "softmax" or c.op == "log_softmax" then
    same(x[c.op](x, c.dim), c.want, 1e-6, what)
  elseif c.dim then
    same(x[c.op](x, c.dim, opts), c.want, 1e-6, what)
  else
    same(x[c.op](x), c.want, 1e-6, what)
  end
  n = n + 1
end
H.check(n > 500, "reference cases run")

-- the same bits for 1 and 2 threads, reducing over the last and the first dim
local big = T.randn(1000, 1000)
local res = {}
for _, th in ipairs { 1, 2 } do
  selut.set_num_threads(th)
  res[th] = {}
  for _, d in ipairs { 1, 2, -1 } do
    for _, op in ipairs { "sum", "mean", "var", "max", "argmax", "logsumexp", "softmax", "log_softmax" } do
      local r = big[op](big, d)
      res[th][#res[th] + 1] = H.flatten(r:totable(), {})
    end
  end
  res[th][#res[th] + 1] = { big:sum(), big:var(), big:max() }
end
selut.set_num_threads(1)
for k = 1, #res[1] do
  local a, b = res[1][k], res[2][k]
  H.check(#a == #b, "1 vs 2 threads: sizes")
  for i = 1, #a do H.check(a[i] == b[i], "1 vs 2 threads: result " .. k .. " element " .. i) end
end
print(string.format("ops_reduce: %d PyTorch cases match", n))
