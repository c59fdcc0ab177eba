-- N ranks x batch b follow the same loss curve as 1 rank x batch N*b with the
-- same seed (tests/mpi/run.sh: mpirun -np 2). Every rank also trains the
-- one-process reference locally, so the comparison needs no files.
-- Tolerance (docs/distributed.md): per-step loss within 2e-6 relative and
-- final weights within 2e-6 absolute; the only difference is the summation
-- order of the gradient (two half-batch sums added by the allreduce, and the
-- sample weighting n * g / sum(n)). Checked for both ways of weighting:
-- allreduce_gradients(n) alone (a scale pass over the summed gradients), and
-- the loss gradient multiplied by dp:loss_scale(n) before backward (a sum only).
-- The net has AlphaDropout and Dropout: every rank draws the same mask keys as
-- the one process, and dp:batches sets the sample offset of each batch, so
-- each rank applies the one-process mask to its rows (also in the uneven last
-- global batch of 11 samples: rows 1-5 on rank 1, 6-11 on rank 2).
local dist, T, nn, optim = selut.dist, selut.tensor, selut.nn, selut.optim
local rank, size = dist.init()
local function check(cond, msg) if not cond then error(string.format("rank %d: %s", rank, msg), 2) end end
local train = dofile(arg[0]:gsub("[^/]*$", "") .. "_train.lua")

local N, D, C, b, EPOCHS = 203, 16, 4, 8, 3 -- 203 = 12 x 16 + 11: an uneven last global batch
selut.manual_seed(7)
local x = T.randn(N, D)
local y = x:narrow(2, 1, C):argmax(2) -- learnable labels 1..C
local ds = selut.data.Dataset(x, y)

local function make()
  selut.manual_seed(11)
  local net = nn.Sequential { nn.Linear(D, 32), nn.SELU(), nn.AlphaDropout(0.2), nn.Linear(32, 32), nn.SELU(),
                             nn.Dropout(0.1), nn.Linear(32, C) }
  nn.init.lecun_normal(net)
  return net
end

local function run(distributed, scaled)
  local net = make()
  local opt = optim.SGD(net:parameters(), { lr = 0.05, momentum = 0.9 })
  local crit = nn.CrossEntropyLoss()
  local dp = distributed and dist.DataParallel(net) or nil
  if dp then dp:broadcast_parameters() end
  local losses = train { net = net, opt = opt, crit = crit, dp = dp, ds = ds, b = b, size = size, epochs = EPOCHS,
                         seed = 100, scaled = scaled }
  return net, losses
end

local ref_net, ref = run(false)
for _, scaled in ipairs { false, true } do
  local net, got = run(true, scaled)
  local how = scaled and "loss_scale" or "allreduce_gradients(n)"
  local per_epoch = N // (size * b) + (N % (size * b) >= size and 1 or 0)
  check(#ref == EPOCHS * per_epoch and #got == #ref, string.format("steps: %d distributed, %d reference", #got, #ref))
  local worst_loss, worst_w = 0, 0
  for i = 1, #ref do
    local d = math.abs(got[i] - ref[i]) / math.max(1, math.abs(ref[i]))
    worst_loss = math.max(worst_loss, d)
    check(d <= 2e-6, string.format("%s: step %d: loss %.9g on %d ranks, %.9g in one process", how, i, got[i], size, ref[i]))
  end
  for i, p in ipairs(net:parameters()) do
    local d = (p.param - ref_net:parameters()[i].param):abs():max()
    worst_w = math.max(worst_w, d)
    check(d <= 2e-6, string.format("%s: parameter %d differs by %g", how, i, d))
    -- every rank holds the same weights (the reduced gradient is the same)
    local spread = dist.allreduce(p.param:clone(), "max") - dist.allreduce(p.param:clone(), "min")
    check(spread:abs():max() == 0, how .. ": ranks disagree on parameter " .. i)
  end
  if rank == 1 then
    print(string.format("equivalence (%s): %d ranks x batch %d == 1 rank x batch %d over %d steps: max loss diff %.2g " ..
                        "(relative), max weight diff %.2g", how, size, b, size * b, #ref, worst_loss, worst_w))
  end
end
local per_epoch = #ref // EPOCHS -- mean loss of the last epoch against the first (dropout makes single steps noisy)
local function mean(i0) local s = 0 for i = i0 + 1, i0 + per_epoch do s = s + ref[i] end return s / per_epoch end
check(mean(#ref - per_epoch) < mean(0) * 0.8, "the reference learns: " .. mean(0) .. " -> " .. mean(#ref - per_epoch))
dist.finalize()
