-- Allreduce across two ranks in two network namespaces (tests/mpi/netns.sh):
-- checks the values and reports the time per allreduce of a model-sized
-- buffer. arg[1] = floats (default 2246154: the default recipe's gradient).
local dist, T = selut.dist, selut.tensor
local rank, size = dist.init()
local n = math.tointeger(tonumber(arg[1] or "")) or 2246154
local reps = math.tointeger(tonumber(arg[2] or "")) or 5
local t = T.full(rank, n)
dist.allreduce(t) -- warm-up (connections are set up lazily)
local ok = t:min() == size * (size + 1) / 2 and t:max() == size * (size + 1) / 2
dist.barrier()
local t0 = selut.clock()
for _ = 1, reps do dist.allreduce(t) end
local secs = (selut.clock() - t0) / reps
secs = dist.allreduce(T.new { secs }, "max")[1]
if not ok then error("rank " .. rank .. ": wrong allreduce result over the veth link") end
if rank == 1 then
  print(string.format("netns: allreduce of %d floats (%.2f MB) on %d ranks over veth/TCP: %.2f ms", n, n * 4 / 1e6, size,
                      secs * 1000))
end
dist.finalize()
