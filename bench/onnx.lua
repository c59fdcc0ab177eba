-- ONNX export and load time of the default recipe's MLP (784-512-256-10,
-- SELU, AlphaDropout; 1.1 MB of weights): the median of 21 runs each, the
-- file on /dev/shm when it exists (so the disk's fsync is not measured),
-- next to torch.onnx.export when /usr/bin/python3 has torch (same machine, same run).
--   build/selut bench/onnx.lua
local T, nn = selut.tensor, selut.nn
local dir = io.open("/dev/shm/.probe", "w") and "/dev/shm" or "/tmp"
os.remove("/dev/shm/.probe")
local path = dir .. "/selut-bench-" .. tostring(os.time()) .. ".onnx"
selut.manual_seed(1)
local net = nn.Sequential { nn.Linear(784, 512), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(512, 256), nn.SELU(),
  nn.AlphaDropout(0.05), nn.Linear(256, 10) }
net:evaluate()
local x = T.randn(2, 784)
local function median(f)
  local t = {}
  for i = 1, 21 do
    local t0 = selut.clock()
    f()
    t[i] = (selut.clock() - t0) * 1e3
  end
  table.sort(t)
  return t[11], t[1]
end
local e, emin = median(function() selut.onnx.export(net, x, path) end)
local l, lmin = median(function() selut.onnx.load(path) end)
print(string.format("onnx: default MLP export %.1f ms (min %.1f), load %.1f ms (min %.1f), median of 21, file in %s",
  e, emin, l, lmin, dir))
os.remove(path)
local py = [[
import time, torch, io
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.SELU(), torch.nn.AlphaDropout(0.05),
    torch.nn.Linear(512, 256), torch.nn.SELU(), torch.nn.AlphaDropout(0.05), torch.nn.Linear(256, 10)).eval()
x = torch.randn(2, 784)
ts = []
for _ in range(21):
    t0 = time.perf_counter(); torch.onnx.export(net, (x,), io.BytesIO(), opset_version=15); ts.append((time.perf_counter() - t0) * 1e3)
ts.sort(); print("onnx: torch.onnx.export of the same MLP %.1f ms (median of 21, to memory)" % ts[10])
]]
local f = io.open(path .. ".py", "w")
f:write(py)
f:close()
os.execute("/usr/bin/python3 " .. path .. ".py 2>/dev/null")
os.remove(path .. ".py")
