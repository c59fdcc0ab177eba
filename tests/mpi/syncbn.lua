-- DataParallel(net, {sync_batchnorm = true}): BatchNorm1d layers normalize
-- with the statistics of the global batch, so N ranks x batch b follow 1 rank
-- x batch N*b with BatchNorm in the net too (tests/mpi/run.sh: mpirun -np 2).
-- Each rank also trains the one-process reference locally. The loss gradient
-- is weighted with dp:loss_scale(n) (the shards of the uneven last global
-- batch differ in size). Without the option each rank normalizes its own
-- shard: the same run then drifts away from the reference (checked, so the
-- comparison can fail).
local dist, T, nn, optim = selut.dist, selut.tensor, selut.nn, selut.optim
local rank, size = dist.init()
local function check(cond, msg) if not cond then error(string.format("rank %d: %s", rank, msg), 2) end end
local train = dofile(arg[0]:gsub("[^/]*$", "") .. "_train.lua")

local N, D, C, b, EPOCHS = 203, 12, 3, 8, 2 -- an uneven last global batch of 11 samples
selut.manual_seed(5)
local x = T.randn(N, D) * 2 + 0.5
local y = x:narrow(2, 1, C):argmax(2)
local ds = selut.data.Dataset(x, y)

local function make()
  selut.manual_seed(13)
  local inner = nn.Sequential { nn.Linear(24, 24), nn.BatchNorm1d(24) } -- nested: found through .modules
  return nn.Sequential { nn.Linear(D, 24), nn.BatchNorm1d(24), nn.SELU(), inner, nn.SELU(), nn.Linear(24, C) }
end

local function run(mode)
  local net = make()
  local opt = optim.SGD(net:parameters(), { lr = 0.05, momentum = 0.9 })
  local crit = nn.CrossEntropyLoss()
  local dp = mode ~= "one" and dist.DataParallel(net, { sync_batchnorm = mode == "sync" }) or nil
  if dp then
    check(dp:stats().sync_batchnorm == (mode == "sync" and 2 or 0), "synced BatchNorm layers: " .. dp:stats().sync_batchnorm)
    dp:broadcast_parameters()
  end
  local losses = train { net = net, opt = opt, crit = crit, dp = dp, ds = ds, b = b, size = size, epochs = EPOCHS,
                         seed = 200, scaled = true }
  if dp then do local closing <close> = dp end end
  return net, losses
end

local ref_net, ref = run("one")
local net, got = run("sync")
check(#got == #ref, string.format("steps: %d distributed, %d reference", #got, #ref))
local worst = 0
for i = 1, #ref do
  local d = math.abs(got[i] - ref[i]) / math.max(1, math.abs(ref[i]))
  worst = math.max(worst, d)
  check(d <= 2e-6, string.format("step %d: loss %.9g on %d ranks, %.9g in one process", i, got[i], size, ref[i]))
end
local function max_diff(a, b)
  local w = 0
  for i, p in ipairs(a:parameters()) do w = math.max(w, (p.param - b:parameters()[i].param):abs():max()) end
  for i, e in ipairs(a:buffers()) do w = math.max(w, (e.tensor - b:buffers()[i].tensor):abs():max()) end
  return w
end
local wd = max_diff(net, ref_net)
check(wd <= 2e-6, "weights and running statistics differ from one process by " .. wd)
-- closing the DataParallel gave the layers back their local statistics
local bn = net.modules[2]
net:evaluate()
local before = net:forward(x):clone()
net:train()
bn:forward(T.randn(4 + rank, 24)) -- rank-dependent shapes: a collective here would fail or hang
net:evaluate()
check((net:forward(x) - before):abs():max() > 0, "a local training forward still updates the running stats")

local _, unsynced = run("local")
local drift = 0
for i = 1, #ref do drift = math.max(drift, math.abs(unsynced[i] - ref[i])) end
check(drift > 1e-3, "per-rank statistics do differ from the global batch's (max loss difference " .. drift .. ")")
if rank == 1 then
  print(string.format("syncbn: %d ranks x batch %d == 1 rank x batch %d over %d steps with BatchNorm1d: max loss " ..
                      "diff %.2g (relative), weights/running stats %.2g; per-rank statistics drift %.2g", size, b,
                      size * b, #ref, worst, wd, drift))
end
dist.finalize()
