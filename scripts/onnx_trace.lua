-- selut.onnx's tracer for nets that are not a chain (nn.class nets with
-- residual adds, several inputs, tensor ops; docs/onnx.md). The net's
-- forward runs once on stand-ins ("values") that carry the real tensor
-- (computed by the real ops, so shapes and results are exact) and the name
-- of its ONNX value; every tensor op, nn.F function and layer call on a
-- value appends the matching nodes. For the duration of the call the layer
-- children of class modules are replaced by call wrappers and the tensor
-- functions of selut and nn.F by dispatchers; everything is restored after,
-- on errors too. An op with no ONNX form raises an error naming it.
-- ONNX operator semantics cited below are from the ONNX operator spec
-- (onnx/docs/Operators.md) for opsets 13-17.
local selut = require "selut"
local nn, T = selut.nn, selut.tensor

local trace = {}

local ONNX_INT64, ONNX_FLOAT, ONNX_BOOL = 7, 1, 9

local V = {} -- metatable of values
local function is_value(v) return getmetatable(v) == V end

-- The tracing state of the running export (one at a time).
local S

local function real(v) if is_value(v) then return v._t end return v end

local function fresh(what)
  S.count = S.count + 1
  return "/" .. S.count .. "/" .. what
end

-- A value that stands for tensor t; batch: its batch axis (0-based; false
-- when it has none), which a Reshape keeps symbolic and cat/narrow refuse.
local function wrap(t, name, batch)
  return setmetatable({ _t = t, _n = name, _b = batch or false }, V)
end

