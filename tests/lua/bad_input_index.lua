-- Bad input to the indexing ops (index_select, gather, scatter_add(_),
-- masked_fill(_), one_hot): non-integer, zero, negative and too large
-- indices (the op, the value, its position and the allowed range), index
-- and src shapes that do not fit (both shapes), masks that do not
-- broadcast, dims out of range, wrong argument types, aliasing in place.
-- Each case asserts the message and that the state stays healthy.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T = selut.tensor
local nan = 0 / 0

local g = T.arange(12):view(3, 4)
local closed = T.zeros(2)
do local c <close> = closed end

-- index values: the op, the value, its position in the index tensor, the allowed range
bad("index_select: index 1.5 at position 2 is not an integer (expected 1..4 for dimension 2 of [3 x 4])",
  function() return g:index_select(2, T.new { 1, 1.5 }) end)
bad("index_select: index 0 at position 1 is out of range 1..4 (dimension 2 of [3 x 4])",
  function() return g:index_select(2, T.new { 0 }) end)
bad("index_select: index 4 at position 3 is out of range 1..3 (dimension 1 of [3 x 4])",
  function() return selut.index_select(g, 1, T.new { 1, 3, 4 }) end)
bad("index_select: index -1 at position 1 is out of range 1..4 (dimension 2 of [3 x 4])",
  function() return g:index_select(-1, T.new { -1 }) end)
bad("index_select: index nan at position 1 is not an integer (expected 1..4 for dimension 2 of [3 x 4])",
  function() return g:index_select(2, T.new { nan }) end)
bad("index_select: index 1 at position 1 is out of range (dimension 2 of [3 x 0] is empty)",
  function() return T.zeros(3, 0):index_select(2, T.new { 1 }) end)
bad("gather: index 5 at position (2, 1) is out of range 1..4 (dimension 2 of [3 x 4])",
  function() return g:gather(2, T.new { { 1 }, { 5 } }) end)
bad("gather: index 2.25 at position (1, 2) is not an integer (expected 1..3 for dimension 1 of [3 x 4])",
  function() return g:gather(1, T.new { { 1, 2.25 } }) end)
bad("gather: index 0 at position (1, 1, 1) is out of range 1..2 (dimension 3 of [1 x 1 x 2])",
  function() return T.zeros(1, 1, 2):gather(3, T.zeros(1, 1, 1)) end)
bad("scatter_add: index 4 at position (1, 3) is out of range 1..3 (dimension 1 of [3 x 4])",
  function() return g:scatter_add(1, T.new { { 1, 2, 4 } }, T.ones(1, 3)) end)
bad("scatter_add: index -2 at position (1, 1) is out of range 1..4 (dimension 2 of [3 x 4])",
  function() return g:clone():scatter_add_(2, T.new { { -2 } }, T.ones(1, 1)) end)
bad("one_hot: index 3 at position 2 is out of range 1..2 (num_classes 2)",
  function() return selut.one_hot(T.new { 1, 3 }, 2) end)
bad("one_hot: index 0 at position 1 is not an integer >= 1", function() return selut.one_hot(T.new { 0, 1 }) end)
bad("one_hot: index 0 at position 1 is out of range 1..5 (num_classes 5)", function() return selut.one_hot(T.new { 0 }, 5) end)
bad("one_hot: index 1.5 at position (1, 2) is not an integer >= 1", function() return selut.one_hot(T.new { { 1, 1.5 } }) end)
bad("one_hot: index 2.5 at position 1 is not an integer (expected 1..3 for num_classes 3)",
  function() return T.new { 2.5 }:one_hot(3) end)
bad("one_hot: cannot infer the number of classes from an empty index [0] (give it)",
  function() return selut.one_hot(T.zeros(0)) end)
bad("bad argument #2 to 'one_hot' (number of classes must be positive, got 0)", function() return selut.one_hot(T.new { 1 }, 0) end)
bad("bad argument #2 to 'one_hot' (number expected, got string)", function() return selut.one_hot(T.new { 1 }, "three") end)
bad("one_hot: index [1 x 1 x 1 x 1 x 1 x 1 x 1 x 1] already has 8 dimensions",
  function() return selut.one_hot(T.ones(1, 1, 1, 1, 1, 1, 1, 1)) end)

