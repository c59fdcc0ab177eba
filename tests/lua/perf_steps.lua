-- Performance contracts of a training step: after the first step
-- of an epoch, a Lua training loop (batches, forward, loss, backward,
-- optimizer) makes no core heap allocation; and the same seed gives bit-identical results with
-- 1 and 2 BLAS threads (sgemm K chunks, elementwise two-core split), with a
-- first layer of 784 inputs (the K where OpenBLAS's threaded and serial
-- drivers block differently) and layers wide enough for the two-core split.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim = selut.tensor, selut.nn, selut.optim

local function run(threads, opt_name, steps)
  selut.set_num_threads(threads)
  selut.manual_seed(7)
  local x = T.randn(96, 784)
  local y = T.zeros(96)
  for i = 1, 96 do y[i] = (i % 10) + 1 end
  local data = selut.data.Dataset(x, y)
  local net = nn.Sequential{nn.Linear(784, 320), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(320, 256), nn.SELU(),
                            nn.AlphaDropout(0.05), nn.Linear(256, 10)}
  nn.init.lecun_normal(net)
  local crit = nn.CrossEntropyLoss()
  local opt = opt_name == "adam" and optim.Adam(net:parameters(), {lr = 1e-3})
    or optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  local losses, counts, step = {}, {}, 0
  for _ = 1, steps do
    for xb, yb in data:batches(32, {shuffle = true}) do
      step = step + 1
      local out = net:forward(xb)
      losses[#losses + 1] = crit:forward(out, yb)
      opt:zero_grad()
      net:backward(xb, crit:backward(out, yb))
      opt:step()
      local _, count = selut.memory()
      counts[step] = count
    end
  end
  local params = {}
  for i, p in ipairs(net:parameters()) do params[i] = p.param:clone() end
  return losses, counts, params
end

-- bit identity across thread counts where the BLAS kernels allow it (selut.blas_info)
local tol = selut.blas_info().threads_bitwise and 0 or 1e-4
for _, opt_name in ipairs{"sgd", "adam"} do
  local l1, c1, p1 = run(1, opt_name, 2)
  local l2, c2, p2 = run(2, opt_name, 2)
  -- 3 batches per epoch: within an epoch, steps after the first allocate
  -- nothing in the core; a new epoch's batches() call allocates only its
  -- iterator (permutation) and the two batch buffers, a handful of blocks
  check(#c1 == 6, "6 steps")
  for _, s in ipairs{3, 5, 6} do
    check(c1[s] == c1[s - 1], string.format("%s: %d core allocations in step %d", opt_name, c1[s] - c1[s - 1], s))
  end
  check(c1[4] - c1[3] <= 10, string.format("%s: %d core allocations at the start of epoch 2", opt_name, c1[4] - c1[3]))
  for s = 1, #l1 do
    check(math.abs(l1[s] - l2[s]) <= tol * math.abs(l1[s]), string.format("%s step %d: loss %.17g with 1 thread, %.17g with 2", opt_name, s, l1[s], l2[s]))
  end
  for i = 1, #p1 do
    check((p1[i] - p2[i]):abs():max() <= tol, string.format("%s: parameter %d differs between 1 and 2 threads", opt_name, i))
  end
end
selut.set_num_threads(1)
