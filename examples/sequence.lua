-- A GRU reads Fashion-MNIST images row by row (28 steps of 28 features) and a
-- SELU head classifies its last hidden state.
--   build/selut examples/sequence.lua                          (10 epochs, seed 1)
--   build/selut examples/sequence.lua --epochs 1 --limit 10000 (a quick try)
--   /usr/bin/python3 examples/sequence_check.py runs/sequence/sequence.safetensors
--       (loads the checkpoint into PyTorch with strict=True, compares logits)
-- The net (PyTorch's names and layouts: the checkpoint loads into
-- nn.GRU(28, hidden, num_layers=layers, batch_first=True) + the head):
--   [N x 28 x 28] -> GRU(28, hidden, layers) -> h_n of the top layer
--                 -> Linear(hidden, head) SELU -> Linear(head, 10)
-- Explicit protocol: the gradient reaches the GRU through h_n only
-- (gru:backward(x, nil, gh_n)).
local selut = require "selut"
local args = require "selut.args"
local nn, optim, T = selut.nn, selut.optim, selut.tensor

local spec = {
  {"epochs", 10, "number of epochs", min = 1},
  {"hidden", 128, "GRU hidden size", min = 1},
  {"layers", 1, "GRU layers", min = 1},
  {"head", 64, "units of the SELU head", min = 1},
  {"lr", 0.002, "Adam learning rate (cosine-annealed over the run)", min = 0},
  {"batch", 128, "batch size", min = 1},
  {"seed", 1, "random seed"},
  {"threads", 0, "threads (0 = keep the launcher's setting)", min = 0},
  {"limit", 0, "use only the first N training (and test) samples (0 = all)", min = 0},
  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory"},
  {"out", "runs/sequence", "output folder (checkpoint sequence.safetensors)"},
}
local opt, err, usage = args.parse(arg, spec, "selut examples/sequence.lua [options]")
if not opt then
  io.stderr:write("sequence.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then print(usage) os.exit(0) end

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

local gru = nn.GRU(28, opt.hidden, {num_layers = opt.layers, batch_first = true})
local head = nn.Sequential{nn.Linear(opt.hidden, opt.head), nn.SELU(), nn.Linear(opt.head, 10)}
nn.init.lecun_normal(head) -- the GRU keeps PyTorch's default U(+-1/sqrt(hidden))
local params = gru:parameters()
for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
local crit = nn.CrossEntropyLoss()
local adam = optim.Adam(params, {lr = opt.lr})

local function rows(x) return x:reshape(#x, 28, 28) end -- each image: 28 steps of 28 pixels

local function logits_of(x)
  local _, h_n = gru:forward(x)
  local last = h_n[opt.layers] -- [N x hidden], a view
  return head:forward(last), last
end

local function evaluate(data)
  local total, correct, n = 0, 0, 0
  for xb, yb in data:batches(1000) do
    local out = logits_of(rows(xb))
    total = total + crit:forward(out, yb) * #yb
    local pred = out:argmax(2)
    for i = 1, #yb do
      if pred[i] == yb[i] then correct = correct + 1 end
    end
    n = n + #yb
  end
  return total / n, correct / n
end

print(string.format("selut %s | GRU(28, %d, layers %d) + SELU head %d | Adam lr %g cosine, batch %d, seed %d | "
                    .. "train %d, test %d | threads %d", selut.version, opt.hidden, opt.layers, opt.head, opt.lr,
                    opt.batch, opt.seed, train:size(), test:size(), selut.get_num_threads()))
local t_start, acc = selut.clock(), 0
local gh_n -- [layers x N x hidden]: the gradient of h_n, zero below the top layer
for epoch = 1, opt.epochs do
  adam:set_lr(opt.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / opt.epochs)))
  local t0, sum, count = selut.clock(), 0, 0
  for xb, yb in train:batches(opt.batch, {shuffle = true}) do
    local x = rows(xb)
    local out, last = logits_of(x)
    local loss = crit:forward(out, yb)
    if loss ~= loss then error(string.format("non-finite loss at epoch %d (try a smaller --lr)", epoch), 0) end
    adam:zero_grad()
    local glast = head:backward(last, crit:backward(out, yb))
    if not gh_n or gh_n:size(2) ~= #yb then gh_n = T.zeros(opt.layers, #yb, opt.hidden) end
    gh_n[opt.layers]:copy(glast)
    gru:backward(x, nil, gh_n)
    adam:step()
    sum, count = sum + loss * #yb, count + #yb
  end
  local train_secs = selut.clock() - t0
  local test_loss
  test_loss, acc = evaluate(test)
  print(string.format("epoch %2d/%d  train loss %.4f  test loss %.4f  test acc %.2f%%  train %.1f s (%.0f samples/s)",
                      epoch, opt.epochs, sum / count, test_loss, 100 * acc, train_secs, count / train_secs))
end
-- PyTorch's state_dict of a module with fields gru and head
local state = {}
for _, part in ipairs{{"gru.", gru}, {"head.", head}} do
  for _, p in ipairs(part[2]:parameters()) do state[part[1] .. p.name] = p.param end
end
selut.save(opt.out .. "/sequence.safetensors", state, {recipe = "examples/sequence.lua", test_acc = tostring(acc),
          hidden = tostring(opt.hidden), layers = tostring(opt.layers), head = tostring(opt.head)})
-- for the PyTorch check (examples/sequence_check.py): 64 test images and their logits
local probe = rows(test:subset(math.min(64, test:size())).x):clone()
selut.save(opt.out .. "/sequence-io.safetensors", {x = probe, logits = logits_of(probe):clone()})
print(string.format("done: %d epochs in %.1f s, test acc %.2f%%, checkpoint %s/sequence.safetensors", opt.epochs,
                    selut.clock() - t_start, 100 * acc, opt.out))
