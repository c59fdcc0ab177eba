-- selut.onnx.load of graphs that are not chains (scripts/onnx_graph.lua):
-- PyTorch exports (tests/onnx/gen_graphs.py) give PyTorch's outputs to 1e-5
-- and train on Fashion-MNIST with a falling loss; selut's own traced exports
-- load back with the same outputs and parameter names, and their gradients
-- reach every parameter; each refusal names the node and the attribute.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, F = selut.tensor, selut.nn, selut.nn.F
local root = os.getenv("SELUT_ROOT") or "."
local dir = os.getenv("TMPDIR") or "/tmp"

local function worst(y, want)
  H.check(table.concat(y:shape(), "x") == table.concat(want:shape(), "x"),
    "shape " .. table.concat(y:shape(), "x") .. " vs " .. table.concat(want:shape(), "x"))
  local a, b, w = y:reshape(y:numel()), want:reshape(want:numel()), 0
  for i = 1, b:numel() do w = math.max(w, math.abs(a[i] - b[i]) / math.max(1, math.abs(b[i]))) end
  return w
end

-- PyTorch's outputs to 1e-5 (relative): a residual MLP with a decomposed
-- LayerNorm and GELU (opset 15), a 2-layer batch-first GRU whose initial
-- state torch builds from Shape/Gather/Concat/ConstantOfShape (opset 14), an
-- LSTM with given states, LayerNormalization and two outputs (opset 17)
local nets = {}
for _, name in ipairs { "torch_resmlp", "torch_gru", "torch_lstm" } do
  local net = selut.onnx.load(root .. "/tests/onnx/" .. name .. ".onnx")
  local io_ = selut.load(root .. "/tests/onnx/" .. name .. "_io.safetensors")
  local xs, k = {}, 1
  while io_["x" .. k] do xs[k], k = io_["x" .. k], k + 1 end
  local ys = table.pack(net(table.unpack(xs)))
  H.check(ys.n == (name == "torch_lstm" and 2 or 1), name .. ": " .. ys.n .. " outputs")
  for i = 1, ys.n do
    local w = worst(ys[i], io_["y" .. i])
    H.check(w <= 1e-5, name .. " output " .. i .. ": PyTorch's to 1e-5 (relative), worst " .. w)
  end
  nets[name] = net
