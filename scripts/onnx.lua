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
function export.Linear(w, name, m, d, x, y, ctx)
  if ctx and ctx.xs and ctx.xs:dim() ~= 2 then -- Gemm takes 2-D inputs: MatMul broadcasts over the leading dims
    w:initializer(name .. ".weight_t", m.weight:t():clone())
    if not m.bias then return w:node("MatMul", { x, name .. ".weight_t" }, { y }) end
    w:node("MatMul", { x, name .. ".weight_t" }, { y .. "/matmul" })
    w:initializer(name .. ".bias", m.bias)
    return w:node("Add", { y .. "/matmul", name .. ".bias" }, { y })
  end
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

export.BatchNorm2d = export.BatchNorm1d
-- GELU (exact, erf form; ONNX's Gelu operator arrives only in opset 20):
-- 0.5 * x * (1 + Erf(x / sqrt(2)))
function export.GELU(w, name, _, _, x, y)
  w:initializer(name .. ".sqrt2", T.new { math.sqrt(2) })
  w:initializer(name .. ".one", T.new { 1 })
  w:initializer(name .. ".half", T.new { 0.5 })
  w:node("Div", { x, name .. ".sqrt2" }, { name .. "/scaled" })
  w:node("Erf", { name .. "/scaled" }, { name .. "/erf" })
  w:node("Add", { name .. "/erf", name .. ".one" }, { name .. "/erf1" })
  w:node("Mul", { x, name .. "/erf1" }, { name .. "/xerf" })
  w:node("Mul", { name .. "/xerf", name .. ".half" }, { y })
end

-- A list copy (the info tables hold 1- or 2-entry lists).
local function cat(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b or {}) do out[#out + 1] = v end
  return out
end

-- Conv (ONNX operator spec, opset 11+): W is (M x C/group x kH x kW), the
-- layout of PyTorch's and selut's weight; pads lists every dim's begin
-- then every dim's end; group splits the channels as PyTorch's groups.
function export.Conv2d(w, name, m, _, x, y)
  local ci = C._conv_info(m)
  w:initializer(name .. ".weight", m.weight)
  local inputs = { x, name .. ".weight" }
  if m.bias then
    w:initializer(name .. ".bias", m.bias)
    inputs[3] = name .. ".bias"
  end
  w:node("Conv", inputs, { y }, { kernel_shape = ci.kernel, strides = ci.stride, pads = cat(ci.padding, ci.padding_end),
    dilations = ci.dilation, group = ci.groups })
end
export.Conv1d = export.Conv2d

-- Output size of a pooling window sweep with floor rounding.
local function pooled(n, k, s, p, dil) return (n + 2 * p - dil * (k - 1) - 1) // s + 1 end

-- MaxPool/AveragePool (opset 10+ attributes kernel_shape, strides, pads,
-- ceil_mode; MaxPool's dilations). ceil_mode is written only where it adds
-- a window: ONNX (before opset 19) keeps a last window that starts in the
-- right padding where PyTorch (and selut) drop it, and AveragePool divides
-- such a partial window differently, so those cases are refused.
local function pool_attrs(what, info, xs, ys, avg)
  local attrs = { kernel_shape = info.kernel, strides = info.stride, pads = cat(info.padding, info.padding) }
  if not avg then attrs.dilations = info.dilation end
  local ceil = false
  for d = 1, 2 do
    local n = xs:size(xs:dim() - 2 + d)
    local k, s, p, dil = info.kernel[d], info.stride[d], info.padding[d], avg and 1 or info.dilation[d]
    local floor_n = pooled(n, k, s, p, dil)
    local got = ys:size(ys:dim() - 2 + d)
    if got ~= floor_n then
      local onnx_n = -((-(n + 2 * p - dil * (k - 1) - 1)) // s) + 1 -- ONNX's ceil formula
      if avg or onnx_n ~= got then
        error(string.format("onnx.export: %s with ceil_mode=true over size %d gives %d windows; ONNX's ceil_mode "
          .. "would compute %s (refused: the results would differ)", what, n, got,
          avg and "the last partial window's divisor differently" or tostring(onnx_n) .. " windows"), 0)
      end
      ceil = true
    end
  end
  if ceil then attrs.ceil_mode = 1 end
  return attrs
end
function export.MaxPool2d(w, _, m, _, x, y, ctx)
  w:node("MaxPool", { x }, { y }, pool_attrs("MaxPool2d", C._pool_info(m), ctx.xs, ctx.ys, false))
end
function export.AvgPool2d(w, _, m, _, x, y, ctx)
  local info = C._pool_info(m)
  local attrs = pool_attrs("AvgPool2d", info, ctx.xs, ctx.ys, true)
  -- count_include_pad = 1 divides by the whole window, pads included
  -- (PyTorch's default); 0 by the part inside the input.
  attrs.count_include_pad = info.count_include_pad and 1 or 0
  w:node("AveragePool", { x }, { y }, attrs)
end
-- AdaptiveAvgPool2d: to 1 x 1 it is GlobalAveragePool; when the input's
-- size is a multiple of the output's, the windows are all the same
-- (kernel = stride = in / out), an AveragePool. Other sizes overlap
-- unevenly, which no ONNX pool expresses.
function export.AdaptiveAvgPool2d(w, _, m, _, x, y, ctx)
  local out = C._pool_info(m).kernel
  local h, wd = ctx.xs:size(ctx.xs:dim() - 1), ctx.xs:size(ctx.xs:dim())
  if out[1] == 1 and out[2] == 1 then
    w:node("GlobalAveragePool", { x }, { y })
  elseif h % out[1] == 0 and wd % out[2] == 0 then
    local k = { h // out[1], wd // out[2] }
    w:node("AveragePool", { x }, { y }, { kernel_shape = k, strides = k, pads = { 0, 0, 0, 0 } })
  else
    error(string.format("onnx.export: AdaptiveAvgPool2d to (%d, %d) from (%d, %d) has no ONNX form (only output 1 x 1 "
      .. "or an input size that is a multiple of the output size)", out[1], out[2], h, wd), 0)
  end
end

-- y = (x - mean) / sqrt(var + eps) over axes (0-based), biased variance:
-- the decomposition of LayerNorm (below opset 17) and GroupNorm. ReduceMean
-- takes its axes as an attribute up to opset 17.
local function normalize(w, base, x, axes, eps, y)
  local mean, d, sq, var = base .. "/mean", base .. "/centered", base .. "/sq", base .. "/var"
  w:node("ReduceMean", { x }, { mean }, { axes = axes, keepdims = 1 })
  w:node("Sub", { x, mean }, { d })
  w:node("Mul", { d, d }, { sq })
  w:node("ReduceMean", { sq }, { var }, { axes = axes, keepdims = 1 })
  w:initializer(base .. ".eps", T.new { eps })
  w:node("Add", { var, base .. ".eps" }, { base .. "/var_eps" })
  w:node("Sqrt", { base .. "/var_eps" }, { base .. "/std" })
  w:node("Div", { d, base .. "/std" }, { y })
end

-- LayerNormalization (opset 17): normalizes over the dims from axis on,
-- Scale and B of the normalized shape; below opset 17 the decomposition.
function export.LayerNorm(w, name, m, d, x, y, ctx)
  local shape = {}
  for v in tostring(m):match("^LayerNorm%(%(([%d, ]*)%)"):gmatch("%d+") do shape[#shape + 1] = math.tointeger(v) end
  local eps = (d.hparams.eps or 1e-5) + 0.0
  local scale, shift = m.weight or T.ones(table.unpack(shape)), m.bias or T.zeros(table.unpack(shape))
  w:initializer(name .. ".weight", scale)
  w:initializer(name .. ".bias", shift)
  if ctx.opset >= 17 then
    w:node("LayerNormalization", { x, name .. ".weight", name .. ".bias" }, { y }, { axis = -#shape, epsilon = eps })
    return
  end
  local axes = {}
  for i = 1, #shape do axes[i] = i - 1 - #shape end
  normalize(w, name, x, axes, eps, name .. "/normalized")
  w:node("Mul", { name .. "/normalized", name .. ".weight" }, { name .. "/scaled" })
  w:node("Add", { name .. "/scaled", name .. ".bias" }, { y })
end

-- GroupNorm has no ONNX operator before opset 18 (and 18's differs from
-- PyTorch's in its scale shape): reshape [N x C x *] to [N x G x -1],
-- normalize over the last dim, reshape back, then the per-channel affine.
function export.GroupNorm(w, name, m, d, x, y, ctx)
  local g, c = d.hparams.num_groups, d.hparams.num_channels
  local rank = ctx.xs:dim()
  if rank < 2 or ctx.xs:size(2) ~= c then
    error("onnx.export: GroupNorm input must be [N x C x *], got a " .. rank .. "-D input", 0)
  end
  w:initializer_i64(name .. ".groups_shape", { 3 }, { 0, g, -1 })
  w:node("Reshape", { x, name .. ".groups_shape" }, { name .. "/grouped" })
  normalize(w, name, name .. "/grouped", { 2 }, (d.hparams.eps or 1e-5) + 0.0, name .. "/normalized")
  w:node("Shape", { x }, { name .. "/shape" })
  local affine = m.weight ~= nil
  local back = affine and name .. "/ungrouped" or y
  w:node("Reshape", { name .. "/normalized", name .. "/shape" }, { back })
  if affine then
    local s = { c }
    for i = 3, rank do s[i - 1] = 1 end
    w:initializer(name .. ".weight", m.weight:reshape(table.unpack(s)))
    w:initializer(name .. ".bias", m.bias:reshape(table.unpack(s)))
    w:node("Mul", { back, name .. ".weight" }, { name .. "/scaled" })
    w:node("Add", { name .. "/scaled", name .. ".bias" }, { y })
  end
end

-- Embedding as Gather(weight, indices, axis=0). ONNX's indices are 0-based
-- int64 (PyTorch's convention); selut's are 1-based floats. When the net's
-- input is the indices, the graph input is int64 and 0-based (callers pass
-- what PyTorch's model would take); indices computed inside the graph are
-- shifted and cast.
function export.Embedding(w, name, m, _, x, y, ctx)
  w:initializer(name .. ".weight", m.weight)
  local idx = x
  if ctx.is_input[x] then
    ctx.int64[x] = true
  else
    w:initializer(name .. ".one", T.new { 1 })
    w:node("Sub", { x, name .. ".one" }, { name .. "/zero_based" })
    w:node("Cast", { name .. "/zero_based" }, { name .. "/indices" }, { to = 7 }) -- TensorProto.INT64
    idx = name .. "/indices"
  end
  w:node("Gather", { name .. ".weight", idx }, { y }, { axis = 0 })
end

-- GRU and LSTM as ONNX's GRU/LSTM operators, one node per layer (ONNX
-- operator spec: X [seq x batch x input], W [dirs x G*hidden x input],
-- R [dirs x G*hidden x hidden], B [dirs x 2*G*hidden] = Wb then Rb,
-- initial_h/initial_c [dirs x batch x hidden]; outputs Y [seq x dirs x batch
-- x hidden], Y_h, Y_c). ONNX orders the gates LSTM i, o, f, c and GRU z, r,
-- h where PyTorch (and selut) order them i, f, g, o and r, z, n, so the row
-- blocks are permuted; GRU's linear_before_reset = 1 is PyTorch's form of
-- the new gate (r * (W_hn h + b_hn)). batch_first inputs are transposed in
-- and out. Layers are stacked by feeding one Y (squeezed) into the next.
local GATE_ORDER = { LSTM = { 1, 4, 2, 3 }, GRU = { 2, 1, 3 } }
function export._rnn(w, name, m, d, x, h0, c0, outs, ctx)
  local lstm = d.type == "LSTM"
  local H, L = d.hparams.hidden_size, d.hparams.num_layers or 1
  if (d.hparams.proj_size or 0) ~= 0 then error("onnx.export: LSTM with proj_size has no ONNX form", 0) end
  if ctx.xs:dim() ~= 3 then
    error("onnx.export: " .. d.type .. " on an unbatched input has no ONNX form in selut's exporter (batch it)", 0)
  end
  local bf = tostring(m):find("batch_first=true", 1, true) ~= nil
  local order, G = GATE_ORDER[d.type], lstm and 4 or 3
  local p = {}
  for _, e in ipairs(m:parameters()) do p[e.name] = e.param end
  local function reorder(t) -- [G*H x k] or [G*H] row blocks in ONNX's gate order
    local parts = {}
    for i, g in ipairs(order) do parts[i] = t:narrow(1, (g - 1) * H + 1, H) end
    return selut.cat(parts, 1)
  end
  local cur = x
  if bf then
    cur = name .. "/time_major"
    w:node("Transpose", { x }, { cur }, { perm = { 1, 0, 2 } })
  end
  local hs, cs = {}, {}
  for l = 0, L - 1 do
    local pre = name .. ".l" .. l
    local wih, whh = reorder(p["weight_ih_l" .. l]), reorder(p["weight_hh_l" .. l])
    w:initializer(pre .. ".W", wih:reshape(1, wih:size(1), wih:size(2)))
    w:initializer(pre .. ".R", whh:reshape(1, whh:size(1), whh:size(2)))
    local inputs = { cur, pre .. ".W", pre .. ".R", "", "" }
    if p["bias_ih_l" .. l] then
      local b = selut.cat({ reorder(p["bias_ih_l" .. l]), reorder(p["bias_hh_l" .. l]) }, 1)
      w:initializer(pre .. ".B", b:reshape(1, 2 * G * H))
      inputs[4] = pre .. ".B"
    end
    local function layer_state(s, what)
      if not s then return "" end
      local n = pre .. "/" .. what
      w:initializer_i64(n .. ".starts", { 1 }, { l })
      w:initializer_i64(n .. ".ends", { 1 }, { l + 1 })
      w:node("Slice", { s, n .. ".starts", n .. ".ends" }, { n })
      return n
    end
    inputs[6] = layer_state(h0, "h0")
    if lstm then inputs[7] = layer_state(c0, "c0") end
    while inputs[#inputs] == "" do inputs[#inputs] = nil end
    local y, yh, yc = pre .. "/Y", pre .. "/Y_h", pre .. "/Y_c"
    local attrs = { hidden_size = H }
    if not lstm then attrs.linear_before_reset = 1 end
    w:node(d.type, inputs, lstm and { y, yh, yc } or { y, yh }, attrs)
    w:initializer_i64(pre .. ".dir_axis", { 1 }, { 1 })
    cur = pre .. "/seq"
    w:node("Squeeze", { y, pre .. ".dir_axis" }, { cur })
    hs[#hs + 1], cs[#cs + 1] = yh, yc
  end
  if outs.out then
    if bf then w:node("Transpose", { cur }, { outs.out }, { perm = { 1, 0, 2 } })
    else w:node("Identity", { cur }, { outs.out }) end
  end
  if outs.h then w:node("Concat", hs, { outs.h }, { axis = 0 }) end
  if outs.c then w:node("Concat", cs, { outs.c }, { axis = 0 }) end
end
-- GRUCell/LSTMCell: one step of ONNX's GRU/LSTM (sequence length 1): x
-- [N x in] and the states [N x H] get a leading dim (Unsqueeze), the node
-- writes only Y_h (and Y_c), squeezed back to [N x H]. Weights as for the
-- layers (gate blocks reordered, B = [b_ih, b_hh]).
function export._cell(w, name, m, d, x, h0, c0, outs, ctx)
  local lstm = d.type == "LSTMCell"
  local H = d.hparams.hidden_size
  if ctx.xs:dim() ~= 2 then
    error("onnx.export: " .. d.type .. " on an unbatched input has no ONNX form in selut's exporter (batch it)", 0)
  end
  local order, G = GATE_ORDER[lstm and "LSTM" or "GRU"], lstm and 4 or 3
  local p = {}
  for _, e in ipairs(m:parameters()) do p[e.name] = e.param end
  local function reorder(t)
    local parts = {}
    for i, g in ipairs(order) do parts[i] = t:narrow(1, (g - 1) * H + 1, H) end
    return selut.cat(parts, 1)
  end
  w:initializer_i64(name .. ".axis0", { 1 }, { 0 })
  local function step(v, what)
    if not v then return "" end
    w:node("Unsqueeze", { v, name .. ".axis0" }, { name .. "/" .. what .. "_seq" })
    return name .. "/" .. what .. "_seq"
  end
  local wih, whh = reorder(p.weight_ih), reorder(p.weight_hh)
  w:initializer(name .. ".W", wih:reshape(1, wih:size(1), wih:size(2)))
  w:initializer(name .. ".R", whh:reshape(1, whh:size(1), whh:size(2)))
  local inputs = { step(x, "x"), name .. ".W", name .. ".R", "", "", step(h0, "h0") }
  if p.bias_ih then
    w:initializer(name .. ".B", selut.cat({ reorder(p.bias_ih), reorder(p.bias_hh) }, 1):reshape(1, 2 * G * H))
    inputs[4] = name .. ".B"
  end
  if lstm then inputs[7] = step(c0, "c0") end
  while inputs[#inputs] == "" do inputs[#inputs] = nil end
  local attrs = { hidden_size = H }
  if not lstm then attrs.linear_before_reset = 1 end
  local yh, yc = name .. "/Y_h", name .. "/Y_c"
  w:node(lstm and "LSTM" or "GRU", inputs, lstm and { "", yh, yc } or { "", yh }, attrs)
  w:node("Squeeze", { yh, name .. ".axis0" }, { outs.h })
  if lstm and outs.c then w:node("Squeeze", { yc, name .. ".axis0" }, { outs.c }) end
end
-- In a chain a cell takes the chain's value as x (zero states) and passes h on.
function export.GRUCell(w, name, m, d, x, y, ctx) export._cell(w, name, m, d, x, nil, nil, { h = y }, ctx) end
export.LSTMCell = export.GRUCell

-- In a chain a GRU/LSTM passes its output sequence on.
function export.GRU(w, name, m, d, x, y, ctx) export._rnn(w, name, m, d, x, nil, nil, { out = y }, ctx) end
export.LSTM = export.GRU

-- MultiheadAttention decomposed (no ONNX operator before opset 23): with
-- q, k, v batch first [N x L x E], Q = q Wq^T + bq split into heads
-- [N x H x L x D] (Reshape, Transpose), likewise K (transposed to
-- [N x H x D x S]) and V, P = Softmax(Q K^T / sqrt(D) + mask) over the keys,
-- out = (P V merged back to [N x L x E]) Wo^T + bo; the weights are P
-- averaged over the heads (ReduceMean) or P. in_proj_weight packs Wq, Wk,
-- Wv as rows [3E x E] (PyTorch's layout). A constant attn_mask [L x S]
-- (boolean: 1 = masked, or additive) and is_causal become an added
-- initializer; key_padding_mask [N x S] is added as 0 / -inf (boolean) or
-- as it is (additive); an attn_mask computed in the graph is refused.
function export._mha(w, name, m, d, q, k, v, opts, outs, ctx)
  local E, H = d.hparams.embed_dim, d.hparams.num_heads
  local D = E // H
  opts = opts or {}
  if ctx.xs:dim() ~= 3 then
    error("onnx.export: MultiheadAttention on an unbatched input has no ONNX form in selut's exporter (batch it)", 0)
  end
  local bf = tostring(m):find("batch_first=true", 1, true) ~= nil
  local p = {}
  for _, e in ipairs(m:parameters()) do p[e.name] = e.param end
  local L, S = ctx.xs:size(bf and 2 or 1), ctx.ks:size(bf and 2 or 1)
  local function bfirst(x, what)
    if bf then return x end
    w:node("Transpose", { x }, { name .. "/" .. what .. "_bf" }, { perm = { 1, 0, 2 } })
    return name .. "/" .. what .. "_bf"
  end
  w:initializer_i64(name .. ".heads_shape", { 4 }, { 0, 0, H, D })
  local function project(x, i, what, perm)
    local wt = p.in_proj_weight:narrow(1, (i - 1) * E + 1, E):t():clone() -- [E x E], x @ W^T
    w:initializer(name .. ".W" .. what, wt)
    local y = name .. "/" .. what .. "_proj"
    w:node("MatMul", { x, name .. ".W" .. what }, { y })
    if p.in_proj_bias then
      w:initializer(name .. ".b" .. what, p.in_proj_bias:narrow(1, (i - 1) * E + 1, E):clone())
      w:node("Add", { y, name .. ".b" .. what }, { y .. "_b" })
      y = y .. "_b"
    end
    w:node("Reshape", { y, name .. ".heads_shape" }, { name .. "/" .. what .. "_heads" })
    w:node("Transpose", { name .. "/" .. what .. "_heads" }, { name .. "/" .. what .. "_h" }, { perm = perm })
    return name .. "/" .. what .. "_h"
  end
  local qh = project(bfirst(q, "q"), 1, "q", { 0, 2, 1, 3 })
  local kh = project(k == q and bfirst(q, "q") or bfirst(k, "k"), 2, "k", { 0, 2, 3, 1 })
  local vh = project(v == q and bfirst(q, "q") or v == k and bfirst(k, "k") or bfirst(v, "v"), 3, "v", { 0, 2, 1, 3 })
  w:node("MatMul", { qh, kh }, { name .. "/scores_raw" })
  w:initializer(name .. ".scale", T.new { 1 / math.sqrt(D) })
  w:node("Mul", { name .. "/scores_raw", name .. ".scale" }, { name .. "/scores" })
  local scores = name .. "/scores"
  local mask = opts.attn_mask
  if mask ~= nil and not T.is_tensor(mask) then
    error("onnx.export: MultiheadAttention with an attn_mask computed from the inputs has no ONNX form in selut's exporter", 0)
  end
  if mask and (mask:dim() ~= 2 or mask:size(1) ~= L or mask:size(2) ~= S) then
    error("onnx.export: MultiheadAttention with an attn_mask other than [L x S] has no ONNX form in selut's exporter", 0)
  end
  if opts.is_causal then
    local c = T.zeros(L, S)
    for i = 1, L do for j = i + 1, S do c:set(i, j, -math.huge) end end
    mask = mask and (mask + c) or c
  elseif mask then
    local bool = opts.mask_type == "bool" or (opts.mask_type ~= "float" and (mask:eq(0) + mask:eq(1)):min() == 1)
    if bool then mask = selut.where(mask:gt(0.5), -math.huge, 0) end
  end
  if mask then
    w:initializer(name .. ".mask", mask)
    w:node("Add", { scores, name .. ".mask" }, { name .. "/masked" })
    scores = name .. "/masked"
  end
  -- key_padding_mask [N x S] (a graph input, a value computed from one, or
  -- a stored tensor: ctx.kpm_name) broadcast over heads and queries as
  -- [N x 1 x 1 x S]; boolean (1 = ignore the key; read from the example's
  -- values or mask_type, as selut's layer reads it) becomes 0 / -inf
  if opts.key_padding_mask ~= nil then
    local kpm = ctx.kpm
    if kpm:dim() ~= 2 or kpm:size(2) ~= S then
      error("onnx.export: MultiheadAttention with a key_padding_mask other than [N x S] has no ONNX form in selut's "
        .. "exporter", 0)
    end
    w:initializer_i64(name .. ".kpm_axes", { 2 }, { 1, 2 })
    local k4 = name .. "/kpm4"
    w:node("Unsqueeze", { ctx.kpm_name, name .. ".kpm_axes" }, { k4 })
    local bool = opts.mask_type == "bool" or (opts.mask_type ~= "float" and (kpm:eq(0) + kpm:eq(1)):min() == 1)
    if bool then
      w:node("Cast", { k4 }, { name .. "/kpm_bool" }, { to = 9 }) -- TensorProto.BOOL
      w:initializer(name .. ".neg_inf", T.new { -math.huge })
      w:initializer(name .. ".zero", T.new { 0 })
      w:node("Where", { name .. "/kpm_bool", name .. ".neg_inf", name .. ".zero" }, { name .. "/kpm_add" })
      k4 = name .. "/kpm_add"
    end
    w:node("Add", { scores, k4 }, { name .. "/padded" })
    scores = name .. "/padded"
  end
  local probs = name .. "/probs"
  w:node("Softmax", { scores }, { probs }, { axis = -1 })
  w:node("MatMul", { probs, vh }, { name .. "/ctx_heads" })
  w:node("Transpose", { name .. "/ctx_heads" }, { name .. "/ctx_t" }, { perm = { 0, 2, 1, 3 } })
  w:initializer_i64(name .. ".merge_shape", { 3 }, { 0, 0, E })
  w:node("Reshape", { name .. "/ctx_t", name .. ".merge_shape" }, { name .. "/ctx" })
  w:initializer(name .. ".Wo", p["out_proj.weight"]:t():clone())
  local o = name .. "/out_proj"
  w:node("MatMul", { name .. "/ctx", name .. ".Wo" }, { o })
  if p["out_proj.bias"] then
    w:initializer(name .. ".bo", p["out_proj.bias"])
    w:node("Add", { o, name .. ".bo" }, { o .. "_b" })
    o = o .. "_b"
  end
  if outs.out then
    if bf then w:node("Identity", { o }, { outs.out })
    else w:node("Transpose", { o }, { outs.out }, { perm = { 1, 0, 2 } }) end
  end
  if outs.weights then
    if opts.average_attn_weights == false then w:node("Identity", { probs }, { outs.weights })
    else w:node("ReduceMean", { probs }, { outs.weights }, { axes = { 1 }, keepdims = 0 }) end
  end
end
-- In a chain: self-attention, its output passed on.
function export.MultiheadAttention(w, name, m, d, x, y, ctx)
  ctx.ks = ctx.xs
  export._mha(w, name, m, d, x, x, x, nil, { out = y }, ctx)
end

-- A chain: an nn.Sequential of layers (nested ones flatten) or one layer.
local function is_chain(net)
  if type(net) == "table" and getmetatable(net) == getmetatable(nn.Sequential {}) then
    for _, l in ipairs(layers_of(net)) do
      if type(l.module) == "table" and rawget(getmetatable(l.module) or {}, "__classname") then
        return false -- a class module inside
      end
    end
    return true
  end
  return nn.describe(net) ~= nil
end

-- Nets that are not a chain (nn.class nets, several inputs): traced through
-- their forward (scripts/onnx_trace.lua).
local function export_traced(net, x, path, opts, opset)
  local trace = require "selut.onnx_trace"
  local names = opts.names or {}
  local inputs = T.is_tensor(x) and { x } or x
  local in_names = {}
  for i, t in ipairs(inputs) do
    if not T.is_tensor(t) then error("onnx.export: example input " .. i .. " must be a selut.Tensor, got " .. type(t), 3) end
    in_names[i] = #inputs == 1 and (names.input or "input") or (names.inputs and names.inputs[i]) or ("input" .. i)
  end
  if type(net) ~= "table" or type(net.forward) ~= "function" then
    error("onnx.export: net must be a selut module, got " .. type(net), 3)
  end
  local w = C._writer(opset)
  local was_training = net.training
  if net.evaluate then net:evaluate() end
  local ok, res, ctx = pcall(trace.run, w, export, net, inputs, in_names, net:parameters(), opset)
  if was_training and net.train then net:train() end
  if not ok then error(res, 3) end
  local function dims(t, batch) -- batch: the batch axis (0-based) or false
    local s = t:shape()
    if opts.dynamic_batch ~= false and batch then s[batch + 1] = -1 end
    return s
  end
  for i, t in ipairs(inputs) do
    w:input(in_names[i], dims(t, 0), ctx.int64[in_names[i]] and "int64" or "float")
  end
  for i = 1, res.n do
    local v = res[i]
    if not trace.is_value(v) then
      error("onnx.export: result " .. i .. " of the forward is a " .. (T.is_tensor(v) and "tensor that does not depend "
        .. "on the inputs" or type(v)) .. " (each result must be a tensor computed from the inputs)", 3)
    end
    local oname = res.n == 1 and (names.output or "output") or (names.outputs and names.outputs[i]) or ("output" .. i)
    w:node("Identity", { v._n }, { oname })
    w:output(oname, dims(v._t, v._b))
  end
  w:save(path)
end

--- selut.onnx.export(net, example_input, path[, opts]): opts.opset (15),
--- opts.names = {input = "input", output = "output"}, opts.dynamic_batch (true).
function onnx.export(net, x, path, opts)
  opts = opts or {}
  if not T.is_tensor(x) and not (type(x) == "table" and #x > 0) then
    error("onnx.export: example_input must be a selut.Tensor (or a list of them, one per input), got " .. type(x), 2)
  end
  if type(path) ~= "string" then error("onnx.export: path must be a string, got " .. type(path), 2) end
  local opset = opts.opset or 15
  if math.type(opset) ~= "integer" or opset < 13 or opset > 17 then
    error("onnx.export: opset must be an integer in 13..17, got " .. tostring(opset), 2)
  end
  local names = opts.names or {}
  local in_name, out_name = names.input or "input", names.output or "output"
  if not is_chain(net) or type(x) == "table" and not T.is_tensor(x) then
    return export_traced(net, x, path, opts, opset)
  end
  local w = C._writer(opset)
  local cur = in_name
  local layers = layers_of(net)
  -- evaluation mode; each layer runs on the example so emitters see shapes
  local was_training = net.training
  if net.evaluate then net:evaluate() end
  local ctx = { opset = opset, is_input = { [in_name] = true }, int64 = {} }
  local xs = x
  local ok, err = pcall(function()
    for i, l in ipairs(layers) do
      local d = nn.describe(l.module)
      local emit = d and export[d.type]
      if not emit then
        local what = d and d.type or (type(l.module) == "table" and (l.module.name or "a Lua module")) or type(l.module)
        error(string.format("onnx.export: layer %s (%s) has no ONNX form in selut's exporter (supported: %s)",
          l.name == "" and "(the net)" or l.name, what, table.concat((function()
            local k = {}
            for n in pairs(export) do if not n:match("^_") then k[#k + 1] = n end end
            table.sort(k)
            return k
          end)(), ", ")), 0)
      end
      local ys = l.module:forward(xs)
      ctx.xs, ctx.ys = xs, ys
      local y = i == #layers and out_name or ("/" .. (l.name ~= "" and l.name or "0") .. "/" .. d.type)
      emit(w, l.name ~= "" and l.name or "0", l.module, d, cur, y, ctx)
      cur, xs = y, ys:clone()
    end
  end)
  if was_training and net.train then net:train() end
  if not ok then error(err, 2) end
  if #layers == 0 then w:node("Identity", { in_name }, { out_name }) end
  -- shapes: the batch dim symbolic ("N") unless dynamic_batch == false
  local y = xs
  local function dims(t)
    local s = t:shape()
    if opts.dynamic_batch ~= false then s[1] = -1 end
    return s
  end
  w:input(in_name, dims(x), ctx.int64[in_name] and "int64" or "float")
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
function import.BatchNormalization(node, inits, rank)
  local scale, bias = init_of(inits, node, 2, "BatchNormalization"), init_of(inits, node, 3, "BatchNormalization")
  local mean, var = init_of(inits, node, 4, "BatchNormalization"), init_of(inits, node, 5, "BatchNormalization")
  if (node.attrs.training_mode or 0) ~= 0 then error("onnx.load: BatchNormalization in training mode is not supported", 0) end
  local m = (rank == 4 and nn.BatchNorm2d or nn.BatchNorm1d)(scale:numel(), { eps = node.attrs.epsilon or 1e-5, momentum = node.attrs.momentum and 1 - node.attrs.momentum or 0.1 })
  m.weight:copy(scale)
  m.bias:copy(bias)
  for _, b in ipairs(m:buffers()) do
    if b.name == "running_mean" then b.tensor:copy(mean) elseif b.name == "running_var" then b.tensor:copy(var) end
  end
  return m
end

-- Conv/pool attributes: auto_pad other than NOTSET/VALID and pads that
-- differ between a dim's two ends have no selut form (its layers pad both
-- ends alike).
local function spatial(node, nd)
  local a = node.attrs
  local ap = a.auto_pad or "NOTSET"
  if ap ~= "NOTSET" and ap ~= "VALID" then
    error(node.op .. " with auto_pad=" .. ap .. " is not supported (only NOTSET with explicit pads, or VALID)", 0)
  end
  local pads = a.pads or {}
  local pad = {}
  for d = 1, nd do
    local b, e = pads[d] or 0, pads[nd + d] or 0
    if b ~= e then
      error(string.format("%s with pads %s is not supported (each dim must pad both ends alike)", node.op,
        table.concat(pads, ",")), 0)
    end
    pad[d] = b
  end
  local ones = {}
  for d = 1, nd do ones[d] = 1 end
  return pad, a.strides or ones, a.dilations or ones
end
function import.Conv(node, inits)
  local wt = init_of(inits, node, 2, "Conv")
  local nd = wt:dim() - 2
  if nd ~= 1 and nd ~= 2 then error("Conv over " .. nd .. " spatial dims is not supported (Conv1d, Conv2d)", 0) end
  local k = {}
  for d = 1, nd do k[d] = wt:size(2 + d) end
  if node.attrs.kernel_shape and table.concat(node.attrs.kernel_shape, ",") ~= table.concat(k, ",") then
    error("Conv kernel_shape " .. table.concat(node.attrs.kernel_shape, ",") .. " differs from the weight's " ..
      table.concat(k, ","), 0)
  end
  -- selut's padding = "same" with an even kernel pads one more at the end
  -- (its export writes such pads): begin + end = dilation * (k - 1) with
  -- stride 1, end = begin + 1 for some dim
  local pads, same = node.attrs.pads, false
  if pads and #pads == 2 * nd then
    same = true
    local uneven = false
    for d = 1, nd do
      local dl = node.attrs.dilations and node.attrs.dilations[d] or 1
      local st = node.attrs.strides and node.attrs.strides[d] or 1
      uneven = uneven or pads[nd + d] ~= pads[d]
      same = same and st == 1 and pads[d] + pads[nd + d] == dl * (k[d] - 1) and pads[nd + d] - pads[d] <= 1
        and pads[nd + d] >= pads[d]
    end
    same = same and uneven
  end
  local pad, stride, dil
  if same then
    local sym = {}
    for d = 1, nd do sym[d], sym[nd + d] = pads[d], pads[d] end
    node.attrs.pads = sym
    pad, stride, dil = spatial(node, nd)
    node.attrs.pads = pads
    pad = "same"
  else
    pad, stride, dil = spatial(node, nd)
  end
  local g = node.attrs.group or 1
  local has_bias = node.inputs[3] ~= nil and node.inputs[3] ~= ""
  local m = (nd == 2 and nn.Conv2d or nn.Conv1d)(wt:size(2) * g, wt:size(1), nd == 2 and k or k[1],
    { stride = nd == 2 and stride or stride[1], padding = (nd == 2 or pad == "same") and pad or pad[1],
      dilation = nd == 2 and dil or dil[1], groups = g, bias = has_bias })
  m.weight:copy(wt)
  if has_bias then m.bias:copy(init_of(inits, node, 3, "Conv")) end
  return m, nd + 2
end
local function pool2d(node)
  local k = node.attrs.kernel_shape
  if not k or #k ~= 2 then error(node.op .. " over " .. (k and #k or "?") .. " spatial dims is not supported (2-D pools)", 0) end
  if #node.outputs > 1 and node.outputs[2] ~= "" then error(node.op .. " with an Indices output is not supported", 0) end
  local pad, stride, dil = spatial(node, 2)
  return k, pad, stride, dil
end
function import.MaxPool(node)
  local k, pad, stride, dil = pool2d(node)
  return nn.MaxPool2d(k, { stride = stride, padding = pad, dilation = dil, ceil_mode = (node.attrs.ceil_mode or 0) ~= 0 })
end
function import.AveragePool(node)
  local k, pad, stride = pool2d(node)
  if (node.attrs.ceil_mode or 0) ~= 0 then
    error("AveragePool with ceil_mode=1 is not supported (its partial windows' divisor differs from selut's)", 0)
  end
  return nn.AvgPool2d(k, { stride = stride, padding = pad, count_include_pad = (node.attrs.count_include_pad or 0) ~= 0 })
end
function import.GlobalAveragePool(_, _, rank)
  if rank and rank ~= 4 then error("GlobalAveragePool over a " .. rank .. "-D input is not supported (4-D)", 0) end
  return nn.AdaptiveAvgPool2d(1)
end
function import.LayerNormalization(node, inits, rank)
  local scale = init_of(inits, node, 2, "LayerNormalization")
  local axis = node.attrs.axis or -1
  if #node.outputs > 1 then error("LayerNormalization with Mean/InvStdDev outputs is not supported", 0) end
  if axis >= 0 and rank then axis = axis - rank end
  if axis ~= -scale:dim() then
    error(string.format("LayerNormalization over axis %d with a %d-D scale is not supported (the scale must cover "
      .. "the dims from axis to the last)", node.attrs.axis or -1, scale:dim()), 0)
  end
  local has_bias = node.inputs[3] ~= nil and node.inputs[3] ~= ""
  local m = nn.LayerNorm(scale:shape(), { eps = node.attrs.epsilon or 1e-5 })
  m.weight:copy(scale)
  if has_bias then m.bias:copy(init_of(inits, node, 3, "LayerNormalization")) else m.bias:zero() end
  return m
end
-- Gather of rows of a stored table: an Embedding. The imported layer takes
-- selut's 1-based indices (ONNX's are 0-based).
function import.Gather(node, inits)
  local wt = inits[node.inputs[1]]
  if not wt or (node.attrs.axis or 0) ~= 0 or wt:dim() ~= 2 then
    error("Gather is imported only as an Embedding: rows (axis 0) of a 2-D initializer", 0)
  end
  local m = nn.Embedding(wt:size(1), wt:size(2))
  m.weight:copy(wt)
  return m, nil
end

-- A chain: one input, one output, each node reading the previous node's
-- output (its other inputs stored weights) with an op the chain importer
-- maps to a layer. Anything else goes to the graph importer.
local function is_chain_graph(g)
  if #g.inputs ~= 1 or #g.outputs ~= 1 then return false end
  local cur = g.inputs[1]
  for i, node in ipairs(g.nodes) do
    local x = node.inputs[1]
    if node.op == "Gather" and node.inputs[2] == cur and i == 1 then x = cur end
    if x ~= cur or #node.outputs < 1 or not import[node.op] then return false end
    for k = 2, #node.inputs do
      local name = node.inputs[k]
      if name ~= "" and not g.initializers[name] and not (node.op == "Gather" and name == cur) then return false end
    end
    cur = node.outputs[1]
  end
  return cur == g.outputs[1]
end

local function supported_ops()
  local k, seen = {}, {}
  for n in pairs(import) do k[#k + 1], seen[n] = n, true end
  for n in pairs(require("selut.onnx_graph").ops) do
    if not n:match("^_") and not seen[n] then k[#k + 1] = n end
  end
  for _, n in ipairs { "Constant", "GRU", "LSTM", "Erf (in GELU)" } do if not seen[n] then k[#k + 1] = n end end
  table.sort(k)
  return table.concat(k, ", ")
end

--- selut.onnx.load(path) -> an nn.Sequential (a chain) or an nn.class
--- module (any other graph) whose weights are parameters.
function onnx.load(path)
  if type(path) ~= "string" then error("onnx.load: path must be a string, got " .. type(path), 2) end
  local g = C._read(path)
  if not is_chain_graph(g) then
    local ok, net = pcall(require("selut.onnx_graph").build, g, path, import, supported_ops)
    if not ok then error(net, 2) end
    return net
  end
  if #g.inputs ~= 1 or #g.outputs ~= 1 then
    error(string.format("onnx.load: %s has %d inputs and %d outputs (selut imports single-input, single-output chains)",
      path, #g.inputs, #g.outputs), 2)
  end
  local mods, cur, rank = {}, g.inputs[1], nil
  for i, node in ipairs(g.nodes) do
    for k, v in pairs(node.attrs) do node.attrs[k] = snap(v) end
    if node.op == "Gather" and node.inputs[2] == cur and i == 1 then
      node.inputs[1], node.inputs[2] = node.inputs[2], node.inputs[1] -- the chain value is the indices
    end
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
    if node.op == "Gather" then node.inputs[1], node.inputs[2] = node.inputs[2], node.inputs[1] end
    local ok, m, r = pcall(f, node, g.initializers, rank)
    if not ok then error(path .. ": node " .. i .. ": " .. tostring(m), 2) end
    -- the rank of the chain's value, where a node fixes it (BatchNormalization
    -- and LayerNormalization read it)
    if r then rank = r elseif node.op == "Gemm" or node.op == "Flatten" then rank = 2 end
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
