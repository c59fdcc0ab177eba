-- Elementwise ops against PyTorch (tests/ref/gen_ops_refs.py): broadcasting
-- shapes ([4,1]+[3], [2,1,3]*[4,1], scalars, size-1 and size-0 dims), numbers
-- on either side, unary math on special values (halves, NaN), where, clamp.
-- Bit-exact where PyTorch's result is one IEEE operation, else 1e-6
-- relative. Then in-place twins, metamethods and 1 vs 2 threads.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/ops_elementwise_refs.lua")

local function mk(r)
  if type(r) == "number" then return r end
  local t = T.new(#r.data > 0 and r.data or {})
  return t:reshape(r.shape)
end

-- libm / pow results may differ from PyTorch's (Sleef) by an ulp
local inexact = { exp = true, log = true, log1p = true, expm1 = true, tanh = true, sigmoid = true, sin = true,
                  cos = true, pow = true }

local function same(got, want, rel, what)
  local g, w = got:totable(), nil
  H.check(#got:shape() == #want.shape, what .. ": rank")
  for d, s in ipairs(want.shape) do H.check(got:size(d) == s, what .. ": size of dim " .. d) end
  g = H.flatten(g, {})
  w = {}
  for i, v in ipairs(want.data) do w[i] = string.unpack("f", string.pack("f", v)) end -- the float32 it names
  H.check(#g == #w, what .. ": element count")
  for i = 1, #w do
    local a, b = g[i], w[i]
    local ok
    if b ~= b then ok = a ~= a
    elseif rel == 0 then ok = a == b
    else ok = math.abs(a - b) <= rel * math.abs(b) + 1e-30 end
    if not ok then error(string.format("%s: element %d is %.9g, PyTorch %.9g", what, i, a, b), 2) end
  end
end

local n = 0
for i, c in ipairs(refs) do
  local what = string.format("case %d (%s)", i, c.op)
  local rel = inexact[c.op] and 1e-6 or 0
  local got
  if c.op == "where" then
    got = selut.where(mk(c.c), mk(c.a), mk(c.b))
  elseif c.op == "clamp" then
    got = mk(c.a):clamp(c.lo, c.hi)
    local x = mk(c.a)
    same(x:clamp_(c.lo, c.hi), c.want, 0, what .. " in place")
  elseif c.b ~= nil then
    local a, b = mk(c.a), mk(c.b)
    got = selut[c.op](a, b)
    if type(a) ~= "number" then same(a[c.op](a, b), c.want, rel, what .. " method") end
    -- in place when the result has a's shape
    if type(a) ~= "number" and #a:shape() == #c.want.shape and a:numel() == #c.want.data then
      local y = a:clone()
      same(y[c.op .. "_"](y, b), c.want, rel, what .. " in place")
    end
  else
    local a = mk(c.a)
    got = a[c.op](a)
    same(selut[c.op](a), c.want, rel, what .. " function")
    same(a:clone()[c.op .. "_"](a:clone()), c.want, rel, what .. " in place")
    local y = a:clone()
    y[c.op .. "_"](y)
    same(y, c.want, rel, what .. " in place result")
  end
  same(got, c.want, rel, what)
  n = n + 1
end
H.check(n > 100, "reference cases run")

-- metamethods with broadcasting and numbers on either side, against the functions
local a, b = T.randn(4, 1), T.randn(3)
local function eqt(x, y, what)
  H.check(x:numel() == y:numel(), what)
  local p, q = H.flatten(x:totable(), {}), H.flatten(y:totable(), {})
  for i = 1, #p do H.check(p[i] == q[i] or (p[i] ~= p[i] and q[i] ~= q[i]), what .. " element " .. i) end
end
eqt(a + b, selut.add(a, b), "+")
eqt(a - b, selut.sub(a, b), "-")
eqt(b - a, selut.sub(b, a), "row - column")
eqt(a * b, selut.mul(a, b), "*")
eqt(b / a, selut.div(b, a), "/ broadcast on the left")
eqt(a:abs() ^ b, selut.pow(a:abs(), b), "^")
eqt(2 - a, selut.sub(2, a), "number - tensor")
eqt(2 / a, selut.div(2, a), "number / tensor")
eqt(2 ^ b, selut.pow(2, b), "number ^ tensor")
eqt(-a, a:neg(), "unary minus")
H.check((a + b):size(1) == 4 and (a + b):size(2) == 3, "[4,1] + [3] is [4,3]")

-- the old row-broadcast users keep their exact results
local m, r = T.randn(5, 3), T.randn(3)
local want = {}
for i = 1, 5 do for j = 1, 3 do want[#want + 1] = m:get(i, j) - r:get(j) end end
eqt(m - r, T.new(want):reshape(5, 3), "row broadcast")

-- same bits with 1 and 2 threads (large enough to be split)
local big, rowv = T.randn(600, 1000), T.randn(1000)
local col = T.randn(600, 1)
local results = {}
for _, th in ipairs { 1, 2 } do
  selut.set_num_threads(th)
  results[th] = { big + rowv, big * col, big:sigmoid(), selut.where(big:gt(0), big, col), big:clamp(-0.5, 0.5) }
end
selut.set_num_threads(1)
for k = 1, #results[1] do eqt(results[1][k], results[2][k], "1 vs 2 threads, result " .. k) end
print(string.format("ops_elementwise: %d PyTorch cases match", n))
