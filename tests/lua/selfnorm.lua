-- The SNN paper's promise, measured with selut.nn.stats on the demo's nets
-- (examples/selfnorm.lua): 32 layers x 256, LeCun-normal init, standardized
-- input. Every SELU layer stays at mean 0 +- 0.1 and variance 1 +- 0.15;
-- ReLU's variance collapses; ELU's drifts away from 1.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn = selut.tensor, selut.nn

local function deep(make, depth, width)
  local layers = {}
  for _ = 1, depth do
    layers[#layers + 1] = nn.Linear(width, width)
    layers[#layers + 1] = make()
  end
  local net = nn.Sequential(layers)
  nn.init.lecun_normal(net)
  return net
end

selut.manual_seed(11)
local x = T.randn(1000, 256)
local function stats_of(make)
  local st = nn.stats(deep(make, 32, 256), x)
  check(#st == 64, "one entry per module")
  local acts = {}
  for l = 1, 32 do acts[l] = st[2 * l] end
  return acts
end

local selu = stats_of(nn.SELU)
for l, s in ipairs(selu) do
  check(s.type == "SELU", "activation entries")
  check(math.abs(s.mean) < 0.1, string.format("SELU layer %d mean %.4f within 0 +- 0.1", l, s.mean))
  check(math.abs(s.var - 1) < 0.15, string.format("SELU layer %d variance %.4f within 1 +- 0.15", l, s.var))
  check(s.frac_saturated < 0.01, "few SELU units saturated")
end
local relu = stats_of(nn.ReLU)
check(relu[32].var < 1e-6, string.format("ReLU variance collapses (layer 32: %.3g)", relu[32].var))
for l = 2, 32 do check(relu[l].var < relu[l - 1].var, "ReLU variance falls layer after layer") end
check(relu[1].frac_saturated > 0.4, "about half the ReLU units are 0")
local elu = stats_of(nn.ELU)
check(elu[32].var < 0.5, string.format("ELU (alpha 1) drifts from the fixed point (layer 32: %.3g)", elu[32].var))
