-- selut.onnx: export then import gives the same net (same bits in
-- evaluation mode), the file is written atomically, and every bad file or
-- argument is refused with a message saying what is wrong; convolution,
-- pooling, normalization and Embedding layers round-trip too.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn = selut.tensor, selut.nn
local root = os.getenv("SELUT_ROOT") or "."
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

selut.manual_seed(7)
local net = nn.Sequential {
  nn.Linear(6, 8), nn.SELU(), nn.AlphaDropout(0.1), nn.Linear(8, 5), nn.ELU(0.7), nn.BatchNorm1d(5),
  nn.LeakyReLU(0.2), nn.Sequential { nn.Linear(5, 4), nn.Tanh() }, nn.Linear(4, 3, false), nn.Hardtanh(-1, 1),
  nn.Sigmoid(), nn.Linear(3, 3), nn.LogSoftmax(),
}
net:train()
for _ = 1, 3 do net:forward(T.randn(4, 6)) end -- running statistics move away from 0/1
net:evaluate()
local x = T.randn(7, 6)
local path = dir .. "/mlp.onnx"
selut.onnx.export(net, x, path)
local back = selut.onnx.load(path)
H.check(#back.modules == 13, "13 layers back (AlphaDropout becomes nothing), got " .. #back.modules)
local a, b = net:forward(x), back:forward(x)
H.check((a - b):abs():max() == 0, "the imported net gives the same bits")
-- a batch of another size through the dynamic batch dim
H.check((net:forward(T.randn(1, 6)):shape()[1]) == 1, "batch of 1")
-- its weights are parameters that train
H.check(#back:parameters() == #net:parameters(), "as many parameters")
local opt = selut.optim.SGD(back:parameters(), { lr = 0.1 })
back:train()
local crit = nn.MSELoss()
local y0 = back:forward(x)
local before = crit:forward(y0, T.zeros(7, 3))
for _ = 1, 20 do
  opt:zero_grad()
  local y = back:forward(x)
  crit:forward(y, T.zeros(7, 3))
  back:backward(x, crit:backward(y, T.zeros(7, 3)))
  opt:step()
end
H.check(crit:forward(back:forward(x), T.zeros(7, 3)) < before, "the imported net trains")

-- a failed export leaves an existing file untouched
local f = assert(io.open(path, "rb"))
local bytes = f:read("a")
f:close()
H.checkerror("onnx.export: GRUCell on an unbatched input has no ONNX form",
  selut.onnx.export, nn.Sequential { nn.Linear(3, 3), nn.GRUCell(3, 2) }, T.randn(3), path)
f = assert(io.open(path, "rb"))
H.check(f:read("a") == bytes, "the old file is intact")
f:close()

-- bad arguments and bad files (tests/onnx/gen_models.py writes tests/onnx/bad)
local bad = root .. "/tests/onnx/bad/"
H.checkerror("example_input must be a selut.Tensor (or a list of them, one per input), got nil", selut.onnx.export, net, nil, path)
H.checkerror("path must be a string, got number", selut.onnx.export, net, x, 3)
H.checkerror("opset must be an integer in 13..17, got 9", selut.onnx.export, net, x, path, { opset = 9 })
H.checkerror("has no ONNX form in selut's exporter", selut.onnx.export, nn.Sequential { nn.Module {} }, x, path)
H.checkerror("onnx.load: path must be a string, got nil", selut.onnx.load)
H.checkerror("onnx.load: cannot open " .. dir .. "/missing.onnx", selut.onnx.load, dir .. "/missing.onnx")
H.checkerror("is not a regular file", selut.onnx.load, dir)
local function write(name, data)
  local g = assert(io.open(dir .. "/" .. name, "wb"))
  g:write(data)
  g:close()
  return dir .. "/" .. name
end
H.checkerror("is not an ONNX model (protobuf parse failed", selut.onnx.load, write("garbage.onnx", "\255\255\255 not protobuf"))
H.checkerror("is not an ONNX model (protobuf parse failed", selut.onnx.load, write("truncated.onnx", bytes:sub(1, #bytes // 2)))
H.checkerror("has no graph", selut.onnx.load, write("empty.onnx", ""))
H.checkerror("initializer 'w' holds 2 floats but its dims say 8", selut.onnx.load, bad .. "wrong_size.onnx")
H.checkerror("initializer 'w' holds 8 floats but its dims say -1", selut.onnx.load, bad .. "huge_dims.onnx")
H.checkerror("initializer 'w' uses external data (not supported", selut.onnx.load, bad .. "external_data.onnx")
H.checkerror("node 1 (Relu) reads 'b', which no graph input, initializer or earlier node provides (a cycle",
  selut.onnx.load, bad .. "cycle.onnx")
H.checkerror("node 2 (HardSwish): selut cannot import HardSwish (supported: ", selut.onnx.load, bad .. "unknown_op.onnx")
H.checkerror("initializer 'w' has data type 11 (only float32", selut.onnx.load, bad .. "double_weight.onnx")
-- a branch (output = relu(h) + h) is a graph: it imports, and runs
local branch = selut.onnx.load(bad .. "branch.onnx")
local bx = T.randn(3, 4)
local bh = bx:sum(2, true):expand(3, 2) -- w is all ones
H.check((branch(bx) - (bh:clamp(0, nil) + bh)):abs():max()[1] < 1e-5, "branch.onnx: relu(h) + h")
H.checkerror("Gemm with alpha/beta ~= 1 or transA = 1 is not supported", selut.onnx.load, bad .. "gemm_alpha.onnx")
H.checkerror("node 1 (Gemm) is in domain 'com.example'", selut.onnx.load, bad .. "custom_domain.onnx")

-- convolution, pooling, normalization and Embedding layers: export then
-- import gives the same bits (GroupNorm and LayerNorm below opset 17 export
-- as decompositions, checked against ONNX Runtime by tests/onnx)
local function same(net2, x2, opts, what)
  net2:evaluate()
  local p2 = dir .. "/" .. what .. ".onnx"
  selut.onnx.export(net2, x2, p2, opts)
  local back2 = selut.onnx.load(p2)
  H.check((net2:forward(x2) - back2:forward(x2)):abs():max() == 0, what .. ": the imported net gives the same bits")
  return back2
end
selut.manual_seed(8)
local cnn = nn.Sequential { nn.Conv2d(2, 4, 3, { padding = 1, stride = 2 }), nn.BatchNorm2d(4), nn.SELU(),
  nn.Conv2d(4, 4, 3, { dilation = 2, groups = 2, bias = false }), nn.MaxPool2d(2, { ceil_mode = true }),
  nn.AvgPool2d(3, { stride = 1, padding = 1, count_include_pad = false }), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
  nn.Linear(4, 3), nn.LayerNorm(3) }
cnn:train()
for _ = 1, 3 do cnn:forward(T.randn(5, 2, 15, 15)) end
local back_cnn = same(cnn, T.randn(3, 2, 15, 15), { opset = 17 }, "cnn")
H.check(tostring(back_cnn.modules[2]):find("^BatchNorm2d") ~= nil, "BatchNormalization after a Conv imports as BatchNorm2d")
same(nn.Sequential { nn.Conv1d(3, 4, 3, { stride = 2, padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2) },
  T.randn(2, 3, 16), nil, "conv1d")
local emb = nn.Sequential { nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2) }
local back_emb = same(emb, T.new { { 1, 5, 10 }, { 2, 2, 3 } }, nil, "embedding")
H.check(tostring(back_emb.modules[1]) == "Embedding(10, 4)", "Gather of a 2-D initializer imports as Embedding")

-- layers and settings with no ONNX form: a message naming them
H.checkerror("AdaptiveAvgPool2d to (3, 3) from (8, 8) has no ONNX form", selut.onnx.export,
  nn.Sequential { nn.AdaptiveAvgPool2d(3) }, T.randn(1, 1, 8, 8), dir .. "/x.onnx")
H.checkerror("AvgPool2d with ceil_mode=true over size 7 gives 4 windows", selut.onnx.export,
  nn.Sequential { nn.AvgPool2d(2, { ceil_mode = true }) }, T.randn(1, 1, 7, 7), dir .. "/x.onnx")
H.checkerror("initializer 'w' holds 2 int64s but its dims say 3", selut.onnx.load, bad .. "int64_wrong_size.onnx")
H.checkerror("Conv with auto_pad=SAME_UPPER is not supported", selut.onnx.load, bad .. "conv_auto_pad.onnx")
H.checkerror("Conv with pads 1,0,0,0 is not supported (each dim must pad both ends alike)", selut.onnx.load,
  bad .. "conv_asym_pads.onnx")
H.checkerror("Conv kernel_shape 5,5 differs from the weight's 3,3", selut.onnx.load, bad .. "conv_kernel_shape.onnx")
H.checkerror("Conv over 3 spatial dims is not supported", selut.onnx.load, bad .. "conv3d.onnx")
H.checkerror("node 1 (Conv): input 2 ('cw') must be an initializer", selut.onnx.load, bad .. "conv_weight_input.onnx")
H.checkerror("MaxPool with an Indices output is not supported", selut.onnx.load, bad .. "maxpool_indices.onnx")
H.checkerror("AveragePool with ceil_mode=1 is not supported", selut.onnx.load, bad .. "avgpool_ceil.onnx")
H.checkerror("MaxPool over 1 spatial dims is not supported", selut.onnx.load, bad .. "pool1d.onnx")
H.checkerror("Gather is imported only as an Embedding", selut.onnx.load, bad .. "gather_axis1.onnx")
H.checkerror("LayerNormalization over axis -2 with a 1-D scale is not supported", selut.onnx.load,
  bad .. "layernorm_axis.onnx")

-- nets that are not a chain are traced through their forward (checked
-- against ONNX Runtime by tests/onnx); what has no ONNX form is named, and
-- the net and selut's functions are left as they were
local F = nn.F
local Res = nn.class("Res")
function Res:init()
  self.fc = nn.Linear(4, 4)
  self.pool = nn.AdaptiveAvgPool2d(3)
end
function Res:forward(x, how)
  local h = self.fc(x)
  if how == "logsumexp" then return h:logsumexp(2) end
  if how == "F" then return F.max_pool2d(h:view(2, 1, 2, 2), 2) end
  if how == "fn" then return selut.logsumexp(h, 2) end
  if how == "layer" then return self.pool(h:view(2, 1, 2, 2)) end
  if how == "sum" then return h:sum() end
  if how == "const" then return T.ones(2, 4) end
  return x + F.selu(h)
end
local res = Res()
local add, fc = selut.add, res.fc
local traced = dir .. "/res.onnx"
selut.onnx.export(res, T.randn(2, 4), traced)
-- a traced net imports as a graph with the same outputs
local rx = T.randn(2, 4)
H.check((selut.onnx.load(traced)(rx) - res(rx)):abs():max()[1] < 1e-6, "traced Res imports back")
local function export_how(how)
  local R2 = nn.class("R2_" .. how, Res)
  function R2:forward(x) return Res.forward(self, x, how) end
  local r = R2()
  return selut.onnx.export, r, T.randn(2, 4), traced
end
H.checkerror("onnx.export: the tensor op 'logsumexp' has no ONNX form in selut's exporter", export_how("logsumexp"))
H.checkerror("onnx.export: nn.F.max_pool2d has no ONNX form", export_how("F"))
H.checkerror("onnx.export: selut.logsumexp has no ONNX form", export_how("fn"))
H.checkerror("onnx.export: AdaptiveAvgPool2d to (3, 3) from (2, 2) has no ONNX form", export_how("layer"))
H.checkerror("onnx.export: GRU on an unbatched input has no ONNX form", selut.onnx.export,
  nn.Sequential { nn.GRU(3, 2) }, T.randn(5, 3), path)
H.checkerror("sum() over all elements (it gives a Lua number; pass a dim) has no ONNX form", export_how("sum"))
H.checkerror("result 1 of the forward is a tensor that does not depend on the inputs", export_how("const"))
H.check(selut.add == add and rawget(res, "fc") == fc and nn.F.max_pool2d ~= nil, "the tracer restores what it replaced")
H.check(select(2, pcall(selut.onnx.export, res, { T.randn(2, 4), "x" }, traced)):find("example input 2 must be a selut.Tensor, got string", 1, true),
  "a list of inputs holds tensors")
os.execute("rm -rf " .. dir)
