-- Bad input to the shape ops (view/reshape, permute, transpose, t, expand,
-- squeeze/unsqueeze, flatten, narrow, select, split, chunk, cat, stack,
-- matmul, bmm): dims and indices out of range (1-based, negative from the
-- end), sizes that do not fit, wrong list contents and argument types. Each
-- case asserts the message (op, argument, values or shapes) and that the
-- state stays healthy; bad_input.lua and ops_matmul.lua hold a few more.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T = selut.tensor

local x = T.zeros(2, 3, 4)
local e8 = T.zeros(1, 1, 1, 1, 1, 1, 1, 2)
local closed = T.zeros(2)
do local c <close> = closed end

-- view / reshape
bad("bad argument #2 to 'view' (only one size can be -1, got -1 at sizes 1 and 2)", function() return x:view(-1, -1) end)
bad("bad argument #1 to 'view' (only one size can be -1, got -1 at sizes 1 and 3)", function() return x:view { -1, 2, -1 } end)
bad("reshape: shape [5 x 5] (25 elements) does not match [2 x 3 x 4] (24 elements)", function() return x:view(5, 5) end)
bad("reshape: cannot infer -1 in [-1 x 5] for 24 elements", function() return x:view(-1, 5) end)
bad("reshape: cannot infer -1 in [0 x -1] for 24 elements", function() return x:reshape(0, -1) end)
bad("bad argument #1 to 'view' (size must be non-negative, got -2)", function() return x:view(-2, 12) end)
bad("reshape: shape overflows 64 bits", function() return x:view(1 << 62, 4, -1) end)
bad("bad argument #1 to 'view' (shape table must hold 1 to 8 sizes)", function() return x:view {} end)
bad("bad argument #1 to 'reshape' (size 2 of the shape must be a non-negative integer)", function() return x:reshape { 2, 2.5 } end)
bad("bad argument #9 to 'view' (at most 8 sizes expected)", function() return x:view(1, 1, 1, 1, 1, 1, 1, 1, 24) end)
bad("bad argument #1 to 'view' (size expected (integers or a table))", function() return x:view() end)
-- permute / transpose / t
bad("permute: dimension 1 appears twice", function() return x:permute(1, 1, 2) end)
bad("permute: dimension 3 appears twice", function() return x:permute { 3, -1, 1 } end)
bad("bad argument #2 to 'permute' (3 dims expected for a 3-D tensor, got 2)", function() return x:permute(1, 2) end)
bad("bad argument #1 to 'permute' (3 dims expected for a 3-D tensor, got 0)", function() return x:permute {} end)
bad("bad argument #3 to 'permute' (dimension 4 out of range 1..3)", function() return x:permute(1, 2, 4) end)
bad("bad argument #2 to 'permute' (number has no integer representation)", function() return x:permute(1, 2.5, 3) end)
bad("bad argument #2 to 'transpose' (dimension 4 out of range 1..3)", function() return x:transpose(1, 4) end)
bad("bad argument #1 to 'transpose' (dimension -4 out of range -3..-1)", function() return x:transpose(-4, 1) end)
bad("bad argument #2 to 'transpose' (number expected, got no value)", function() return x:transpose(1) end)
bad("bad argument #1 to 't' (1-D or 2-D tensor expected, got 3-D)", function() return x:t() end)
-- expand
bad("expand: [2 x 3 x 4] cannot expand to [2 x 5 x 4] (dim 2: 3 vs 5)", function() return x:expand(2, 5, 4) end)
bad("expand: 2 sizes given for [2 x 3 x 4], expected 3 to 8", function() return x:expand(3, 4) end)
bad("expand: size -1 is not allowed in a new leading dimension (1)", function() return x:expand(-1, 2, 3, 4) end)
bad("bad argument #2 to 'expand' (size must be non-negative, got -2)", function() return x:expand(2, -2, 4) end)
bad("bad argument #1 to 'expand' (size 2 of the shape must be a non-negative integer)", function() return x:expand { 2, "a", 4 } end)
-- squeeze / unsqueeze / flatten
bad("bad argument #1 to 'squeeze' (dimension 4 out of range 1..3)", function() return x:squeeze(4) end)
bad("bad argument #1 to 'squeeze' (dimension 0 out of range 1..3)", function() return x:squeeze(0) end)
bad("bad argument #1 to 'squeeze' (dimension -9223372036854775808 out of range -3..-1)", function() return x:squeeze(math.mininteger) end)
bad("bad argument #1 to 'unsqueeze' (dimension 5 out of range 1..4)", function() return x:unsqueeze(5) end)
bad("bad argument #2 to 'unsqueeze' (dimension -5 out of range -4..-1)", function() return selut.unsqueeze(x, -5) end)
bad("unsqueeze: [1 x 1 x 1 x 1 x 1 x 1 x 1 x 2] already has 8 dimensions, the most a tensor can have", function() return e8:unsqueeze(1) end)
bad("flatten: start dimension 3 comes after end dimension 1", function() return x:flatten(3, 1) end)
bad("flatten: start dimension 3 comes after end dimension 1", function() return x:flatten(-1, 1) end)
bad("bad argument #2 to 'flatten' (dimension 4 out of range 1..3)", function() return x:flatten(1, 4) end)
bad("bad argument #1 to 'flatten' (number has no integer representation)", function() return x:flatten(1.5) end)
-- narrow / select (1-based indices, negative from the end)
bad("bad argument #2 to 'narrow' (start 4 out of range 1..3)", function() return x:narrow(2, 4, 1) end)
bad("bad argument #2 to 'narrow' (start 0 out of range 1..3)", function() return x:narrow(2, 0, 1) end)
bad("bad argument #2 to 'narrow' (start -4 out of range -3..-1)", function() return x:narrow(2, -4, 1) end)
bad("bad argument #3 to 'narrow' (length 2 out of range 0..1 for start 3)", function() return x:narrow(2, -1, 2) end)
bad("bad argument #3 to 'narrow' (length 4 out of range 0..3 for start 2)", function() return x:narrow(3, 2, 4) end)
bad("bad argument #1 to 'narrow' (dimension 4 out of range 1..3)", function() return x:narrow(4, 1, 1) end)
bad("bad argument #2 to 'select' (index 4 out of range for size 3 (expected 1..3 or -3..-1))", function() return x:select(2, 4) end)
bad("bad argument #2 to 'select' (index 0 out of range for size 3 (expected 1..3 or -3..-1))", function() return x:select(2, 0) end)
bad("bad argument #2 to 'select' (index -3 out of range for size 2 (expected 1..2 or -2..-1))", function() return x:select(1, -3) end)
bad("bad argument #1 to 'select' (dimension 4 out of range 1..3)", function() return x:select(4, 1) end)
bad("bad argument #2 to 'select' (index 1 out of range: dimension 1 of [0 x 3] has size 0)", function() return T.zeros(0, 3):select(1, 1) end)
bad("bad argument #2 to 'select' (number expected, got no value)", function() return x:select(1) end)
-- split / chunk
bad("bad argument #1 to 'split' (split size must be positive, got 0)", function() return x:split(0) end)
bad("bad argument #1 to 'split' (split size must be positive, got -1)", function() return x:split(-1, 2) end)
bad("bad argument #1 to 'split' (sections sum to 2, expected the size 3 of dimension 2)", function() return x:split({ 1, 1 }, 2) end)
bad("bad argument #1 to 'split' (section 2 must be an integer in 0..3)", function() return x:split({ 2, -1 }, 2) end)
bad("bad argument #1 to 'split' (section 1 must be an integer in 0..2)", function() return x:split { 1.5, 0.5 } end)
bad("bad argument #2 to 'split' (dimension 4 out of range 1..3)", function() return x:split(1, 4) end)
bad("bad argument #1 to 'chunk' (number of chunks must be in 1..16777216, got 0)", function() return x:chunk(0) end)
bad("bad argument #2 to 'chunk' (number of chunks must be in 1..16777216, got -2)", function() return selut.chunk(x, -2, 1) end)
-- cat / stack
bad("cat: tensor 2 has shape [2 x 4 x 4], expected [2 x 3 x 4] except in dimension 1", function() return selut.cat({ x, T.zeros(2, 4, 4) }, 1) end)
bad("cat: tensor 2 has shape [2 x 3], expected [2 x 3 x 4] except in dimension 1", function() return selut.cat { x, T.zeros(2, 3) } end)
bad("bad argument #1 to 'cat' (non-empty list of tensors expected)", function() return selut.cat {} end)
bad("bad argument #1 to 'cat' (element 2 is a number, expected selut.Tensor)", function() return selut.cat { x, 3 } end)
bad("bad argument #1 to 'cat' (table expected, got selut.Tensor)", function() return selut.cat(x) end)
bad("bad argument #2 to 'cat' (dimension 4 out of range 1..3)", function() return selut.cat({ x, x }, 4) end)
bad("attempt to use a closed tensor", function() return selut.cat { x, closed } end)
bad("stack: tensor 2 has shape [2 x 3 x 5], expected [2 x 3 x 4] like tensor 1", function() return selut.stack { x, T.zeros(2, 3, 5) } end)
bad("bad argument #1 to 'stack' (non-empty list of tensors expected)", function() return selut.stack {} end)
bad("bad argument #2 to 'stack' (dimension 5 out of range 1..4)", function() return selut.stack({ x, x }, 5) end)
bad("bad argument #1 to 'stack' (element 2 is a string, expected selut.Tensor)", function() return selut.stack { x, "a" } end)
bad("stack: [1 x 1 x 1 x 1 x 1 x 1 x 1 x 2] already has 8 dimensions, the most a tensor can have", function() return selut.stack { e8, e8 } end)
-- matmul / bmm
bad("matmul: shapes [3] and [4] cannot be multiplied (3 != 4)", function() return selut.matmul(T.zeros(3), T.zeros(4)) end)
bad("matmul: shapes [3] and [4 x 2] cannot be multiplied (3 != 4)", function() return T.zeros(3):matmul(T.zeros(4, 2)) end)
bad("matmul: shapes [2 x 3] and [2] cannot be multiplied (3 != 2)", function() return selut.matmul(T.zeros(2, 3), T.zeros(2)) end)
bad("matmul: batch dimensions of [2 x 1 x 3 x 2 x 3] and [4 x 2 x 3 x 2] cannot broadcast (dim 3: 3 vs 2)", function() return selut.matmul(T.zeros(2, 1, 3, 2, 3), T.zeros(4, 2, 3, 2)) end)
bad("bmm: shapes [2 x 3 x 4] and [2 x 5 x 5] cannot be multiplied (4 != 5)", function() return selut.bmm(T.zeros(2, 3, 4), T.zeros(2, 5, 5)) end)
bad("bmm: batch sizes of [2 x 3 x 4] and [3 x 4 x 5] differ (2 vs 3)", function() return x:bmm(T.zeros(3, 4, 5)) end)
bad("bad argument #2 to 'bmm' (selut.Tensor expected, got table)", function() return selut.bmm(x, {}) end)
bad("bad argument #1 to 'matmul' (selut.Tensor expected, got string)", function() return x:matmul("a") end)
bad("attempt to use a closed tensor", function() return closed:permute(1) end)

-- the error paths free their result boxes
B.no_leak(function() return x:view(5, 5) end)
B.no_leak(function() return selut.cat({ x, T.zeros(2, 4, 4) }, 1) end)
B.no_leak(function() return selut.bmm(x, T.zeros(2, 5, 5)) end)
B.no_leak(function() return x:expand(2, 5, 4) end)

B.done(70)
