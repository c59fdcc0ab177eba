-- Bad input to the tensor ops (elementwise with broadcasting, reductions):
-- shapes that do not broadcast, in-place shape mismatches, NaN clamp bounds,
-- wrong operand types, dims out of range, bad options. Each case asserts the
-- message (op, argument, values) and that the state stays healthy.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T = selut.tensor
local nan = 0 / 0

local x = T.zeros(4, 3)
local closed = T.zeros(2)
do local c <close> = closed end

-- broadcasting: both shapes and the first dim (1-based, in the result) that disagrees
bad("add: shapes [4 x 3] and [2 x 3] cannot broadcast (dim 1: 4 vs 2)", function() return x + T.zeros(2, 3) end)
bad("sub: shapes [4 x 3] and [2] cannot broadcast (dim 2: 3 vs 2)", function() return x - T.zeros(2) end)
bad("mul: shapes [2 x 1 x 3] and [4 x 2] cannot broadcast (dim 3: 3 vs 2)", function() return T.zeros(2, 1, 3) * T.zeros(4, 2) end)
bad("div: shapes [5] and [4 x 3] cannot broadcast (dim 2: 5 vs 3)", function() return T.zeros(5) / x end)
bad("pow: shapes [4 x 3] and [0] cannot broadcast (dim 2: 3 vs 0)", function() return x ^ T.zeros(0) end)
bad("maximum: shapes [4 x 3] and [3 x 3] cannot broadcast (dim 1: 4 vs 3)", function() return selut.maximum(x, T.zeros(3, 3)) end)
bad("eq: shapes [4 x 3] and [4] cannot broadcast (dim 2: 3 vs 4)", function() return x:eq(T.zeros(4)) end)
bad("ge: shapes [2] and [3] cannot broadcast (dim 1: 2 vs 3)", function() return selut.ge(T.zeros(2), T.zeros(3)) end)
bad("where: shapes [4 x 3] and [2] cannot broadcast (dim 2: 3 vs 2)", function() return selut.where(x, T.zeros(2), 0) end)
bad("where: shapes [4 x 3] and [5 x 1] cannot broadcast (dim 1: 4 vs 5)", function() return selut.where(x, 1, T.zeros(5, 1)) end)
-- in place: the broadcast shape must be self's shape
bad("add_: the result [4 x 3] of [1 x 3] and [4 x 3] is not the in-place tensor's shape", function() return T.zeros(1, 3):add_(x) end)
bad("mul_: the result [4 x 3] of [3] and [4 x 3] is not the in-place tensor's shape", function() return T.zeros(3):mul_(x) end)
bad("lt: shapes [4 x 3] and [2] cannot broadcast (dim 2: 3 vs 2)", function() return x:clone():lt_(T.zeros(2)) end)
bad("bad argument #1 to 'add_' (same number of elements expected when alpha is given)", function() return x:add_(T.zeros(3), 2) end)
-- clamp bounds
bad("clamp: min is NaN (expected a number, or nil for no bound)", function() return x:clamp(nan, 1) end)
bad("clamp: max is NaN (expected a number, or nil for no bound)", function() return x:clamp(0, nan) end)
bad("clamp: max is NaN (expected a number, or nil for no bound)", function() return selut.clamp(x, nil, nan) end)
bad("bad argument #1 to 'clamp_' (clamp: min or max expected (both are nil))", function() return x:clamp_() end)
bad("bad argument #2 to 'clamp' (number expected, got string)", function() return selut.clamp(x, "a") end)
-- operand types
bad("attempt to perform arithmetic (mul) on a selut.Tensor and a string value (number or tensor expected)", function() return x * "2" end)
bad("attempt to perform arithmetic (pow) on a selut.Tensor and a table value", function() return x ^ {} end)
bad("bad argument #1 to 'maximum' (number or selut.Tensor expected, got boolean)", function() return x:maximum(true) end)
bad("add: at least one argument must be a selut.Tensor (got two numbers)", function() return selut.add(1, 2) end)
bad("bad argument #1 to 'where' (selut.Tensor expected, got number)", function() return selut.where(1, x, x) end)
bad("bad argument #1 to 'exp' (selut.Tensor expected, got string)", function() return selut.exp("x") end)
bad("attempt to use a closed tensor", function() return closed + 1 end)
bad("attempt to use a closed tensor", function() return x:add(closed) end)
bad("attempt to use a closed tensor", function() return closed:sigmoid_() end)

-- reductions: dims out of range (1-based, negative from the end), options, empty dims
bad("bad argument #1 to 'sum' (dimension 3 out of range 1..2)", function() return x:sum(3) end)
bad("bad argument #1 to 'sum' (dimension -3 out of range -2..-1)", function() return x:sum(-3) end)
bad("bad argument #1 to 'mean' (dimension 0 out of range 1..2)", function() return x:mean(0) end)
bad("bad argument #1 to 'max' (number has no integer representation)", function() return x:max(1.5) end)
bad("bad argument #2 to 'var' (unknown option 'unbiasd' (expected keepdim, unbiased, out))", function() return x:var(1, { unbiasd = true }) end)
bad("bad argument #2 to 'std' (option 'unbiased' must be a boolean, got number)", function() return x:std(1, { unbiased = 1 }) end)
bad("bad argument #1 to 'softmax' (dimension 5 out of range 1..2)", function() return x:softmax(5) end)
bad("bad argument #2 to 'softmax' (dimension -4 out of range -2..-1)", function() return selut.softmax(x, -4) end)
bad("bad argument #1 to 'log_softmax' (dimension expected (log_softmax over which dim?))", function() return x:log_softmax() end)
bad("max: dimension 1 of [0 x 3] is empty (nothing to reduce)", function() return T.zeros(0, 3):max(1) end)
bad("max: tensor is empty (nothing to reduce)", function() return T.zeros(0):max() end)
bad("bad argument #2 to 'argmin' (keepdim (boolean) or options table expected, got string)", function() return x:argmin(2, "yes") end)
bad("bad argument #1 to 'norm' (number expected, got string)", function() return x:norm("a") end)
bad("bad argument #1 to 'logsumexp' (dimension 9 out of range 1..2)", function() return x:logsumexp(9) end)

B.no_leak(function() return x + T.zeros(2, 3) end)
B.no_leak(function() return T.zeros(0, 3):max(1) end)
B.no_leak(function() return selut.where(x, T.zeros(2), 0) end)
B.no_leak(function() return x:clamp(nan) end)

B.done(42)
