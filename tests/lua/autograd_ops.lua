-- Autograd of the tensor ops beyond the first batch, against PyTorch
-- (tests/ref/gen_autograd_ops_refs.py): the loss and the gradient of every
-- input per case to 1e-5 relative + 1e-6 absolute, then gradcheck on fresh
-- random inputs (away from ties and kinks), node names, and results that
-- do not record (argmax, comparisons, max's indices).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, ag = selut.tensor, selut.autograd
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/autograd_ops_refs.lua")
local M = selut.matmul
local inf = math.huge

local close = H.ref_close

local function make(list, grad)
  local xs = {}
  for i, inp in ipairs(list) do
    xs[i] = T.new(inp.x):reshape(table.unpack(inp.shape))
    if grad then xs[i]:requires_grad_() end
  end
  return xs
end

local function num(t) return T.is_tensor(t) and t:totable()[1] or t end

local losses = {
  pow = function(a, b) return ((a ^ b) * 0.5 + a ^ 2.5 + 1.5 ^ b + a ^ 0 + (a - 1) ^ 2):sum() end,
  maximum_minimum = function(a, b)
    return (a:maximum(b) * 2 + selut.minimum(a, b) * 3 + a:maximum(0.5) * a + b:minimum(0.1)):sum()
  end,
  where = function(a, b, c)
    return (selut.where(c, a, b) * a):sum() + selut.where(c, a, 2):sum() + selut.where(c, -1, b):sum()
  end,
  clamp = function(a)
    return (a:clamp(-0.5, 0.5) * a):sum() + a:clamp(0.2):sum() * 2 + a:clamp(nil, -0.1):sum() + a:clamp(1, -1):sum()
  end,
  prod = function(a, z, v)
    return a:prod(2):sum() + a:prod() + z:prod(2):sum() + z:prod(1, true):sum() * 0.5 + z:prod() + v:prod()
  end,
  var_std = function(a)
    return a:var() + a:std(2):sum() + a:var(1, {unbiased = false, keepdim = true}):sum() * 2
      + a:std({unbiased = false}) + a:var(-1):sum() + a:std(1, true):sum()
  end,
  max_min = function(a)
    return a:max() * 2 + a:min() + (a:max(2)):sum() * 3 + (a:min(2)):sum() + ((a:max(-1, true)) * a):sum()
      + (a:min(1)):sum() * 0.5 + (a:max(-2, true)):sum()
  end,
  logsumexp = function(a)
    return a:logsumexp(2):sum() + a:logsumexp(1, true):sum() * 0.5 + a:logsumexp() + (a * 3):logsumexp(-1):sum()
  end,
  norm = function(a)
    return a:norm() + a:norm(1) + a:norm(3, 2):sum() + a:norm(inf, 1):sum() + a:norm(0.5)
      + a:norm(1.5, -1, true):sum() + a:norm(-inf, 2):sum() + a:norm(inf) + a:norm(2, 1):sum() + a:norm(0, 2):sum()
  end,
  softmax = function(a, w)
    return (a:softmax(2) * w):sum() + (a:log_softmax(1) * w):sum() + (a:softmax(-1) * a):sum()
      + (a:log_softmax(-1) ^ 2):sum()
  end,
  permute_transpose = function(a, w1, w2)
    return (a:permute(3, 1, 2) * w1):sum() + (a:transpose(1, 3) * w2):sum() + (a:transpose(-1, -2):sum(2) ^ 2):sum()
  end,
  expand = function(a, b)
    return (a:expand(3, 4) * b:expand(2, 3, 4)):sum() + (a:expand(-1, 5) ^ 2):sum() + b:expand(1, 4):exp():sum()
  end,
  select = function(a, v, w)
    return (a:select(2, 3) * w):sum() + (a:select(-1, 1) ^ 2):sum() + a:select(1, -1):sum() * 3 + v:select(1, 2) * 2
      + v:select(1, -1) ^ 2
  end,
  split_chunk = function(a)
    local p, q, r = a:split(2, 1), a:split({1, 3}, 2), a:chunk(3, 2)
    return p[1]:sum() + (p[3] * 3):sum() + (q[2] ^ 2):sum() + (r[1] * r[2]):sum()
  end,
  cat_stack = function(a, b, c, w)
    return (selut.cat({a, b, a}, 1) * w):sum() + (selut.stack({a, c}, 2) ^ 2):sum()
      + (selut.cat({a, c}, -1):sum(1) ^ 3):sum() + selut.stack({a, c, a}, -1):sum(-1):prod()
  end,
  cat_many = function(...)
    local xs = {...}
    local w = T.arange(33):reshape(11, 3) / 10
    return (selut.cat(xs, 1) * w):sum() + (selut.stack(xs, 2) ^ 2):sum() + selut.stack({table.unpack(xs, 1, 9)}, -1):sum()
  end,
  bmm = function(a, b, w) return (selut.bmm(a, b) * w):sum() end,
  matmul_batched = function(a, b, v, m)
    return (M(a, b) ^ 2):sum() + M(a, v):sum() + M(v, b):exp():sum() + M(b, b:transpose(-1, -2)):sum()
      + (M(a, m) * 0.5):sum() + M(m:t(), b):sum()
  end,
  chain_shape = function(a, b, keep)
    local h = M(a, b):softmax(-1)
    local parts = h:split(1, 1)
    local s = selut.stack({parts[1]:squeeze(1), parts[2]:squeeze(1)}, 3)
    if keep then keep.h = s; s:retain_grad() end
    return s:expand(2, 3, 3, 2):logsumexp(2):sum() + s:select(3, 1):max() + s:permute(3, 1, 2):norm()
  end,
  chain_ew_red = function(a, b, keep)
    local h = (a ^ 2):maximum(b):softmax(-1)
    if keep then keep.h = h; h:retain_grad() end
    return (h:log():clamp(-3, 0) * a):logsumexp(1):sum() + a:std(1):prod() + h:norm() + (a:max(2)):var()
  end,
}

-- inputs for gradcheck: random, away from the kinks (ties, clamp bounds,
-- zeros where a formula divides) that central differences cannot see
local function rnd(...) return T.randn(...) end
local function pos(...) return T.rand(...) + 0.5 end
local function perm12() -- 0..11 in a scrambled order (7 is prime to 12): distinct values
  local v = {}
  for k = 0, 11 do v[k + 1] = (k * 7) % 12 end
  return T.new(v)
end
local fresh = {
  pow = function() return {pos(3, 4), rnd(4)} end,
  maximum_minimum = function() return {perm12():reshape(3, 4) * 0.3 - 1.55, T.new{-1.1, 0.4, 0.7, -0.5}} end,
  where = function() return {rnd(3, 4), rnd(4)} end,
  clamp = function() -- 0.05 or more from every bound (-0.5 -0.1 0.2 0.5 and 1, -1)
    return {T.new{-1.3, -0.8, -0.4, -0.2, 0.0, 0.1, 0.3, 0.4, 0.7, 0.9, 1.2, 1.6, -0.03, 0.06, -0.65, 0.61, -1.1, 0.82,
      -0.27, 0.36}:reshape(4, 5)}
  end,
  prod = function() return {pos(3, 4), pos(3, 4), pos(5)} end,
  var_std = function() return {rnd(3, 5)} end,
  max_min = function() return {perm12():reshape(3, 4) * 0.5} end, -- distinct values, no ties
  logsumexp = function() return {rnd(3, 4)} end,
  norm = function() -- distinct |x|, none near 0 (|x|^-0.5 curves fast there)
    return {T.new{0.7, -0.9, 1.1, -1.3, 1.5, -0.8, 1.0, -1.2, 1.4, -0.6, 1.6, -1.7}:reshape(3, 4)}
  end,
  softmax = function() return {rnd(3, 4)} end,
  chain_ew_red = function() return {perm12():reshape(4, 3) * 0.25 + 0.1, rnd(3)} end,
  permute_transpose = function() return {rnd(2, 3, 4)} end,
  expand = function() return {rnd(3, 1), rnd(4)} end,
  select = function() return {rnd(3, 4, 2), rnd(5)} end,
  split_chunk = function() return {rnd(5, 4)} end,
  cat_stack = function() return {rnd(2, 3) * 0.5, rnd(4, 3), rnd(2, 3) * 0.5} end,
  cat_many = function()
    local xs = {}
    for k = 1, 11 do xs[k] = rnd(1, 3) end
    return xs
  end,
  bmm = function() return {rnd(2, 3, 4), rnd(2, 4, 5)} end,
  matmul_batched = function() return {rnd(2, 1, 3, 4) * 0.5, rnd(3, 4, 2) * 0.5, rnd(4) * 0.5, rnd(4, 2)} end,
  chain_shape = function() return {rnd(2, 3, 4), rnd(4, 3)} end, -- s:select(3, 1):max(): ties improbable
}

selut.manual_seed(20)
local names = {}
for name in pairs(losses) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
  local f = losses[name]
  local c = refs[name]
  check(c, name .. ": reference case exists")
  local xs, consts = make(c.inputs, true), make(c.consts, false)
  local args = {table.unpack(xs)}
  for _, k in ipairs(consts) do args[#args + 1] = k end
  local keep = c.h and {} or nil
  if keep then args[#args + 1] = keep end
  local loss = f(table.unpack(args))
  check(loss:numel() == 1 and loss.grad_fn ~= nil, name .. ": loss records")
  H.near(num(loss), c.loss, 1e-5 * math.abs(c.loss) + 1e-6, name .. " loss")
  loss:backward()
  for i, x in ipairs(xs) do close(x.grad, c.inputs[i].grad, name .. " grad of input " .. i) end
  if keep then close(keep.h.grad, c.h, name .. ": retained non-leaf h.grad") end
  local fx = fresh[name]()
  for _, x in ipairs(fx) do x:requires_grad_() end
  local g = function(...)
    local a = {...}
    for _, k in ipairs(consts) do a[#a + 1] = k end
    return f(table.unpack(a))
  end
  local ok, err = pcall(ag.gradcheck, g, fx)
  check(ok, name .. " gradcheck: " .. tostring(err))
end
print(string.format("autograd_ops: %d PyTorch cases match (loss and every gradient), each also through gradcheck", #names))

do -- node names (PyTorch's, without the version digit)
  local x = T.randn(3, 4):requires_grad_()
  local names = {
    PowBackward = x ^ 2, MaximumBackward = x:maximum(x * 2), MinimumBackward = x:minimum(0),
    WhereBackward = selut.where(x:gt(0), x, 0), ClampBackward = x:clamp(0), ProdBackward = x:prod(1),
    VarBackward = x:var(), StdBackward = x:std(2), MaxBackward = x:max(), MinBackward = (x:min(2)),
    LogsumexpBackward = x:logsumexp(1), NormBackward = x:norm(), SoftmaxBackward = x:softmax(1),
    LogSoftmaxBackward = x:log_softmax(-1),
  }
  for want, t in pairs(names) do check(t.grad_fn == want, want .. ": got " .. tostring(t.grad_fn)) end
end

do -- results without a gradient: argmax/argmin, comparisons, max's indices
  local x = T.randn(3, 4):requires_grad_()
  check(type(x:argmax()) == "number", "argmax over all: a number")
  local am = x:argmin(2)
  check(not am.requires_grad and am.grad_fn == nil, "argmin along a dim does not record")
  local v, i = x:max(2)
  check(v.grad_fn == "MaxBackward" and not i.requires_grad, "max's values record, its indices do not")
  for _, op in ipairs{"eq", "ne", "lt", "le", "gt", "ge"} do
    local r = x[op](x, 0)
    check(not r.requires_grad and r.grad_fn == nil, op .. " does not record")
  end
  -- max along a dim after its indices were used: the gradient still goes
  -- to the index the forward returned (a copy is kept)
  i:add_(1)
  v:sum():backward()
  check(x.grad:sum() == 3, "max(2) gradient: one 1 per row")
end

do -- shape ops: node names, one node per piece, 1-D select, cat with constants and many inputs
  local x = T.randn(2, 3, 4):requires_grad_()
  local names = {
    PermuteBackward = x:permute(3, 1, 2), TransposeBackward = x:transpose(1, -1), ExpandBackward = x:expand(2, 2, 3, 4),
    SelectBackward = x:select(2, 1), CatBackward = selut.cat({x, x}, 2), StackBackward = selut.stack({x, x}),
    BmmBackward = selut.bmm(x, T.randn(2, 4, 1)), MatmulBackward = M(x, T.randn(4, 2)),
  }
  for want, t in pairs(names) do check(t.grad_fn == want, want .. ": got " .. tostring(t.grad_fn)) end
  local parts = x:chunk(2, 3)
  check(#parts == 2 and parts[1].grad_fn == "SplitBackward" and parts[2].grad_fn == "SplitBackward", "chunk: a node per piece")
  local v = T.randn(5):requires_grad_()
  local e = v:select(1, -2)
  check(T.is_tensor(e) and e:numel() == 1 and e.grad_fn == "SelectBackward", "select of a recorded 1-D tensor: a tensor")
  check(type(T.randn(5):select(1, 2)) == "number", "select of a plain 1-D tensor: a number")
  e:backward()
  H.tensor_near(v.grad, {0, 0, 0, 1, 0}, 0, "select 1-D gradient")
  -- constants mixed in, more inputs than a node holds, and groups without any input that records
  local list, w = {}, T.randn(3):requires_grad_()
  for k = 1, 19 do list[k] = (k == 4 or k == 19) and w:reshape(1, 3) or T.randn(1, 3) end
  local y = selut.cat(list, 1)
  check(y.grad_fn == "CatBackward", "cat of 19 tensors records")
  local wts = T.arange(57):reshape(19, 3)
  ;(y * wts):sum():backward()
  H.tensor_near(w.grad, {9 + 54, 10 + 55, 11 + 56}, 0, "cat of 19: gradient from rows 4 and 19")
  local s = selut.stack({T.randn(2), w:narrow(1, 1, 2), T.randn(2)}, 2)
  w.grad = nil
  ;(s * T.new{{1, 2, 3}, {4, 5, 6}}):sum():backward()
  H.tensor_near(w.grad, {2, 5, 0}, 0, "stack with constants: only the recorded slot")
end

do -- same bits for 1 and 2 threads (batched products, reductions, softmax)
  local a0, b0 = T.randn(4, 33, 70), T.randn(70, 65)
  local function grads()
    local a, b = a0:clone():requires_grad_(), b0:clone():requires_grad_()
    local y = M(a, b):softmax(-1):log_softmax(1):logsumexp(2):std() + selut.bmm(a, a:transpose(2, 3)):norm(3)
    y:backward()
    return a.grad, b.grad
  end
  local n0 = selut.get_num_threads()
  selut.set_num_threads(1)
  local a1, b1 = grads()
  selut.set_num_threads(2)
  local a2, b2 = grads()
  selut.set_num_threads(n0)
  check(a1:eq(a2):sum() == a1:numel() and b1:eq(b2):sum() == b1:numel(), "gradients identical for 1 and 2 threads")
end

do -- the 1-D matmul cases: dot, vector @ batched, batched @ vector
  local v = T.new{1, -2, 3}:requires_grad_()
  local d = M(v, v)
  check(d:numel() == 1 and d.grad_fn == "MmBackward", "1-D @ 1-D records")
  d:backward()
  H.tensor_near(v.grad, {2, -4, 6}, 0, "dot: gradient 2 v")
  local b = T.ones(2, 3, 2):requires_grad_()
  v.grad = nil
  M(v, b):sum():backward()
  H.tensor_near(v.grad, {4, 4, 4}, 0, "vector @ [2 x 3 x 2]: summed over the batch")
  H.tensor_near(b.grad, {{{1, 1}, {-2, -2}, {3, 3}}, {{1, 1}, {-2, -2}, {3, 3}}}, 0, "its gradient per batch")
end
