-- LayerNorm, GroupNorm, BatchNorm2d and Embedding from Lua: constructors
-- (positional arguments, then an options table), printing, fields, 1-based
-- indices and padding_idx, checkpoints with PyTorch's names, and the
-- bad-input messages. Values against PyTorch: tests/c/test_norm.c.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local check, bad = H.check, B.bad
local T, nn = selut.tensor, selut.nn
local function shape(t) return table.concat(t:shape(), "x") end

-- LayerNorm
local ln = nn.LayerNorm({4, 5})
check(tostring(ln) == "LayerNorm((4, 5), eps=1e-05, elementwise_affine=true)", tostring(ln))
check(shape(ln.weight) == "4x5" and ln.weight:min() == 1 and ln.bias:abs():max() == 0, "weight ones, bias zeros")
local y = ln:forward(T.randn(3, 2, 4, 5) * 3 + 1)
check(math.abs(y[1][1]:mean()) < 1e-5 and math.abs(y[1][1]:var() * 19 / 20 - 1) < 1e-3, "normalized rows")
check(tostring(nn.LayerNorm(7, 1e-3, false)) == "LayerNorm((7,), eps=0.001, elementwise_affine=false)", "positional")
check(#nn.LayerNorm(7, {elementwise_affine = false}):parameters() == 0, "no affine: no parameters")
-- GroupNorm and BatchNorm2d: generic constructors from the layer descriptors
local gn = nn.GroupNorm(2, 6, {eps = 1e-3})
check(tostring(gn) == "GroupNorm(2, 6, eps=0.001, affine=true)", tostring(gn))
check(gn.num_groups == 2 and gn.num_channels == 6 and shape(gn.weight) == "6", "GroupNorm fields")
check(shape(gn:forward(T.randn(2, 6, 3, 3))) == "2x6x3x3", "GroupNorm output")
local bn = nn.BatchNorm2d(3, {momentum = 0.2})
check(tostring(bn) == "BatchNorm2d(3, eps=1e-05, momentum=0.2, affine=true, track_running_stats=true)", tostring(bn))
bn:forward(T.randn(4, 3, 5, 5) + 2)
check(bn.num_batches_tracked == 1 and bn.running_mean:mean() > 0.2, "running statistics move")
-- Embedding: 1-based indices and padding_idx
selut.manual_seed(5)
local e = nn.Embedding(10, 3, {padding_idx = 2})
check(tostring(e) == "Embedding(10, 3, padding_idx=2)" and e.padding_idx == 2, tostring(e))
check(e.weight[2]:abs():max() == 0, "the padding row starts at zero")
local idx = T.new{{1, 2, 10}, {2, 2, 5}}
local out = e:forward(idx)
check(shape(out) == "2x3x3", "output: the input's shape plus embedding_dim")
H.tensor_near(out[1][3], e.weight[10], 0, "row 10")
e:backward(idx, T.ones(2, 3, 3))
local g = e:parameters()[1].grad
H.tensor_near(e.weight.grad, g, 0, "e.weight.grad is the module's gradient (autograd's .grad)")
check(g[2]:abs():max() == 0 and g[1]:get(1) == 1 and g[10]:get(1) == 1, "no gradient for padding_idx; one per use")
check(tostring(nn.Embedding(10, 3, {padding_idx = -1})) == "Embedding(10, 3, padding_idx=10)", "negative padding_idx")
-- a checkpoint with PyTorch's names
local net = nn.Sequential{nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.SELU(), nn.GroupNorm(2, 4), nn.Flatten(),
                          nn.LayerNorm(16)}
net:forward(T.randn(2, 1, 4, 4))
local path = os.tmpname()
selut.save(path, net)
local saved = selut.load(path)
for _, k in ipairs{"0.weight", "1.weight", "1.running_mean", "1.num_batches_tracked", "3.weight", "3.bias",
                   "5.weight", "5.bias"} do
  check(saved[k] ~= nil, "checkpoint has " .. k)
end
os.remove(path)

-- bad input
bad("bad argument #1 to 'LayerNorm' (normalized_shape must be a positive integer, got 0)", function() return nn.LayerNorm(0) end)
bad("bad argument #2 to 'LayerNorm' (eps must be a number > 0)", function() return nn.LayerNorm(4, {eps = -1}) end)
bad("GroupNorm: num_groups 4 must divide num_channels 6", function() return nn.GroupNorm(4, 6) end)
bad("bad argument #3 to 'GroupNorm' (unknown option 'groups')", function() return nn.GroupNorm(2, 6, {groups = 2}) end)
bad("bad argument #2 to 'BatchNorm2d' (eps must be a number, got string)", function() return nn.BatchNorm2d(3, {eps = "x"}) end)
bad("Embedding: padding_idx 11 out of range 1..10 (or -10..-1)", function() return nn.Embedding(10, 3, {padding_idx = 11}) end)
bad("bad argument #3 to 'Embedding' (padding_idx must be in 1..num_embeddings or -num_embeddings..-1 (1-based), got 0)",
    function() return nn.Embedding(10, 3, {padding_idx = 0}) end)
bad("bad argument #3 to 'Embedding' (max_norm is not supported)", function() return nn.Embedding(10, 3, {max_norm = 1}) end)
bad("Embedding.forward: index 11 at position 2 is out of range 1..10", function() return e:forward(T.new{1, 11}) end)
bad("Embedding.forward: index 1.5 at position 1 is not an integer in the range 1..10", function() return e:forward(T.new{1.5}) end)
bad("Embedding.forward: index 0 at position 3 is out of range 1..10", function() return e:forward(T.new{{1, 2}, {0, 1}}) end)
bad("LayerNorm.forward: input [2 x 5 x 4] does not end with normalized_shape [4 x 5]", function() return ln:forward(T.randn(2, 5, 4)) end)
bad("GroupNorm.forward: expected input of shape [N x 6 x *], got [2 x 4 x 3]", function() return gn:forward(T.randn(2, 4, 3)) end)
bad("BatchNorm2d.forward: expected input of shape [N x 3 x H x W], got [2 x 3 x 4]", function() return bn:forward(T.randn(2, 3, 4)) end)
bad("BatchNorm2d.forward: expected more than 1 value per channel when training, got input of shape [1 x 3 x 1 x 1]",
    function() return bn:forward(T.randn(1, 3, 1, 1)) end)
B.done(15)
