-- The SNN paper's picture: push standardized data through 32-layer,
-- 256-wide nets with SELU, ELU and ReLU (LeCun-normal init, no training) and
-- look at every layer's activations. SELU stays at mean 0 / variance 1 all
-- the way down; ELU drifts; ReLU's variance collapses towards 0.
--   build/selut examples/selfnorm.lua [--depth 32] [--width 256] [--samples 2000] [--out runs/selfnorm]
-- Writes selfnorm_<act>.png (one histogram panel per activation layer) and
-- variance.png (per-layer variance against depth), and prints the table.
local selut = require "selut"
local args = require "selut.args"
local nn, T = selut.nn, selut.tensor

local spec = {
  {"depth", 32, "hidden layers", min = 1, max = 256},
  {"width", 256, "units per layer", min = 1},
  {"samples", 2000, "input rows (standard normal, i.e. standardized data)", min = 2},
  {"seed", 1, "random seed"},
  {"out", "runs/selfnorm", "output folder"},
}
local opt, err, usage = args.parse(arg, spec, "selut examples/selfnorm.lua [options]")
if not opt then
  io.stderr:write("selfnorm.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then print(usage) os.exit(0) end

local acts = {
  {name = "selu", make = nn.SELU},
  {name = "elu", make = nn.ELU},
  {name = "relu", make = nn.ReLU},
}

local function build(make)
  local layers = {}
  for _ = 1, opt.depth do
    layers[#layers + 1] = nn.Linear(opt.width, opt.width)
    layers[#layers + 1] = make()
  end
  local net = nn.Sequential(layers)
  nn.init.lecun_normal(net) -- N(0, 1/fan_in), zero biases: the SNN recipe for all three
  return net
end

selut.sys.mkdir(opt.out)
selut.manual_seed(opt.seed)
local x = T.randn(opt.samples, opt.width)
local series, results = {}, {}
for _, a in ipairs(acts) do
  local net = build(a.make)
  local path = string.format("%s/selfnorm_%s.png", opt.out, a.name)
  -- panels for at most 16 activation layers, evenly spaced, last one included
  local pick, step = {}, math.max(1, opt.depth // 16)
  for l = opt.depth, 1, -step do table.insert(pick, 1, 2 * l) end
  while #pick > 16 do table.remove(pick, 1) end
  selut.viz.histograms(net, x, path, {
    layers = pick,
    title = string.format("%s, %d layers x %d, LeCun normal init: activation histograms (N(0,1) in red)",
                          a.name:upper(), opt.depth, opt.width),
  })
  local stats = selut.nn.stats(net, x)
  local var = {}
  results[a.name] = {}
  for l = 1, opt.depth do
    local s = stats[2 * l] -- the activation after hidden layer l
    var[l] = s.var
    results[a.name][l] = s
  end
  series[#series + 1] = {name = a.name:upper(), y = var}
  print(string.format("wrote %s", path))
end
selut.viz.plot(series, opt.out .. "/variance.png", {
  title = "activation variance by depth (fixed point: 1)", xlabel = "layer", ylabel = "variance", log_y = true,
})
print(string.format("wrote %s/variance.png", opt.out))

print(string.format("\n%5s  %9s %9s  %9s %9s  %9s %9s", "layer", "selu mean", "selu var", "elu mean", "elu var",
                    "relu mean", "relu var"))
for l = 1, opt.depth do
  local s, e, r = results.selu[l], results.elu[l], results.relu[l]
  print(string.format("%5d  %9.4f %9.4f  %9.4f %9.4f  %9.4f %9.3g", l, s.mean, s.var, e.mean, e.var, r.mean, r.var))
end
