-- selut.dist in one process (no MPI_Init here: the multi-rank tests are
-- tests/mpi/run.sh under mpirun), the shard option of ds:batches, and the
-- DataParallel wrapper's single-process behaviour.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, dist = selut.tensor, selut.nn, selut.dist

-- one process: rank 1 of 1, the main rank
H.check(type(dist.available) == "boolean", "dist.available is a boolean")
H.check(dist.rank() == 1 and dist.size() == 1 and dist.is_main() == true, "one process is rank 1 of 1")

-- collectives before init (or without MPI) are errors naming the function
-- unavailable = built without MPI, or built with it but the glue
-- (selut_mpi.so) is not where selut looks: the message says which
local function check_before_init(name, f, ...)
  if dist.available then return H.checkerror(name .. ": call selut.dist.init() first", f, ...) end
  local ok, err = pcall(f, ...)
  err = tostring(err)
  H.check(not ok and (err:find(name .. ": selut was built without MPI", 1, true) ~= nil
                      or err:find(name .. ": cannot load MPI: ", 1, true) ~= nil),
          name .. " without MPI says why, got: " .. err)
end
check_before_init("selut.dist.allreduce", dist.allreduce, T.zeros(3))
check_before_init("selut.dist.broadcast", dist.broadcast, T.zeros(3))
check_before_init("selut.dist.barrier", dist.barrier)
check_before_init("selut.dist.finalize", dist.finalize)
check_before_init("selut.dist.abort", dist.abort, 1)
if not dist.available then check_before_init("selut.dist.init", dist.init) end
H.checkerror("bad argument #1 to 'allreduce' (selut.Tensor expected, got number)", function() return dist.allreduce(1) end)
H.checkerror("bad argument #2 to 'allreduce' (invalid option 'avg')", function() return dist.allreduce(T.zeros(1), "avg") end)
H.checkerror("exit code must be in 0..255, got 300", dist.abort, 300)

