-- Indexing ops against PyTorch (tests/ref/shape_refs.lua, group "index"):
-- index_select, gather, scatter_add(_), masked_fill(_), one_hot, bit for bit,
-- with negative dims, size-0 indices, broadcast masks and inputs made by
-- permute/transpose. Then gradients against PyTorch's autograd
-- (tests/ref/index_grad_refs.lua, 1e-5 relative), gradcheck, the same bits
-- for 1 and 2 threads, in-place semantics and what autograd refuses.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local run = dofile(arg[0]:gsub("[^/]*$", "") .. "_shape_refs.lua")
local T = selut.tensor
local autograd = selut.autograd

local n = run("index")
H.check(n >= 38, "index cases: " .. n)

-- ---- gradients against PyTorch ----
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/index_grad_refs.lua")
local function mk(r) return T.new(r.data):view(r.shape) end
local function close(got, want, what)
  local tol = 1e-5 * math.abs(want) + 1e-6
  if not (math.abs(got - want) <= tol) then
    error(string.format("%s: %.9g, PyTorch gives %.9g", what, got, want), 2)
  end
end
local ngrad = 0
for _, c in ipairs(refs.cases) do
  local env = setmetatable({ selut = selut, T = T }, { __index = _G })
  for name, r in pairs(refs.consts) do env[name] = mk(r) end
  local leaves, names = {}, {}
  for name, r in pairs(c.leaves) do
    env[name] = mk(r):requires_grad_()
    leaves[#leaves + 1], names[#names + 1] = env[name], name
  end
  local f = assert(load("return " .. c.expr, "=" .. c.name, "t", env))
  local loss = f()
  close(T.is_tensor(loss) and loss[1] or loss, c.loss, c.name .. " loss")
  loss:backward()
  for i, x in ipairs(leaves) do
    local want, got = c.grads[names[i]], x.grad
    H.check(got, c.name .. ": no gradient for " .. names[i])
    H.check(table.concat(got:shape(), "x") == table.concat(want.shape, "x"), c.name .. ": gradient shape")
    local flat = got:reshape(got:numel()):totable()
    for k, w in ipairs(want.data) do close(flat[k], w, string.format("%s: d/d%s element %d", c.name, names[i], k)) end
  end
  -- the same expression through gradcheck (central differences over the whole Jacobian)
  local args = {}
  for i = 1, #leaves do args[i] = env[names[i]] end
  local g = assert(load("local " .. table.concat(names, ", ") .. " = ...; return " .. c.expr, "=" .. c.name, "t",
    env))
  H.check(autograd.gradcheck(g, args, { eps = 1e-2, atol = 2e-2, rtol = 2e-2 }), c.name .. " gradcheck")
  ngrad = ngrad + 1
end
H.check(ngrad >= 14, "gradient cases: " .. ngrad)

-- gradcheck where PyTorch refuses: src larger than the index gets 0 beyond it
do
  local x = T.randn(3, 4):requires_grad_()
  local s = T.randn(3, 5):requires_grad_()
  local idx = T.new { { 1, 4 }, { 2, 2 }, { 3, 1 } }
  H.check(autograd.gradcheck(function(a, b) return a:scatter_add(2, idx, b) end, { x, s }), "scatter_add src > index")
  local y = x:scatter_add(2, idx, s)
  y:backward(T.ones(3, 4))
  H.check(s.grad:narrow(2, 3, 3):abs():sum() == 0, "src beyond the index has zero gradient")
  H.check(s.grad:narrow(2, 1, 2):sum() == 6, "src inside the index has gradient 1")
  H.check(y.grad_fn == "ScatterAddBackward", "grad_fn name " .. tostring(y.grad_fn))
end
-- only the index's tensor gets no gradient; an index modified in place after the op refuses backward
do
  local x = T.randn(3, 4):requires_grad_()
  local idx = T.new { 2, 1 }
  local y = x:index_select(1, idx)
  idx:fill_(1)
  H.checkerror("IndexSelectBackward", function() y:sum():backward() end)
  local m = T.new { 1, 0, 0, 1 }
  local z = x:masked_fill(m, 0)
  m:fill_(0)
  H.checkerror("MaskedFillBackward", function() z:sum():backward() end)
end
-- no recording under no_grad; in place refuses a leaf that requires grad and a src that requires grad
do
  local x = T.randn(3, 4):requires_grad_()
  local y = selut.no_grad(function() return x:gather(2, T.ones(3, 1)) end)
  H.check(not y.requires_grad and y.grad_fn == nil, "no_grad: not recorded")
  H.checkerror("scatter_add_", function() x:scatter_add_(1, T.ones(1, 4), T.ones(1, 4)) end)
  H.checkerror("masked_fill_", function() x:masked_fill_(T.ones(4), 0) end)
  H.checkerror("scatter_add_: src requires grad", function() T.zeros(3, 4):scatter_add_(1, T.ones(1, 4), x) end)
  local r = x * 2
  H.checkerror("in-place operations on a tensor recorded by autograd", function() r:masked_fill_(T.ones(4), 0) end)
  -- one_hot has no gradient: its input is an index
  H.check(not selut.one_hot(T.new { 1, 2 }).requires_grad, "one_hot result")
end

-- ---- in place: returns self, writes self; the out-of-place form leaves its input alone ----
do
  local x = T.zeros(2, 3)
  local r = x:scatter_add_(2, T.new { { 3, 3 }, { 1, 2 } }, T.new { { 1, 2 }, { 3, 4 } })
  H.check(rawequal(r, x), "scatter_add_ returns self")
  H.check(x:get(1, 3) == 3 and x:get(2, 1) == 3 and x:get(2, 2) == 4 and x:sum() == 10, "scatter_add_ values")
  local m = x:masked_fill_(x:gt(3), -1)
  H.check(rawequal(m, x) and x:get(2, 2) == -1 and x:sum() == 5, "masked_fill_ in place")
  local base = T.ones(2, 3)
  local c = base:masked_fill(T.ones(2, 3), 0)
  H.check(base:sum() == 6 and c:sum() == 0 and not c:shares_storage(base), "masked_fill is a copy")
  local s = base:scatter_add(1, T.ones(1, 3), T.ones(1, 3))
  H.check(base:sum() == 6 and s:sum() == 9, "scatter_add is a copy")
  -- a failing in-place op leaves the tensor unchanged (indices are checked before any write)
  local y = T.zeros(4)
  H.check(not pcall(y.scatter_add_, y, 1, T.new { 1, 2, 9 }, T.ones(3)), "bad index fails")
  H.check(y:sum() == 0, "nothing written on failure")
  -- a mask that is the tensor itself (same elements) is allowed
  local z = T.new { 0, 2, 0, 3 }
  z:masked_fill_(z, 7)
  H.check(z:sum() == 14, "masked_fill_ with itself as mask")
end
-- the mask is non-zero = true, NaN included (comparisons give 1/0 masks)
do
  local x = T.new { 1, 2, 3, 4 }
  local y = x:masked_fill(T.new { 0 / 0, 0, -0.0, -2 }, 9)
  H.check(y:get(1) == 9 and y:get(2) == 2 and y:get(3) == 3 and y:get(4) == 9, "NaN and -2 fill, -0 does not")
end
-- index_select and gather results are copies (writes do not reach the base)
do
  local x = T.arange(12):view(3, 4)
  local a = x:index_select(1, T.new { 1 })
  a:fill_(-1)
  local b = x:gather(2, T.ones(3, 1))
  b:fill_(-1)
  H.check(x:sum() == 66, "index_select/gather copy")
end

-- ---- the same bits for 1 and 2 threads (scatter_add accumulates in index order) ----
do
  local function go(threads)
    selut.set_num_threads(threads)
    selut.manual_seed(77)
    local src = T.randn(300, 257)
    local idx = (T.rand(300, 257) * 7):floor() + 1
    local a = T.zeros(7, 257):scatter_add(1, idx, src)
    local b = T.randn(300, 257):masked_fill(src:gt(0.5), 0):sum(1)
    local c = src:gather(1, idx):index_select(2, T.new { 257, 1, 3 })
    return a, b, c
  end
  local before = selut.get_num_threads()
  local a1, b1, c1 = go(1)
  local a2, b2, c2 = go(2)
  selut.set_num_threads(before)
  H.check((a1 - a2):abs():max() == 0 and (b1 - b2):abs():max() == 0 and (c1 - c2):abs():max() == 0,
    "1 and 2 threads give the same bits")
end

-- ---- one_hot ----
do
  local o = selut.one_hot(T.new { { 2, 1 }, { 3, 3 } })
  H.check(table.concat(o:shape(), "x") == "2x2x3", "one_hot shape infers 3 classes")
  H.check(o:sum() == 4 and o:get(1, 1, 2) == 1 and o:get(2, 2, 3) == 1, "one_hot values")
  H.check(T.new { 1 }:one_hot(5):sum() == 1, "one_hot method")
end
-- size-0 index tensors
H.check(T.zeros(3, 4):scatter_add(2, T.zeros(3, 0), T.zeros(3, 0)):sum() == 0, "empty scatter_add")
H.check(T.zeros(3, 4):index_select(2, T.zeros(0)):numel() == 0, "empty index_select")
H.check(T.zeros(0, 4):masked_fill(T.ones(4), 1):numel() == 0, "masked_fill of an empty tensor")
