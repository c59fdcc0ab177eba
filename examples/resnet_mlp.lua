-- A residual self-normalizing MLP on Fashion-MNIST, written with nn.class
-- and trained on the autograd path (net(x), F.cross_entropy, backward).
--   build/selut examples/resnet_mlp.lua                  (784 -> 512, 4 blocks of 2 x 512 SELU, -> 10; 10 epochs)
--   build/selut examples/resnet_mlp.lua --epochs 1 --limit 10000
-- Each block adds a two-layer SELU branch to its input and rescales the sum
-- by 1/sqrt(2): with unit-variance input and branch the sum keeps unit
-- variance, so the SELU fixed point (mean 0, variance 1) holds along the
-- residual stream as it does in the plain MLP of examples/train.lua. Its
-- accuracy next to the plain MLP's: README.md, "Examples".
local selut = require "selut"
local args = require "selut.args"
local nn, optim, T = selut.nn, selut.optim, selut.tensor
local F = nn.F

local opt, err, usage = args.parse(arg, {
  {"epochs", 10, "number of epochs", min = 1},
  {"blocks", 4, "residual blocks (2 hidden layers each)", min = 1, max = 500},
  {"width", 512, "units per hidden layer", min = 1},
  {"dropout", 0.05, "AlphaDropout rate inside each branch (0 = off)", min = 0},
  {"lr", 0.01, "SGD learning rate", min = 0},
  {"momentum", 0.9, "SGD momentum", min = 0},
  {"batch", 128, "batch size", min = 1},
  {"seed", 1, "random seed"},
  {"limit", 0, "use only the first N training (and test) samples (0 = all)", min = 0},
  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory"},
  {"save", "", "write the trained net here (safetensors, PyTorch's names)"},
}, "selut examples/resnet_mlp.lua [options]")
if not opt then
  io.stderr:write("resnet_mlp.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then
  print(usage)
  os.exit(0)
end

-- The net (Block, ResMLP) is in resnet_mlp_net.lua, next to this script, so
-- tests/onnx/roundtrip.lua exports the very same definition.
local ResMLP = dofile((arg[0]:match("^(.*[/\\])") or "") .. "resnet_mlp_net.lua")

selut.manual_seed(opt.seed)
local train, test = selut.data.fashion_mnist(opt.data)
if opt.limit > 0 then
  train = train:subset(math.min(opt.limit, train:size()))
  test = test:subset(math.min(opt.limit, test:size()))
end
local mean, std = train:standardize()
test:standardize(mean, std)

local net = nn.init.lecun_normal(ResMLP(opt.blocks, opt.width, opt.dropout))
local sgd = optim.SGD(net:parameters(), {lr = opt.lr, momentum = opt.momentum})

local function evaluate()
  net:evaluate()
  local correct, n = 0, 0
  selut.no_grad(function()
    for xb, yb in test:batches(1000) do
      local pred = net(xb):argmax(2)
      for i = 1, #yb do
        if pred[i] == yb[i] then correct = correct + 1 end
      end
      n = n + #yb
    end
  end)
  net:train()
  return correct / n
end

local nparams = 0
for _, p in ipairs(net:parameters()) do nparams = nparams + p.param:numel() end
print(string.format("selut %s | ResMLP: 784 -> %d, %d blocks of 2 x %d SELU (+ AlphaDropout %g), -> 10 | %d parameters | train %d, test %d",
                    selut.version, opt.width, opt.blocks, opt.width, opt.dropout, nparams, train:size(), test:size()))
local t_start, best = selut.clock(), 0
local tr = selut.Trainer {
  net = net, loss = F.cross_entropy, optim = sgd, data = train, batch_size = opt.batch, shuffle = true,
  epochs = opt.epochs, stop_on_nonfinite = true,
  eval = function(t) return {test_acc = evaluate(), train_loss = t.epoch_loss} end,
  callbacks = {{on_epoch_end = function(_, t, m)
    best = math.max(best, m.test_acc)
    print(string.format("epoch %2d/%d  train loss %.4f  test acc %.2f%%  %.1f s", t.epoch, opt.epochs, m.train_loss,
                        100 * m.test_acc, selut.clock() - t_start))
    io.stdout:flush()
  end}},
}
tr:fit()
local acc = evaluate()
print(string.format("done: %d epochs in %.1f s, test acc %.2f%% (best %.2f%%)", opt.epochs, selut.clock() - t_start,
                    100 * acc, 100 * best))
if opt.save ~= "" then selut.save(opt.save, net) end