-- shard = {rank, size}: each global batch of size * b samples of the one
-- permutation is cut into size contiguous parts, the last global batch into
-- near-equal parts; a tail smaller than size is dropped
local function ids(ds, b, opts)
  local out = {}
  for _, yb in ds:batches(b, opts) do
    local t = {}
    for i = 1, #yb do t[i] = math.tointeger(yb[i]) end
    out[#out + 1] = t
  end
  return out
end
local function same(a, b) return table.concat(a, ",") == table.concat(b, ",") end
local n = 23
local ds = selut.data.Dataset(T.arange(n):reshape(n, 1), T.arange(n))
for _, shuffle in ipairs { false, true } do
  selut.manual_seed(5)
  local whole = ids(ds, 6, { shuffle = shuffle })
  local parts = {}
  for r = 1, 2 do
    selut.manual_seed(5)
    parts[r] = ids(ds, 3, { shuffle = shuffle, shard = { r, 2 } })
  end
  -- 23 = 6+6+6+5: four global batches; the last splits 2 + 3
  H.check(#whole == 4 and #parts[1] == 4 and #parts[2] == 4, "four batches on every shard")
  for k = 1, 4 do
    local joined = {}
    for r = 1, 2 do for _, v in ipairs(parts[r][k]) do joined[#joined + 1] = v end end
    H.check(same(joined, whole[k]), "shards of batch " .. k .. " concatenate to the global batch")
  end
  H.check(#parts[1][4] == 2 and #parts[2][4] == 3, "last global batch of 5 split 2 + 3")
end
-- 3 shards of b = 2: 23 = 6+6+6+5 -> the last 5 split 1+2+2; 22 = 6*3 + 4 -> 1+1+2
selut.manual_seed(1)
local p3 = ids(ds, 2, { shard = { 1, 3 } })
H.check(#p3 == 4 and #p3[4] == 1, "3 shards: 4 batches, last part of 1")
-- a tail smaller than the number of shards is dropped on every shard
local ds7 = selut.data.Dataset(T.arange(7):reshape(7, 1), T.arange(7))
local a, b = ids(ds7, 3, { shard = { 1, 6 } }), ids(ds7, 3, { shard = { 6, 6 } })
H.check(#a == 1 and #b == 1 and same(a[1], { 0 }) and same(b[1], { 5, 6 }), "7 samples on 6 shards: 1+1+1+1+1+2")
local ds20 = selut.data.Dataset(T.arange(20):reshape(20, 1), T.arange(20))
a, b = ids(ds20, 3, { shard = { 1, 3 } }), ids(ds20, 3, { shard = { 3, 3 } })
H.check(#a == 2 and #b == 2 and same(a[2], { 9, 10, 11 }) and same(b[2], { 15, 16, 17 }),
        "20 = 9+9+2: the tail of 2 < 3 shards is dropped")
a = ids(ds20, 3, { shard = { 2, 3 }, drop_last = true })
H.check(#a == 2 and same(a[1], { 3, 4, 5 }), "drop_last with shards")
-- shard = true in one process is no sharding
H.check(same(ids(ds, 4, { shard = true })[2], ids(ds, 4)[2]), "shard = true in one process")
H.checkerror("option 'shard' must be {rank, size} with 1 <= rank <= size, got {3, 2}", ds.batches, ds, 2,
             { shard = { 3, 2 } })
H.checkerror("option 'shard' must be a boolean or {rank, size}, got string", ds.batches, ds, 2, { shard = "yes" })
H.checkerror("unknown option 'shards' (expected shuffle, drop_last, shard)", ds.batches, ds, 2, { shards = true })

-- DataParallel in one process
selut.manual_seed(3)
local net = nn.Sequential { nn.Linear(4, 5), nn.SELU(), nn.Linear(5, 2) }
local dp = dist.DataParallel(net)
H.check(tostring(dp) == "DataParallel(4 tensors, 37 floats)", tostring(dp))
local x, y = T.randn(6, 4), T.new { 1, 2, 2, 1, 1, 2 }
local crit = nn.CrossEntropyLoss()
net:zero_grad()
net:backward(x, crit:backward(net:forward(x), y))
local before = {}
for i, p in ipairs(net:parameters()) do before[i] = p.grad:clone() end
H.check(dp:allreduce_gradients() == 1, "without n: returns the number of ranks")
for i, p in ipairs(net:parameters()) do H.tensor_near(p.grad, before[i], 0, "unweighted mean of one rank is exact") end
H.check(dp:allreduce_gradients(6) == 6, "with n: returns the global sample count")
for i, p in ipairs(net:parameters()) do
  H.tensor_near(p.grad, before[i], 1e-6 * math.max(1, before[i]:abs():max()), "weighted mean of one rank")
end
-- the gradients live in the flat buffer: the same tensors, no copies
for _, p in ipairs(net:parameters()) do H.check(p.grad:numel() > 0, "grad alive") end
-- loss_scale(n): n / sum(n) (1 in one process); the next allreduce only sums
H.check(dp:loss_scale(6) == 1, "loss_scale in one process")
H.checkerror("sample count 5 differs from the 6 given to loss_scale this step", dp.allreduce_gradients, dp, 5)
H.check(dp:loss_scale(6) == 1 and dp:allreduce_gradients(6) == 6, "after loss_scale: returns the sample count")
for i, p in ipairs(net:parameters()) do H.tensor_near(p.grad, before[i], 0, "summed in place, unchanged") end
H.check(dp:loss_scale(6) == 1 and dp:allreduce_gradients() == 6, "after loss_scale n may be omitted")
H.checkerror("sample count must be in 0..16777216, got -2", dp.loss_scale, dp, -2)
H.checkerror("no samples on any rank", dp.loss_scale, dp, 0)
local st = dp:stats()
H.check(st.steps == 4 and st.numel == 37 and st.bytes == 38 * 4 and st.copied == 0, "stats")
H.check(st.comm_seconds >= 0 and st.pack_seconds >= 0, "stats times")
dp:broadcast_parameters() -- a no-op in one process
H.checkerror("sample count must be in 0..16777216, got -1", dp.allreduce_gradients, dp, -1)
H.checkerror("no samples on any rank", dp.allreduce_gradients, dp, 0)
H.checkerror("root must be a rank in 1..1, got 2", dp.broadcast_parameters, dp, 2)
-- dp:batches = ds:batches with shard = true, same stream on the main rank
selut.manual_seed(9)
local plain = ids(ds, 5, { shuffle = true })
selut.manual_seed(9)
local via = {}
for _, yb in dp:batches(ds, 5, { shuffle = true }) do via[#via + 1] = math.tointeger(yb[1]) end
H.check(#via == #plain, "dp:batches count")
for k = 1, #via do H.check(via[k] == plain[k][1], "dp:batches order") end
H.checkerror("bad argument #1 to 'batches' (selut.data.Dataset expected, got number)", function() return dp:batches(1, 2) end)
-- a parameter list works too; bad input is named
local dp2 = dist.DataParallel(net:parameters())
H.check(tostring(dp2) == "DataParallel(4 tensors, 37 floats)", "parameter list")
-- the gradients already live in dp's buffer, shared: dp2 copies them in and out
H.check(dp2:stats().copied == 4, "a second DataParallel copies: " .. dp2:stats().copied)
for i, p in ipairs(net:parameters()) do p.grad:copy(before[i]) end
H.check(dp2:allreduce_gradients(6) == 6, "copy path")
for i, p in ipairs(net:parameters()) do H.tensor_near(p.grad, before[i], 0, "copy path: unchanged in one process") end
-- a fresh module: every gradient moves into the buffer
local lin = nn.Linear(3, 2)
local dp3 = dist.DataParallel(lin)
H.check(dp3:stats().copied == 0, "a fresh module's gradients all move into the buffer")
H.checkerror("parameter 1 must be {param = tensor, grad = tensor} of the same size", dist.DataParallel, { 1 })
H.checkerror("expected a model with parameters, got 0 parameters", dist.DataParallel, nn.Sequential {})
H.checkerror("bad argument #1 to 'DataParallel' (module or parameter list expected, got number)", function() return dist.DataParallel(4) end)
-- dp:step(opt[, n]) in one process is opt:step() (the mean over one rank is the gradient itself)
do
  local sopt = selut.optim.SGD(net:parameters(), { lr = 0.5 })
  local before = net:parameters()[1].param:clone()
  for _, p in ipairs(net:parameters()) do p.grad:fill_(2) end
  H.check(dp:step(sopt, 7) == 7 and dp:step(sopt) == 1, "dp:step returns the sample count (or the rank count)")
  H.tensor_near(net:parameters()[1].param, before - 2, 1e-6, "two steps of lr 0.5 on a gradient of 2")
  H.checkerror("selut.optim optimizer expected", dp.step, dp, {})
  H.check(dp:stats().shared == false, "no shared segment in one process")
end
do local closing <close> = dp end -- __close releases the buffer and the references
H.checkerror("attempt to use a closed DataParallel", dp.stats, dp)
H.check(tostring(dp) == "DataParallel (closed)", "closed tostring")

-- sample offsets (docs/distributed.md): a process holding rows k+1..k+n of a
-- global batch, with the one-process key, applies exactly the one-process
-- dropout mask to them; shards simulated in one process with shard = {r, N}
H.check(dist.sample_offset() == 0, "sample offset 0 by default")
H.checkerror("sample offset must be >= 0, got -1", dist.sample_offset, -1)
H.checkerror("sample offset must be an integer, got 2.5", dist.sample_offset, 2.5)
local function dropnet()
  selut.manual_seed(21)
  local m = nn.Sequential { nn.Linear(6, 9), nn.SELU(), nn.AlphaDropout(0.3), nn.Linear(9, 9), nn.Dropout(0.4),
                            nn.Linear(9, 3) }
  nn.init.lecun_normal(m)
  return m
end
local dx = T.randn(23, 6)
local dds = selut.data.Dataset(dx, T.ones(23))
for _, N in ipairs { 2, 3 } do
  local ref_net, part_net = dropnet(), dropnet()
  selut.manual_seed(77)
  local whole = {}
  for xb in dds:batches(4 * N, { shuffle = true }) do
    whole[#whole + 1] = { ref_net:forward(xb):clone() }
  end
  -- each shard replays the one stream (reseeded per shard, as every rank draws the same keys)
  local gathered = {}
  for r = 1, N do
    selut.manual_seed(77)
    local step, k = 0, 0
    for xb in dds:batches(4, { shuffle = true, shard = { r, N } }) do
      step = step + 1
      -- rows before this shard's: the sharding rule floor((r-1) m / N)
      local m = math.min(4 * N, 23 - (step - 1) * 4 * N)
      k = (r - 1) * m // N
      dist.sample_offset(k)
      local out = part_net:forward(xb)
      gathered[step] = gathered[step] or {}
      gathered[step][r] = { k, out:clone() }
    end
  end
  dist.sample_offset(0)
  H.check(#gathered == #whole, N .. " shards: same number of steps")
  for step, parts in ipairs(gathered) do
    for r = 1, N do
      local k, out = parts[r][1], parts[r][2]
      -- 1e-6, not 0: OpenBLAS may pick another kernel for 4 rows than for
      -- 8 (bit-equal on this machine's AVX-512 kernels, not on the Haswell
      -- ones make valgrind forces); a wrong mask row is off by O(1)
      H.tensor_near(out, whole[step][1]:narrow(1, k + 1, #out), 1e-6, string.format("%d shards, step %d, rank %d", N, step, r))
    end
  end
  -- without the offset the shards would reuse rows 1..n of the mask
  selut.manual_seed(77)
  for xb in dds:batches(4, { shuffle = true, shard = { 2, N } }) do
    local out = part_net:forward(xb)
    H.check((out - whole[1][1]:narrow(1, 5, 4)):abs():max() > 0, "offset 0 on shard 2 gives other masks")
    break
  end
end
-- in one process dp:batches sets offset 0 (no sharding)
dist.sample_offset(3)
local dp4 = dist.DataParallel(nn.Linear(6, 2))
for _ in dp4:batches(dds, 8) do H.check(dist.sample_offset() == 0, "dp:batches: offset 0 in one process") end
dist.sample_offset(0)
-- a net's buffers are kept for broadcast_parameters (a no-op in one process)
local bnet = nn.Sequential { nn.Linear(3, 4), nn.BatchNorm1d(4) }
bnet:buffers()[1].tensor:fill_(2)
local dpb = dist.DataParallel(bnet)
dpb:broadcast_parameters()
H.check(bnet:buffers()[1].tensor:max() == 2, "one process: buffers unchanged")

-- DataParallel options: sync_batchnorm (one process: the layers are found and counted, statistics stay local)
do
  local bnnet = nn.Sequential { nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Sequential { nn.BatchNorm1d(4) } }
  local sdp = dist.DataParallel(bnnet, { sync_batchnorm = true })
  H.check(sdp:stats().sync_batchnorm == 2, "two BatchNorm1d layers found: " .. sdp:stats().sync_batchnorm)
  H.check(dist.DataParallel(bnnet):stats().sync_batchnorm == 0, "off by default")
  local y = bnnet:forward(T.randn(5, 3))
  H.check(y:size(1) == 5, "a synced forward in one process")
  H.checkerror("(unknown option 'sync' (expected sync_batchnorm))", dist.DataParallel, bnnet, { sync = true })
  H.checkerror("(option 'sync_batchnorm' must be a boolean, got number)", dist.DataParallel, bnnet,
               { sync_batchnorm = 1 })
end
