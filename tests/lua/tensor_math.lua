-- Arithmetic, broadcasting, in-place ops, reductions, matmul.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, near, tnear = H.check, H.near, H.tensor_near
local T = selut.tensor

local a = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
local b = T.new { { 6, 5, 4 }, { 3, 2, 1 } }
tnear(a + b, { { 7, 7, 7 }, { 7, 7, 7 } }, 0, "tensor + tensor")
tnear(a - b, { { -5, -3, -1 }, { 1, 3, 5 } }, 0, "tensor - tensor")
tnear(a * b, { { 6, 10, 12 }, { 12, 10, 6 } }, 0, "tensor * tensor is elementwise")
tnear(a / b, { { 1 / 6, 2 / 5, 3 / 4 }, { 4 / 3, 5 / 2, 6 } }, 1e-6, "tensor / tensor")
tnear(a * 2, { { 2, 4, 6 }, { 8, 10, 12 } }, 0, "tensor * number")
tnear(2 * a, { { 2, 4, 6 }, { 8, 10, 12 } }, 0, "number * tensor")
tnear(a + 1, { { 2, 3, 4 }, { 5, 6, 7 } }, 0, "tensor + number")
tnear(10 - a, { { 9, 8, 7 }, { 6, 5, 4 } }, 0, "number - tensor")
tnear(a - 1, { { 0, 1, 2 }, { 3, 4, 5 } }, 0, "tensor - number")
tnear(a / 2, { { 0.5, 1, 1.5 }, { 2, 2.5, 3 } }, 0, "tensor / number")
tnear(6 / a, { { 6, 3, 2 }, { 1.5, 1.2, 1 } }, 1e-6, "number / tensor")
tnear(-a, { { -1, -2, -3 }, { -4, -5, -6 } }, 0, "unary minus")

-- row-vector broadcasting, on either side
local r = T.new { 10, 20, 30 }
tnear(a + r, { { 11, 22, 33 }, { 14, 25, 36 } }, 0, "matrix + row")
tnear(r + a, { { 11, 22, 33 }, { 14, 25, 36 } }, 0, "row + matrix")
tnear(r - a, { { 9, 18, 27 }, { 6, 15, 24 } }, 0, "row - matrix")
tnear(a * r, { { 10, 40, 90 }, { 40, 100, 180 } }, 0, "matrix * row")
tnear(a / r, { { 0.1, 0.1, 0.1 }, { 0.4, 0.25, 0.2 } }, 1e-6, "matrix / row")
tnear(a + T.new { { 1, 1, 1 } }, { { 2, 3, 4 }, { 5, 6, 7 } }, 0, "matrix + [1 x C]")

-- in place: return self, modify storage
local c = a:clone()
check(c:add_(b) == c, "add_ returns self")
tnear(c, { { 7, 7, 7 }, { 7, 7, 7 } }, 0, "add_")
c:sub_(1)
tnear(c, { { 6, 6, 6 }, { 6, 6, 6 } }, 0, "sub_ number")
c:mul_(0.5)
tnear(c, { { 3, 3, 3 }, { 3, 3, 3 } }, 0, "mul_")
c:div_(T.new { 1, 3, 0.5 })
tnear(c, { { 3, 1, 6 }, { 3, 1, 6 } }, 0, "div_ broadcast row")
c:add_(a, -2)
tnear(c, { { 1, -3, 0 }, { -5, -9, -6 } }, 0, "add_(y, alpha)")
c:sub_(a, 1)
tnear(c, { { 0, -5, -3 }, { -9, -14, -12 } }, 0, "sub_(y, alpha)")
c:fill_(2)
check(c:sum() == 12, "fill_")
c:zero_()
check(c:sum() == 0, "zero_")

-- reductions: whole → number, with dim → tensor
check(a:sum() == 21 and a:mean() == 3.5, "sum, mean")
near(a:var(), 3.5, 1e-12, "var is unbiased")
near(a:std(), math.sqrt(3.5), 1e-12, "std")
check(a:max() == 6 and a:min() == 1, "max, min")
tnear(a:sum(1), { 5, 7, 9 }, 0, "sum(1)")
tnear(a:sum(2), { 6, 15 }, 0, "sum(2)")
tnear(a:mean(2), { 2, 5 }, 0, "mean(2)")
tnear(a:var(1), { 4.5, 4.5, 4.5 }, 1e-6, "var(1)")
tnear(a:std(2), { 1, 1 }, 1e-6, "std(2)")
tnear(a:max(1), { 4, 5, 6 }, 0, "max(1)")
tnear(a:min(2), { 1, 4 }, 0, "min(2)")
local m = T.new { { 0.1, 0.9, 0.3 }, { 0.7, 0.2, 0.1 } }
tnear(m:argmax(2), { 2, 1 }, 0, "argmax(2) is 1-based")
tnear(m:argmax(1), { 2, 1, 1 }, 0, "argmax(1)")
check(m:argmax() == 2, "argmax() is a 1-based flat index")
check(math.type(m:argmax()) == "integer", "argmax() is an integer")

-- matmul against a hand computation
local p = selut.matmul(a, T.new { { 1, 0 }, { 0, 1 }, { 1, 1 } })
tnear(p, { { 4, 5 }, { 10, 11 } }, 0, "matmul 2x3 @ 3x2")
tnear(selut.matmul(a, T.new { 1, 1, 1 }), { 6, 15 }, 0, "matrix @ vector")
selut.manual_seed(3)
local x, w = T.randn(7, 5), T.randn(5, 4)
local y = selut.matmul(x, w)
for i = 1, 7 do
  for j = 1, 4 do
    local s = 0
    for k = 1, 5 do s = s + x:get(i, k) * w:get(k, j) end
    near(y:get(i, j), s, 1e-5, "matmul element")
  end
end
