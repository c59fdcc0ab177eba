-- A self-normalizing CNN on Fashion-MNIST: SELU convolutions, AlphaDropout,
-- LeCun-normal weights, standardized input.
--   build/selut examples/cnn.lua                        (12 epochs, seed 1)
--   build/selut examples/cnn.lua --epochs 1 --limit 10000   (a quick try)
--   /usr/bin/python3 examples/cnn_torch.py              (the PyTorch twin, same recipe)
--   /usr/bin/python3 examples/cnn_torch.py --check runs/cnn/cnn.safetensors
--                                                       (loads the checkpoint with strict=True, compares logits)
-- The net (PyTorch's names and layouts, so the checkpoint loads in the twin):
--   1 x 28 x 28 -> Conv2d(1, c1, 3, pad 1) SELU MaxPool2d(2)
--              -> Conv2d(c1, c2, 3, pad 1) SELU MaxPool2d(2) -> Flatten
--              -> Linear(c2*49, hidden) SELU AlphaDropout(p) -> Linear(hidden, 10)
local selut = require "selut"
local args = require "selut.args"
local nn, optim, T = selut.nn, selut.optim, selut.tensor

local spec = {
  {"epochs", 12, "number of epochs", min = 1},
  {"c1", 32, "channels of the first convolution", min = 1},
  {"c2", 64, "channels of the second convolution", min = 1},
  {"hidden", 128, "units of the hidden linear layer", min = 1},
  {"dropout", 0.05, "AlphaDropout rate before the last layer (0 = off)", min = 0},
  {"lr", 0.01, "SGD learning rate (cosine-annealed to 0 over the run)", min = 0},
  {"momentum", 0.9, "SGD momentum", min = 0},
  {"batch", 128, "batch size", min = 1},
  {"seed", 1, "random seed"},
  {"threads", 0, "threads (0 = keep the launcher's setting)", min = 0},
  {"limit", 0, "use only the first N training (and test) samples (0 = all)", min = 0},
  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory"},
  {"out", "runs/cnn", "output folder (checkpoint cnn.safetensors, logits cnn-io.safetensors)"},
}
local opt, err, usage = args.parse(arg, spec, "selut examples/cnn.lua [options]")
if not opt then
  io.stderr:write("cnn.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then print(usage) os.exit(0) end

local function build_net()
  local layers = {
    nn.Conv2d(1, opt.c1, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2),
    nn.Conv2d(opt.c1, opt.c2, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(opt.c2 * 49, opt.hidden), nn.SELU(),
  }
  if opt.dropout > 0 then layers[#layers + 1] = nn.AlphaDropout(opt.dropout) end
  layers[#layers + 1] = nn.Linear(opt.hidden, 10)
  local net = nn.Sequential(layers)
  nn.init.lecun_normal(net) -- N(0, 1/fan_in), fan_in = in_channels * 3 * 3 for the convolutions
  return net
end

local function images(x) return x:reshape(#x, 1, 28, 28) end

local function evaluate(net, crit, data)
  net:evaluate()
  local total, correct, n = 0, 0, 0
  for xb, yb in data:batches(1000) do
    local out = net:forward(images(xb))
    total = total + crit:forward(out, yb) * #yb
    local pred = out:argmax(2)
    for i = 1, #yb do
      if pred[i] == yb[i] then correct = correct + 1 end
    end
    n = n + #yb
  end
  net:train()
  return total / n, correct / n
end

if opt.threads > 0 then selut.set_num_threads(opt.threads) end
selut.manual_seed(opt.seed)
selut.sys.mkdir(opt.out)
local train, test = selut.data.fashion_mnist(opt.data)
if opt.limit > 0 then
  train = train:subset(math.min(opt.limit, train:size()))
  test = test:subset(math.min(opt.limit, test:size()))
end
local mean, std = train:standardize()
test:standardize(mean, std)

local net = build_net()
local crit = nn.CrossEntropyLoss()
local sgd = optim.SGD(net:parameters(), {lr = opt.lr, momentum = opt.momentum})
print(string.format("selut %s | cnn c1 %d c2 %d hidden %d dropout %g | SGD lr %g momentum %g cosine, batch %d, seed %d | "
                    .. "train %d, test %d | threads %d", selut.version, opt.c1, opt.c2, opt.hidden, opt.dropout, opt.lr,
                    opt.momentum, opt.batch, opt.seed, train:size(), test:size(), selut.get_num_threads()))
local t_start, acc = selut.clock(), 0
for epoch = 1, opt.epochs do
  sgd:set_lr(opt.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / opt.epochs)))
  net:train()
  local t0, sum, count = selut.clock(), 0, 0
  for xb, yb in train:batches(opt.batch, {shuffle = true}) do
    local x = images(xb)
    local out = net:forward(x)
    local loss = crit:forward(out, yb)
    if loss ~= loss then error(string.format("non-finite loss at epoch %d (try a smaller --lr)", epoch), 0) end
    sgd:zero_grad()
    net:backward(x, crit:backward(out, yb), false)
    sgd:step()
    sum, count = sum + loss * #yb, count + #yb
  end
  local train_secs = selut.clock() - t0
  local test_loss
  test_loss, acc = evaluate(net, crit, test)
  print(string.format("epoch %2d/%d  train loss %.4f  test loss %.4f  test acc %.2f%%  train %.1f s (%.0f samples/s)",
                      epoch, opt.epochs, sum / count, test_loss, 100 * acc, train_secs, count / train_secs))
end
-- The checkpoint and, for the twin's check, the logits of the first 64 test images in evaluation mode.
selut.save(opt.out .. "/cnn.safetensors", net, {recipe = "examples/cnn.lua", test_acc = tostring(acc),
                                                 c1 = tostring(opt.c1), c2 = tostring(opt.c2),
                                                 hidden = tostring(opt.hidden), dropout = tostring(opt.dropout)})
net:evaluate()
local probe = test:subset(math.min(64, test:size()))
selut.save(opt.out .. "/cnn-io.safetensors", {x = images(probe.x):clone(), logits = net:forward(images(probe.x)):clone()})
print(string.format("done: %d epochs in %.1f s, test acc %.2f%%, checkpoint %s/cnn.safetensors", opt.epochs,
                    selut.clock() - t_start, 100 * acc, opt.out))
