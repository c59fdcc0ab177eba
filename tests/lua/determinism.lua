-- Same seed => bit-identical weights, dropout masks and loss curve whatever
-- the thread count: a small SNN (SELU + AlphaDropout, SGD with
-- momentum) trained for a few steps with 1 and with 2 BLAS threads, sizes
-- large enough for OpenBLAS to split the products across threads.
-- selut cuts large products into fixed pieces itself and runs OpenBLAS
-- single-threaded in each (core/tensor/blas.c), so this holds for every
-- OpenBLAS kernel family: run it with OPENBLAS_CORETYPE=Haswell or Zen too
-- (make valgrind sets Haswell).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, optim = selut.tensor, selut.nn, selut.optim

local function run(threads)
  selut.set_num_threads(threads)
  H.check(selut.get_num_threads() == threads, "set_num_threads(" .. threads .. ") gave " .. selut.get_num_threads())
  selut.manual_seed(1234)
  local net = nn.Sequential {
    nn.Linear(256, 256), nn.SELU(), nn.AlphaDropout(0.1),
    nn.Linear(256, 256), nn.SELU(), nn.AlphaDropout(0.1),
    nn.Linear(256, 10),
  }
  nn.init.lecun_normal(net)
  local crit = nn.CrossEntropyLoss()
  local opt = optim.SGD(net:parameters(), { lr = 0.05, momentum = 0.9 })
  local x = T.randn(128, 256)
  local labels = {}
  for i = 1, 128 do labels[i] = (i * 7) % 10 + 1 end
  local y = T.new(labels)
  local losses, masks = {}, {}
  net:train()
  for step = 1, 6 do
    opt:zero_grad()
    local out = net:forward(x)
    losses[step] = crit:forward(out, y)
    net:backward(x, crit:backward(out, y))
    opt:step()
  end
  -- a dropout mask: AlphaDropout on ones shows which units were dropped
  local drop = nn.AlphaDropout(0.3)
  masks = drop:forward(T.ones(64, 64)):clone()
  local weights = {}
  for i, p in ipairs(net:parameters()) do weights[i] = p.param:clone() end
  return losses, weights, masks
end

local l1, w1, m1 = run(1)
local l2, w2, m2 = run(2)
selut.set_num_threads(1)
-- Bit identity where the BLAS kernels allow it (selut.blas_info); elsewhere
-- (OpenBLAS's AVX2 Haswell/Zen kernels) float rounding only.
local blas = selut.blas_info()
local tol = blas.threads_bitwise and 0 or 1e-4
if tol > 0 then
  print(string.format("determinism: OpenBLAS core %s is not bitwise across thread counts: checking to %g", blas.core, tol))
end
for i = 1, #l1 do
  H.check(math.abs(l1[i] - l2[i]) <= tol * math.abs(l1[i]),
          string.format("loss at step %d: %.9g with 1 thread, %.9g with 2", i, l1[i], l2[i]))
end
H.check(l1[6] < l1[1], "the net did not train")
H.check(#w1 == 6 and #w2 == 6, "parameter count")
for i = 1, #w1 do
  local d = (w1[i] - w2[i]):abs():max()
  H.check(d <= tol, string.format("parameter %d differs by up to %g between 1 and 2 threads", i, d))
end
H.check((m1 - m2):abs():max() == 0, "dropout masks differ between 1 and 2 threads")
-- and a different seed does change things (the comparison can fail)
selut.manual_seed(99)
local other = nn.AlphaDropout(0.3):forward(T.ones(64, 64))
H.check((other - m1):abs():max() > 0, "dropout mask does not depend on the seed")
