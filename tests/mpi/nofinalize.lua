-- A rank that simply ends, never calling selut.dist.finalize(), after a
-- collective and with a DataParallel alive: the launcher finalizes MPI when
-- the state closes and the job exits 0 (tests/mpi/run.sh).
local dist = selut.dist
local rank, size = dist.init()
local s = dist.allreduce(selut.tensor.new { rank })
assert(s[1] == size * (size + 1) / 2)
local net = selut.nn.Sequential { selut.nn.Linear(2, 2) }
local dp = dist.DataParallel(net)
dp:broadcast_parameters()
print(string.format("nofinalize: rank %d of %d ends without finalize", rank, size))
