-- selut.onnx.load for graphs that are not a chain (docs/onnx.md): residual
-- and multi-input nets, selut's own traced exports, the decompositions of
-- LayerNorm/GroupNorm/GELU/attention and torch.onnx.export graphs with shape
-- arithmetic. The graph becomes an nn.class module whose forward evaluates
-- the nodes in file order (ONNX requires topological order; the reader
-- checked it) with selut's tensor ops and layers, so autograd records it and
-- it trains.
--
-- Values in the forward are selut tensors, or "ints" (Lua lists with
-- .ints = true and .rank 0 or 1) for the int64 shape arithmetic that
-- torch.onnx.export emits (Shape, Gather on a shape, Concat, ...).
-- Initializers: float tables with more than one element, all finite, read
-- by tensor ops become parameters named after the initializer; the weights
-- of layer nodes (Gemm, Conv, GRU, LSTM, Embedding) become layers named
-- after their weight; the rest (int64, one-element or non-finite floats:
-- shapes, eps, masks) are constants.
local selut = require "selut"
local nn, T = selut.nn, selut.tensor
local F = nn.F

local M = {}

local SQRT2 = math.sqrt(2)

local function is_ints(v) return type(v) == "table" and v.ints == true end
local function ints(list, rank)
  list.ints, list.rank = true, rank or 1
  return list
end
local function list_str(t)
  local o = {}
  for i, v in ipairs(t) do o[i] = tostring(v) end
  return "[" .. table.concat(o, ", ") .. "]"
end

-- ints -> a float tensor; tensors pass
local function tensor_of(v)
  if is_ints(v) then
    local vals = {}
    for i = 1, #v do vals[i] = v[i] end
    if #vals == 0 then error("an empty int64 list cannot become a tensor", 0) end
    return T.new(vals)
  end
  return v
end
-- a value as a list of integers (shapes, axes): ints, or a small tensor
local function ints_of(v, what)
  if is_ints(v) then return v end
  if T.is_tensor(v) and v:numel() <= 64 then
    local flat, out = v:reshape(v:numel()), {}
    for i = 1, v:numel() do out[i] = math.tointeger(flat[i]) or math.floor(flat[i]) end
    return ints(out, v:dim() == 0 and 0 or 1)
  end
  error(what .. " must be a list of integers", 0)
end

-- a 1-element float constant as a Lua number (tensor op number is cheaper
-- and broadcasts as a [1] tensor would)
local function number_of(v)
  if type(v) == "number" then return v end
  if is_ints(v) and #v == 1 then return v[1] end
  if T.is_tensor(v) and v:numel() == 1 then return v:reshape(1)[1] end
  return nil
end

local function norm_axis(a, rank, what)
  if a < 0 then a = a + rank end
  if a < 0 or a >= rank then error(string.format("%s %d is out of range for a %d-D value", what, a, rank), 0) end
  return a
end

-- The attribute/input axes of reductions, Squeeze and Unsqueeze: an
-- attribute before opset 13 (18 for ReduceMean/ReduceMax), an input since.
local function axes_of(node, a)
  if node.attrs.axes then return node.attrs.axes end
  if a[2] ~= nil then return ints_of(a[2], node.op .. " axes") end
  return nil
end

local ops = {}

local function binary(f)
  return function(_, a)
    local x, y = a[1], a[2]
    if is_ints(x) and is_ints(y) and #x == #y then
      local out = {}
      for i = 1, #x do out[i] = f(x[i], y[i], true) end
      return ints(out, math.max(x.rank, y.rank))
    end
    x, y = tensor_of(x), tensor_of(y)
    local n = number_of(y)
    if n and T.is_tensor(x) and y:dim() <= x:dim() then return f(x, n) end
    return f(x, y)
  end
end
ops.Add = binary(function(x, y) return x + y end)
ops.Sub = binary(function(x, y) return x - y end)
ops.Mul = binary(function(x, y) return x * y end)
ops.Div = binary(function(x, y, int)
  if int then return x // y end -- int64 division truncates; shapes are positive
  return x / y
end)
ops.Pow = binary(function(x, y) return T.is_tensor(x) and type(y) == "number" and x:pow(y) or selut.pow(x, y) end)
ops.Max = function(_, a)
  local r = tensor_of(a[1])
  for i = 2, #a do r = selut.maximum(r, tensor_of(a[i])) end
  return r
