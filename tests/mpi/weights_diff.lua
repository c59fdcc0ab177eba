-- selut tests/mpi/weights_diff.lua a.safetensors b.safetensors [tolerance]:
-- prints the largest absolute difference between the tensors of two
-- checkpoints (tests/mpi/run.sh: train.lua on 2 ranks against one process)
-- and fails when it exceeds the tolerance or the names differ.
local a, b = selut.load(arg[1]), selut.load(arg[2])
local tol = tonumber(arg[3] or "2e-6")
local worst, n = 0, 0
for name, t in pairs(a) do
  if not b[name] then error(arg[2] .. " has no tensor " .. name) end
  local d = (t - b[name]):abs():max()
  n = n + 1
  if d > worst then worst = d end
end
for name in pairs(b) do if not a[name] then error(arg[1] .. " has no tensor " .. name) end end
print(string.format("%d tensors, max |difference| %.3g (tolerance %g)", n, worst, tol))
if not (worst <= tol) then error(string.format("weights differ by %g > %g", worst, tol)) end
