-- selut.dist on N ranks (tests/mpi/run.sh runs it with mpirun -np 2): the
-- collectives' values, the error-checked size mismatch, shard = true over a
-- real communicator, DataParallel's broadcast (weights and buffers), the
-- shared generator stream and the per-batch sample offsets of dp:batches.
local dist, T = selut.dist, selut.tensor
local rank, size = dist.init()
local function check(cond, msg) if not cond then error(string.format("rank %d: %s", rank, msg), 2) end end
check(size >= 2, "run with at least 2 ranks")
check(dist.rank() == rank and dist.size() == size and dist.is_main() == (rank == 1), "rank/size/is_main")
check(select(1, dist.init()) == rank, "init twice returns the same rank")

-- allreduce: sum, mean, max, min of full(rank)
local tri = size * (size + 1) / 2
local function all(op) return dist.allreduce(T.full(rank, 3), op):totable() end
for _, v in ipairs(all()) do check(v == tri, "sum") end
for _, v in ipairs(all("mean")) do check(math.abs(v - tri / size) < 1e-6, "mean") end
for _, v in ipairs(all("max")) do check(v == size, "max") end
for _, v in ipairs(all("min")) do check(v == 1, "min") end
-- broadcast from the last rank
local b = dist.broadcast(T.full(10 * rank, 2, 2), size)
check(b:sum() == 40 * size, "broadcast from rank " .. size)
-- a size mismatch is an error on every rank, not a hang
local ok, err = pcall(dist.allreduce, T.zeros(2 + rank))
check(not ok and err:find("ranks disagree on the tensor size: " .. (2 + rank) .. " elements on rank " .. rank, 1, true),
      "mismatch error: " .. tostring(err))
ok, err = pcall(dist.broadcast, T.zeros(rank), 1)
check(not ok and err:find("ranks disagree on the tensor size", 1, true), "broadcast mismatch: " .. tostring(err))
ok, err = pcall(dist.broadcast, T.zeros(1), size + 1)
check(not ok and err:find("root must be a rank in 1.." .. size .. ", got " .. (size + 1), 1, true), tostring(err))
dist.barrier()

-- shard = true: over an epoch the ranks see every sample exactly once
local n = 101
local ds = selut.data.Dataset(T.arange(n):reshape(n, 1), T.arange(n))
selut.manual_seed(42) -- the same seed on every rank: the same permutation
local seen, batches = T.zeros(n), 0
for _, yb in ds:batches(4, { shuffle = true, shard = true }) do
  batches = batches + 1
  for i = 1, #yb do seen[math.tointeger(yb[i]) + 1] = seen[math.tointeger(yb[i]) + 1] + 1 end
end
local counts = T.full(batches, 1)
dist.allreduce(counts, "max")
check(counts[1] == batches and dist.allreduce(T.full(batches, 1), "min")[1] == batches, "same batch count")
dist.allreduce(seen)
local dropped = n % (4 * size) < size and n % (4 * size) or 0
check(seen:sum() == n - dropped and seen:max() == 1, "every sample once: sum " .. seen:sum() .. " max " .. seen:max())

-- DataParallel: broadcast_parameters makes rank 1's weights everyone's
selut.manual_seed(rank) -- deliberately different weights per rank
local nn = selut.nn
local net = nn.Sequential { nn.Linear(5, 7), nn.SELU(), nn.Linear(7, 3) }
local dp = dist.DataParallel(net)
-- the gradients live in DataParallel's flat buffer: a broadcast of the
-- weights must leave them alone (it once went through that buffer)
for i, p in ipairs(net:parameters()) do p.grad:fill_(100 * rank + i) end
dp:broadcast_parameters()
for i, p in ipairs(net:parameters()) do
  check(p.grad:min() == 100 * rank + i and p.grad:max() == 100 * rank + i,
        "broadcast_parameters left gradient " .. i .. " alone: " .. p.grad:min() .. ".." .. p.grad:max())
end
selut.manual_seed(1)
local ref = nn.Sequential { nn.Linear(5, 7), nn.SELU(), nn.Linear(7, 3) }
for i, p in ipairs(net:parameters()) do
  check((p.param - ref:parameters()[i].param):abs():max() == 0, "parameter " .. i .. " equals rank 1's")