end
ops.Min = function(_, a)
  local r = tensor_of(a[1])
  for i = 2, #a do r = selut.minimum(r, tensor_of(a[i])) end
  return r
end
ops.MatMul = function(_, a) return selut.matmul(tensor_of(a[1]), tensor_of(a[2])) end
ops.Gemm = function(node, a)
  local at = node.attrs
  local x, w = tensor_of(a[1]), tensor_of(a[2])
  if (at.transA or 0) ~= 0 then x = x:t() end
  if (at.transB or 0) ~= 0 then w = w:t() end
  local y = selut.matmul(x, w)
  if (at.alpha or 1) ~= 1 then y = y * at.alpha end
  if a[3] ~= nil then
    local c = tensor_of(a[3])
    if (at.beta or 1) ~= 1 then c = c * at.beta end
    y = y + c
  end
  return y
end

local unary = { Neg = "neg", Abs = "abs", Sign = "sign", Exp = "exp", Log = "log", Sqrt = "sqrt", Tanh = "tanh",
  Sigmoid = "sigmoid", Floor = "floor", Ceil = "ceil", Sin = "sin", Cos = "cos", Round = "round" }
for op, m in pairs(unary) do ops[op] = function(_, a) local x = tensor_of(a[1]); return x[m](x) end end
ops.Reciprocal = function(_, a) return 1 / tensor_of(a[1]) end
ops.Relu = function(_, a) return F.relu(a[1]) end
ops.Selu = function(_, a) return F.selu(a[1]) end
ops.Elu = function(node, a) return F.elu(a[1], node.attrs.alpha or 1.0) end
ops.LeakyRelu = function(node, a) return F.leaky_relu(a[1], node.attrs.alpha or 0.01) end
ops._Gelu = function(_, a) return F.gelu(a[1]) end
ops.Identity = function(_, a) return a[1] end
ops.Dropout = function(_, a) return a[1] end

local function softmax(name)
  return function(node, a, g)
    local x = a[1]
    local ax = norm_axis(node.attrs.axis or (g.opset >= 13 and -1 or 1), x:dim(), node.op .. " axis")
    if g.opset < 13 and ax ~= x:dim() - 1 then
      error(string.format("%s before opset 13 over axis %d of a %d-D input flattens the trailing dims, which selut "
        .. "does not express", node.op, ax, x:dim()), 0)
    end
    return x[name](x, ax + 1)
  end
end
ops.Softmax = softmax("softmax")
ops.LogSoftmax = softmax("log_softmax")

local compare = { Greater = "gt", Less = "lt", Equal = "eq", GreaterOrEqual = "ge", LessOrEqual = "le" }
for op, m in pairs(compare) do
  ops[op] = function(_, a)
    local x, y = tensor_of(a[1]), tensor_of(a[2])
    local n = number_of(y)
    return x[m](x, n and y:dim() <= x:dim() and n or y)
  end
end
ops.Not = function(_, a) return 1 - tensor_of(a[1]) end
-- Cast: values are float32 tensors whatever ONNX's type. To bool: 1/0; to
-- an integer type: truncation toward zero; to float: the value.
local BOOL, FLOATS = 9, { [1] = true, [10] = true, [11] = true }
ops.Cast = function(node, a)
  local x, to = a[1], node.attrs.to
  if is_ints(x) or FLOATS[to] then return x end
  if to == BOOL then return x:ne(0) end
  return selut.where(x:lt(0), x:ceil(), x:floor())
end
ops.Where = function(_, a)
  local c, x, y = tensor_of(a[1]), tensor_of(a[2]), tensor_of(a[3])
  return selut.where(c, number_of(x) and x:dim() <= c:dim() and number_of(x) or x,
    number_of(y) and y:dim() <= c:dim() and number_of(y) or y)
end
ops.Clip = function(node, a)
  local lo, hi = node.attrs.min, node.attrs.max
  if a[2] ~= nil then lo = number_of(a[2]) or error("Clip min must be one number", 0) end
  if a[3] ~= nil then hi = number_of(a[3]) or error("Clip max must be one number", 0) end
  if lo == nil and hi == nil then return a[1] end
  return a[1]:clamp(lo, hi)
end

