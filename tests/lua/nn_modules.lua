-- C layers, Lua modules, Sequential naming, train/evaluate, init.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, near, tnear = H.check, H.near, H.tensor_near
local T, nn = selut.tensor, selut.nn

selut.manual_seed(0)
local x = T.randn(16, 8)

-- every C layer: forward keeps the shape (Linear maps features), backward
-- returns the input's shape, tostring names the PyTorch class
local layers = {
  { nn.SELU(), "SELU()" }, { nn.ELU(), "ELU(alpha=1.0)" }, { nn.ELU(0.5), "ELU(alpha=0.5)" },
  { nn.ReLU(), "ReLU()" }, { nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)" }, { nn.Tanh(), "Tanh()" },
  { nn.Sigmoid(), "Sigmoid()" }, { nn.GELU(), "GELU()" }, { nn.Softmax(), "Softmax()" },
  { nn.LogSoftmax(), "LogSoftmax()" }, { nn.Dropout(0.2), "Dropout(p=0.2)" },
  { nn.AlphaDropout(0.05), "AlphaDropout(p=0.05)" },
}
for _, e in ipairs(layers) do
  local m, name = e[1], e[2]
  check(tostring(m) == name, "tostring " .. tostring(m) .. " vs " .. name)
  local y = m:forward(x)
  check(y:size(1) == 16 and y:size(2) == 8, name .. " forward shape")
  local gx = m:backward(x, T.ones(16, 8))
  check(gx:size(1) == 16 and gx:size(2) == 8, name .. " backward shape")
  check(#m:parameters() == 0, name .. " has no parameters")
  check(m:train() == m and m.training == true, name .. " train")
  check(m:evaluate() == m and m.training == false, name .. " evaluate")
end

-- known values
tnear(nn.ReLU():forward(T.new { { -1, 2 } }), { { 0, 2 } }, 0, "ReLU")
local lam, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
tnear(nn.SELU():forward(T.new { { -1, 2 } }), { { lam * alpha * (math.exp(-1) - 1), 2 * lam } }, 1e-6, "SELU")
tnear(nn.Softmax():forward(T.new { { 0, math.log(3) } }), { { 0.25, 0.75 } }, 1e-6, "Softmax")

-- Linear
local lin = nn.Linear(8, 3)
check(tostring(lin) == "Linear(in_features=8, out_features=3, bias=true)", "Linear tostring")
check(tostring(nn.Linear(2, 2, false)) == "Linear(in_features=2, out_features=2, bias=false)", "no bias")
local ps = lin:parameters()
check(#ps == 2 and ps[1].name == "weight" and ps[2].name == "bias", "Linear parameter names")
check(ps[1].param:size(1) == 3 and ps[1].param:size(2) == 8, "weight is [out x in]")
check(#nn.Linear(2, 2, false):parameters() == 1, "bias=false")
-- PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in))
local big = nn.Linear(100, 50)
local bound = 1 / math.sqrt(100)
check(big.weight:max() <= bound and big.weight:min() >= -bound, "default init bound")
check(big.weight:std() > 0.5 * bound, "default init is not zero")
-- forward = x W^T + b
lin.weight:copy(T.arange(24):reshape(3, 8) / 10)
lin.bias:copy(T.new { 1, 2, 3 })
local y = lin:forward(x)
for i = 1, 16 do
  for j = 1, 3 do
    local s = lin.bias[j]
    for k = 1, 8 do s = s + x:get(i, k) * lin.weight:get(j, k) end
    near(y:get(i, j), s, 1e-4, "linear forward")
  end
end
-- backward accumulates parameter gradients; zero_grad clears
lin:zero_grad()
local gy = T.ones(16, 3)
lin:backward(x, gy)
local g1 = lin:parameters()[2].grad:clone()
tnear(g1, { 16, 16, 16 }, 1e-5, "bias grad = column sums of gy")
lin:backward(x, gy)
tnear(lin:parameters()[2].grad, { 32, 32, 32 }, 1e-5, "backward accumulates")
lin:zero_grad()
check(lin:parameters()[2].grad:sum() == 0, "zero_grad")
-- the output buffer is reused: the next forward overwrites it (Torch7)
local y1 = lin:forward(x)
local keep = y1:clone()
lin:forward(x * 2)
check(y1:get(1, 1) ~= keep:get(1, 1), "forward output is overwritten by the next forward")

-- dropout: identity when evaluating, reproducible from a seed when training
local d = nn.Dropout(0.5)
d:evaluate()
tnear(d:forward(x), x, 0, "dropout eval is identity")
d:train()
selut.manual_seed(5)
local a = d:forward(x):clone()
selut.manual_seed(5)
tnear(d:forward(x), a, 0, "same seed, same mask")
local zeros = 0
for _, v in ipairs(H.flatten(a:totable(), {})) do if v == 0 then zeros = zeros + 1 end end
check(zeros > 30 and zeros < 98, "about half dropped: " .. zeros)
local ad = nn.AlphaDropout(0.05)
ad:evaluate()
tnear(ad:forward(x), x, 0, "alpha dropout eval is identity")

-- Sequential: names count children from 0, nested "1.0.weight"
local inner = nn.Sequential { nn.Linear(4, 4), nn.SELU() }
local net = nn.Sequential { nn.Linear(8, 4), inner, nn.ReLU(), nn.Linear(4, 2, false) }
local names = {}
for _, p in ipairs(net:parameters()) do names[#names + 1] = p.name end
check(table.concat(names, ",") == "0.weight,0.bias,1.0.weight,1.0.bias,3.weight", "names: " .. table.concat(names, ","))
check(#net == 4 and net.modules[2] == inner, "children")
check(tostring(net) == [[
Sequential(
  (0): Linear(in_features=8, out_features=4, bias=true)
  (1): Sequential(
    (0): Linear(in_features=4, out_features=4, bias=true)
    (1): SELU()
  )
  (2): ReLU()
  (3): Linear(in_features=4, out_features=2, bias=false)
)]], "Sequential tostring:\n" .. tostring(net))
net:evaluate()
check(net.training == false and inner.training == false and inner.modules[1].training == false, "evaluate recurses")
net:train()
check(inner.modules[2].training == true, "train recurses")
check(net:add(nn.Tanh()) == net and #net == 5, "add")
local out = net:forward(x)
check(out:size(1) == 16 and out:size(2) == 2, "Sequential forward")
local gx = net:backward(x, T.ones(16, 2))
check(gx:size(1) == 16 and gx:size(2) == 8, "Sequential backward")
net:zero_grad()
for _, p in ipairs(net:parameters()) do check(p.grad:sum() == 0, "zero_grad recurses: " .. p.name) end
-- parameters are shared, not copied
net:parameters()[1].param:fill_(0)
check(net.modules[1].weight:sum() == 0, "parameters share storage with the module")

-- nn.init on Sequential: N(0, 1/fan_in) weights, zero biases; deterministic
local deep = nn.Sequential { nn.Linear(400, 300), nn.SELU(), nn.Sequential { nn.Linear(300, 200) } }
selut.manual_seed(9)
nn.init.lecun_normal(deep)
local w = deep.modules[1].weight
near(w:mean(), 0, 0.005, "lecun mean")
near(w:std(), math.sqrt(1 / 400), 0.002, "lecun std 1/sqrt(fan_in)")
near(deep.modules[3].modules[1].weight:std(), math.sqrt(1 / 300), 0.002, "nested Linear initialized")
check(deep.modules[1].bias:sum() == 0, "zero bias")
local w1 = w:clone()
selut.manual_seed(9)
nn.init.lecun_normal(deep)
tnear(deep.modules[1].weight, w1, 0, "same seed, same init")
nn.init.he_normal(deep)
near(deep.modules[1].weight:std(), math.sqrt(2 / 400), 0.003, "he std")
nn.init.xavier_uniform(deep)
local xb = math.sqrt(6 / (400 + 300))
check(deep.modules[1].weight:max() <= xb and deep.modules[1].weight:max() > 0.9 * xb, "xavier bound")
check(nn.init.lecun_normal(lin) == lin, "init on a single Linear returns it")

-- Lua modules: the default protocol
local Twice = nn.Module {
  name = "Twice",
  forward = function(self, inp) self.output = inp * 2 return self.output end,
  backward = function(self, inp, g) return g * 2 end,
}
check(tostring(Twice) == "Twice()", "Lua module tostring")
check(#Twice:parameters() == 0 and Twice.training, "defaults")
Twice:evaluate()
check(Twice.training == false, "Lua module evaluate")
check(nn.is_module(Twice) and nn.is_module(lin) and not nn.is_module({}) and not nn.is_module(x), "is_module")
local mixed = nn.Sequential { nn.Linear(8, 3), Twice }
local mo = mixed:forward(x)
tnear(mo, mixed.modules[1]:forward(x) * 2, 1e-6, "Lua module inside Sequential")

-- backward(x, gy, false): the input is data, so the first layer skips dL/dx;
-- parameter gradients are bit-identical to a full backward
do
  local function net_with(seed)
    selut.manual_seed(seed)
    return nn.Sequential { nn.Linear(6, 4), nn.SELU(), nn.Linear(4, 2) }
  end
  local a, b = net_with(3), net_with(3)
  local x, gy = T.randn(5, 6), T.randn(5, 2)
  a:forward(x); local gx = a:backward(x, gy)
  b:forward(x); local none = b:backward(x, gy, false)
  check(gx ~= nil and none == nil, "need_input_grad = false returns nil")
  local pa, pb = a:parameters(), b:parameters()
  for i = 1, #pa do
    H.tensor_near(pb[i].grad, pa[i].grad, 0, "same gradient for " .. pa[i].name)
  end
  local lin = nn.Linear(6, 4)
  lin:forward(x)
  check(lin:backward(x, T.ones(5, 4), false) == nil, "a C layer returns nil too")
  H.checkerror("need_input_grad must be a boolean", function() b:backward(x, gy, 1) end)
  H.checkerror("bad argument #3 to 'backward' (boolean expected, got number)", function() lin:backward(x, T.ones(5, 4), 1) end)
end