end
-- allreduce_gradients: the sample-weighted mean
for _, p in ipairs(net:parameters()) do p.grad:fill_(rank) end
local total = dp:allreduce_gradients(rank) -- rank r has r samples with gradient r
local want = 0
for r = 1, size do want = want + r * r end
want = want / tri
check(total == tri, "total samples")
for _, p in ipairs(net:parameters()) do check(math.abs(p.grad:max() - want) < 1e-5, "weighted mean " .. p.grad:max()) end
for _, p in ipairs(net:parameters()) do p.grad:fill_(rank) end
check(dp:allreduce_gradients() == size, "unweighted returns size")
for _, p in ipairs(net:parameters()) do check(math.abs(p.grad:min() - tri / size) < 1e-5, "unweighted mean") end
check(dp:stats().steps == 2 and dp:stats().comm_seconds > 0, "stats")
-- buffers (BatchNorm1d running statistics) are broadcast with the weights
local bn = nn.Sequential { nn.Linear(5, 4), nn.BatchNorm1d(4) }
bn:buffers()[1].tensor:fill_(rank) -- running_mean
bn:buffers()[2].tensor:fill_(10 * rank) -- running_var
local dpb = dist.DataParallel(bn)
dpb:broadcast_parameters()
check(bn:buffers()[1].tensor:min() == 1 and bn:buffers()[1].tensor:max() == 1, "running_mean from rank 1")
check(bn:buffers()[2].tensor:min() == 10 and bn:buffers()[2].tensor:max() == 10, "running_var from rank 1")
-- dp:batches: the same permutation everywhere, the same generator stream as
-- rank 1 (so the same dropout keys), and each batch's sample offset
selut.manual_seed(1000 + rank) -- diverged on purpose: dp:batches resynchronizes
dist.sample_offset(5)
local first, offsets = nil, {}
for _, yb in dp:batches(ds, 2, { shuffle = true }) do
  offsets[#offsets + 1] = dist.sample_offset()
  first = first or yb:clone()
end
check(dist.sample_offset() == 0, "sample offset 0 after the epoch, got " .. dist.sample_offset())
local last_global = n % (2 * size) >= size and n % (2 * size) or 2 * size -- 101 = 50 x 2 + 1 on 2 ranks: no partial batch
for i, k in ipairs(offsets) do
  local want_k = i < #offsets and 2 * (rank - 1) or (rank - 1) * last_global // size
  check(k == want_k, string.format("batch %d: sample offset %d, expected %d", i, k, want_k))
end
local u = T.rand(1)[1]
local hi, lo = dist.allreduce(T.full(u, 1), "max")[1], dist.allreduce(T.full(u, 1), "min")[1]
check(hi == lo, "ranks draw the same numbers (dropout keys) after dp:batches")
-- an uneven last global batch (7 samples, 2 per rank: on 2 ranks 2+2, then 1+2)
local ds7 = selut.data.Dataset(T.arange(7):reshape(7, 1), T.arange(7))
local got = {}
for xb in dp:batches(ds7, 2) do got[#got + 1] = { dist.sample_offset(), #xb } end
local m = math.min(2 * size, 7 - (#got - 1) * 2 * size)
local want_last = (rank - 1) * m // size
check(got[#got][1] == want_last and got[#got][2] == rank * m // size - want_last,
      string.format("last batch: offset %d, %d rows (global batch of %d)", got[#got][1], got[#got][2], m))
local glob = T.zeros(2 * size)
glob:narrow(1, 2 * rank - 1, 2):copy(first)
dist.allreduce(glob)
selut.manual_seed(1001) -- rank 1's seed: one process's global batch
local whole
for _, yb in ds:batches(2 * size, { shuffle = true }) do whole = yb:clone() break end
check((glob - whole):abs():max() == 0, "shards of dp:batches form rank 1's global batch")
-- dp:step(opt, n) on one machine: parameters, optimizer state and gradients
-- move into one shared segment; each rank steps its slice from the
-- sample-weighted sum of all ranks' gradients. Checked against a local net
-- stepped by a local optimizer from the expected mean gradient.
-- A segment left by a job that died while setting up (its creator pid no
-- longer exists) is removed by the next creator; one whose pid lives (pid 1)
-- and files that are not ours by name stay.
local shm = io.open("/dev/shm/.selut-probe", "w")
local stale, alive = nil, "/dev/shm/selut-dp-1-424242"
if shm then
  shm:close()
  os.remove("/dev/shm/.selut-probe")
  if rank == 1 then
    local p = io.popen("sh -c 'echo $$'")
    local dead = p:read("l")
    p:close() -- the shell has exited: its pid names no process (until reused)
    stale = "/dev/shm/selut-dp-" .. dead .. "-7"
    for _, f in ipairs { stale, alive, "/dev/shm/selut-dp-" .. dead .. "-7x" } do
      local h = assert(io.open(f, "w"))
      h:write("x")
      h:close()
    end
  end
  dist.barrier()
end
local makers = { -- a list: pairs() order differs between ranks (string hashes are seeded per state)
  { "SGD", function(ps) return selut.optim.SGD(ps, { lr = 0.5, momentum = 0.9, nesterov = true }) end },
  { "Adam", function(ps) return selut.optim.Adam(ps, { lr = 0.01 }) end },
}
for _, m in ipairs(makers) do
  local name, make = m[1], m[2]
  selut.manual_seed(rank) -- different weights per rank: the first step makes rank 1's everyone's
  local snet = nn.Sequential { nn.Linear(5, 7), nn.SELU(), nn.Linear(7, 3) }
  selut.manual_seed(1)
  local lnet = nn.Sequential { nn.Linear(5, 7), nn.SELU(), nn.Linear(7, 3) }
  local sopt, lopt = make(snet:parameters()), make(lnet:parameters())
  local sdp = dist.DataParallel(snet)
  for step = 1, 3 do
    for i, p in ipairs(snet:parameters()) do p.grad:fill_(rank * step + i) end
    check(sdp:step(sopt, rank) == tri, name .. ": dp:step returns the global sample count")
    check(sdp:stats().shared, name .. ": shared segment not used: " .. tostring(sdp:stats().shared_off))
    for i, p in ipairs(lnet:parameters()) do
      local want = 0
      for q = 1, size do want = want + q * (q * step + i) end -- rank q has q samples with gradient q*step+i
      p.grad:fill_(want / tri)
    end
    lopt:step()
    for i, p in ipairs(snet:parameters()) do
      local diff = (p.param - lnet:parameters()[i].param):abs():max()
      check(diff <= 1e-5, string.format("%s step %d: parameter %d differs from the local reference by %g", name, step,
                                        i, diff))
    end
  end
  check(sdp:stats().shared == true, name .. ": shared segment in use (" .. tostring(sdp:stats().shared_off) .. ")")
  if stale and name == "SGD" then -- rank 1 created the first segment after the files above
    check(io.open(stale) == nil, "the dead job's segment " .. stale .. " was removed")
    check(sdp:stats().swept >= 1, "dp:stats().swept counts it: " .. sdp:stats().swept)
    local h = io.open(alive)
    check(h ~= nil, "a segment whose creator pid lives stays: " .. alive)
    h:close()
    local odd = io.open(stale .. "x")
    check(odd ~= nil, "a name that only starts like ours stays")
    odd:close()
    os.remove(alive)
    os.remove(stale .. "x")
  end
  check(sdp:stats().copied == 0, name .. ": every gradient in this rank's slot, copied " .. sdp:stats().copied)
  local ok, err = pcall(sopt.step, sopt)
  check(not ok and err:find("stepped by selut.dist.DataParallel:step", 1, true), "opt:step refused: " .. tostring(err))
  ok, err = pcall(sdp.allreduce_gradients, sdp)
  check(not ok and err:find("keep calling dp:step", 1, true), "allreduce_gradients refused: " .. tostring(err))
  sdp:broadcast_parameters() -- buffers only: the weights are one copy already
  -- closing hands each rank a private copy of its weights and the optimizer back
  do local closing <close> = sdp end
  sopt:step()
  -- a new DataParallel takes the (private again) gradients into its flat buffer
  local again = dist.DataParallel(snet)
  check(again:stats().copied == 0, name .. ": gradients movable after close, copied " .. again:stats().copied)
  do local closing <close> = again end
  snet:parameters()[1].param:fill_(rank)
  dist.barrier()
  local w = T.new { snet:parameters()[1].param:max() }
  check(dist.allreduce(w:clone(), "max")[1] == size and dist.allreduce(w:clone(), "min")[1] == 1,
        name .. ": weights are private again after close")
end

-- The shared segment counts against the memory limit of the Lua state
-- (selut.set_memory_limit), like the private weights, state and gradients
-- it replaces: over the limit, dp:step takes the allreduce path; under it,
-- selut.memory() grows by the segment (1 + 1 + size slots of 1 M floats)
-- less the private copies it frees (weights, momentum, flat gradients).
for _, room in ipairs { "tight", "ample" } do
  collectgarbage() -- nothing left for a collection inside dp:step to free
  collectgarbage()
  selut.manual_seed(5)
  local big = nn.Sequential { nn.Linear(1000, 1000) }
  local opt = selut.optim.SGD(big:parameters(), { lr = 0.01, momentum = 0.9 })
  local dp = dist.DataParallel(big)
  for _, p in ipairs(big:parameters()) do p.grad:fill_(rank) end
  local before, limit0 = selut.memory(), selut.get_memory_limit()
  if room == "tight" then selut.set_memory_limit(before + (1 << 22)) end -- 4 MB: the momentum fits, a segment not
  dp:step(opt, 1)
  selut.set_memory_limit(limit0)
  local st = dp:stats()
  if room == "tight" then
    check(st.shared == false and tostring(st.shared_off):find("memory limit", 1, true),
          "over the memory limit: the allreduce path (" .. tostring(st.shared_off) .. ")")
  else
    check(st.shared == true, "under the memory limit: shared (" .. tostring(st.shared_off) .. ")")
    check(selut.memory() - before >= (2 + size - 3) * 1000000 * 4,
          string.format("the segment is charged: memory grew by %d bytes", selut.memory() - before))
  end
  do local closing <close> = dp end
end

dist.finalize()
if rank == 1 then print("collectives: ok on " .. size .. " ranks") end
