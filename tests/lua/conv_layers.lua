-- The image layers from Lua: constructor forms (positional, options table,
-- sizes as numbers or lists, padding='same'), printing, output shapes,
-- PyTorch's parameter names and layouts through save/load, LeCun init's
-- fan-in, and a small SELU CNN that learns. Kernel values against PyTorch:
-- tests/c/test_conv.c; bad input: bad_input_conv.lua.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn = selut.tensor, selut.nn

local function shape(t) return table.concat(t:shape(), "x") end

-- constructors and printing
local c = nn.Conv2d(4, 6, 3, {stride = 2, padding = 1, groups = 2})
check(tostring(c) == "Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)", tostring(c))
check(shape(c.weight) == "6x2x3x3" and shape(c.bias) == "6", "Conv2d weight (out, in/groups, kh, kw)")
check(c.in_channels == 4 and c.out_channels == 6 and c.groups == 2, "hyper-parameters as fields")
check(nn.describe(c).type == "Conv2d", "described by the registry")
check(shape(c:forward(T.randn(2, 4, 7, 9))) == "2x6x4x5", "stride 2, padding 1")
check(shape(c:forward(T.randn(4, 7, 9))) == "6x4x5", "unbatched input")
local d = nn.Conv2d(2, 3, {3, 2}, 1, {2, 1}, {1, 2}, 1, false) -- every argument positionally
check(tostring(d) == "Conv2d(2, 3, kernel_size=(3, 2), stride=(1, 1), padding=(2, 1), dilation=(1, 2), bias=false)", tostring(d))
check(#d:parameters() == 1 and d.bias == nil, "bias = false: weight only")
check(shape(d:forward(T.randn(1, 2, 5, 5))) == "1x3x7x5", "asymmetric kernel, padding, dilation")
local same = nn.Conv2d(3, 2, {4, 3}, {padding = "same"})
check(tostring(same) == "Conv2d(3, 2, kernel_size=(4, 3), stride=(1, 1), padding=same)", tostring(same))
check(shape(same:forward(T.randn(2, 3, 6, 7))) == "2x2x6x7", "padding='same' keeps the size (even kernel)")
check(shape(nn.Conv2d(3, 2, 3, {padding = "valid"}):forward(T.randn(1, 3, 5, 5))) == "1x2x3x3", "padding='valid'")
local c1 = nn.Conv1d(4, 2, 5, {stride = 2, padding = 3, dilation = 2, groups = 2})
check(tostring(c1) == "Conv1d(4, 2, kernel_size=(5,), stride=(2,), padding=(3,), dilation=(2,), groups=2)", tostring(c1))
check(shape(c1.weight) == "2x2x5", "Conv1d weight (out, in/groups, k)")
check(shape(c1:forward(T.randn(3, 4, 17))) == "3x2x8", "Conv1d output length")
check(shape(nn.Conv1d(3, 2, {3}):forward(T.randn(3, 8))) == "2x6", "Conv1d: kernel as a list, unbatched")

check(tostring(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=false)",
      tostring(nn.MaxPool2d(2)))
check(tostring(nn.MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=false)",
      "positional stride and padding")
check(shape(nn.MaxPool2d(3, {stride = 2, ceil_mode = true}):forward(T.randn(1, 2, 8, 8))) == "1x2x4x4", "ceil_mode")
check(shape(nn.MaxPool2d(3, {stride = 2}):forward(T.randn(1, 2, 8, 8))) == "1x2x3x3", "floor mode")
local ap = nn.AvgPool2d({2, 3}, {count_include_pad = false, padding = 1})
check(tostring(ap) == "AvgPool2d(kernel_size=(2, 3), stride=(2, 3), padding=(1, 1), ceil_mode=false, count_include_pad=false)",
      tostring(ap))
-- count_include_pad: a corner window of AvgPool2d(2, padding 1) holds one value and three zeros
local ones = T.ones(1, 1, 2, 2)
check(nn.AvgPool2d(2, {padding = 1}):forward(ones):get(1, 1, 1, 1) == 0.25, "count_include_pad = true (default)")
check(nn.AvgPool2d(2, {padding = 1, count_include_pad = false}):forward(ones):get(1, 1, 1, 1) == 1, "count_include_pad = false")
check(tostring(nn.AdaptiveAvgPool2d({2, 3})) == "AdaptiveAvgPool2d(output_size=(2, 3))", "AdaptiveAvgPool2d")
check(shape(nn.AdaptiveAvgPool2d(1):forward(T.randn(2, 5, 7, 3))) == "2x5x1x1", "global average pool")
check(tostring(nn.Flatten()) == "Flatten(start_dim=2, end_dim=-1)", "Flatten defaults (1-based dims)")
check(shape(nn.Flatten():forward(T.randn(2, 3, 4, 5))) == "2x60", "Flatten()")
check(shape(nn.Flatten(1, 2):forward(T.randn(2, 3, 4, 5))) == "6x4x5", "Flatten(1, 2)")
check(shape(nn.Flatten{start_dim = 3}:forward(T.randn(2, 3, 4, 5))) == "2x3x20", "Flatten{start_dim = 3}")

-- max pooling routes the gradient to the first maximum of each window
local mp = nn.MaxPool2d(2)
local x = T.new{{{{1, 3}, {3, 2}}}}
check(mp:forward(x):get(1, 1, 1, 1) == 3, "max")
local gx = mp:backward(x, T.ones(1, 1, 1, 1))
H.tensor_near(gx, {0, 1, 0, 0}, 0, "first maximum takes the gradient")

-- LeCun normal: N(0, 1/fan_in) with fan_in = in/groups * kernel area; zero biases
selut.manual_seed(3)
local big = nn.Conv2d(16, 64, 5, {groups = 2})
nn.init.lecun_normal(big)
local w = big.weight
local var = (w * w):mean()
check(math.abs(var * (8 * 25) - 1) < 0.06, "lecun variance * fan_in = " .. var * 200)
check(big.bias:abs():max() == 0, "zero biases")

-- save/load: PyTorch's state_dict names and shapes
local net = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3)}
nn.init.lecun_normal(net)
local path = os.tmpname()
selut.save(path, net)
local tensors = selut.load(path)
check(shape(tensors["0.weight"]) == "4x1x3x3" and shape(tensors["0.bias"]) == "4", "conv weight saved as [4 x 1 x 3 x 3]")
check(shape(tensors["4.weight"]) == "3x64", "linear after flatten")
local net2 = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)}
selut.load(path, net2)
local probe = T.randn(2, 1, 8, 8)
H.tensor_near(net2:forward(probe), net:forward(probe), 0, "loaded net gives the same output")
os.remove(path)

