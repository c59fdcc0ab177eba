-- One rank fails while the others wait in a collective: the job must end
-- (tests/mpi/run.sh checks the exit status, the message and the time).
local dist = selut.dist
local rank = dist.init()
if rank == 2 then error("rank 2 fails on purpose (tests/mpi/fail.lua)") end
dist.allreduce(selut.tensor.zeros(4)) -- rank 1 would wait here forever
dist.finalize()
