-- bench/dist_compute.lua: where a data-parallel rank's compute goes
-- (docs/distributed.md). The default recipe (784 -> 8 x 512 SELU +
-- AlphaDropout 0.05 -> 10, SGD momentum 0.9), one thread, timed per phase
-- over the first `steps` shuffled batches of size `batch`, then the
-- evaluation of `eval` test samples in batches of 1000:
--   selut bench/dist_compute.lua [batch=64] [steps=200] [eval=5000]
-- Run two copies at once (taskset -c 0 / -c 1) to see what sharing the
-- machine's memory system costs each rank: bench/dist_scaling.sh does.
local selut = require "selut"
local batch = tonumber(arg[1]) or 64
local steps = tonumber(arg[2]) or 200
local neval = tonumber(arg[3]) or 5000
selut.set_num_threads(1)
selut.manual_seed(1)
local train, test = selut.data.fashion_mnist(os.getenv("SELUT_FASHION_MNIST"))
train:standardize()
test:standardize()
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local net, crit, opt = dofile(here .. "recipe.lua")(selut)

local clock = selut.clock
local t = {data = 0, forward = 0, loss = 0, zero_grad = 0, backward = 0, step = 0}
local k = 0
local t0 = clock()
local it = train:batches(batch, {shuffle = true})
while k < steps + 5 do
  local a = clock()
  local xb, yb = it()
  if not xb then it = train:batches(batch, {shuffle = true}) xb, yb = it() end
  local b = clock()
  local out = net:forward(xb)
  local c = clock()
  crit:forward(out, yb)
  local gy = crit:backward(out, yb)
  local d = clock()
  opt:zero_grad()
  local e = clock()
  net:backward(xb, gy, false)
  local f = clock()
  opt:step()
  local g = clock()
  k = k + 1
  if k == 5 then t0 = g end -- 5 warm-up steps
  if k > 5 then
    t.data, t.forward, t.loss = t.data + b - a, t.forward + c - b, t.loss + d - c
    t.zero_grad, t.backward, t.step = t.zero_grad + e - d, t.backward + f - e, t.step + g - f
  end
end
local total = clock() - t0
net:evaluate()
local e0 = clock()
local seen = 0
for xb, yb in test:batches(1000) do
  if seen >= neval then break end
  local out = net:forward(xb)
  crit:forward(out, yb)
  out:argmax(2)
  seen = seen + #yb
end
local eval = clock() - e0
local function ms(v) return string.format("%.2f", 1000 * v / steps) end
print(string.format("batch %d, %d steps: %.2f ms/step (data %s, forward %s, loss %s, zero_grad %s, backward %s, " ..
                    "step %s ms); evaluation of %d samples %.3f s", batch, steps, 1000 * total / steps, ms(t.data),
                    ms(t.forward), ms(t.loss), ms(t.zero_grad), ms(t.backward), ms(t.step), seen, eval))
