-- Acceptance: the API contract (docs/api.md), everything that does not need data/io/viz, run
-- as written (sizes kept, a synthetic batch instead of Fashion-MNIST), then a
-- short training run on separable synthetic data must learn.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check

local selut = require "selut"          -- the launcher and REPL also preload it as a global
local T, nn, optim = selut.tensor, selut.nn, selut.optim
check(selut == _G.selut, "require returns the preloaded table")
check(require "selut.nn" == nn, "the nn script extends selut.nn")

selut.manual_seed(42)
local t0 = selut.clock()                 -- monotonic wall-clock seconds
selut.set_num_threads(2)
check(selut.get_num_threads() >= 1, "threads")
local x = T.randn(128, 784)
local s = x:shape()
check(s[1] == 128 and s[2] == 784 and x:size(2) == 784 and x:dim() == 2 and x:numel() == 128 * 784 and #x == 128, "shape")
check(x[1]:dim() == 1 and type(x[1][1]) == "number", "x[1] row view, number for 1-D")
x:set(1, 2, 0.5)
check(x:get(1, 2) == 0.5, "get/set")
check(x:reshape(64, 1568):size(2) == 1568 and x:narrow(1, 1, 32):size(1) == 32, "reshape, narrow")
local y0 = x:clone()
y0:copy(x)
check(#x:totable() == 128 and type(tostring(x)) == "string", "totable, tostring")
local y = T.ones(128, 784)
local _ = { x + y, x - y, x * 2, x / 2, -x }
x:add_(y); x:mul_(0.5); x:fill_(1)
check(x:sum() == 128 * 784, "in place")
local a, b = T.randn(4, 3), T.randn(3, 5)
check(selut.matmul(a, b):size(2) == 5, "matmul")
for _, f in ipairs { "sum", "mean", "var", "std", "max", "min" } do check(type(x[f](x)) == "number", f) end
check(x:sum(1):numel() == 784 and x:argmax(2):numel() == 128, "sum(dim), argmax(dim)")
check(T.zeros(2):numel() + T.ones(2):numel() + T.rand(2):numel() + T.full(3, 2):numel() + T.new { { 1, 2 }, { 3, 4 } }:numel()
      + T.arange(4):numel() == 16, "constructors")

local net = nn.Sequential {
  nn.Linear(784, 512), nn.SELU(), nn.AlphaDropout(0.05),
  nn.Linear(512, 10),
}                                       -- also nn.ELU(alpha), nn.ReLU(), nn.Dropout(p)
local _ = { nn.ELU(1.0), nn.ReLU(), nn.Dropout(0.1) }
nn.init.lecun_normal(net)               -- N(0, 1/fan_in) weights, zero biases
x = T.randn(128, 784)
local out = net:forward(x)
check(out:size(1) == 128 and out:size(2) == 10, "net forward")
local labels = T.zeros(128)
for i = 1, 128 do labels[i] = (i - 1) % 10 + 1 end  -- class indices 1..10
local crit = nn.CrossEntropyLoss()      -- logits + class indices 1..C; also nn.MSELoss()
local loss = crit:forward(out, labels)  -- a Lua number
check(math.type(loss) == "float" and loss > 0, "loss is a number")
local gy = crit:backward(out, labels)
local gx = net:backward(x, gy)          -- accumulates parameter gradients
check(gx:size(2) == 784, "grad input")
net:train(); net:evaluate(); net:zero_grad()
local params = net:parameters()         -- list of {param=, grad=, name=}
check(#params == 4 and params[1].name == "0.weight" and params[4].name == "3.bias", "parameter names")
local opt = optim.SGD(net:parameters(), { lr = 0.01, momentum = 0.9 })   -- also optim.Adam
opt:zero_grad(); opt:step()
local _ = optim.Adam(net:parameters())

-- a module written in Lua composes with C modules inside Sequential
local Square = nn.Module { forward = function(self, v) return v * v end,
                           backward = function(self, v, g) return g * v * 2 end }
local net2 = nn.Sequential { nn.Linear(4, 4), Square, nn.Linear(4, 2) }
check(net2:forward(T.randn(3, 4)):size(2) == 2, "Lua module in Sequential")
check(selut.clock() >= t0, "clock is monotonic")
check(selut.data and selut.viz and type(selut.version) == "string", "data, viz tables and version exist")

-- a short training run: 3 Gaussian blobs in 20-D, SELU MLP, Adam
selut.manual_seed(7)
local n, d, c = 300, 20, 3
local centers = T.randn(c, d) * 3
local xs, ys = T.randn(n, d), T.zeros(n)
for i = 1, n do
  local k = (i - 1) % c + 1
  xs[i]:add_(centers[k])
  ys[i] = k
end
local model = nn.Sequential { nn.Linear(d, 32), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(32, c) }
nn.init.lecun_normal(model)
local adam = optim.Adam(model:parameters(), { lr = 0.01 })
local first
for epoch = 1, 30 do
  model:train()
  local o = model:forward(xs)
  local l = crit:forward(o, ys)
  first = first or l
  adam:zero_grad()
  model:backward(xs, crit:backward(o, ys))
  adam:step()
end
model:evaluate()
local pred = model:forward(xs):argmax(2)
local correct = 0
for i = 1, n do if pred[i] == ys[i] then correct = correct + 1 end end
check(correct / n > 0.95, "accuracy " .. correct / n)
check(crit:forward(model:forward(xs), ys) < first / 4, "loss fell")
