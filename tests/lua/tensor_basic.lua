-- Constructors, shapes, indexing, views and copies.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror, near = H.check, H.checkerror, H.near
local T = selut.tensor

-- constructors: sizes as varargs or a table
local z = T.zeros(2, 3)
check(z:dim() == 2 and z:numel() == 6 and #z == 2, "zeros shape")
check(z:sum() == 0, "zeros are zero")
local o = T.ones({3, 4})
check(o:size(1) == 3 and o:size(2) == 4 and o:sum() == 12, "ones from a table of sizes")
local f = T.full(2.5, 2, 2)
check(f:sum() == 10, "full")
local s = z:shape()
check(#s == 2 and s[1] == 2 and s[2] == 3, "shape() is a table")
check(z:size()[2] == 3, "size() without a dim is the shape")
check(T.zeros(0):numel() == 0, "empty tensor")
check(T.zeros(1, 1, 1, 1, 1, 1, 1, 1):dim() == 8, "8 dims")

-- arange follows torch.arange: [start, end), arange(n) = 0..n-1
local a = T.arange(5)
check(#a == 5 and a[1] == 0 and a[5] == 4, "arange(n) is 0..n-1")
local b = T.arange(1, 4)
check(#b == 3 and b[1] == 1 and b[3] == 3, "arange(a, b) excludes b")
local c = T.arange(0, 1, 0.25)
check(#c == 4 and c[4] == 0.75, "arange with a step")
check(#T.arange(5, 0, -2) == 3, "negative step")

-- new from nested tables
local m = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
check(m:size(1) == 2 and m:size(2) == 3, "new shape")
check(m:get(2, 3) == 6 and m:get(1, 2) == 2, "new values, row-major")
check(T.new { 1, 2, 3 }:dim() == 1, "1-D new")
check(T.new { { { 1 }, { 2 } } }:dim() == 3, "3-D new")

-- rand / randn: ranges and statistics, reproducible from a seed
selut.manual_seed(1)
local r = T.rand(10000)
check(r:min() >= 0 and r:max() < 1, "rand in [0, 1)")
near(r:mean(), 0.5, 0.02, "rand mean")
local n = T.randn(100, 100)
near(n:mean(), 0, 0.03, "randn mean")
near(n:std(), 1, 0.03, "randn std")
selut.manual_seed(123)
local n1 = T.randn(5)
selut.manual_seed(123)
local n2 = T.randn(5)
for i = 1, 5 do check(n1[i] == n2[i], "same seed, same values") end
check(selut.initial_seed() == 123, "initial_seed")

-- element access
check(m[2][3] == 6, "x[i] is a row view, row[j] a number")
check(m[1]:dim() == 1 and #m[1] == 3, "row view shape")
m:set(1, 1, 10)
check(m:get(1, 1) == 10, "set/get")
m[2] = 7
check(m:get(2, 1) == 7 and m:get(2, 3) == 7, "x[i] = number fills a row")
m[2] = T.new { 8, 9, 10 }
check(m:get(2, 2) == 9, "x[i] = tensor copies a row")
local v = T.zeros(3)
v[2] = 5
check(v[2] == 5 and v:sum() == 5, "1-D x[i] = v")
local row = m[1]
row[2] = -1
check(m:get(1, 2) == -1, "row views share storage")

-- reshape / narrow views share storage; clone copies
local x = T.arange(12)
local y = x:reshape(3, 4)
check(y:size(1) == 3 and y:get(3, 4) == 11, "reshape")
check(x:reshape(-1, 6):size(1) == 2, "reshape infers -1")
check(x:reshape({ 2, 6 }):size(2) == 6, "reshape from a table")
y:set(1, 1, 100)
check(x[1] == 100, "reshape is a view")
local nw = y:narrow(1, 2, 2)
check(nw:size(1) == 2 and nw:get(1, 1) == 4, "narrow along dim 1")
nw:set(1, 1, -4)
check(y:get(2, 1) == -4, "narrow along dim 1 is a view")
local nc = y:narrow(2, 2, 2)
check(nc:size(2) == 2 and nc:get(3, 2) == 10, "narrow along dim 2")
-- a negative start counts from the end, as in PyTorch's narrow
check(y:narrow(1, -1, 1):get(1, 4) == 11 and y:narrow(2, -2, 2):get(1, 1) == 2, "narrow from the end")
check(x:narrow(1, -12, 12):sum() == x:sum() and x:narrow(1, -3, 0):numel() == 0, "narrow from the end, whole and empty")
local cl = y:clone()
cl:fill_(0)
check(y:sum() ~= 0, "clone does not share")
local dst = T.zeros(12)
dst:copy(y)
check(dst[12] == 11 and dst:sum() == y:sum(), "copy across shapes with equal numel")

-- totable
local tt = T.new { { 1, 2 }, { 3, 4 } }:totable()
check(#tt == 2 and tt[2][1] == 3, "totable nests")

-- transposes and elementwise functions
local tr = T.new { { 1, 2, 3 }, { 4, 5, 6 } }:t()
check(tr:size(1) == 3 and tr:get(3, 1) == 3 and tr:get(1, 2) == 4, "t()")
H.tensor_near(T.new { 1, 4, 9 }:sqrt(), { 1, 2, 3 }, 0, "sqrt")
H.tensor_near(T.new { -1, 2 }:abs(), { 1, 2 }, 0, "abs")
H.tensor_near(T.new { 0, 1 }:exp(), { 1, math.exp(1) }, 1e-6, "exp")
H.tensor_near(T.new { 1, math.exp(2) }:log(), { 0, 2 }, 1e-6, "log")

-- is_tensor
check(T.is_tensor(x) and not T.is_tensor({}) and not T.is_tensor(1), "is_tensor")

-- closing: <close> and the GC release the reference; later use raises
local kept
do
  local t <close> = T.ones(3)
  kept = t
end
checkerror("attempt to use a closed tensor", function() return kept:sum() end)
checkerror("attempt to use a closed tensor", function() return kept[1] end)
checkerror("attempt to use a closed tensor", function() return kept + 1 end)
check(tostring(kept) == "[selut.Tensor (closed)]", "a closed tensor still prints")
getmetatable(kept).__close(kept) -- idempotent
-- a view outlives its closed parent
local parent = T.arange(6)
local child = parent:reshape(2, 3)
getmetatable(parent).__close(parent)
check(child:get(2, 3) == 5, "views keep the storage alive")
