-- One training epoch of examples/cnn.lua's or examples/sequence.lua's net and
-- recipe (same layers, init, optimizer, batch 128, shuffled, standardized
-- input), for bench/layers_vs_torch/run.sh. Prints the epoch's wall and
-- process CPU seconds (CPU time is what a loaded, shared machine distorts
-- least at one thread) and the mean training loss.
--   build/selut bench/layers_vs_torch/selut_epoch.lua cnn|gru [limit] [threads]
local selut = require "selut"
local nn, optim, T = selut.nn, selut.optim, selut.tensor
local which, limit, threads = arg[1], tonumber(arg[2]) or 0, tonumber(arg[3]) or 1
selut.set_num_threads(threads)
selut.manual_seed(1)
local train = selut.data.fashion_mnist(os.getenv("SELUT_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist")
if limit > 0 then train = train:subset(math.min(limit, train:size())) end
train:standardize()

local step
if which == "cnn" then
  local net = nn.Sequential{nn.Conv2d(1, 32, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(64 * 49, 128), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(128, 10)}
  nn.init.lecun_normal(net)
  local crit = nn.CrossEntropyLoss()
  local sgd = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  net:train()
  step = function(xb, yb)
    local x = xb:reshape(#xb, 1, 28, 28)
    local out = net:forward(x)
    local loss = crit:forward(out, yb)
    sgd:zero_grad()
    net:backward(x, crit:backward(out, yb), false)
    sgd:step()
    return loss
  end
elseif which == "gru" then
  local gru = nn.GRU(28, 128, {batch_first = true})
  local head = nn.Sequential{nn.Linear(128, 64), nn.SELU(), nn.Linear(64, 10)}
  nn.init.lecun_normal(head)
  local params = gru:parameters()
  for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
  local crit = nn.CrossEntropyLoss()
  local adam = optim.Adam(params, {lr = 0.002})
  local gh_n
  step = function(xb, yb)
    local x = xb:reshape(#xb, 28, 28)
    local _, h_n = gru:forward(x)
    local last = h_n[1]
    local out = head:forward(last)
    local loss = crit:forward(out, yb)
    adam:zero_grad()
    local glast = head:backward(last, crit:backward(out, yb))
    if not gh_n or gh_n:size(2) ~= #yb then gh_n = T.zeros(1, #yb, 128) end
    gh_n[1]:copy(glast)
    gru:backward(x, nil, gh_n)
    adam:step()
    return loss
  end
else
  error("usage: selut_epoch.lua cnn|gru [limit] [threads]", 0)
end

local w0, c0, sum, n = selut.clock(), os.clock(), 0, 0
for xb, yb in train:batches(128, {shuffle = true}) do
  sum, n = sum + step(xb, yb) * #yb, n + #yb
end
print(string.format("selut_%s wall=%.3f cpu=%.3f samples=%d loss=%.4f threads=%d", which, selut.clock() - w0,
                    os.clock() - c0, n, sum / n, threads))
