-- Bad uses of the out= option (tests/lua/ops_out.lua has the good ones):
-- a wrong shape, memory shared with an input, autograd, a non-tensor or
-- closed out, unknown options, ops without an out= form. Each message names
-- the op and both shapes; a failed call leaves out unchanged.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local bad = B.bad
local T = selut.tensor

local x = T.ones(4, 3)
local sq = T.ones(3, 3)
local closed = T.zeros(4, 3)
do local c <close> = closed end

-- the result's shape, named with out's
bad("add: out has shape [2], expected [4 x 3] (the result's shape)", function() return selut.add(x, 1, {out = T.zeros(2)}) end)
bad("mul: out has shape [3 x 4], expected [4 x 3] (the result's shape)", function() return x:mul(T.ones(3), {out = T.zeros(3, 4)}) end)
bad("maximum: out has shape [4 x 3], expected [2 x 4 x 3] (the result's shape)",
    function() return selut.maximum(x, T.ones(2, 1, 1), {out = T.zeros(4, 3)}) end)
bad("eq: out has shape [12], expected [4 x 3] (the result's shape)", function() return x:eq(x, {out = T.zeros(12)}) end)
bad("exp: out has shape [3 x 4], expected [4 x 3] (the result's shape)", function() return x:exp({out = T.zeros(3, 4)}) end)
bad("tanh: out has shape [4 x 3 x 1], expected [4 x 3] (the result's shape)", function() return selut.tanh(x, {out = T.zeros(4, 3, 1)}) end)
bad("sum: out has shape [4], expected [3] (the result's shape)", function() return x:sum(1, {out = T.zeros(4)}) end)
bad("sum: out has shape [4], expected [4 x 1] (the result's shape)", function() return x:sum(2, {keepdim = true, out = T.zeros(4)}) end)
bad("argmax: out has shape [1 x 3], expected [3] (the result's shape)", function() return x:argmax(1, {out = T.zeros(1, 3)}) end)
bad("norm: out has shape [3], expected [4] (the result's shape)", function() return x:norm(2, 2, {out = T.zeros(3)}) end)
bad("softmax: out has shape [3 x 4], expected [4 x 3] (the result's shape)", function() return x:softmax(2, {out = T.zeros(3, 4)}) end)
bad("permute: out has shape [4 x 3], expected [3 x 4] (the result's shape)", function() return x:permute(2, 1, {out = T.zeros(4, 3)}) end)
bad("cat: output [4 x 3] does not match the result's shape [8 x 3]", function() return selut.cat({x, x}, 1, {out = T.zeros(4, 3)}) end)
bad("cat: output [4 x 6] does not match the result's shape [8 x 3]", function() return selut.cat({x, x}, 1, {out = T.zeros(4, 6)}) end)
-- memory shared with an input: only the input itself, and only for ops that may overwrite it
local big = T.ones(6, 3)
bad("add: out [3 x 3] shares memory with input [3 x 3]; it may only be that input itself",
    function() return selut.add(big:narrow(1, 1, 3), 1, {out = big:narrow(1, 2, 3)}) end)
bad("exp: out [3 x 3] shares memory with input [3 x 3]; it may only be that input itself",
    function() return big:narrow(1, 2, 3):exp({out = big:narrow(1, 1, 3)}) end)
bad("sum: out [3] shares memory with input [3 x 3]; this op cannot write over its input",
    function() return sq:sum(1, {out = sq[1]}) end)
bad("permute: out [3 x 3] shares memory with input [3 x 3]; this op cannot write over its input",
    function() return sq:permute(2, 1, {out = sq}) end)
bad("cat: out [6 x 3] shares memory with input [3 x 3]; this op cannot write over its input",
    function() return selut.cat({big:narrow(1, 1, 3), sq}, 1, {out = big}) end)
bad("log_softmax: out [3 x 3] shares memory with input [3 x 3]; it may only be that input itself",
    function() return big:narrow(1, 1, 3):log_softmax(2, {out = big:narrow(1, 2, 3)}) end)
-- autograd: out= records nothing, so an input that requires grad is refused (PyTorch does the same)
local w = T.ones(4, 3)
w.requires_grad = true
bad("add: out= does not support automatic differentiation, but an input requires grad", function() return w:add(1, {out = T.zeros(4, 3)}) end)
bad("sigmoid: out= does not support automatic differentiation", function() return w:sigmoid({out = T.zeros(4, 3)}) end)
bad("mean: out= does not support automatic differentiation", function() return w:mean(1, {out = T.zeros(3)}) end)
bad("cat: out= does not support automatic differentiation", function() return selut.cat({x, w}, 1, {out = T.zeros(8, 3)}) end)
bad("add: a leaf tensor that requires grad is used in an in-place operation", function() return x:add(1, {out = w}) end)
-- what out is
bad("(add: option 'out' must be a selut.Tensor, got number)", function() return selut.add(x, 1, {out = 5}) end)
bad("(exp: option 'out' must be a selut.Tensor, got table)", function() return x:exp({out = {}}) end)
bad("attempt to use a closed tensor", function() return selut.add(x, 1, {out = closed}) end)
bad("attempt to use a closed tensor", function() return x:sum(1, {out = closed}) end)
bad("(options table {out = tensor} expected, got number)", function() return x:exp(5) end)
bad("(options table {out = tensor} expected, got string)", function() return selut.add(x, x, "out") end)
bad("(add: unknown option 'outt' (expected out))", function() return selut.add(x, 1, {outt = x}) end)
bad("(permute: unknown option 'keepdim' (expected out))", function() return x:permute(2, 1, {keepdim = true}) end)
bad("(options table {out = tensor} expected, got boolean)", function() return selut.cat({x, x}, 1, true) end)
bad("attempt to use a closed tensor", function() return x:permute(2, 1, {out = closed}) end)
bad("div: out has shape [3 x 4], expected [4 x 3] (the result's shape)", function() return selut.div(1, x, {out = T.zeros(3, 4)}) end)
bad("sub: out [3 x 3] shares memory with input [3 x 3]; it may only be that input itself",
    function() return selut.sub(sq, big:narrow(1, 1, 3), {out = big:narrow(1, 2, 3)}) end)
bad("logsumexp: out has shape [3], expected [1 x 3] (the result's shape)", function() return x:logsumexp(1, {keepdim = true, out = T.zeros(3)}) end)
-- ops without an out= form
bad("max: out= is not supported along a dim (the result is values and indices)", function() return x:max(1, {out = T.zeros(3)}) end)
bad("min: out= is not supported along a dim", function() return x:min(2, {out = T.zeros(4)}) end)
bad("sum: out= needs a dim (over all elements the result is a number)", function() return x:sum({out = T.zeros(1)}) end)

-- a refused call leaves out as it was
local o = T.ones(4, 3) * 5
pcall(function() return selut.add(big:narrow(1, 1, 4), 1, {out = big:narrow(1, 2, 4)}) end)
pcall(function() return w:add(1, {out = o}) end)
H.check(o:sum() == 60, "a refused out= call changed out")

B.no_leak(function() return selut.add(x, 1, {out = T.zeros(2)}) end)
B.no_leak(function() return x:sum(1, {out = T.zeros(4)}) end)

B.done(40)