-- The ONNX name of v: a value's, or an initializer for a tensor (named after
-- the parameter when it is one) or a number (a [1] tensor: it broadcasts
-- against any shape, ONNX's multidirectional broadcasting).
local function name_of(v)
  if is_value(v) then return v._n end
  if math.type(v) then
    local key = "const:" .. string.format("%.17g", v)
    if not S.consts[key] then
      S.consts[key] = fresh("const")
      S.w:initializer(S.consts[key], T.new { v })
    end
    return S.consts[key]
  end
  if T.is_tensor(v) then
    if not S.consts[v] then
      S.consts[v] = S.param_names[v] or fresh("tensor")
      S.w:initializer(S.consts[v], v:clone())
    end
    return S.consts[v]
  end
  error("onnx.export: a " .. type(v) .. " reached a traced tensor op (tensors and numbers expected)", 0)
end

local function i64(what, dims, values)
  local n = fresh(what)
  S.w:initializer_i64(n, dims, values)
  return n
end

-- The batch axis of result r of a broadcasting op over the arguments: the
-- first value's, shifted by the dims broadcasting adds in front.
local function batch_of(r, ...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if is_value(v) and v._b then return v._b + r:dim() - v._t:dim() end
  end
  return false
end

local function any_value(...)
  for i = 1, select("#", ...) do if is_value(select(i, ...)) then return true end end
  return false
end

-- Emits op over args (values, tensors or numbers) and wraps the real result.
local function node(op, args, result, attrs, batch)
  local names = {}
  for i, a in ipairs(args) do names[i] = type(a) == "string" and a or name_of(a) end -- a string: a name already
  local out = fresh(op)
  S.w:node(op, names, { out }, attrs)
  return wrap(result, out, batch)
end

local function axis(x, d) -- a 1-based (or negative) selut dim of x -> ONNX's 0-based axis
  local nd = real(x):dim()
  d = d < 0 and d + nd + 1 or d
  return math.tointeger(d - 1)
end

local function unsupported(what)
  error("onnx.export: " .. what .. " has no ONNX form in selut's exporter", 0)
end

-- ---- tensor ops ----
local M = {} -- methods of values

local binary = { add = "Add", sub = "Sub", mul = "Mul", div = "Div", pow = "Pow", maximum = "Max", minimum = "Min",
  matmul = "MatMul" }
for name, op in pairs(binary) do
  M[name] = function(a, b)
    local r = selut[name](real(a), real(b))
    return node(op, { a, b }, r, nil, batch_of(r, a, b))
  end
end
-- Comparisons give 1/0 floats in selut, booleans in ONNX: a Cast follows.
local compare = { gt = "Greater", lt = "Less", eq = "Equal", ge = "GreaterOrEqual", le = "LessOrEqual" }
for name, op in pairs(compare) do
  M[name] = function(a, b)
    local r = selut[name](real(a), real(b))
    local c = node(op, { a, b }, r, nil, batch_of(r, a, b))
    return node("Cast", { c }, r, { to = ONNX_FLOAT }, c._b)
  end
end
local unary = { neg = "Neg", abs = "Abs", sign = "Sign", exp = "Exp", log = "Log", sqrt = "Sqrt", tanh = "Tanh",
  sigmoid = "Sigmoid", floor = "Floor", ceil = "Ceil", sin = "Sin", cos = "Cos", round = "Round" }
for name, op in pairs(unary) do
  M[name] = function(x) return node(op, { x }, real(x)[name](real(x)), nil, x._b) end
end
function M.rsqrt(x)
  local s = node("Sqrt", { x }, real(x):sqrt(), nil, x._b)
  return node("Reciprocal", { s }, real(x):rsqrt(), nil, x._b)
end
function M.clamp(x, lo, hi) -- Clip (opset 13): min and max as optional inputs
  return node("Clip", { x, lo or "", hi or "" }, real(x):clamp(lo, hi), nil, x._b)
end
for _, name in ipairs { "softmax", "log_softmax" } do
  M[name] = function(x, d)
    return node(name == "softmax" and "Softmax" or "LogSoftmax", { x }, real(x)[name](real(x), d), { axis = axis(x, d) },
      x._b)
  end
end
function M.size(x, d) return real(x):size(d) end
function M.shape(x) return real(x):shape() end
function M.dim(x) return real(x):dim() end
function M.numel(x) return real(x):numel() end
function M.contiguous(x) return x end
function M.detach(x) return x end
function M.clone(x) return x end

-- Reshape (opset 13+): a 0 in the shape copies the input's dim; the batch
-- dim is written as 0 so the graph takes any batch size.
local function reshape_to(x, r)
  local s = r:shape()
  local keep = x._b == 0 and s[1] == real(x):size(1)
  if keep then s[1] = 0 end
  return node("Reshape", { x, i64("shape", { #s }, s) }, r, nil, keep and 0)
end
function M.reshape(x, ...) return reshape_to(x, real(x):reshape(...)) end
function M.view(x, ...) return reshape_to(x, real(x):view(...)) end
function M.flatten(x, ...) return reshape_to(x, real(x):flatten(...)) end
function M.squeeze(x, ...) return reshape_to(x, real(x):squeeze(...)) end
function M.unsqueeze(x, d) return reshape_to(x, real(x):unsqueeze(d)) end
-- Transpose: output dim k is input dim perm[k].
local function transpose_to(x, perm, r)
  local b = false
  for k, p in ipairs(perm) do if p == x._b then b = k - 1 end end
  return node("Transpose", { x }, r, { perm = perm }, b)
end
function M.transpose(x, d1, d2)
  local perm = {}
  for i = 1, real(x):dim() do perm[i] = i - 1 end
  local a, b = axis(x, d1), axis(x, d2)
  perm[a + 1], perm[b + 1] = b, a
  return transpose_to(x, perm, real(x):transpose(d1, d2))
end
function M.t(x) return transpose_to(x, { 1, 0 }, real(x):t()) end
function M.permute(x, ...)
  local p = type(...) == "table" and ... or { ... }
  local perm = {}
  for i, d in ipairs(p) do perm[i] = axis(x, d) end
  return transpose_to(x, perm, real(x):permute(...))
end
-- Slice (opset 13): starts, ends, axes as int64 inputs, ends exclusive.
function M.narrow(x, d, start, len)
  local a = axis(x, d)
  if a == x._b then unsupported("narrow along the batch dim") end
  return node("Slice", { x, i64("starts", { 1 }, { start - 1 }), i64("ends", { 1 }, { start - 1 + len }),
    i64("axes", { 1 }, { a }) }, real(x):narrow(d, start, len), nil, x._b)
end
local function pieces(x, sizes, d)
  local out, at = {}, 1
  for i, n in ipairs(sizes) do
    out[i] = M.narrow(x, d, at, n)
    at = at + n
  end
  return out
end
function M.split(x, size, d)
  d = d or 1
  local n = real(x):size(d)
  local sizes = {}
  if type(size) == "table" then sizes = size
  else
    for at = 1, n, size do sizes[#sizes + 1] = math.min(size, n - at + 1) end
  end
  return pieces(x, sizes, d)
end
function M.chunk(x, k, d)
  d = d or 1
  local n = real(x):size(d)
  return M.split(x, -(-n // k), d)
end
-- Gather (axis) with a scalar index drops the dim, as select.
function M.select(x, d, i)
  local a = axis(x, d)
  if a == x._b then unsupported("select along the batch dim") end
  local n = real(x):size(d)
  local r = real(x):select(d, i)
  if not T.is_tensor(r) then r = T.new { r } end
  return node("Gather", { x, i64("index", {}, { i > 0 and i - 1 or n + i }) }, r, { axis = a },
    x._b and (a < x._b and x._b - 1 or x._b))
end
-- Reductions along one dim: ReduceSum takes its axes as an input from
-- opset 13, ReduceMean/ReduceMax as an attribute up to opset 17.
local function reduce(op, name)
  return function(x, d, keep)
    if d == nil then unsupported(name .. "() over all elements (it gives a Lua number; pass a dim)") end
    if type(keep) == "table" then keep = keep.keepdim end
    local a = axis(x, d)
    local r = real(x)[name](real(x), d, keep and true or false)
    local b = x._b
    if b and not keep then b = a ~= b and (a < b and b - 1 or b) end
    if op == "ReduceSum" then
      return node(op, { x, i64("axes", { 1 }, { a }) }, r, { keepdims = keep and 1 or 0 }, b)
    end
    return node(op, { x }, r, { axes = { a }, keepdims = keep and 1 or 0 }, b)
  end
end
M.sum = reduce("ReduceSum", "sum")
M.mean = reduce("ReduceMean", "mean")
function M.max(x, d, keep)
  if d == nil or is_value(d) or T.is_tensor(d) then unsupported("max() without a dim") end
  local v = reduce("ReduceMax", "max")(x, d, keep)
  local _, idx = real(x):max(d, keep and true or false)
  local a = axis(x, d)
  local am = node("ArgMax", { x }, idx, { axis = a, keepdims = keep and 1 or 0 }, v._b)
  local f = node("Cast", { am }, idx, { to = ONNX_FLOAT }, v._b)
  return v, node("Add", { f, 1 }, idx, nil, v._b) -- selut's indices are 1-based
end
-- Indices (1-based floats in selut) become 0-based int64 for ONNX.
local function indices(idx)
  local z = node("Sub", { idx, 1 }, real(idx), nil, batch_of(real(idx), idx))
  return node("Cast", { z }, real(idx), { to = ONNX_INT64 }, z._b)
end
function M.gather(x, d, idx)
  local r = real(x):gather(d, real(idx))
  return node("GatherElements", { x, indices(idx) }, r, { axis = axis(x, d) }, batch_of(r, x, idx))
end
function M.index_select(x, d, idx)
  return node("Gather", { x, indices(idx) }, real(x):index_select(d, real(idx)), { axis = axis(x, d) }, x._b)
end
-- Where (opset 16 for float): the condition is a bool tensor.
local function where(cond, a, b)
  local r = selut.where(real(cond), real(a), real(b))
  local c = node("Cast", { cond }, real(cond), { to = ONNX_BOOL }, batch_of(real(cond), cond))
  return node("Where", { c, a, b }, r, nil, batch_of(r, cond, a, b))
end
function M.where(x, cond, y) return where(cond, x, y) end
function M.expand(x, ...)
  local r = real(x):expand(...)
  local s = r:shape()
  local b = batch_of(r, x)
  if b and s[b + 1] == real(x):size(x._b + 1) then s[b + 1] = 1 else b = false end -- Expand broadcasts: 1 keeps the input's dim
  return node("Expand", { x, i64("shape", { #s }, s) }, r, nil, b)
end

V.__index = function(v, k)
  local f = M[k]
  if f then return f end
  if math.type(k) == "integer" then return M.select(v, 1, k) end -- x[i]
  unsupported("the tensor op '" .. tostring(k) .. "'")
end
V.__add = function(a, b) return M.add(a, b) end
V.__sub = function(a, b) return M.sub(a, b) end
V.__mul = function(a, b) return M.mul(a, b) end
V.__div = function(a, b) return M.div(a, b) end
V.__pow = function(a, b) return M.pow(a, b) end
V.__unm = function(a) return M.neg(a) end
V.__len = function(a) return #real(a) end
V.__name = "selut.onnx.TracedTensor"
V.__tostring = function(a) return "traced " .. tostring(a._t) end

-- selut.cat/stack: Concat along an axis (stack: each gets a size-1 dim first).
local function cat(list, d)
  d = d or 1
  local reals = {}
  for i, v in ipairs(list) do reals[i] = real(v) end
  local r = selut.cat(reals, d)
  local a = axis(list[1], d)
  local b = batch_of(r, table.unpack(list))
  if a == b then unsupported("cat along the batch dim") end
  return node("Concat", list, r, { axis = a }, b)
end
local function stack(list, d)
  d = d or 1
  local ups = {}
  for i, v in ipairs(list) do ups[i] = is_value(v) and M.unsqueeze(v, d) or real(v):unsqueeze(d) end
  return cat(ups, d)
end

-- ---- nn.F ----
local F = {}
local act = { selu = "SELU", relu = "ReLU", tanh = "Tanh", sigmoid = "Sigmoid", gelu = "GELU" }
local function layer(ctor_name, ...)
  local m = nn[ctor_name](...)
  m:evaluate()
  return m
end
for fname, ctor in pairs(act) do
  F[fname] = function(x) return trace.call(layer(ctor), "F." .. fname, x) end
end
function F.elu(x, alpha) return trace.call(layer("ELU", alpha or 1.0), "F.elu", x) end
function F.leaky_relu(x, s) return trace.call(layer("LeakyReLU", s or 0.01), "F.leaky_relu", x) end
function F.softmax(x, d) return M.softmax(x, d) end
function F.log_softmax(x, d) return M.log_softmax(x, d) end
function F.dropout(x) return x end -- evaluation mode: the identity
F.alpha_dropout = F.dropout
-- linear: x W^T + b as MatMul with the stored transpose, then Add
function F.linear(x, wt, b)
  local r = selut.matmul(real(x), real(wt):t())
  local y = node("MatMul", { x, real(wt):t():clone() }, r, nil, batch_of(r, x))
  if b then return M.add(y, b) end
  return y
end

-- ---- layer calls ----

-- The node-name prefix of a layer's call: its path, with "#k" from its k-th
-- call on (a layer used twice emits two sets of nodes).
local function call_prefix(path)
  S.calls[path] = (S.calls[path] or 0) + 1
  return S.calls[path] > 1 and path .. "#" .. S.calls[path] or path
end

-- Runs a recurrent layer or cell on the real tensors; its outputs (cloned:
-- the layer reuses its buffers) and fresh names "<type>_<suffix>".
local function run_recurrent(m, d, x, h0, c0, suffixes)
  local outs = { m:forward(real(x), real(h0), real(c0)) }
  local names = {}
  for i = 1, #outs do
    outs[i] = outs[i]:clone()
    names[i] = fresh(d.type .. "_" .. suffixes[i])
  end
  return outs, names
end

-- A leaf layer on values: the real forward on the real tensors (cloned: a
-- layer's output is its buffer), then the layer's emitter.
function trace.call(m, path, ...)
  local n = select("#", ...)
  if not any_value(...) then return m(...) end
  local d = nn.describe(m)
  if d and d.type == "Sequential" or (type(m) == "table" and m.modules and not d) then
    local x = ...
    for i, c in ipairs(m.modules) do x = trace.call(c, (path == "" and "" or path .. ".") .. (i - 1), x) end
    return x
  end
  if type(m) == "table" and rawget(getmetatable(m) or {}, "__classname") then
    return m(...) -- a class module: its forward runs on the values
  end
  if d and (d.type == "GRU" or d.type == "LSTM") then return trace.rnn(m, path, d, ...) end
  if d and d.type == "MultiheadAttention" then return trace.mha(m, path, d, ...) end
  if d and (d.type == "GRUCell" or d.type == "LSTMCell") then return trace.cell(m, path, d, ...) end
  local emit = d and S.export[d.type]
  if not emit then
    unsupported(string.format("layer %s (%s)", path, d and d.type or type(m)))
  end
  if n ~= 1 then unsupported(string.format("layer %s (%s) called with %d inputs", path, d.type, n)) end
  local x = ...
  local y = m:forward(real(x)):clone()
  local prefix = call_prefix(path)
  local out = fresh(d.type)
  S.ctx.xs, S.ctx.ys = real(x), y
  emit(S.w, prefix, m, d, name_of(x), out, S.ctx)
  return wrap(y, out, x._b)
end

-- GRU/LSTM called as m(x[, h0[, c0]]): out, h_n[, c_n] (states [L x N x H]).
function trace.rnn(m, path, d, x, h0, c0)
  local outs, names = run_recurrent(m, d, x, h0, c0, { "out", "h_n", "c_n" })
  local prefix = call_prefix(path)
  S.ctx.xs, S.ctx.ys = real(x), outs[1]
  S.export._rnn(S.w, prefix, m, d, name_of(x), h0 and name_of(h0), c0 and name_of(c0),
    { out = names[1], h = names[2], c = names[3] }, S.ctx)
  local res = {}
  for i = 1, #outs do res[i] = wrap(outs[i], names[i], i == 1 and x._b or (x._b and 1)) end
  return table.unpack(res)
end

-- GRUCell/LSTMCell called as m(x[, h[, c]]): h'[, c'] ([N x H]).
function trace.cell(m, path, d, x, h0, c0)
  local outs, names = run_recurrent(m, d, x, h0, c0, { "h", "c" })
  local prefix = call_prefix(path)
  S.ctx.xs = real(x)
  S.export._cell(S.w, prefix, m, d, name_of(x), h0 and name_of(h0), c0 and name_of(c0), { h = names[1], c = names[2] },
    S.ctx)
  local res = {}
  for i = 1, #outs do res[i] = wrap(outs[i], names[i], x._b) end
  return table.unpack(res)
end

-- MultiheadAttention called as m(q[, k, v][, opts]): out, weights.
function trace.mha(m, path, d, q, k, v, opts)
  if type(k) == "table" and not is_value(k) and not T.is_tensor(k) then opts, k, v = k, nil, nil end
  k, v = k or q, v or k or q
  local ropts
  if type(opts) == "table" then -- the layer runs on the real key_padding_mask
    ropts = {}
    for key, val in pairs(opts) do ropts[key] = real(val) end
    if opts.key_padding_mask ~= nil then
      S.ctx.kpm, S.ctx.kpm_name = real(opts.key_padding_mask), name_of(opts.key_padding_mask)
    end
  end
  local outs = { m:forward(real(q), real(k), real(v), ropts) }
  local names = { fresh("mha_out"), outs[2] and fresh("mha_weights") }
  local prefix = call_prefix(path)
  outs[1] = outs[1]:clone()
  if outs[2] then outs[2] = outs[2]:clone() end
  S.ctx.xs, S.ctx.ks = real(q), real(k)
  local qn = name_of(q)
  S.export._mha(S.w, prefix, m, d, qn, k == q and qn or name_of(k), v == q and qn or v == k and name_of(k) or name_of(v),
    opts, { out = names[1], weights = names[2] }, S.ctx)
  local bf = tostring(m):find("batch_first=true", 1, true) ~= nil
  return wrap(outs[1], names[1], q._b), outs[2] and wrap(outs[2], names[2], bf and q._b or (q._b and 0))
end

-- A stand-in for a layer child of a class module: calls trace.call, reads
-- fields through to the layer.
local Wrapper = {}
Wrapper.__call = function(wr, ...) return trace.call(wr._m, wr._path, ...) end
Wrapper.__index = function(wr, k)
  if k == "forward" then return function(_, ...) return trace.call(wr._m, wr._path, ...) end end
  local v = wr._m[k]
  if type(v) == "function" then return function(_, ...) return v(wr._m, ...) end end
  return v
end

local function is_class(m) return type(m) == "table" and rawget(getmetatable(m) or {}, "__classname") ~= nil end

-- Replaces the layer children of class module m (recursively) by wrappers;
-- returns the undo list.
local function wrap_children(m, path, undo)
  if getmetatable(m) and getmetatable(m).__name == "selut.nn.ModuleList" then
    local items = rawget(m, "items")
    for i, c in ipairs(items) do
      local p = path .. (path == "" and "" or ".") .. (i - 1)
      if is_class(c) then wrap_children(c, p, undo)
      else
        undo[#undo + 1] = { items, i, c }
        items[i] = setmetatable({ _m = c, _path = p }, Wrapper)
      end
    end
    return undo
  end
  for _, kv in ipairs(m:named_children()) do
    local k, c = kv[1], kv[2]
    local p = path .. (path == "" and "" or ".") .. k
    if is_class(c) then wrap_children(c, p, undo)
    else
      undo[#undo + 1] = { m, k, c }
      rawset(m, k, setmetatable({ _m = c, _path = p }, Wrapper))
    end
  end
  return undo
end

-- Replaces selut's and nn.F's functions by dispatchers to the traced ops
-- when an argument is a value; returns the undo list.
local function patch_functions(undo)
  local function set(tbl, k, f)
    undo[#undo + 1] = { tbl, k, rawget(tbl, k) }
    rawset(tbl, k, f)
  end
  for k, orig in pairs(selut) do
    if type(orig) == "function" and (M[k] or k == "cat" or k == "stack" or k == "where") then
      local f
      if k == "cat" then f = function(list, ...) if any_value(table.unpack(list)) then return cat(list, ...) end return orig(list, ...) end
      elseif k == "stack" then f = function(list, ...) if any_value(table.unpack(list)) then return stack(list, ...) end return orig(list, ...) end
      elseif k == "where" then f = function(c, a, b) if any_value(c, a, b) then return where(c, a, b) end return orig(c, a, b) end
      else
        f = function(...) if any_value(...) then return M[k](...) end return orig(...) end
      end
      set(selut, k, f)
    elseif type(orig) == "function" and not k:match("^_") then
      set(selut, k, function(...)
        if any_value(...) then unsupported("selut." .. k) end
        return orig(...)
      end)
    end
  end
  for k, orig in pairs(nn.F) do
    if type(orig) == "function" then
      local f = F[k]
      set(nn.F, k, function(...)
        if not any_value(...) then return orig(...) end
        if not f then unsupported("nn.F." .. k) end
        return f(...)
      end)
    end
  end
  return undo
end

-- Traces net(inputs...) into writer w. export: the layer emitters; names:
-- the graph inputs' names. Returns the output values' list and ctx.
function trace.run(w, export, net, inputs, in_names, params, opset)
  if S then error("onnx.export: an export is already being traced", 0) end
  local param_names = {}
  for _, p in ipairs(params) do param_names[p.param] = p.name end
  S = { w = w, export = export, count = 0, consts = {}, param_names = param_names, calls = {},
    ctx = { opset = opset, is_input = {}, int64 = {} } }
  local args = {}
  for i, x in ipairs(inputs) do
    args[i] = wrap(x, in_names[i], 0)
    S.ctx.is_input[in_names[i]] = true
  end
  local undo = {}
  local ok, res = xpcall(function() -- (debug.traceback as the handler shows where an op failed)
    if is_class(net) then wrap_children(net, "", undo) end
    patch_functions(undo)
    return table.pack(selut.no_grad(function()
      if is_class(net) then return net(table.unpack(args)) end
      return trace.call(net, "", table.unpack(args)) -- a Sequential holding class modules
    end))
  end, function(e) return e end)
  for i = #undo, 1, -1 do rawset(undo[i][1], undo[i][2], undo[i][3]) end
  local ctx = S.ctx
  S = nil
  if not ok then error(res, 0) end
  return res, ctx
end

trace.is_value = is_value
return trace
