-- selut.matmul / x:matmul / selut.bmm against PyTorch (tests/ref/shape_refs.lua,
-- 1e-6 relative): 1-D . 1-D, matrix-vector, vector-matrix, 2-D, batched 3-D
-- and 4-D with broadcast batch dims, size-0 dims. Then: the 2-D path keeps
-- its bits (it is sl_matmul), 1 and 2 threads give the same bits, errors.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local run = dofile(arg[0]:gsub("[^/]*$", "") .. "_shape_refs.lua")
local T = selut.tensor
local n, env = run("matmul")
H.check(n >= 15, "matmul cases: " .. n)

-- a batched product equals the 2-D products of its slices, bit for bit
selut.manual_seed(5)
local a, b = T.randn(3, 70, 40), T.randn(3, 40, 50)
local c = selut.matmul(a, b)
for i = 1, 3 do
  local ci = selut.matmul(a[i], b[i])
  local x, y = c[i]:reshape(-1):totable(), ci:reshape(-1):totable()
  for k = 1, #x do H.check(x[k] == y[k], "batched slice " .. i .. " element " .. k) end
end

-- same bits for 1 and 2 threads (products big enough to be split in two)
local threads = selut.get_num_threads()
local big_a, big_b = T.randn(4, 256, 300), T.randn(300, 200)
local function bits(t) return t:reshape(-1):totable() end
selut.set_num_threads(1)
local r1, q1 = bits(selut.matmul(big_a, big_b)), bits(selut.bmm(big_a, big_a:transpose(2, 3)))
selut.set_num_threads(2)
local r2, q2 = bits(selut.matmul(big_a, big_b)), bits(selut.bmm(big_a, big_a:transpose(2, 3)))
selut.set_num_threads(threads)
for k = 1, #r1 do if r1[k] ~= r2[k] then error("matmul differs between 1 and 2 threads at " .. k) end end
for k = 1, #q1 do if q1[k] ~= q2[k] then error("bmm differs between 1 and 2 threads at " .. k) end end

H.checkerror("matmul: shapes [2 x 3 x 4] and [5 x 2] cannot be multiplied (4 != 5)", selut.matmul, env.p3, T.zeros(5, 2))
H.checkerror("matmul: batch dimensions of [2 x 3 x 4] and [3 x 4 x 5] cannot broadcast (dim 1: 2 vs 3)",
             selut.matmul, env.p3, T.zeros(3, 4, 5))
H.checkerror("bmm: expected 3-D tensors, got [3 x 4] and [4 x 5]", selut.bmm, env.m1, env.m2)
H.checkerror("bmm: batch sizes of [2 x 3 x 4] and [1 x 4 x 5] differ (2 vs 1)", selut.bmm, env.p3, T.zeros(1, 4, 5))
