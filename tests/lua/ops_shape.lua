-- Shape ops against PyTorch, bit for bit (tests/ref/shape_refs.lua): view,
-- permute, transpose, t, squeeze, unsqueeze, expand, flatten, narrow, select,
-- split, chunk, cat, stack with negative dims and size-0 dims. Then the
-- view/copy table of docs/views.md: writing through each view op is visible
-- in the base, writing into each copy op is not.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local run = dofile(arg[0]:gsub("[^/]*$", "") .. "_shape_refs.lua")
local T = selut.tensor
local n = run("shape")
H.check(n >= 45, "shape cases: " .. n)

-- views (docs/views.md): share storage, writes show in the base
local views = {
  view = function(x) return x:view(6, 4) end,
  reshape = function(x) return x:reshape(-1) end,
  flatten = function(x) return x:flatten(2) end,
  squeeze = function(x) return x:unsqueeze(1):squeeze() end,
  unsqueeze = function(x) return x:unsqueeze(2) end,
  ["narrow(1)"] = function(x) return x:narrow(1, 2, 1) end,
  ["select(1)"] = function(x) return x:select(1, 2) end,
  ["x[i]"] = function(x) return x[2] end,
  ["split(.., 1)"] = function(x) return x:split(1)[2] end,
  ["chunk(.., 1)"] = function(x) return x:chunk(2)[1] end,
  contiguous = function(x) return x:contiguous() end,
  ["narrow(3) after size-1 dims"] = function(x) return x:narrow(1, 1, 1):view(1, 1, 3, 4):narrow(3, 2, 1) end,
}
for name, f in pairs(views) do
  local x = T.arange(24):view(2, 3, 4)
  local v = f(x)
  H.check(v:shares_storage(x), name .. " shares storage")
  local before = x:sum()
  v:add_(1)
  H.check(x:sum() == before + v:numel(), name .. ": a write through the view shows in the base")
end
-- copies: no shared storage, writes stay in the copy
local copies = {
  permute = function(x) return x:permute(3, 1, 2) end,
  transpose = function(x) return x:transpose(1, 2) end,
  t = function(x) return x:view(6, 4):t() end,
  expand = function(x) return x:expand(2, 2, 3, 4) end,
  ["narrow(3)"] = function(x) return x:narrow(3, 2, 2) end,
  ["select(2)"] = function(x) return x:select(2, 1) end,
  ["split(.., 3)"] = function(x) return x:split(2, 3)[1] end,
  ["chunk(.., -1)"] = function(x) return x:chunk(2, -1)[2] end,
  cat = function(x) return selut.cat({ x, x }) end,
  stack = function(x) return selut.stack({ x }) end,
  matmul = function(x) return x:matmul(T.ones(4, 1)) end,
}
for name, f in pairs(copies) do
  local x = T.arange(24):view(2, 3, 4)
  local c = f(x)
  H.check(not c:shares_storage(x), name .. " is a copy")
  c:fill_(-1)
  H.check(x:sum() == 276, name .. ": a write into the copy leaves the base alone")
end
H.check(T.zeros(2):shares_storage(T.zeros(2)) == false, "two tensors do not share")

-- select on a 1-D tensor gives a number, like x[i]
H.check(T.new { 5, 6, 7 }:select(1, -1) == 7, "select on 1-D")
-- contiguous returns the tensor itself
local x = T.zeros(2, 2)
H.check(rawequal(x:contiguous(), x), "contiguous returns self")
-- permute on a big tensor (several tiles, ragged edges) against element access
local big = T.arange(37 * 19 * 5):view(37, 19, 5)
local p = big:permute(3, 1, 2)
for _, ijk in ipairs { { 1, 1, 1 }, { 37, 19, 5 }, { 17, 3, 2 }, { 33, 18, 4 } } do
  local i, j, k = ijk[1], ijk[2], ijk[3]
  H.check(p:get(k, i, j) == big:get(i, j, k), "permute element")
end
local tt = T.arange(33 * 47):view(33, 47):t()
H.check(tt:get(47, 33) == 33 * 47 - 1 and tt:get(5, 2) == 51, "t on ragged tiles")
