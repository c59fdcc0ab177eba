-- Makes a selut BatchNorm checkpoint for tests/ref/gen_bn_refs.py --check:
--   build/selut tests/ref/bn_selut_ckpt.lua DIR
--   /usr/bin/python3 tests/ref/gen_bn_refs.py --check DIR/bn-selut.safetensors DIR/bn-selut-io.safetensors
-- The net of gen_bn_refs.py, trained 9 steps in selut (running statistics and
-- num_batches_tracked = 9), saved with selut.save; the io file holds an input
-- x and selut's eval output y for PyTorch to reproduce.
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local dir = assert(arg[1], "usage: selut tests/ref/bn_selut_ckpt.lua DIR")
selut.manual_seed(3)
local net = nn.Sequential{nn.Linear(5, 4), nn.BatchNorm1d(4), nn.SELU(), nn.Linear(4, 3)}
local opt, crit = optim.SGD(net:parameters(), {lr = 0.1}), nn.MSELoss()
for i = 1, 9 do
  local x = T.randn(16, 5) * (1 + 0.3 * i) - 0.4
  local out = net:forward(x)
  opt:zero_grad()
  net:backward(x, crit:backward(out, T.ones(16, 3)), false)
  opt:step()
end
net:evaluate()
local x = T.randn(6, 5) * 2
selut.save(dir .. "/bn-selut.safetensors", net)
selut.save(dir .. "/bn-selut-io.safetensors", {x = x, y = net:forward(x)})
print("num_batches_tracked = " .. net.modules[2].num_batches_tracked)
