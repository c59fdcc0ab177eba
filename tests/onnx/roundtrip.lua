-- Exported selut models through the ONNX checker (python3-onnx,
-- full_check=True) and ONNX Runtime (onnxruntime-node): ORT's outputs match
-- selut's to 1e-5 relative for batches of 1 and 37. Run by tests/onnx/run.sh.
local T, nn = selut.tensor, selut.nn
local root = os.getenv("SELUT_ROOT") or "."
local dir = assert(arg[1], "usage: selut tests/onnx/roundtrip.lua DIR")
selut.manual_seed(11)

local function randn(...)
  local s = { ... }
  return function(b) return T.randn(b, table.unpack(s)) end
end
-- 1-based selut indices in [1, n]
local function tokens(n, len)
  return function(b) return (T.rand(b, len) * n):floor():clamp(0, n - 1) + 1 end
end

local models = {
  -- the default recipe's MLP (examples/train.lua)
  { name = "default_mlp", input = randn(784),
    net = nn.Sequential { nn.Linear(784, 512), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(512, 256), nn.SELU(),
      nn.AlphaDropout(0.05), nn.Linear(256, 10) } },
  { name = "mixed", input = randn(20),
    net = nn.Sequential { nn.Linear(20, 16), nn.ELU(0.5), nn.BatchNorm1d(16), nn.LeakyReLU(0.2), nn.Linear(16, 8),
      nn.Tanh(), nn.Linear(8, 8, false), nn.Hardtanh(-0.5, 0.5), nn.Sigmoid(), nn.Linear(8, 4), nn.LogSoftmax() } },
  -- examples/cnn.lua's net (default sizes)
  { name = "cnn", input = randn(1, 28, 28),
    net = nn.Sequential { nn.Conv2d(1, 32, 3, { padding = 1 }), nn.SELU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 3, { padding = 1 }), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(),
      nn.Linear(64 * 49, 128), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(128, 10) } },
  -- strides, groups, dilation, 'same' with an even kernel (one more pad at the end), every pool and norm
  { name = "conv2d_mix", input = randn(3, 15, 13),
    net = nn.Sequential { nn.Conv2d(3, 8, 3, { padding = 1, stride = 2 }), nn.BatchNorm2d(8), nn.ReLU(),
      nn.Conv2d(8, 8, 2, { padding = "same", groups = 4, dilation = 1 }), nn.MaxPool2d(2, { ceil_mode = true }),
      nn.AvgPool2d(3, { stride = 2, padding = 1 }), nn.GroupNorm(2, 8), nn.Conv2d(8, 6, 1, { bias = false }),
      nn.AvgPool2d(2, { stride = 1, padding = 1, count_include_pad = false }), nn.AdaptiveAvgPool2d(1),
      nn.Flatten(), nn.Linear(6, 5), nn.LayerNorm(5) } },
  { name = "conv1d", input = randn(3, 17),
    net = nn.Sequential { nn.Conv1d(3, 6, 3, { stride = 2, padding = 1 }), nn.GroupNorm(3, 6), nn.ELU(),
      nn.Conv1d(6, 4, 3, { dilation = 2, groups = 2, bias = false }), nn.LayerNorm({ 4, 5 }), nn.Flatten(),
      nn.Linear(20, 3) } },
  { name = "layernorm_opset17", input = randn(6, 4), opset = 17,
    net = nn.Sequential { nn.LayerNorm({ 6, 4 }), nn.Flatten(), nn.Linear(24, 3), nn.LayerNorm(3) } },
  { name = "embedding", input = tokens(20, 5), int64 = true, opset = 17,
    net = nn.Sequential { nn.Embedding(20, 6), nn.LayerNorm(6), nn.Flatten(), nn.Linear(30, 3) } },
  { name = "adaptive_multiple", input = randn(2, 8, 6),
    net = nn.Sequential { nn.AdaptiveAvgPool2d({ 4, 3 }), nn.Flatten(), nn.Linear(24, 2) } },
}

