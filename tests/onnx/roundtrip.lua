-- Exported selut models through the ONNX checker (python3-onnx,
-- full_check=True) and ONNX Runtime (onnxruntime-node): ORT's outputs match
-- selut's to 1e-5 relative for batches of 1 and 37. Run by tests/onnx/run.sh.
local T, nn = selut.tensor, selut.nn
local root = os.getenv("SELUT_ROOT") or "."
local dir = assert(arg[1], "usage: selut tests/onnx/roundtrip.lua DIR")
selut.manual_seed(11)

local models = {
  -- the default recipe's MLP (examples/train.lua)
  default_mlp = nn.Sequential { nn.Linear(784, 512), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(512, 256), nn.SELU(),
    nn.AlphaDropout(0.05), nn.Linear(256, 10) },
  mixed = nn.Sequential { nn.Linear(20, 16), nn.ELU(0.5), nn.BatchNorm1d(16), nn.LeakyReLU(0.2), nn.Linear(16, 8),
    nn.Tanh(), nn.Linear(8, 8, false), nn.Hardtanh(-0.5, 0.5), nn.Sigmoid(), nn.Linear(8, 4), nn.LogSoftmax() },
}
local failures, n = 0, 0
for _, name in ipairs { "default_mlp", "mixed" } do
  local net = models[name]
  nn.init.lecun_normal(net)
  net:train()
  local fin = net.modules[1].weight:size(2)
  for _ = 1, 3 do net:forward(T.randn(16, fin)) end
  net:evaluate()
  local path = dir .. "/" .. name .. ".onnx"
  local t0 = selut.clock()
  selut.onnx.export(net, T.randn(2, fin), path)
  local t1 = selut.clock()
  selut.onnx.load(path)
  local t2 = selut.clock()
  print(string.format("onnx: %s: export %.1f ms, load %.1f ms", name, (t1 - t0) * 1e3, (t2 - t1) * 1e3))
  assert(os.execute(string.format("/usr/bin/python3 -c \"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" %s", path)),
    name .. ": onnx.checker.check_model(full_check=True) failed")
  for _, batch in ipairs { 1, 37 } do
    local x = T.randn(batch, fin)
    selut.save(dir .. "/x.safetensors", { x = x })
    assert(os.execute(string.format("node %s/tests/onnx/ort_run.js %s %s/x.safetensors %s/y.safetensors", root, path, dir, dir)),
      name .. ": ONNX Runtime failed")
    local y = selut.load(dir .. "/y.safetensors").y
    local want = net:forward(x)
    local worst = 0
    for i = 1, want:size(1) do
      for j = 1, want:size(2) do
        local a, b = y:get(i, j), want:get(i, j)
        worst = math.max(worst, math.abs(a - b) / math.max(1, math.abs(b)))
      end
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
