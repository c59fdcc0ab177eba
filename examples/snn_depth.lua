-- The SNN paper's depth experiment (Klambauer et al., 2017, Figure 1) on
-- Fashion-MNIST: for depths 8, 16 and 32, three nets trained with the same
-- SGD settings from the same data order —
--   SELU + LeCun-normal init      (self-normalizing)
--   ReLU + He-normal init
--   ReLU + BatchNorm1d (He init)  (the paper's baseline)
-- It writes one training-loss PNG per depth (the three nets as three series),
-- activation histograms of every net at initialization and at the end, runs
-- selut.snn.check on the SNN, and prints a table of final training losses and
-- test accuracies.
--
--   build/selut examples/snn_depth.lua --quick     (12000 samples, 3 epochs: < 3 min on 2 cores)
--   build/selut examples/snn_depth.lua             (the full run; see docs/snn.md for its time)
--   build/selut examples/snn_depth.lua --help
local selut = require "selut"
local args = require "selut.args"
local nn, optim, T = selut.nn, selut.optim, selut.tensor

local spec = {
  { "quick", false, "small run: --limit 12000 --test_limit 2000 --epochs 3 (unless given)" },
  { "depths", "8,16,32", "hidden-layer counts, comma separated" },
  { "width", 128, "units per hidden layer", min = 1 },
  { "epochs", 5, "epochs per net", min = 1 },
  { "limit", 0, "use only the first N training samples (0 = all 60000)", min = 0 },
  { "test_limit", 0, "use only the first N test samples (0 = all 10000)", min = 0 },
  { "batch", 128, "batch size", min = 1 },
  { "lr", 0.01, "SGD learning rate (the same for every net)", min = 0 },
  { "momentum", 0.9, "SGD momentum", min = 0 },
  { "log_every", 0, "log the mean training loss every N steps (0: about 40 points per curve)", min = 0 },
  { "seed", 1, "random seed (the same data order and init draws for every net)" },
  { "threads", 0, "BLAS threads (0 = keep the launcher's setting)", min = 0 },
  { "data", "/usr/share/datasets/fashion-mnist", "dataset directory" },
  { "out", "runs/snn_depth", "output folder for the PNGs" },
}

local opt, err, usage = args.parse(arg, spec, "selut examples/snn_depth.lua [options]")
if not opt then
  io.stderr:write("snn_depth.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then
  print(usage)
  os.exit(0)
end
local given = {}
for _, a in ipairs(arg) do given[a:match("^%-%-([%w_]+)") or ""] = true end
if opt.quick then
  local quick = { limit = 12000, test_limit = 2000, epochs = 3 }
  for k, v in pairs(quick) do
    if not given[k] then opt[k] = v end
  end
end
local depths = {}
for d in opt.depths:gmatch("[^,]+") do
  local n = math.tointeger(tonumber(d))
  if not n or n < 1 then
    io.stderr:write("snn_depth.lua: option '--depths' wants positive integers, got '", d, "'\n")
    os.exit(2)
  end
  depths[#depths + 1] = n
end
if opt.threads > 0 then selut.set_num_threads(opt.threads) end

-- data: one scalar standardization from the training set (mean 0, var 1 overall)
local train, test = selut.data.fashion_mnist(opt.data)
if opt.limit > 0 and opt.limit < #train then train = train:subset(opt.limit) end
if opt.test_limit > 0 and opt.test_limit < #test then test = test:subset(opt.test_limit) end
local mean, std = train:standardize()
test:standardize(mean, std)
local probe = train.x:narrow(1, 1, math.min(1000, #train)) -- fixed inputs for histograms and checks
selut.sys.mkdir(opt.out)

-- the three nets of a depth: `depth` hidden Linear layers, then Linear(width, 10)
local KINDS = {
  { key = "selu", label = "SELU + LeCun" },
  { key = "relu", label = "ReLU + He" },
  { key = "relu_bn", label = "ReLU + BatchNorm" },
}

local function build(kind, depth, width)
  local layers, fan = {}, 784
  for _ = 1, depth do
    layers[#layers + 1] = nn.Linear(fan, width)
    if kind == "relu_bn" then layers[#layers + 1] = nn.BatchNorm1d(width) end
    layers[#layers + 1] = kind == "selu" and nn.SELU() or nn.ReLU()
    fan = width
  end
  layers[#layers + 1] = nn.Linear(fan, 10)
  local net = nn.Sequential(layers)
  if kind == "selu" then nn.init.lecun_normal(net) else nn.init.he_normal(net) end
  return net
end

local function evaluate(net, data)
  net:evaluate()
  local correct, n = 0, 0
  for xb, yb in data:batches(1000) do
    local pred = net:forward(xb):argmax(2)
    for i = 1, #yb do
      if pred[i] == yb[i] then correct = correct + 1 end
    end
    n = n + #yb
  end
  net:train()
  return correct / n
end

local function histograms(net, kind, depth, when)
  local path = string.format("%s/hist_d%d_%s_%s.png", opt.out, depth, kind.key, when)
  selut.viz.histograms(net, probe, path, {
    layers = { kind.key == "selu" and "SELU" or "ReLU" }, range = { -4, 4 },
    title = string.format("%s, depth %d, %s", kind.label, depth, when == "init" and "at initialization" or "after training"),
  })
  return path
end

if opt.batch > #train then opt.batch = #train end
local steps_per_epoch = #train // opt.batch -- full batches only
local log_every = opt.log_every > 0 and opt.log_every or math.max(1, (steps_per_epoch * opt.epochs) // 40)
local crit = nn.CrossEntropyLoss()
local results = {}
local t_all = selut.clock()
print(string.format("snn_depth: %d train / %d test samples, width %d, %d epochs, batch %d, SGD lr %g momentum %g, "
  .. "loss logged every %d steps", #train, #test, opt.width, opt.epochs, opt.batch, opt.lr, opt.momentum, log_every))

for _, depth in ipairs(depths) do
  local series = {}
  for _, kind in ipairs(KINDS) do
    local t0 = selut.clock()
    selut.manual_seed(opt.seed) -- the same init stream and data order for every net
    local net = build(kind.key, depth, opt.width)
    if kind.key == "selu" then
      local findings = selut.snn.check(net, probe)
      print(string.format("  snn.check(SELU net, depth %d): %d finding(s)", depth, #findings))
      for _, f in ipairs(findings) do print("    " .. f.kind .. ": " .. f.message) end
    end
    histograms(net, kind, depth, "init")
    local opt_sgd = optim.SGD(net:parameters(), { lr = opt.lr, momentum = opt.momentum })
    local curve, x_steps = {}, {}
    local acc_loss, acc_n, step, diverged = 0, 0, 0, false
    for _ = 1, opt.epochs do
      for xb, yb in train:batches(opt.batch, { shuffle = true, drop_last = true }) do -- BatchNorm needs > 1 sample
        local out = net:forward(xb)
        local loss = crit:forward(out, yb)
        opt_sgd:zero_grad()
        net:backward(xb, crit:backward(out, yb), false)
        opt_sgd:step()
        step = step + 1
        acc_loss, acc_n = acc_loss + loss, acc_n + 1
        if step % log_every == 0 then
          curve[#curve + 1] = acc_loss / acc_n
          x_steps[#x_steps + 1] = step
          acc_loss, acc_n = 0, 0
        end
        if loss ~= loss or loss == math.huge then diverged = true break end
      end
      if diverged then break end
    end
    histograms(net, kind, depth, "end")
    local final = curve[#curve] or 0 / 0
    if diverged then final = 0 / 0 end
    local acc = diverged and 0 / 0 or evaluate(net, test)
    local secs = selut.clock() - t0
    results[#results + 1] = { depth = depth, label = kind.label, loss = final, acc = acc, secs = secs }
    series[#series + 1] = { name = kind.label, y = curve, x = x_steps }
    print(string.format("  depth %2d  %-17s final train loss %8.4f  test acc %6.2f%%  (%.1f s)%s", depth, kind.label,
      final, 100 * acc, secs, diverged and "  DIVERGED" or ""))
  end
  local path = string.format("%s/loss_depth%d.png", opt.out, depth)
  selut.viz.plot(series, path, {
    title = string.format("Fashion-MNIST, depth %d (width %d)", depth, opt.width),
    xlabel = "SGD step", ylabel = "training loss (mean over " .. log_every .. " steps)", log_y = true,
  })
  print("  wrote " .. path)
end

print(string.format("\n%-6s %-17s %16s %14s %9s", "depth", "net", "final train loss", "test accuracy", "seconds"))
for _, r in ipairs(results) do
  print(string.format("%-6d %-17s %16.4f %13.2f%% %9.1f", r.depth, r.label, r.loss, 100 * r.acc, r.secs))
end
print(string.format("total %.1f s; PNGs in %s/", selut.clock() - t_all, opt.out))