-- Nets that are not a chain, traced through their forward.
local F = nn.F
-- examples/resnet_mlp.lua's net (4 blocks of 2 x 512 SELU), its own definition
local ResMLP = dofile(root .. "/examples/resnet_mlp_net.lua")
models[#models + 1] = { name = "resnet_mlp", input = randn(784), net = ResMLP(4, 512, 0.05) }

-- two inputs and the tensor ops models use
local TwoIn = nn.class("TwoIn")
function TwoIn:init()
  self.a = nn.Linear(6, 8)
  self.b = nn.Sequential { nn.Linear(4, 8), nn.GELU() }
  self.norm = nn.LayerNorm(8)
  self.scale = nn.Parameter(T.randn(8))
  self.head = nn.Linear(16, 3)
end
function TwoIn:forward(x, z)
  local ha, hb = self.a(x), self.b(z)
  local h = selut.cat({ ha * self.scale, hb - ha }, 2)             -- Concat
  local g = h:view(h:size(1), 4, 4):transpose(2, 3):reshape(h:size(1), 16) -- Reshape, Transpose
  local m = g:narrow(2, 3, 8):mean(2, true)                         -- Slice, ReduceMean
  local s = (g / 4):sum(2, true):sigmoid()                          -- Div, ReduceSum, Sigmoid
  local gate = selut.where(g:gt(0), g, g * 0.1)                     -- Greater, Where
  local mix = gate:clamp(-2, 2) + m - s:exp():sqrt()                -- Clip, Exp, Sqrt
  local p = selut.matmul(mix:view(-1, 4, 4), mix:view(-1, 4, 4):transpose(2, 3)):flatten(2) -- MatMul
  local y = self.head(p + F.tanh(g) + F.elu(mix, 0.5))
  local u = self.norm(ha) :unsqueeze(2):squeeze(2)
  return F.log_softmax(y + u:narrow(2, 1, 3):abs():neg(), 2)
end
models[#models + 1] = { name = "two_inputs", input = { randn(6), randn(4) }, net = TwoIn() }


-- examples/sequence.lua's model (GRU over 28 rows, batch_first, then the
-- SELU head on the top layer's h_n), here with 2 layers
local Seq = nn.class("Seq")
function Seq:init(layers)
  self.layers = layers
  self.gru = nn.GRU(28, 32, { num_layers = layers, batch_first = true })
  self.head = nn.Sequential { nn.Linear(32, 16), nn.SELU(), nn.Linear(16, 10) }
end
function Seq:forward(x)
  local _, h_n = self.gru(x)
  return self.head(h_n[self.layers])
end
models[#models + 1] = { name = "gru_sequence", input = randn(28, 28), net = Seq(2) }
-- an LSTM (time-major, 2 layers) with its initial states as inputs
local Lstm = nn.class("Lstm")
function Lstm:init() self.lstm = nn.LSTM(5, 6, { num_layers = 2 }) end
function Lstm:forward(x, h0, c0)
  local out, h, c = self.lstm(x:transpose(1, 2), h0:transpose(1, 2), c0:transpose(1, 2))
  return out:mean(1) + h[2] - c[1]
end
models[#models + 1] = { name = "lstm_states", input = { randn(7, 5), randn(2, 6), randn(2, 6) },
  net = Lstm() }
-- GRU and LSTM inside a chain pass their output sequence on
models[#models + 1] = { name = "rnn_chain", input = randn(6, 4),
  net = nn.Sequential { nn.LSTM(4, 5, { batch_first = true }), nn.GRU(5, 3, { batch_first = true, bias = false }),
    nn.Flatten(), nn.Linear(18, 2) } }

-- GRUCell unrolled over the rows of the input, an LSTMCell with its states
-- as inputs; and a GRUCell in a chain (zero state)
local Cells = nn.class("Cells")
function Cells:init()
  self.gru = nn.GRUCell(4, 6)
  self.lstm = nn.LSTMCell(6, 5, { bias = false })
end
function Cells:forward(x, h0, c0)
  local h
  for t = 1, 3 do h = self.gru(x:select(2, t), h) end
  local hl, cl = self.lstm(h, h0, c0)
  return hl + cl
end
models[#models + 1] = { name = "cells", input = { randn(3, 4), randn(5), randn(5) }, net = Cells() }
models[#models + 1] = { name = "cell_chain", input = randn(4),
  net = nn.Sequential { nn.Linear(4, 6), nn.GRUCell(6, 3), nn.Tanh() } }

-- an attention block: self-attention with a causal mask, residual, LayerNorm,
-- feed-forward; and cross-attention (time-major) with a boolean mask
local Attn = nn.class("Attn")
function Attn:init()
  self.self_attn = nn.MultiheadAttention(16, 4, { batch_first = true })
  self.cross = nn.MultiheadAttention(16, 2)
  self.norm1, self.norm2 = nn.LayerNorm(16), nn.LayerNorm(16)
  self.ff = nn.Sequential { nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16) }
  self.mask = T.zeros(5, 3)
  self.mask:set(2, 3, 1)
end
function Attn:forward(x, mem)
  local a = self.self_attn(x, x, x, { is_causal = true, need_weights = false })
  local h = self.norm1(x + a)
  local c, wts = self.cross(h:transpose(1, 2), mem:transpose(1, 2), mem:transpose(1, 2), { attn_mask = self.mask })
  h = self.norm2(h + c:transpose(1, 2))
  return (h + self.ff(h)):flatten(2) + wts:sum(3):mean(2, true)
end
models[#models + 1] = { name = "attention_block", input = { randn(5, 16), randn(3, 16) }, net = Attn() }
-- key_padding_mask as a graph input (1 = ignore the key; key 1 is never
-- ignored, so no row is all masked), with the weights per head
local Pad = nn.class("Pad")
function Pad:init() self.attn = nn.MultiheadAttention(8, 2, { batch_first = true }) end
function Pad:forward(x, mem, pad)
  local out, wts = self.attn(x, mem, mem, { key_padding_mask = pad, average_attn_weights = false })
  return out:flatten(2) + wts:sum(2):flatten(2):sum(2, true)
end
local function padding(s)
  return function(b)
    local m = T.rand(b, s):gt(0.6)
    m:narrow(2, 1, 1):fill_(0)
    return m
  end
end
models[#models + 1] = { name = "attention_padding", input = { randn(3, 8), randn(5, 8), padding(5) }, net = Pad() }
models[#models + 1] = { name = "attention_chain", input = randn(4, 8),
  net = nn.Sequential { nn.MultiheadAttention(8, 2, { batch_first = true }), nn.Flatten(), nn.Linear(32, 3) } }

local failures, n = 0, 0
for _, spec in ipairs(models) do
  local name, net = spec.name, spec.net
  nn.init.lecun_normal(net)
  -- move affine parameters and running statistics away from their defaults
  for _, p in ipairs(spec.net.__classname and {} or net:parameters()) do
    if p.param:dim() == 1 then p.param:copy(T.randn(p.param:size(1)) * 0.3 + 1) end
  end
  net:train()
  local function example(b)
    if type(spec.input) == "function" then return spec.input(b) end
    local xs = {}
    for i, f in ipairs(spec.input) do xs[i] = f(b) end
    return xs
  end
  if not spec.net.__classname then for _ = 1, 3 do net:forward(example(16)) end end
  net:evaluate()
  local path = dir .. "/" .. name .. ".onnx"
  local t0 = selut.clock()
  selut.onnx.export(net, example(2), path, { opset = spec.opset })
  local t1 = selut.clock()
  -- every export imports back: chains as an nn.Sequential, the rest
  -- (decompositions, traced nets) through the graph importer
  local imported = selut.onnx.load(path)
  local t2 = selut.clock()
  print(string.format("onnx: %s: export %.1f ms, load %.1f ms", name, (t1 - t0) * 1e3, (t2 - t1) * 1e3))
  assert(os.execute(string.format("/usr/bin/python3 -c \"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" %s", path)),
    name .. ": onnx.checker.check_model(full_check=True) failed")
  for _, batch in ipairs { 1, 37 } do
    local x = example(batch)
    -- ONNX takes PyTorch's 0-based int64 indices
    local feed = T.is_tensor(x) and { x = spec.int64 and x - 1 or x } or {}
    if not T.is_tensor(x) then for i, xi in ipairs(x) do feed["x" .. i] = xi end end
    selut.save(dir .. "/x.safetensors", feed)
    assert(os.execute(string.format("node %s/tests/onnx/ort_run.js %s %s/x.safetensors %s/y.safetensors %s", root, path,
      dir, dir, spec.int64 and "int64" or "float,float,float")), name .. ": ONNX Runtime failed")
    local y = selut.load(dir .. "/y.safetensors").y
    local want = selut.no_grad(function() return T.is_tensor(x) and net:forward(x) or net(table.unpack(x)) end)
    assert(table.concat(y:shape(), "x") == table.concat(want:shape(), "x"),
      name .. ": ONNX Runtime's output shape " .. table.concat(y:shape(), "x") .. " vs " .. table.concat(want:shape(), "x"))
    local worst = 0
    local yf, wf = y:reshape(y:numel()), want:reshape(want:numel())
    for i = 1, wf:numel() do
      local a, b = yf[i], wf[i]
      worst = math.max(worst, math.abs(a - b) / math.max(1, math.abs(b)))
    end
    -- the imported net against the original
    local back = selut.no_grad(function() return T.is_tensor(x) and imported:forward(x) or imported(table.unpack(x)) end)
    local iworst = 0
    local bf = back:reshape(back:numel())
    assert(bf:numel() == wf:numel(), name .. ": the imported net's output has " .. bf:numel() .. " elements, want " .. wf:numel())
    for i = 1, wf:numel() do iworst = math.max(iworst, math.abs(bf[i] - wf[i]) / math.max(1, math.abs(wf[i]))) end
    n = n + 2
    local ok = worst <= 1e-5
    if iworst > 1e-5 then failures = failures + 1 end
    print(string.format("onnx: %s batch %d: imported vs selut max relative difference %.3g %s", name, batch, iworst,
      iworst <= 1e-5 and "ok" or "FAIL (> 1e-5)"))
    if not ok then failures = failures + 1 end
    print(string.format("onnx: %s batch %d: ONNX Runtime vs selut max relative difference %.3g %s", name, batch, worst,
      ok and "ok" or "FAIL (> 1e-5)"))
  end
end
if failures > 0 then error(failures .. " of " .. n .. " ONNX Runtime comparisons failed") end
print("onnx: " .. n .. " ONNX Runtime comparisons passed, checker passed")
