-- No core allocation per step after warm-up on the explicit path for the
-- conv and recurrent nets of examples/cnn.lua and examples/sequence.lua
-- (small sizes): Conv2d/SELU/MaxPool2d/Flatten/Linear/AlphaDropout with SGD,
-- GRU + a SELU head with Adam (gradient through h_n). perf_steps.lua
-- holds the same contract for the MLP.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim = selut.tensor, selut.nn, selut.optim

-- the inputs are stored in the nets' shapes: a view made by the script
-- (x:reshape, h_n[1]) is a tensor header allocated per step by the script,
-- not by the layers
local function data(n, ...)
  local x = T.randn(n, ...)
  local y = T.zeros(n)
  for i = 1, n do y[i] = (i % 10) + 1 end
  return selut.data.Dataset(x, y)
end

-- counts[i]: core allocations so far after step i; 3 batches per epoch, 2 epochs
local function cnn_counts()
  selut.manual_seed(5)
  local train = data(48, 1, 14, 14)
  local net = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2),
                            nn.Conv2d(4, 6, 3, {padding = 1, groups = 2}), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(6 * 9, 16), nn.SELU(), nn.AlphaDropout(0.05), nn.Linear(16, 10)}
  nn.init.lecun_normal(net)
  local crit = nn.CrossEntropyLoss()
  local sgd = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  local counts = {}
  for _ = 1, 2 do
    for xb, yb in train:batches(16, {shuffle = true}) do
      local out = net:forward(xb)
      crit:forward(out, yb)
      sgd:zero_grad()
      net:backward(xb, crit:backward(out, yb), false)
      sgd:step()
      local _, count = selut.memory()
      counts[#counts + 1] = count
    end
  end
  return counts
end

local function gru_counts()
  selut.manual_seed(6)
  local train = data(48, 14, 14)
  local gru = nn.GRU(14, 12, {batch_first = true})
  -- Flatten(1, 2): h_n [1 x N x 12] (one layer) -> [N x 12], and its gradient back
  local head = nn.Sequential{nn.Flatten(1, 2), nn.Linear(12, 8), nn.SELU(), nn.Linear(8, 10)}
  local params = gru:parameters()
  for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
  local crit = nn.CrossEntropyLoss()
  local adam = optim.Adam(params, {lr = 0.002})
  local counts = {}
  for _ = 1, 2 do
    for xb, yb in train:batches(16, {shuffle = true}) do
      local _, h_n = gru:forward(xb)
      local out = head:forward(h_n)
      crit:forward(out, yb)
      adam:zero_grad()
      local gh_n = head:backward(h_n, crit:backward(out, yb))
      gru:backward(xb, nil, gh_n)
      adam:step()
      local _, count = selut.memory()
      counts[#counts + 1] = count
    end
  end
  return counts
end

for name, f in pairs{cnn = cnn_counts, gru = gru_counts} do
  local c = f()
  check(#c == 6, name .. ": 6 steps")
  for _, s in ipairs{3, 5, 6} do
    check(c[s] == c[s - 1], string.format("%s: %d core allocations in step %d", name, c[s] - c[s - 1], s))
  end
  check(c[4] - c[3] <= 10, string.format("%s: %d core allocations at the start of epoch 2", name, c[4] - c[3]))
end