ops.Shape = function(_, a)
  local s = is_ints(a[1]) and { #a[1] } or a[1]:shape()
  return ints(s, 1)
end
ops.Size = function(_, a) return ints({ is_ints(a[1]) and #a[1] or a[1]:numel() }, 0) end
ops.ConstantOfShape = function(node, a)
  local s = ints_of(a[1], "ConstantOfShape shape")
  local v = node.attrs.value and node.attrs.value.tensor:reshape(1)[1] or 0
  local dims = {}
  for i = 1, #s do dims[i] = s[i] end
  if #dims == 0 then dims[1] = 1 end
  local z = T.zeros(table.unpack(dims))
  return v == 0 and z or z + v
end

-- Reshape with ONNX's 0 (copy the input's dim) and -1 (inferred)
ops.Reshape = function(node, a)
  local x, s = a[1], ints_of(a[2], "Reshape shape")
  local dims = {}
  for i = 1, #s do
    local d = s[i]
    if d == 0 then d = is_ints(x) and #x or x:size(i) end
    dims[i] = d
  end
  if is_ints(x) then
    if #dims == 1 and (dims[1] == #x or dims[1] == -1) then return ints({ table.unpack(x) }, 1) end
    if #dims == 0 and #x == 1 then return ints({ x[1] }, 0) end
    x = tensor_of(x)
  end
  if #dims == 0 then return x:reshape(1) end
  return x:reshape(table.unpack(dims))
end
ops.Flatten = function(node, a)
  local x = a[1]
  local ax = node.attrs.axis or 1
  if ax < 0 then ax = ax + x:dim() end
  local lead = 1
  for i = 1, ax do lead = lead * x:size(i) end
  return x:reshape(lead, x:numel() // math.max(lead, 1))
end
ops.Transpose = function(node, a)
  local x = a[1]
  local perm, p = node.attrs.perm, {}
  if perm then
    for i, v in ipairs(perm) do p[i] = v + 1 end
  else
    for i = 1, x:dim() do p[i] = x:dim() - i + 1 end
  end
  return x:permute(table.unpack(p))
end
ops.Squeeze = function(node, a)
  local x, axes = a[1], axes_of(node, a)
  if is_ints(x) then
    if #x == 1 then return ints({ x[1] }, 0) end
    x = tensor_of(x)
  end
  local list = {}
  if axes then
    for i = 1, #axes do list[i] = norm_axis(axes[i], x:dim(), "Squeeze axis") end
  else
    for d = 1, x:dim() do if x:size(d) == 1 then list[#list + 1] = d - 1 end end
  end
  table.sort(list, function(p, q) return p > q end)
  for _, d in ipairs(list) do
    if x:size(d + 1) ~= 1 then error(string.format("Squeeze of axis %d of size %d", d, x:size(d + 1)), 0) end
    x = x:squeeze(d + 1)
  end
  return x
end
ops.Unsqueeze = function(node, a)
  local x, axes = a[1], axes_of(node, a)
  if is_ints(x) and x.rank == 0 and #axes == 1 and (axes[1] == 0 or axes[1] == -1) then return ints({ x[1] }, 1) end
  x = tensor_of(x)
  local out_rank, list = x:dim() + #axes, {}
  for i = 1, #axes do list[i] = norm_axis(axes[i], out_rank, "Unsqueeze axis") end
  table.sort(list)
  for _, d in ipairs(list) do x = x:unsqueeze(d + 1) end
  return x
end
ops.Concat = function(node, a)
  local all_ints = true
  for _, v in ipairs(a) do all_ints = all_ints and is_ints(v) end
  if all_ints then
    local out = {}
    for _, v in ipairs(a) do for i = 1, #v do out[#out + 1] = v[i] end end
    return ints(out, 1)
  end
  local list = {}
  for i, v in ipairs(a) do list[i] = tensor_of(v) end
  return selut.cat(list, norm_axis(node.attrs.axis, list[1]:dim(), "Concat axis") + 1)
end
ops.Expand = function(_, a)
  local x, s = tensor_of(a[1]), ints_of(a[2], "Expand shape")
  local r = math.max(x:dim(), #s)
  local xs = x:shape()
  while #xs < r do table.insert(xs, 1, 1) end
  local target = {}
  for i = 1, r do
    local si = s[i - (r - #s)] or 1
    target[i] = xs[i] == 1 and si or xs[i]
  end
  if x:dim() < r then x = x:reshape(table.unpack(xs)) end
  return x:expand(table.unpack(target))
end

-- Slice: starts/ends/axes/steps inputs (opset 10+) or attributes (before)
local BIG = 2 ^ 62
ops.Slice = function(node, a)
  local x = a[1]
  local at = node.attrs
  local starts = at.starts or ints_of(a[2], "Slice starts")
  local ends = at.ends or ints_of(a[3], "Slice ends")
  local axes = at.axes or (a[4] ~= nil and ints_of(a[4], "Slice axes")) or nil
  local steps = a[5] ~= nil and ints_of(a[5], "Slice steps") or nil
  local list = is_ints(x)
  local rank = list and 1 or x:dim()
  for i = 1, #starts do
    if steps and steps[i] ~= 1 then error("Slice with step " .. steps[i] .. " is not supported (step 1)", 0) end
    local ax = norm_axis(axes and axes[i] or i - 1, rank, "Slice axis")
    local n = list and #x or x:size(ax + 1)
    local s, e = starts[i], ends[i]
    if s < 0 then s = s + n end
    if e < 0 then e = e + n end
    s, e = math.max(0, math.min(s, n)), math.max(0, math.min(e >= BIG and n or e, n))
    if e <= s then error(string.format("Slice of axis %d from %d to %d is empty (not supported)", ax, s, e), 0) end
    if list then
      x = ints({ table.unpack(x, s + 1, e) }, 1)
    else
      x = x:narrow(ax + 1, s + 1, e - s)
    end
  end
  return x
end

-- Split: sizes from the 'split' input (opset 13+) or attribute, else equal
-- parts, one per output
ops.Split = function(node, a)
  local x = a[1]
  local ax = norm_axis(node.attrs.axis or 0, x:dim(), "Split axis")
  local n, k = x:size(ax + 1), #node.outputs
  local sizes = node.attrs.split or (a[2] ~= nil and ints_of(a[2], "Split split")) or nil
  if not sizes then
    if n % k ~= 0 then error(string.format("Split of %d into %d equal parts", n, k), 0) end
    sizes = {}
    for i = 1, k do sizes[i] = n // k end
  end
  local out, start = {}, 1
  for i = 1, #sizes do
    out[i] = x:narrow(ax + 1, start, sizes[i])
    start = start + sizes[i]
  end
  if start ~= n + 1 then error(string.format("Split sizes %s do not add up to %d", list_str(sizes), n), 0) end
  return out
end

-- Gather: 0-based indices (ints, or a tensor computed in the graph)
ops.Gather = function(node, a)
  local x, idx = a[1], a[2]
  local ax = node.attrs.axis or 0
  if is_ints(x) and is_ints(idx) then
    local out = {}
    for i = 1, #idx do
      local k = idx[i] < 0 and idx[i] + #x or idx[i]
      out[i] = x[k + 1] or error("Gather index " .. idx[i] .. " is out of range for " .. #x .. " values", 0)
    end
    return ints(out, idx.rank)
  end
  x = tensor_of(x)
  ax = norm_axis(ax, x:dim(), "Gather axis")
  local n = x:size(ax + 1)
  if is_ints(idx) and idx.rank == 0 then
    local k = idx[1] < 0 and idx[1] + n or idx[1]
    return x:select(ax + 1, k + 1)
  end
  local it = tensor_of(idx)
  local flat = it:reshape(it:numel())
  flat = selut.where(flat:lt(0), flat + n, flat) + 1
  local r = x:index_select(ax + 1, flat)
  local shape = {}
  for d = 1, ax do shape[#shape + 1] = x:size(d) end
  for _, s in ipairs(it:shape()) do shape[#shape + 1] = s end
  for d = ax + 2, x:dim() do shape[#shape + 1] = x:size(d) end
  return r:reshape(table.unpack(shape))
end
ops.GatherElements = function(node, a)
  local x = a[1]
  return x:gather(norm_axis(node.attrs.axis or 0, x:dim(), "GatherElements axis") + 1, tensor_of(a[2]) + 1)
end

local function reduce(method)
  return function(node, a)
    local x = a[1]
    local keep = (node.attrs.keepdims or 1) ~= 0
    local axes = axes_of(node, a)
    if (node.attrs.noop_with_empty_axes or 0) ~= 0 and (not axes or #axes == 0) then return x end
    local list = {}
    if axes and #axes > 0 then
      for i = 1, #axes do list[i] = norm_axis(axes[i], x:dim(), node.op .. " axis") end
    else
      for d = 1, x:dim() do list[d] = d - 1 end
    end
    table.sort(list, function(p, q) return p > q end)
    for _, d in ipairs(list) do
      if not keep and x:dim() == 1 then error(node.op .. " down to a 0-D value is not supported (keepdims=1)", 0) end
      x = x[method](x, d + 1, keep)
    end
    return x
  end
end
ops.ReduceMean = reduce("mean")
ops.ReduceSum = reduce("sum")
ops.ReduceMax = reduce("max")
ops.ReduceMin = reduce("min")
ops.ArgMax = function(node, a)
  local x = a[1]
  local _, i = x:max(norm_axis(node.attrs.axis or 0, x:dim(), "ArgMax axis") + 1, (node.attrs.keepdims or 1) ~= 0)
  return i - 1
end

-- BatchNormalization with its running statistics (the inference form, in
-- training mode too): scale and B are parameters, mean and var constants.
ops.BatchNormalization = function(node, a)
  local x = a[1]
  local shape = { x:size(2) }
  for i = 3, x:dim() do shape[i - 1] = 1 end
  local function v(t) return tensor_of(t):reshape(table.unpack(shape)) end
  local inv = (v(a[5]) + (node.attrs.epsilon or 1e-5)):rsqrt()
  return (x - v(a[4])) * inv * v(a[2]) + v(a[3])
end

-- ---- layer nodes: built once, called in the forward ----

-- ONNX gate blocks back to PyTorch's: LSTM i,o,f,c -> i,f,g,o; GRU z,r,h -> r,z,n
local FROM_ONNX = { LSTM = { 1, 3, 4, 2 }, GRU = { 2, 1, 3 } }
local function rnn_layer(node, inits, fail)
  local op, at = node.op, node.attrs
  local lstm = op == "LSTM"
  for _, k in ipairs { "activations", "activation_alpha", "activation_beta", "clip" } do
    if at[k] ~= nil then fail("attribute '" .. k .. "' is not supported (PyTorch's default activations, no clip)") end
  end
  if (at.direction or "forward") ~= "forward" then
    fail("attribute 'direction' = " .. tostring(at.direction) .. " is not supported (forward)")
  end
  if (at.layout or 0) ~= 0 then fail("attribute 'layout' = " .. at.layout .. " is not supported (0: time major)") end
  if not lstm and (at.linear_before_reset or 0) ~= 1 then
    fail("attribute 'linear_before_reset' = " .. (at.linear_before_reset or 0) .. " is not supported (1, PyTorch's GRU)")
  end
  if lstm and (at.input_forget or 0) ~= 0 then fail("attribute 'input_forget' = 1 is not supported") end
  if node.inputs[5] and node.inputs[5] ~= "" then fail("input sequence_lens is not supported") end
  if lstm and node.inputs[8] and node.inputs[8] ~= "" then fail("input P (peepholes) is not supported") end
  local W, R = inits[node.inputs[2]], inits[node.inputs[3]]
  if not W or not R then fail("inputs W and R must be initializers (weights stored in the file)") end
  local G = lstm and 4 or 3
  if W:dim() ~= 3 or W:size(1) ~= 1 then fail("W must be [1 x " .. G .. "*hidden x input]") end
  local H = W:size(2) // G
  if at.hidden_size and at.hidden_size ~= H then
    fail("attribute 'hidden_size' = " .. at.hidden_size .. " disagrees with W's " .. W:size(2) .. " rows")
  end
  local B = node.inputs[4] and node.inputs[4] ~= "" and inits[node.inputs[4]]
  if node.inputs[4] and node.inputs[4] ~= "" and not B then fail("input B must be an initializer") end
  local m = (lstm and nn.LSTM or nn.GRU)(W:size(3), H, { bias = B and true or false })
  local order = FROM_ONNX[op]
  local function back(t) -- [G*H x k] or [G*H] in ONNX's order -> PyTorch's
    local parts = {}
    for i, g in ipairs(order) do parts[i] = t:narrow(1, (g - 1) * H + 1, H) end
    return selut.cat(parts, 1)
  end
  local p = {}
  for _, e in ipairs(m:parameters()) do p[e.name] = e.param end
  p.weight_ih_l0:copy(back(W[1]))
  p.weight_hh_l0:copy(back(R[1]))
  if B then
    local b = B:reshape(2 * G * H)
    p.bias_ih_l0:copy(back(b:narrow(1, 1, G * H)))
    p.bias_hh_l0:copy(back(b:narrow(1, G * H + 1, G * H)))
  end
  return m, function(layer, a)
    local x, h0, c0 = a[1], a[6], a[7]
    if lstm and (h0 ~= nil) ~= (c0 ~= nil) then
      local z = T.zeros(1, x:size(2), H)
      h0, c0 = h0 or z, c0 or z
    end
    local out, hn, cn
    if h0 ~= nil then
      if lstm then out, hn, cn = layer(x, h0, c0) else out, hn = layer(x, h0) end
    else
      out, hn, cn = layer(x)
    end
    return { out:unsqueeze(2), hn, cn }
  end
end

-- The GELU decomposition (selut's export and torch.onnx.export below opset
-- 20): Div(x, sqrt 2), Erf, Add(1), Mul(x, .), Mul(., 0.5) -> F.gelu(x).
local function fuse_gelu(g, consts, uses, fail_at)
  local producer = {}
  for i, n in ipairs(g.nodes) do for _, o in ipairs(n.outputs) do producer[o] = i end end
  local function const_is(name, v, tol)
    local c = consts[name]
    local n = c ~= nil and number_of(c)
    return n and math.abs(n - v) <= tol
  end
  local function only_user(name)
    if uses[name] ~= 1 then return nil end
    for j, n in ipairs(g.nodes) do
      for _, i in ipairs(n.inputs) do if i == name then return j, n end end
    end
  end
  local function other(n, name)
    if n.inputs[1] == name then return n.inputs[2] end
    if n.inputs[2] == name then return n.inputs[1] end
  end
  for i, e in ipairs(g.nodes) do
    if e.op == "Erf" then
      local di = producer[e.inputs[1]]
      local d = di and g.nodes[di]
      local ok = d and d.op == "Div" and const_is(d.inputs[2], SQRT2, 1e-6) and uses[d.outputs[1]] == 1
      local x = ok and d.inputs[1]
      local ai, add = only_user(e.outputs[1])
      ok = ok and add and add.op == "Add" and const_is(other(add, e.outputs[1]) or "", 1, 0)
      local mi, mul
      if ok then mi, mul = only_user(add.outputs[1]) end
      ok = ok and mul and mul.op == "Mul" and other(mul, add.outputs[1]) == x
      local hi, half
      if ok then hi, half = only_user(mul.outputs[1]) end
      ok = ok and half and half.op == "Mul" and const_is(other(half, mul.outputs[1]) or "", 0.5, 0)
      if not ok then fail_at(i, e, "Erf is imported only inside the GELU decomposition Div(x, sqrt 2), Erf, Add(1), "
          .. "Mul(x), Mul(0.5)") end
      for _, j in ipairs { di, i, ai, mi } do g.nodes[j].skip = true end
      g.nodes[hi] = { op = "_Gelu", name = half.name, inputs = { x }, outputs = half.outputs, attrs = {} }
    end
  end
end

local LAYER_OPS = { Gemm = true, Conv = true, MaxPool = true, AveragePool = true, GlobalAveragePool = true,
  LayerNormalization = true, GRU = true, LSTM = true }

-- Names of fields: PyTorch's "fc1.weight" and selut's "0.l0.W" stay as they
-- are; a layer is named after its weight without the last component.
local function child_name(node, i, taken)
  local w = node.inputs[2]
  local base = w and w:match("^(.+)%.[^.]+$")
  if not base or base:find("::", 1, true) then
    base = node.name and node.name ~= "" and node.name:gsub("^/", ""):gsub("/", ".") or (node.op .. "_" .. i)
  end
  local name, k = base, 1
  while taken[name] do
    k = k + 1
    name = base .. "_" .. k
  end
  taken[name] = true
  return name
end

local RESERVED = { forward = true, training = true, init = true, parameters = true, buffers = true, train = true,
  evaluate = true, backward = true, zero_grad = true, modules = true }

--- M.build(g, path, import) -> an nn.class module; import: onnx.lua's
--- layer constructors (Gemm, Conv, pools, LayerNormalization, ...).
function M.build(g, path, import, supported)
  local function fail_at(i, node, msg)
    error(string.format("onnx.load: %s: node %d (%s%s): %s", path, i, node.op,
      node.name and node.name ~= "" and " '" .. node.name .. "'" or "", msg), 0)
  end
  -- constants: initializers and Constant nodes
  local consts, info = {}, g.initializer_info or {}
  local function const_value(t, rank, int64)
    if int64 then
      local flat, out = t:reshape(t:numel()), {}
      for i = 1, t:numel() do out[i] = math.tointeger(flat[i]) end
      return ints(out, rank == 0 and 0 or 1), rank
    end
    return t
  end
  for name, t in pairs(g.initializers) do
    local inf = info[name] or {}
    consts[name] = const_value(t, inf.rank or t:dim(), inf.int64)
    if inf.int64 and (inf.rank or 1) > 1 then consts[name] = t end -- an index table: keep the tensor
  end
  local uses = {}
  for _, n in ipairs(g.nodes) do for _, name in ipairs(n.inputs) do uses[name] = (uses[name] or 0) + 1 end end
  for _, name in ipairs(g.outputs) do uses[name] = (uses[name] or 0) + 1 end
  for i, n in ipairs(g.nodes) do
    for k, v in pairs(n.attrs) do
      if v == "<unsupported attribute type>" and not (n.op == "GRU" or n.op == "LSTM") then
        fail_at(i, n, "attribute '" .. k .. "' is of a type selut does not read")
      end
    end
    if n.op == "Constant" then
      local v = n.attrs.value
      if type(v) ~= "table" or not v.tensor then
        local k = next(n.attrs)
        fail_at(i, n, "attribute '" .. tostring(k) .. "' is not supported (only a 'value' tensor)")
      end
      consts[n.outputs[1]] = const_value(v.tensor, v.rank, v.int64)
      n.skip = true
    end
  end
  fuse_gelu(g, consts, uses, fail_at)

  local is_input = {}
  for _, name in ipairs(g.inputs) do is_input[name] = true end
  local layers, params, taken, steps = {}, {}, {}, {}
  for k in pairs(RESERVED) do taken[k] = true end
  -- float initializers read by tensor ops: parameters (weights) or constants
  local function param_or_const(name)
    local c = consts[name]
    if not T.is_tensor(c) or c:numel() <= 1 or params[name] then return end
    local finite = (c - c):eq(0):min() == 1 -- inf - inf and NaN are NaN
    if finite and not (info[name] or {}).int64 then
      params[name] = true
      taken[name] = true
    end
  end
  for i, n in ipairs(g.nodes) do
    if not n.skip then
      local function fail(msg) fail_at(i, n, msg) end
      local step = { node = n, i = i }
      local all_init = true
      for k = 2, #n.inputs do
        if n.inputs[k] ~= "" and not T.is_tensor(g.initializers[n.inputs[k]]) then all_init = false end
      end
      if n.op == "GRU" or n.op == "LSTM" then
        local m, call = rnn_layer(n, g.initializers, fail)
        step.layer, step.call = child_name(n, i, taken), call
        layers[#layers + 1] = { step.layer, m }
      elseif n.op == "Gather" and is_input[n.inputs[2]] and T.is_tensor(g.initializers[n.inputs[1]])
          and g.initializers[n.inputs[1]]:dim() == 2 and (n.attrs.axis or 0) == 0 then
        -- rows of a stored table looked up by a graph input: an Embedding
        -- taking selut's 1-based indices, as in chains
        local ok, m = pcall(import.Gather, n, g.initializers)
        if not ok then fail(m) end
        step.layer, step.call = child_name({ inputs = { "", n.inputs[1] }, name = n.name, op = n.op }, i, taken),
          function(layer, a) return layer(a[2]) end
        layers[#layers + 1] = { step.layer, m }
      elseif LAYER_OPS[n.op] and all_init and (n.op ~= "Gemm" or ((n.attrs.alpha or 1) == 1 and (n.attrs.beta or 1) == 1
          and (n.attrs.transA or 0) == 0 and g.initializers[n.inputs[2]]:dim() == 2)) then
        if n.op == "LayerNormalization" and (n.attrs.axis or -1) >= 0 then
          local s = g.initializers[n.inputs[2]]
          step.ln_axis = n.attrs.axis
          n.attrs.axis = -s:dim()
        end
        local ok, m = pcall(import[n.op], n, g.initializers, nil)
        if not ok then fail(tostring(m)) end
        step.layer = child_name(n, i, taken)
        layers[#layers + 1] = { step.layer, m }
        local ln_axis, nd = step.ln_axis, n.op == "LayerNormalization" and g.initializers[n.inputs[2]]:dim()
        step.call = function(layer, a)
          if ln_axis and a[1]:dim() - ln_axis ~= nd then
            error(string.format("LayerNormalization axis %d of a %d-D input does not match its %d-D scale", ln_axis,
              a[1]:dim(), nd), 0)
          end
          return layer(a[1])
        end
      elseif n.op == "Conv" then
        fail("input 2 ('" .. tostring(n.inputs[2]) .. "') must be an initializer (a weight stored in the file)")
      elseif LAYER_OPS[n.op] and n.op ~= "Gemm" then
        fail("inputs after the first must be initializers")
      elseif not ops[n.op] then
        fail("selut cannot import " .. n.op .. " (supported: " .. supported() .. ")")
      else
        if n.op == "Dropout" and n.outputs[2] and n.outputs[2] ~= "" then fail("the mask output is not supported") end
        if n.op == "Shape" and (n.attrs.start or n.attrs["end"]) then fail("attributes start/end are not supported") end
        if n.op == "Reshape" and (n.attrs.allowzero or 0) ~= 0 then fail("attribute 'allowzero' = 1 is not supported") end
        if n.op == "ArgMax" and (n.attrs.select_last_index or 0) ~= 0 then
          fail("attribute 'select_last_index' = 1 is not supported")
        end
        if n.op == "Selu" then
          local ok, msg = pcall(import.Selu, n)
          if not ok then fail(msg) end
        end
        if n.op == "BatchNormalization" then
          if (n.attrs.training_mode or 0) ~= 0 then fail("attribute 'training_mode' = 1 is not supported") end
          if #n.outputs > 1 then fail("the running statistics outputs are not supported (inference form)") end
        end
        if n.op == "Split" and n.attrs.num_outputs then fail("attribute 'num_outputs' is not supported (opset 18)") end
        if #n.outputs > 1 and n.op ~= "Dropout" and n.op ~= "Split" then fail(#n.outputs .. " outputs are not supported (one)") end
        for k, name in ipairs(n.inputs) do
          if name ~= "" and consts[name] ~= nil and not (n.op == "BatchNormalization" and k >= 4) then
            param_or_const(name)
          end
        end
        step.fn = ops[n.op]
      end
      steps[#steps + 1] = step
    end
  end

  local Graph = nn.class("OnnxGraph")
  function Graph:init()
    for _, l in ipairs(layers) do self[l[1]] = l[2] end
    for _, i in ipairs(g.nodes) do
      for _, name in ipairs(i.inputs) do
        if params[name] and rawget(self, name) == nil then self[name] = nn.Parameter(consts[name]:clone()) end
      end
    end
  end
  local ginputs, goutputs, opset = g.inputs, g.outputs, g.opset
  local ctx = { opset = opset }
  function Graph:forward(...)
    local args = table.pack(...)
    if args.n ~= #ginputs then
      error(string.format("onnx graph: forward takes %d inputs (%s), got %d", #ginputs, table.concat(ginputs, ", "),
        args.n), 2)
    end
    local env = setmetatable({}, { __index = consts })
    for name in pairs(params) do env[name] = self[name] end
    for k, name in ipairs(ginputs) do env[name] = args[k] end
    for _, s in ipairs(steps) do
      local n = s.node
      local a = {}
      for k, name in ipairs(n.inputs) do
        if name ~= "" then a[k] = env[name] end
      end
      local ok, r
      if s.layer then
        ok, r = pcall(s.call, self[s.layer], a)
      else
        ok, r = pcall(s.fn, n, a, ctx)
      end
      if not ok then
        error(string.format("onnx graph %s: node %d (%s%s): %s", path, s.i, n.op,
          n.name and n.name ~= "" and " '" .. n.name .. "'" or "", tostring(r)), 2)
      end
      if type(r) == "table" and not is_ints(r) then
        for k, name in ipairs(n.outputs) do if name ~= "" then env[name] = r[k] end end
      else
        env[n.outputs[1]] = r
      end
    end
    local out = {}
    for k, name in ipairs(goutputs) do
      local v = env[name]
      out[k] = is_ints(v) and tensor_of(v) or v
    end
    return table.unpack(out, 1, #goutputs)
  end
  local net = Graph()
  net:evaluate()
  return net
end

M.ops = ops
return M