-- a small SELU CNN learns a toy task (bright top half vs bright bottom half)
selut.manual_seed(7)
local cnn = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.SELU(), nn.AvgPool2d(2), nn.Conv2d(4, 4, 3),
                          nn.SELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)}
nn.init.lecun_normal(cnn)
local n = 32
local xs, ys = T.randn(n, 1, 8, 8), {}
for i = 1, n do
  ys[i] = i % 2 + 1
  local img = xs[i][1]
  for r = 1, 4 do
    for col = 1, 8 do
      local row = ys[i] == 1 and r or r + 4
      img:set(row, col, img:get(row, col) + 2)
    end
  end
end
local crit = nn.CrossEntropyLoss()
local sgd = selut.optim.SGD(cnn:parameters(), {lr = 0.05, momentum = 0.9})
local first, last
for step = 1, 60 do
  local out = cnn:forward(xs)
  local loss = crit:forward(out, ys)
  if step == 1 then first = loss end
  last = loss
  sgd:zero_grad()
  cnn:backward(xs, crit:backward(out, ys))
  sgd:step()
end
check(last < 0.2 * first, string.format("loss %.4f -> %.4f", first, last))

-- MaxPool2d(2)'s vectorized path (2 x 2, stride 2, no padding) against the
-- general window scan (ceil_mode = true takes it; even sizes give the same
-- windows): same values bit for bit (NaN wins, -0 vs +0 and ties keep the
-- first), same argmax (checked through the backward), rows longer than
-- one 64-output block.
do
  selut.manual_seed(11)
  local x = T.randn(3, 2, 6, 140):round() -- many ties
  x:set(1, 1, 1, 2, 0 / 0)
  x:set(1, 1, 2, 3, 0 / 0)
  x:set(1, 1, 2, 4, 0 / 0)
  x:set(2, 1, 1, 1, -math.huge)
  x:set(2, 1, 1, 2, -math.huge)
  x:set(2, 1, 2, 1, -math.huge)
  x:set(2, 1, 2, 2, -math.huge)
  x:set(3, 2, 3, 5, -0.0)
  x:set(3, 2, 3, 6, 0.0)
  x:set(3, 2, 4, 5, -0.0)
  x:set(3, 2, 4, 6, -0.0)
  local fast, slow = nn.MaxPool2d(2), nn.MaxPool2d(2, {ceil_mode = true})
  local yf, ys = fast:forward(x), slow:forward(x)
  check(shape(yf) == "3x2x3x70" and shape(ys) == shape(yf), "shapes " .. shape(yf) .. " " .. shape(ys))
  local same = true
  for n = 1, 3 do
    for ch = 1, 2 do
      for i = 1, 3 do
        for j = 1, 70 do
          local a, b = yf:get(n, ch, i, j), ys:get(n, ch, i, j)
          if not (a == b and 1 / a == 1 / b or a ~= a and b ~= b) then same = false end
        end
      end
    end
  end
  check(same, "MaxPool2d(2): same values as the general scan")
  check(yf:get(1, 1, 1, 1) ~= yf:get(1, 1, 1, 1) and yf:get(1, 1, 1, 2) ~= yf:get(1, 1, 1, 2), "NaN wins")
  check(yf:get(2, 1, 1, 1) == -math.huge, "all -inf window")
  check(1 / yf:get(3, 2, 2, 3) == -math.huge, "tie of -0 and +0 keeps the first (-0)")
  local gy = T.randn(3, 2, 3, 70)
  local gf, gs = fast:backward(x, gy), slow:backward(x, gy)
  check((gf - gs):abs():max() == 0, "MaxPool2d(2): same argmax as the general scan")
end
