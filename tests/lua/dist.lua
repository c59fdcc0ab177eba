-- selut.dist in one process (no MPI_Init here: the multi-rank tests are
-- tests/mpi/run.sh under mpirun), the shard option of ds:batches, and the
-- DataParallel wrapper's single-process behaviour.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, dist = selut.tensor, selut.nn, selut.dist

-- one process: rank 1 of 1, the main rank
H.check(type(dist.available) == "boolean", "dist.available is a boolean")
H.check(dist.rank() == 1 and dist.size() == 1 and dist.is_main() == true, "one process is rank 1 of 1")

-- collectives before init (or without MPI) are errors naming the function
local want = dist.available and "call selut.dist.init() first" or "selut was built without MPI"
H.checkerror("selut.dist.allreduce: " .. want, dist.allreduce, T.zeros(3))
H.checkerror("selut.dist.broadcast: " .. want, dist.broadcast, T.zeros(3))
H.checkerror("selut.dist.barrier: " .. want, dist.barrier)
H.checkerror("selut.dist.finalize: " .. want, dist.finalize)
H.checkerror("selut.dist.abort: " .. want, dist.abort, 1)
if not dist.available then H.checkerror("selut.dist.init: selut was built without MPI", dist.init) end
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
do local closing <close> = dp end -- __close releases the buffer and the references
H.checkerror("attempt to use a closed DataParallel", dp.stats, dp)
H.check(tostring(dp) == "DataParallel (closed)", "closed tostring")