end
-- weights keep PyTorch's names
local names = {}
for _, p in ipairs(nets.torch_resmlp:parameters()) do names[#names + 1] = p.name end
names = table.concat(names, " ")
H.check(names:find("norm.weight", 1, true) and names:find("blocks.1.3.bias", 1, true)
  and names:find("inp.weight", 1, true), names)
H.check(#nets.torch_gru:parameters() == 10, "GRU model: 2 x 4 GRU tensors + head, got " .. #nets.torch_gru:parameters())

-- One pass over 2000 Fashion-MNIST training images (batch 100): the loss
-- of the PyTorch residual MLP and of the GRU model (rows as a sequence)
-- falls. Gradients come from autograd through the imported graph.
local train = selut.data.fashion_mnist()
local function epoch(net, shape, lr)
  selut.manual_seed(4)
  net:train()
  local opt = selut.optim.SGD(net:parameters(), { lr = lr, momentum = 0.9 })
  local losses = {}
  for b = 0, 19 do
    local xb = train.x:narrow(1, b * 100 + 1, 100):reshape(table.unpack(shape))
    local yb = {}
    for i = 1, 100 do yb[i] = train.y[b * 100 + i] end
    opt:zero_grad()
    local loss = F.cross_entropy(net(xb), yb)
    loss:backward()
    opt:step()
    losses[#losses + 1] = loss[1]
  end
  local first = (losses[1] + losses[2] + losses[3]) / 3
  local last = (losses[18] + losses[19] + losses[20]) / 3
  return first, last
end
local f1, l1 = epoch(nets.torch_resmlp, { 100, 784 }, 0.02)
H.check(l1 < 0.7 * f1, string.format("residual MLP trains: loss %.3f then %.3f", f1, l1))
local f2, l2 = epoch(nets.torch_gru, { 100, 28, 28 }, 0.05)
H.check(l2 < 0.9 * f2, string.format("GRU model trains: loss %.3f then %.3f", f2, l2))

-- selut's traced exports come back with the same outputs, and a loss
-- reaches every parameter of the imported graph
selut.manual_seed(9)
local Net = nn.class("GraphNet")
function Net:init()
  self.a = nn.Linear(6, 8)
  self.gru = nn.GRU(8, 5, { batch_first = true })
  self.attn = nn.MultiheadAttention(8, 2, { batch_first = true })
  self.norm = nn.GroupNorm(2, 4)
  self.emb_scale = nn.Parameter(T.randn(5))
  self.cell = nn.LSTMCell(5, 5)
end
function Net:forward(x, z)
  local h = self.a(x)                                          -- [N x T x 8]
  local pad = z:narrow(2, 1, 4):gt(0.5)                        -- a key_padding_mask from an input
  pad = selut.where(pad:sum(2, true):ge(4), 0, pad)            -- (never every key)
  local att = self.attn(h, h, h, { need_weights = false, key_padding_mask = pad })
  local out, hn = self.gru(h + att)
  local g = self.norm(z:view(z:size(1), 4, 3)):flatten(2)      -- GroupNorm decomposed
  local hc, cc = self.cell(out:select(2, 1), hn[1], hn[1])     -- LSTMCell with states
  return out:mean(2) * self.emb_scale + hc - cc, F.gelu(g):sum(2, true)
end
local net = Net()
net:evaluate()
local x, z = T.randn(3, 4, 6), T.randn(3, 12)
local path = dir .. "/selut_onnx_graph.onnx"
selut.onnx.export(net, { x, z }, path)
local back = selut.onnx.load(path)
local y1, y2 = net(x, z)
local b1, b2 = back(x, z)
H.check(worst(b1, y1) <= 1e-5 and worst(b2, y2) <= 1e-5, "traced net: " .. worst(b1, y1) .. ", " .. worst(b2, y2))
H.check(tostring(back):find("GRU(8, 5)", 1, true), tostring(back))
back:train()
local o1, o2 = back(x, z)
local loss = o1:pow(2):mean() + o2:mean()
loss:backward()
for _, p in ipairs(back:parameters()) do
  H.check(p.grad and p.grad:abs():max() > 0, "no gradient reached " .. p.name)
end
-- bad arguments to the forward
H.checkerror("forward takes 2 inputs (input1, input2), got 1", back.forward, back, x)
H.checkerror("node", back.forward, back, T.randn(3, 4, 7), z)
os.remove(path)

-- Split (torch's chunk/split) with its sizes as an input, two outputs
local split = selut.onnx.load(root .. "/tests/onnx/graph_split.onnx")
local sx = T.randn(3, 6)
H.check(worst(split(sx), selut.cat({ sx:narrow(2, 3, 4), sx:narrow(2, 1, 2) }, 2)) == 0, "Split, Concat")

-- ---- refusals: each names the node, the attribute and its value ----
local bad = root .. "/tests/onnx/bad/"
local function refused(file, msg) H.checkerror(msg, selut.onnx.load, bad .. file) end
refused("graph_gru_lbr0.onnx", "node 1 (GRU): attribute 'linear_before_reset' = 0 is not supported (1, PyTorch's GRU)")
refused("graph_gru_bidir.onnx", "node 1 (GRU): attribute 'direction' = bidirectional is not supported (forward)")
refused("graph_lstm_clip.onnx", "node 1 (LSTM): attribute 'clip' is not supported")
refused("graph_lstm_seqlens.onnx", "node 1 (LSTM): input sequence_lens is not supported")
refused("graph_erf.onnx", "node 1 (Erf): Erf is imported only inside the GELU decomposition")
refused("graph_constant_float.onnx", "node 1 (Constant): attribute 'value_float' is not supported (only a 'value' tensor)")
refused("graph_constant_size.onnx", "tensor attribute 'value' holds 2 floats but its dims say 3")
refused("graph_constant_bool.onnx", "tensor attribute 'value' has data type 9")
refused("graph_reshape_allowzero.onnx", "node 1 (Reshape): attribute 'allowzero' = 1 is not supported")
refused("graph_unknown_op.onnx", "node 1 (HardSwish): selut cannot import HardSwish (supported: ")
refused("graph_dropout_mask.onnx", "node 1 (Dropout): the mask output is not supported")
refused("graph_bn_training.onnx", "node 1 (BatchNormalization): attribute 'training_mode' = 1 is not supported")
refused("graph_shape_start.onnx", "node 1 (Shape): attributes start/end are not supported")
refused("graph_conv_weight.onnx", "node 2 (Conv): input 2 ('wr') must be an initializer")
-- refused when the forward meets them (they depend on values)
local step = selut.onnx.load(bad .. "graph_slice_step.onnx")
H.checkerror("node 1 (Slice): Slice with step 2 is not supported (step 1)", step.forward, step, T.randn(2, 4))
local sm = selut.onnx.load(bad .. "graph_softmax_opset11.onnx")
H.checkerror("Softmax before opset 13 over axis 1 of a 3-D input flattens the trailing dims", sm.forward, sm,
  T.randn(2, 3, 4))
