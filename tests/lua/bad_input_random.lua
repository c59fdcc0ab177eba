-- Bad input to the random sampling and creation ops: invalid probabilities
-- and weights, empty ranges, sizes, parameters and argument types. Each case
-- asserts the message (op, argument, value received and expected) and that
-- the state stays healthy; the failing calls leak nothing.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T = selut.tensor
local nan, inf = 0 / 0, math.huge

local closed = T.zeros(2)
do local c <close> = closed end

-- randint: empty range, float32's exact integers, sizes, types
bad("randint: range [3, 3) is empty (expected lo < hi)", function() return T.randint(3, 3, 4) end)
bad("randint: range [5, 2) is empty (expected lo < hi)", function() return T.randint(5, 2, 4) end)
bad("randint: range [0, 16777217) is beyond float32's exact integers (expected lo and hi within -16777216..16777216)", function() return T.randint(0, 16777217, 2) end)
bad("bad argument #1 to 'randint' (number has no integer representation)", function() return T.randint(0.5, 3, 2) end)
bad("bad argument #2 to 'randint' (number expected, got no value)", function() return T.randint(3) end)
bad("bad argument #3 to 'randint' (size expected (integers or a table))", function() return T.randint(0, 3) end)
bad("bad argument #3 to 'randint' (size must be non-negative, got -2)", function() return T.randint(0, 3, -2) end)
bad("bad argument #4 to 'randint' (number has no integer representation)", function() return T.randint(0, 3, 2, 1.5) end)
bad("bad argument #3 to 'randint' (size 2 of the shape must be a non-negative integer)", function() return T.randint(0, 3, { 2, -1 }) end)
-- randperm
bad("randperm: n is -1 (expected 0..16777216)", function() return T.randperm(-1) end)
bad("randperm: n is 16777217 (expected 0..16777216)", function() return T.randperm(16777217) end)
bad("bad argument #1 to 'randperm' (number has no integer representation)", function() return T.randperm(2.5) end)
bad("bad argument #1 to 'randperm' (number expected, got string)", function() return T.randperm("x") end)
-- bernoulli: probabilities outside [0, 1], NaN, types
bad("bernoulli: probability -0.5 at index 2 of [3] (expected a value in [0, 1])", function() return T.bernoulli(T.new({ 0.5, -0.5, 1 })) end)
bad("bernoulli: probability 1.5 at index 4 of [2 x 2] (expected a value in [0, 1])", function() return T.bernoulli(T.new({ { 0, 1 }, { 1, 1.5 } })) end)
bad("bernoulli: probability nan at index 1 of [1] (expected a value in [0, 1])", function() return T.bernoulli(T.new({ nan })) end)
bad("bernoulli: probability inf at index 1 of [1] (expected a value in [0, 1])", function() return T.new({ inf }):bernoulli() end)
bad("bernoulli: probability 2 (expected a value in [0, 1])", function() return T.bernoulli(2, 3) end)
bad("bernoulli: probability nan (expected a value in [0, 1])", function() return T.bernoulli(nan, 3) end)
bad("bad argument #1 to 'bernoulli' (number or selut.Tensor expected, got string)", function() return T.bernoulli("0.5", 3) end)
bad("bad argument #2 to 'bernoulli' (size expected (integers or a table))", function() return T.bernoulli(0.5) end)
bad("bad argument #2 to 'bernoulli' (no sizes expected when p is a tensor)", function() return T.bernoulli(T.zeros(2), 3) end)
bad("attempt to use a closed tensor", function() return T.bernoulli(closed) end)
-- multinomial: weights, rows, counts, shapes, types
bad("multinomial: weight -0.5 at category 2 (expected finite and >= 0)", function() return T.multinomial(T.new({ 1, -0.5, 2 }), 1) end)
bad("multinomial: weight nan at row 2, category 1 (expected finite and >= 0)", function() return T.multinomial(T.new({ { 1, 1 }, { nan, 1 } }), 1, true) end)
bad("multinomial: weight inf at category 3 (expected finite and >= 0)", function() return T.multinomial(T.new({ 1, 1, inf }), 1, true) end)
bad("multinomial: row 2 has all weights 0 (expected a positive sum)", function() return T.multinomial(T.new({ { 1, 2 }, { 0, 0 } }), 1, true) end)
bad("multinomial: all weights are 0 (expected a positive sum)", function() return T.multinomial(T.zeros(4), 2) end)
bad("multinomial: cannot draw 4 samples without replacement from 3 categories", function() return T.multinomial(T.ones(3), 4) end)
bad("multinomial: row 1 has 2 categories of positive weight, cannot draw 3 without replacement", function() return T.multinomial(T.new({ { 1, 0, 1 }, { 1, 1, 1 } }), 3) end)
bad("multinomial: 1 categories of positive weight, cannot draw 2 without replacement", function() return T.multinomial(T.new({ 0, 5, 0 }), 2, false) end)
bad("multinomial: n is 0 (expected at least 1 sample)", function() return T.multinomial(T.ones(3), 0, true) end)
bad("multinomial: n is -2 (expected at least 1 sample)", function() return T.multinomial(T.ones(3), -2, true) end)
bad("multinomial: probs is [2 x 2 x 2] (expected 1-D or 2-D)", function() return T.multinomial(T.ones(2, 2, 2), 1) end)
bad("multinomial: probs [3 x 0] has no categories", function() return T.multinomial(T.ones(3, 0), 1, true) end)
bad("bad argument #3 to 'multinomial' (boolean expected, got number)", function() return T.multinomial(T.ones(3), 1, 1) end)
bad("bad argument #2 to 'multinomial' (number has no integer representation)", function() return T.multinomial(T.ones(3), 1.5) end)
bad("bad argument #1 to 'multinomial' (selut.Tensor expected, got table)", function() return selut.multinomial({ 1, 2 }, 1) end)
-- normal_ / uniform_: parameters, in place on tensors autograd needs
local x = T.zeros(3)
bad("normal_: std is -1 (expected finite and >= 0)", function() return x:normal_(0, -1) end)
bad("normal_: std is nan (expected finite and >= 0)", function() return x:normal_(0, nan) end)
bad("normal_: mean is inf (expected a finite number)", function() return x:normal_(inf, 1) end)
bad("bad argument #2 to 'normal_' (number expected, got string)", function() return x:normal_(0, "one") end)
bad("uniform_: a 2 is greater than b 1 (expected a <= b)", function() return x:uniform_(2, 1) end)
bad("uniform_: bounds [-inf, 1) (expected finite numbers)", function() return x:uniform_(-inf, 1) end)
bad("uniform_: range [-3e+38, 3e+38) is wider than float32 can hold", function() return x:uniform_(-3e38, 3e38) end)
bad("attempt to use a closed tensor", function() return closed:uniform_() end)
local w = T.zeros(2):requires_grad_()
bad("normal_: a leaf tensor that requires grad is used in an in-place operation", function() return w:normal_() end)
local wy = w * 2
bad("uniform_: in-place operations on a tensor recorded by autograd (made by MulBackward) are not supported", function() return wy:uniform_() end)
-- creation ops
bad("linspace: n is -1 (expected >= 0)", function() return T.linspace(0, 1, -1) end)
bad("linspace: range 0 to inf (expected finite numbers)", function() return T.linspace(0, inf, 3) end)
bad("bad argument #3 to 'linspace' (number has no integer representation)", function() return T.linspace(0, 1, 2.5) end)
bad("bad argument #3 to 'linspace' (number expected, got no value)", function() return T.linspace(0, 1) end)
bad("eye: n is -2 (expected >= 0)", function() return T.eye(-2) end)
bad("eye: m is -1 (expected >= 0)", function() return T.eye(2, -1) end)
bad("bad argument #1 to 'eye' (number has no integer representation)", function() return T.eye(1.5) end)
bad("bad argument #1 to 'zeros_like' (selut.Tensor expected, got table)", function() return T.zeros_like({ 1, 2 }) end)
bad("bad argument #2 to 'full_like' (number expected, got no value)", function() return T.full_like(T.zeros(2)) end)
bad("attempt to use a closed tensor", function() return T.ones_like(closed) end)

-- error paths free their result boxes
B.no_leak(function() return T.multinomial(T.new({ { 1, 2 }, { 0, 0 } }), 1, true) end)
B.no_leak(function() return T.bernoulli(T.new({ 0.5, 2 })) end)
B.no_leak(function() return T.randint(3, 1, 1000) end)

B.done(55)