-- shapes: both named
bad("index_select: index must be 1-D, got [2 x 2]", function() return g:index_select(1, T.ones(2, 2)) end)
bad("gather: index [3] has 1 dimension, input [3 x 4] has 2 (they must match)", function() return g:gather(2, T.ones(3)) end)
bad("gather: index [4 x 1] is larger than input [3 x 4] in dimension 1 (4 > 3)", function() return g:gather(2, T.ones(4, 1)) end)
bad("scatter_add: index [2 x 2] is larger than src [2 x 1] in dimension 2 (2 > 1)",
  function() return g:scatter_add(1, T.ones(2, 2), T.ones(2, 1)) end)
bad("scatter_add: index [1 x 5] is larger than self [3 x 4] in dimension 2 (5 > 4)",
  function() return g:scatter_add(1, T.ones(1, 5), T.ones(1, 5)) end)
bad("scatter_add: index [1 x 2 x 1] has 3 dimensions, self [3 x 4] has 2 (they must match)",
  function() return g:scatter_add(2, T.ones(1, 2, 1), T.ones(1, 2, 1)) end)
bad("scatter_add: index [1 x 2] has 2 dimensions, src [2] has 1 (they must match)",
  function() return g:clone():scatter_add_(2, T.ones(1, 2), T.ones(2)) end)
bad("masked_fill: shapes [3 x 4] and [3] cannot broadcast (dim 2: 4 vs 3)", function() return g:masked_fill(T.ones(3), 0) end)
bad("masked_fill: shapes [3 x 4] and [2 x 3 x 2] cannot broadcast (dim 3: 4 vs 2)",
  function() return selut.masked_fill(g, T.ones(2, 3, 2), 0) end)
bad("masked_fill_: the mask [2 x 3 x 4] broadcasts [3 x 4] to [2 x 3 x 4], not to the in-place tensor's shape",
  function() return g:clone():masked_fill_(T.ones(2, 3, 4), 0) end)
bad("masked_fill_: shapes [3 x 4] and [4 x 1] cannot broadcast (dim 1: 3 vs 4)",
  function() return g:clone():masked_fill_(T.ones(4, 1), 0) end)

-- in place: the index or src must not share the tensor written to
local y = T.ones(2, 3)
bad("scatter_add: the index shares memory with the tensor written to (clone it first)", function() return y:scatter_add_(2, y, T.ones(2, 3)) end)
bad("scatter_add: src shares memory with the tensor written to (clone it first)", function() return y:scatter_add_(2, T.ones(2, 3), y:view(2, 3)) end)
bad("masked_fill_: the mask shares memory with the tensor written to (clone it first)",
  function() return y:masked_fill_(y:narrow(1, 1, 1), 0) end)
assert(y:sum() == 6, "failed in-place ops wrote nothing")

-- dims out of range
bad("bad argument #1 to 'index_select' (dimension 3 out of range 1..2)", function() return g:index_select(3, T.ones(1)) end)
bad("bad argument #2 to 'gather' (dimension -3 out of range -2..-1)", function() return selut.gather(g, -3, T.ones(3, 4)) end)
bad("bad argument #1 to 'scatter_add' (dimension 0 out of range 1..2)", function() return g:scatter_add(0, T.ones(1, 1), T.ones(1, 1)) end)
bad("bad argument #1 to 'scatter_add_' (number has no integer representation)",
  function() return g:clone():scatter_add_(1.5, T.ones(1, 1), T.ones(1, 1)) end)

-- argument types
bad("bad argument #2 to 'index_select' (selut.Tensor expected, got table)", function() return g:index_select(1, { 1, 2 }) end)
bad("bad argument #2 to 'gather' (selut.Tensor expected, got no value)", function() return g:gather(1) end)
bad("bad argument #4 to 'scatter_add' (selut.Tensor expected, got number)", function() return selut.scatter_add(g, 1, T.ones(1, 1), 1) end)
bad("bad argument #1 to 'masked_fill' (selut.Tensor expected, got number)", function() return g:masked_fill(1, 0) end)
bad("bad argument #2 to 'masked_fill_' (number expected, got no value)", function() return g:clone():masked_fill_(T.ones(4)) end)
bad("bad argument #1 to 'one_hot' (selut.Tensor expected, got table)", function() return selut.one_hot({ 1, 2 }) end)
bad("attempt to use a closed tensor", function() return g:index_select(1, closed) end)
bad("attempt to use a closed tensor", function() return closed:one_hot(3) end)

-- the error paths free what they made
B.no_leak(function() return g:gather(2, T.new { { 9 } }) end)
B.no_leak(function() return g:scatter_add(1, T.new { { 1, 2, 4 } }, T.ones(1, 3)) end)
B.no_leak(function() return selut.one_hot(T.new { 1, 7 }, 3) end)
B.done(45)
