-- A model exported by PyTorch (torch.onnx.export, opset 15; written by
-- tests/onnx/gen_models.py) loads with selut.onnx.load, gives PyTorch's
-- outputs to 1e-5, and trains on Fashion-MNIST with a falling loss.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn = selut.tensor, selut.nn
local root = os.getenv("SELUT_ROOT") or "."
local net = selut.onnx.load(root .. "/tests/onnx/torch_mlp.onnx")
local io_ = selut.load(root .. "/tests/onnx/torch_mlp_io.safetensors")
H.check(tostring(net):find("SELU", 1, true) and tostring(net):find("BatchNorm1d(32, eps=1e-05", 1, true), tostring(net))
local y = net:forward(io_.x)
local worst = 0
for i = 1, y:size(1) do
  for j = 1, y:size(2) do
    local want = io_.y:get(i, j)
    worst = math.max(worst, math.abs(y:get(i, j) - want) / math.max(1, math.abs(want)))
  end
end
H.check(worst <= 1e-5, "PyTorch's outputs to 1e-5 (relative), worst " .. worst)

-- one epoch, all 60,000 training images (468 full batches of 128): the loss falls
selut.manual_seed(3)
local train = selut.data.fashion_mnist()
local n = train.x:size(1)
H.check(n == 60000, "the whole Fashion-MNIST training set: " .. n .. " images")
local x, labels = train.x, {}
for i = 1, n do labels[i] = train.y[i] end
net:train()
local opt = selut.optim.SGD(net:parameters(), { lr = 0.01, momentum = 0.9 })
local crit = nn.CrossEntropyLoss()
local losses = {}
for b = 0, n // 128 - 1 do
  local xb = x:narrow(1, b * 128 + 1, 128)
  local yb = { table.unpack(labels, b * 128 + 1, b * 128 + 128) }
  opt:zero_grad()
  local out = net:forward(xb)
  losses[#losses + 1] = crit:forward(out, yb)
  net:backward(xb, crit:backward(out, yb))
  opt:step()
end
local function mean(a, b)
  local s = 0
  for i = a, b do s = s + losses[i] end
  return s / (b - a + 1)
end
H.check(mean(#losses - 4, #losses) < 0.7 * mean(1, 5),
  string.format("loss falls: first %.3f, last %.3f", mean(1, 5), mean(#losses - 4, #losses)))

-- A PyTorch CNN (opset 13: Conv with groups and strides, BatchNorm folded
-- into the Conv by the exporter, MaxPool, AveragePool, GlobalAveragePool,
-- Flatten, Gemm) gives PyTorch's outputs to 1e-5 and its weights train.
local cnn = selut.onnx.load(root .. "/tests/onnx/torch_cnn.onnx")
local cio = selut.load(root .. "/tests/onnx/torch_cnn_io.safetensors")
H.check(tostring(cnn):find("Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)", 1, true)
  and tostring(cnn):find("AdaptiveAvgPool2d", 1, true), tostring(cnn))
local yc = cnn:forward(cio.x)
local cw = 0
for i = 1, yc:size(1) do
  for j = 1, yc:size(2) do
    local want = cio.y:get(i, j)
    cw = math.max(cw, math.abs(yc:get(i, j) - want) / math.max(1, math.abs(want)))
  end
end
H.check(cw <= 1e-5, "the CNN gives PyTorch's outputs to 1e-5 (relative), worst " .. cw)
-- One epoch of a 2000-image Fashion-MNIST subset: the first 2000
-- training images of classes 1-5 (the CNN has 5 outputs; it ends in a
-- global average pool, so 28 x 28 images go in as they are), batch 100,
-- Adam, pixels scaled to about zero mean and unit spread: the loss falls
-- (1.61 to 1.28 at the time of writing).
cnn:train()
local copt = selut.optim.Adam(cnn:parameters(), { lr = 0.03 })
local cx, cy = {}, {}
for i = 1, train.x:size(1) do
  if train.y[i] <= 5 then
    cx[#cx + 1], cy[#cy + 1] = i, train.y[i]
    if #cx == 2000 then break end
  end
end
local closses = {}
for b = 0, 19 do
  local rows = {}
  for i = 1, 100 do rows[i] = cx[b * 100 + i] end
  local xb = (train.x:index_select(1, T.new(rows)):reshape(100, 1, 28, 28) - 0.3) * 3
  local yb = { table.unpack(cy, b * 100 + 1, b * 100 + 100) }
  copt:zero_grad()
  local out = cnn:forward(xb)
  closses[#closses + 1] = crit:forward(out, yb)
  cnn:backward(xb, crit:backward(out, yb))
  copt:step()
end
local cfirst = (closses[1] + closses[2] + closses[3]) / 3
local clast = (closses[18] + closses[19] + closses[20]) / 3
H.check(clast < 0.85 * cfirst, string.format("the CNN trains for an epoch of 2000 images: loss %.3f then %.3f", cfirst, clast))
