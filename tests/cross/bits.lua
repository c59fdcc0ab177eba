-- Same bits across architectures (docs/portability.md): computes, from one
-- seed, the results selut produces itself (generator, SELU/ELU/AlphaDropout
-- forward and backward, exp/log/sqrt, softmax, cross entropy)
-- and, apart, those that go through OpenBLAS (Linear, a short training run),
-- and saves them to one safetensors file. tests/cross/compare.py compares two
-- such files byte for byte (x86-64 vs aarch64 under qemu).
--   build/selut tests/cross/bits.lua OUT.safetensors [THREADS]
-- (THREADS: 1 by default; selut's own results have the same bits at 1 and 2.)
local selut = require "selut"
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local out = assert(arg[1], "usage: selut tests/cross/bits.lua OUT.safetensors [THREADS]")
selut.set_num_threads(math.tointeger(tonumber(arg[2] or 1)) or 1)
local r = {}
selut.manual_seed(20261204)
r["own.rng.randn"] = T.randn(64, 257)
r["own.rng.rand"] = T.rand(64, 257)
local x = r["own.rng.randn"] * 3
local gy = T.randn(64, 257)
local function act(name, m)
  m:train()
  r["own." .. name .. ".forward"] = m:forward(x):clone()
  r["own." .. name .. ".backward"] = m:backward(x, gy):clone()
end
act("selu", nn.SELU())
act("elu", nn.ELU(0.7))
act("alphadropout", nn.AlphaDropout(0.05))
act("alphadropout_half", nn.AlphaDropout(0.5))
act("dropout", nn.Dropout(0.2))
act("relu", nn.ReLU())
act("tanh", nn.Tanh())
act("sigmoid", nn.Sigmoid())
act("softmax", nn.Softmax())
act("logsoftmax", nn.LogSoftmax())
-- GELU calls the C library's erff: its bits are the libm's, not selut's
do
  local m = nn.GELU()
  r["libm.gelu.forward"] = m:forward(x):clone()
  r["libm.gelu.backward"] = m:backward(x, gy):clone()
end
r["own.exp"] = x:exp()
r["own.log"] = (x:abs() + 1e-3):log()
r["own.sqrt"] = x:abs():sqrt()
local logits, target = x:narrow(2, 1, 10):clone(), T.zeros(64)
for i = 1, 64 do target[i] = (i * 7) % 10 + 1 end
local ce = nn.CrossEntropyLoss()
r["own.ce.loss"] = T.zeros(1) + ce:forward(logits, target)
r["own.ce.backward"] = ce:backward(logits, target):clone()
-- through OpenBLAS's sgemm
local lin = nn.Linear(257, 33)
r["blas.linear.forward"] = lin:forward(x):clone()
r["blas.linear.backward"] = lin:backward(x, T.randn(64, 33)):clone()
-- a short seeded training run (SGD with momentum, then Adam): the
-- optimizers are selut's own, the matrix products OpenBLAS's
for _, o in ipairs{{"sgd", optim.SGD, {lr = 0.01, momentum = 0.9}}, {"adam", optim.Adam, {lr = 1e-3}}} do
  selut.manual_seed(7)
  local net = nn.Sequential{nn.Linear(257, 64), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(64, 10)}
  local opt = o[2](net:parameters(), o[3])
  net:train()
  for _ = 1, 20 do
    net:zero_grad()
    local y = net:forward(x)
    ce:forward(y, target)
    net:backward(x, ce:backward(y, target))
    opt:step()
  end
  for _, p in ipairs(net:parameters()) do r["blas.train." .. o[1] .. "." .. p.name] = p.param end
end
selut.save(out, r)
