-- Acceptance: gradients through a Lua-defined module inside a Sequential
-- (mixed with C layers) match central finite differences — for the input,
-- the Lua module's own parameter and the C layers' parameters.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn = selut.tensor, selut.nn

-- y = w * x^2 (w a row of D weights broadcast over the batch)
local function SquareScale(d)
  local m = nn.Module { name = "SquareScale", w = T.randn(d), gw = T.zeros(d) }
  function m:forward(x)
    return x * x * self.w
  end
  function m:backward(x, gy)
    self.gw:add_((gy * x * x):sum(1)) -- accumulate, like C layers
    return gy * x * self.w * 2
  end
  function m:parameters()
    return { { param = self.w, grad = self.gw, name = "weight" } }
  end
  return m
end

selut.manual_seed(2024)
local net = nn.Sequential { nn.Linear(5, 4), nn.Tanh(), SquareScale(4), nn.SELU(), nn.Linear(4, 3) }
local x = T.randn(3, 5)
local probe = T.randn(3, 3) -- L = sum(net(x) * probe), so dL/dy = probe

local function loss()
  return (net:forward(x) * probe):sum()
end

net:zero_grad()
net:forward(x)
local gx = net:backward(x, probe):clone()
local params = net:parameters()
check(params[3].name == "2.weight", "the Lua module's parameter is named by its position: " .. params[3].name)

local eps = 1e-2
local function numeric(t, i, j)
  local v = j and t:get(i, j) or t[i]
  local function set(val) if j then t:set(i, j, val) else t[i] = val end end
  set(v + eps)
  local lp = loss()
  set(v - eps)
  local lm = loss()
  set(v)
  return (lp - lm) / (2 * eps)
end

local worst, checked = 0, 0
local function compare(ana, num, what)
  local err = math.abs(ana - num)
  local tol = 2e-3 + 1e-2 * math.abs(num)
  if err > tol then error(string.format("gradient mismatch at %s: analytic %.6f, numeric %.6f", what, ana, num), 2) end
  worst = math.max(worst, err)
  checked = checked + 1
end

for i = 1, 3 do
  for j = 1, 5 do compare(gx:get(i, j), numeric(x, i, j), string.format("input[%d][%d]", i, j)) end
end
for _, p in ipairs(params) do
  local t, g = p.param, p.grad
  if t:dim() == 1 then
    for i = 1, #t do compare(g[i], numeric(t, i), p.name .. "[" .. i .. "]") end
  else
    for i = 1, t:size(1) do
      for j = 1, t:size(2) do compare(g:get(i, j), numeric(t, i, j), string.format("%s[%d][%d]", p.name, i, j)) end
    end
  end
end
check(checked == 15 + 20 + 4 + 4 + 12 + 3, "every entry checked: " .. checked)
io.stderr:write(string.format("gradcheck: %d gradients match central differences (max abs error %.2e)\n", checked, worst))
