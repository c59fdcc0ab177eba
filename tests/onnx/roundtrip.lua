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
  { name = "conv2d_mix", import = false, input = randn(3, 15, 13),
    net = nn.Sequential { nn.Conv2d(3, 8, 3, { padding = 1, stride = 2 }), nn.BatchNorm2d(8), nn.ReLU(),
      nn.Conv2d(8, 8, 2, { padding = "same", groups = 4, dilation = 1 }), nn.MaxPool2d(2, { ceil_mode = true }),
      nn.AvgPool2d(3, { stride = 2, padding = 1 }), nn.GroupNorm(2, 8), nn.Conv2d(8, 6, 1, { bias = false }),
      nn.AvgPool2d(2, { stride = 1, padding = 1, count_include_pad = false }), nn.AdaptiveAvgPool2d(1),
      nn.Flatten(), nn.Linear(6, 5), nn.LayerNorm(5) } },
  { name = "conv1d", import = false, input = randn(3, 17),
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
local failures, n = 0, 0
for _, spec in ipairs(models) do
  local name, net = spec.name, spec.net
  nn.init.lecun_normal(net)
  -- move affine parameters and running statistics away from their defaults
  for _, p in ipairs(net:parameters()) do
    if p.param:dim() == 1 then p.param:copy(T.randn(p.param:size(1)) * 0.3 + 1) end
  end
  net:train()
  for _ = 1, 3 do net:forward(spec.input(16)) end
  net:evaluate()
  local path = dir .. "/" .. name .. ".onnx"
  local t0 = selut.clock()
  selut.onnx.export(net, spec.input(2), path, { opset = spec.opset })
  local t1 = selut.clock()
  -- GroupNorm and LayerNorm below opset 17 export as decompositions, which
  -- the chain importer refuses
  if spec.import ~= false then selut.onnx.load(path) end
  local t2 = selut.clock()
  print(string.format("onnx: %s: export %.1f ms, load %.1f ms", name, (t1 - t0) * 1e3, (t2 - t1) * 1e3))
  assert(os.execute(string.format("/usr/bin/python3 -c \"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" %s", path)),
    name .. ": onnx.checker.check_model(full_check=True) failed")
  for _, batch in ipairs { 1, 37 } do
    local x = spec.input(batch)
    -- ONNX takes PyTorch's 0-based int64 indices
    selut.save(dir .. "/x.safetensors", { x = spec.int64 and x - 1 or x })
    assert(os.execute(string.format("node %s/tests/onnx/ort_run.js %s %s/x.safetensors %s/y.safetensors %s", root, path,
      dir, dir, spec.int64 and "int64" or "float")), name .. ": ONNX Runtime failed")
    local y = selut.load(dir .. "/y.safetensors").y
    local want = net:forward(x)
    assert(table.concat(y:shape(), "x") == table.concat(want:shape(), "x"),
      name .. ": ONNX Runtime's output shape " .. table.concat(y:shape(), "x") .. " vs " .. table.concat(want:shape(), "x"))
    local worst = 0
    local yf, wf = y:reshape(y:numel()), want:reshape(want:numel())
    for i = 1, wf:numel() do
      local a, b = yf[i], wf[i]
      worst = math.max(worst, math.abs(a - b) / math.max(1, math.abs(b)))
    end
    n = n + 1
    local ok = worst <= 1e-5
    if not ok then failures = failures + 1 end
    print(string.format("onnx: %s batch %d: ONNX Runtime vs selut max relative difference %.3g %s", name, batch, worst,
      ok and "ok" or "FAIL (> 1e-5)"))
  end
end
if failures > 0 then error(failures .. " of " .. n .. " ONNX Runtime comparisons failed") end
print("onnx: " .. n .. " ONNX Runtime comparisons passed, checker passed")
