-- selut.onnx: export a net to an ONNX file and import one as a selut net
-- (docs/onnx.md). The C half (bindings/lua_onnx.c) writes and reads the
-- protobuf; this file maps layers to ONNX nodes and back, through the layer
-- descriptors (nn.describe) and the module walker.
local selut = require "selut"
local nn, T = selut.nn, selut.tensor
local C = selut.onnx -- _writer, _read
local onnx = { _writer = C._writer, _read = C._read }

-- PyTorch's SELU constants (DESIGN.md §2); ONNX's Selu takes them as float
-- attributes, so the exported node computes exactly selut's SELU.
local SELU_ALPHA, SELU_LAMBDA = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

-- The layers of a net in forward order: nested nn.Sequential containers are
-- flattened; each entry is {name = "2.0", module = m}.
local function layers_of(net)
  local out = {}
  local function walk(prefix, m)
    if type(m) == "table" and type(m.modules) == "table" and getmetatable(m) == getmetatable(nn.Sequential {}) then
      for i, c in ipairs(m.modules) do walk(prefix == "" and tostring(i - 1) or prefix .. "." .. (i - 1), c) end
    else
      out[#out + 1] = { name = prefix, module = m }
    end
  end
  walk("", net)
  return out
end

local function axis_of(dim) -- a 1-based (or negative) selut dim -> ONNX's 0-based axis
  dim = dim or -1
  return math.tointeger(dim > 0 and dim - 1 or dim)
end

-- Emitters: (w, name, m, d, x) -> name of the output value; d = nn.describe(m).
local export = {}
function export.Linear(w, name, m, d, x, y)
  w:initializer(name .. ".weight", m.weight)
  local inputs = { x, name .. ".weight" }
  if m.bias then
    w:initializer(name .. ".bias", m.bias)
    inputs[3] = name .. ".bias"
  end
  w:node("Gemm", inputs, { y }, { transB = 1 })
end
function export.SELU(w, _, _, _, x, y) w:node("Selu", { x }, { y }, { alpha = SELU_ALPHA, gamma = SELU_LAMBDA }) end
function export.ELU(w, _, _, d, x, y) w:node("Elu", { x }, { y }, { alpha = d.hparams.alpha + 0.0 }) end
function export.ReLU(w, _, _, _, x, y) w:node("Relu", { x }, { y }) end
function export.LeakyReLU(w, _, _, d, x, y)
  w:node("LeakyRelu", { x }, { y }, { alpha = (d.hparams.negative_slope or 0.01) + 0.0 })
end
function export.Tanh(w, _, _, _, x, y) w:node("Tanh", { x }, { y }) end
function export.Sigmoid(w, _, _, _, x, y) w:node("Sigmoid", { x }, { y }) end
function export.Hardtanh(w, name, _, d, x, y)
  w:initializer(name .. ".min_val", T.new { d.hparams.min_val })
  w:initializer(name .. ".max_val", T.new { d.hparams.max_val })
  w:node("Clip", { x, name .. ".min_val", name .. ".max_val" }, { y })
end
function export.Softmax(w, _, _, d, x, y) w:node("Softmax", { x }, { y }, { axis = axis_of(d.hparams.dim) }) end
function export.LogSoftmax(w, _, _, d, x, y) w:node("LogSoftmax", { x }, { y }, { axis = axis_of(d.hparams.dim) }) end
function export.Dropout(w, _, _, _, x, y) w:node("Identity", { x }, { y }) end -- evaluation mode
export.AlphaDropout = export.Dropout
function export.Flatten(w, _, _, d, x, y)
  local s, e = d.hparams.start_dim or 2, d.hparams.end_dim or -1
  if e ~= -1 then error("onnx.export: Flatten with end_dim " .. e .. " has no ONNX form (ONNX's Flatten ends at the last dim)", 0) end
  w:node("Flatten", { x }, { y }, { axis = axis_of(s) })
end
function export.BatchNorm1d(w, name, m, d, x, y)
  local c = d.hparams.num_features
  local scale = m.weight or T.ones(c)
  local shift = m.bias or T.zeros(c)
  w:initializer(name .. ".weight", scale)
  w:initializer(name .. ".bias", shift)
  local bufs = {}
  for _, b in ipairs(m:buffers()) do bufs[b.name] = b.tensor end
  w:initializer(name .. ".running_mean", bufs.running_mean)
  w:initializer(name .. ".running_var", bufs.running_var)
  w:node("BatchNormalization", { x, name .. ".weight", name .. ".bias", name .. ".running_mean", name .. ".running_var" },
    { y }, { epsilon = (d.hparams.eps or 1e-5) + 0.0 })
end

--- selut.onnx.export(net, example_input, path[, opts]): opts.opset (15),
--- opts.names = {input = "input", output = "output"}, opts.dynamic_batch (true).
function onnx.export(net, x, path, opts)
  opts = opts or {}
  if not T.is_tensor(x) then error("onnx.export: example_input must be a selut.Tensor, got " .. type(x), 2) end
  if type(path) ~= "string" then error("onnx.export: path must be a string, got " .. type(path), 2) end
  local opset = opts.opset or 15
  if math.type(opset) ~= "integer" or opset < 13 or opset > 17 then
    error("onnx.export: opset must be an integer in 13..17, got " .. tostring(opset), 2)
  end
  local names = opts.names or {}
  local in_name, out_name = names.input or "input", names.output or "output"
  local w = C._writer(opset)
  local cur = in_name
  local layers = layers_of(net)
  for i, l in ipairs(layers) do
    local d = nn.describe(l.module)
    local emit = d and export[d.type]
    if not emit then
      local what = d and d.type or (type(l.module) == "table" and (l.module.name or "a Lua module")) or type(l.module)
      error(string.format("onnx.export: layer %s (%s) has no ONNX form in selut's exporter (supported: %s)",
        l.name == "" and "(the net)" or l.name, what, table.concat((function()
          local k = {}
          for n in pairs(export) do k[#k + 1] = n end
          table.sort(k)
          return k
        end)(), ", ")), 2)
    end
    local y = i == #layers and out_name or ("/" .. (l.name ~= "" and l.name or "0") .. "/" .. d.type)
    emit(w, l.name ~= "" and l.name or "0", l.module, d, cur, y)
    cur = y
  end
  if #layers == 0 then w:node("Identity", { in_name }, { out_name }) end
  -- shapes: the batch dim symbolic ("N") unless dynamic_batch == false
  local was_training = net.training
  if net.evaluate then net:evaluate() end
  local y = net:forward(x)
  if was_training and net.train then net:train() end
  local function dims(t)
    local s = t:shape()
    if opts.dynamic_batch ~= false then s[1] = -1 end
    return s
  end
  w:input(in_name, dims(x))
  w:output(out_name, dims(y))
  w:save(path)
end

-- Importers: (node, inits) -> a selut module or nil (skip).
local import = {}

-- ONNX stores float attributes as float32: 0.7 arrives as 0.699999988. The
-- shortest decimal with the same float32 value reads better in tostring(m)
-- and gives the same bits once the layer stores it as a float again.
local function snap(v)
  if math.type(v) ~= "float" then return v end
  local f = T.new { v }[1]
  for p = 6, 9 do
    local d = tonumber(string.format("%." .. p .. "g", v))
    if T.new { d }[1] == f then return d end
  end
  return v
end
local function init_of(inits, node, k, what)
  local t = inits[node.inputs[k]]
  if not t then
    error(string.format("onnx.load: %s input %d ('%s') must be an initializer (a weight stored in the file)", what, k,
      tostring(node.inputs[k])), 0)
  end
  return t
end
function import.Gemm(node, inits)
  local a = node.attrs
  if (a.alpha or 1) ~= 1 or (a.beta or 1) ~= 1 or (a.transA or 0) ~= 0 then
    error("onnx.load: Gemm with alpha/beta ~= 1 or transA = 1 is not supported", 0)
  end
  local wt = init_of(inits, node, 2, "Gemm")
  if (a.transB or 0) == 0 then wt = wt:t() end
  local out, inn = wt:size(1), wt:size(2)
  local m = nn.Linear(inn, out, node.inputs[3] ~= nil and node.inputs[3] ~= "")
  m.weight:copy(wt)
  if m.bias then m.bias:copy(init_of(inits, node, 3, "Gemm")) end
  return m
end
function import.Selu(node)
  local a, g = node.attrs.alpha or 1.67326319217681884765625, node.attrs.gamma or 1.05070102214813232421875
  if math.abs(a - SELU_ALPHA) > 1e-6 or math.abs(g - SELU_LAMBDA) > 1e-6 then
    error(string.format("onnx.load: Selu with alpha=%.9g gamma=%.9g is not selut's SELU (alpha=%.9g, gamma=%.9g)", a, g,
      SELU_ALPHA, SELU_LAMBDA), 0)
  end
  return nn.SELU()
end
function import.Elu(node) return nn.ELU(node.attrs.alpha or 1.0) end
function import.Relu() return nn.ReLU() end
function import.LeakyRelu(node) return nn.LeakyReLU(node.attrs.alpha or 0.01) end
function import.Tanh() return nn.Tanh() end
function import.Sigmoid() return nn.Sigmoid() end
function import.Identity() return nil end
function import.Dropout() return nil end -- inference graphs: the identity
function import.Flatten(node)
  local axis = node.attrs.axis or 1
  if axis < 1 then error("onnx.load: Flatten with axis " .. axis .. " is not supported (axis >= 1)", 0) end
  return nn.Flatten(axis + 1)
end
-- selut's Softmax/LogSoftmax layers work over the last dim of [N x C]
local function last_axis(node)
  local ax = node.attrs.axis or -1
  if ax ~= -1 and ax ~= 1 then
    error("onnx.load: " .. node.op .. " over axis " .. ax .. " is not supported (selut's layer works over the last dim)", 0)
  end
end
function import.Softmax(node) last_axis(node); return nn.Softmax() end
function import.LogSoftmax(node) last_axis(node); return nn.LogSoftmax() end
function import.Clip(node, inits)
  local lo = node.inputs[2] and node.inputs[2] ~= "" and init_of(inits, node, 2, "Clip")[1] or node.attrs.min
  local hi = node.inputs[3] and node.inputs[3] ~= "" and init_of(inits, node, 3, "Clip")[1] or node.attrs.max
  if not lo or not hi then error("onnx.load: Clip needs both min and max (selut's Hardtanh)", 0) end
  return nn.Hardtanh(lo, hi)
end
function import.BatchNormalization(node, inits)
  local scale, bias = init_of(inits, node, 2, "BatchNormalization"), init_of(inits, node, 3, "BatchNormalization")
  local mean, var = init_of(inits, node, 4, "BatchNormalization"), init_of(inits, node, 5, "BatchNormalization")
  if (node.attrs.training_mode or 0) ~= 0 then error("onnx.load: BatchNormalization in training mode is not supported", 0) end
  local m = nn.BatchNorm1d(scale:numel(), { eps = node.attrs.epsilon or 1e-5, momentum = node.attrs.momentum and 1 - node.attrs.momentum or 0.1 })
  m.weight:copy(scale)
  m.bias:copy(bias)
  for _, b in ipairs(m:buffers()) do
    if b.name == "running_mean" then b.tensor:copy(mean) elseif b.name == "running_var" then b.tensor:copy(var) end
  end
  return m
end

--- selut.onnx.load(path) -> an nn.Sequential whose weights are parameters.
function onnx.load(path)
  if type(path) ~= "string" then error("onnx.load: path must be a string, got " .. type(path), 2) end
  local g = C._read(path)
  if #g.inputs ~= 1 or #g.outputs ~= 1 then
    error(string.format("onnx.load: %s has %d inputs and %d outputs (selut imports single-input, single-output chains)",
      path, #g.inputs, #g.outputs), 2)
  end
  local mods, cur = {}, g.inputs[1]
  for i, node in ipairs(g.nodes) do
    for k, v in pairs(node.attrs) do node.attrs[k] = snap(v) end
    if node.inputs[1] ~= cur or #node.outputs < 1 then
      error(string.format("onnx.load: %s: node %d (%s) reads '%s' but the chain's current value is '%s' (only chains of "
        .. "layers are imported, not branches)", path, i, node.op, tostring(node.inputs[1]), cur), 2)
    end
    for k = 2, #node.inputs do
      if node.inputs[k] ~= "" and not g.initializers[node.inputs[k]] then
        error(string.format("onnx.load: %s: node %d (%s) has a second activation input '%s' (only chains are imported)",
          path, i, node.op, node.inputs[k]), 2)
      end
    end
    local f = import[node.op]
    if not f then
      local k = {}
      for n in pairs(import) do k[#k + 1] = n end
      table.sort(k)
      error(string.format("onnx.load: %s: node %d is %s, which selut cannot import (supported: %s)", path, i, node.op,
        table.concat(k, ", ")), 2)
    end
    for name in pairs(node.attrs) do
      if node.attrs[name] == "<unsupported attribute type>" then
        error(string.format("onnx.load: %s: node %d (%s) has attribute '%s' of a type selut does not read", path, i,
          node.op, name), 2)
      end
    end
    local ok, m = pcall(f, node, g.initializers)
    if not ok then error(path .. ": node " .. i .. ": " .. tostring(m), 2) end
    if m then mods[#mods + 1] = m end
    cur = node.outputs[1]
  end
  if cur ~= g.outputs[1] then
    error(string.format("onnx.load: %s: the graph output '%s' is not the last node's output '%s'", path, g.outputs[1], cur), 2)
  end
  local net = nn.Sequential(mods)
  net:evaluate()
  return net
end

selut.onnx = onnx
return onnx
