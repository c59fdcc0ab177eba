-- Bad input across the API: wrong types and counts, negative /
-- zero / huge sizes, overflowing shapes, mismatched shapes, labels and
-- indices out of range, NaN/inf where a finite value is required, p outside
-- [0, 1), closed tensors, methods on the wrong object, memory limits. Each
-- case asserts the message (function, argument, value, expectation) and that
-- the state is healthy afterwards. Files and the CLI: bad_input_files.lua.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, nn, optim, viz = selut.tensor, selut.nn, selut.optim, selut.viz
local nan, inf = 0 / 0, math.huge

local x = T.zeros(4, 3)
local closed = T.zeros(2)
do local c <close> = closed end
local lin = nn.Linear(3, 2)

-- sizes: negative, non-integer, too many dims, overflowing, larger than RAM
bad("bad argument #1 to 'rand' (size must be non-negative, got -3)", function() return T.rand(-3) end)
bad("bad argument #1 to 'zeros' (number has no integer representation)", function() return T.zeros(nan) end)
bad("bad argument #1 to 'zeros' (number expected, got string)", function() return T.zeros("a") end)
bad("bad argument #9 to 'zeros' (at most 8 sizes expected)", function() return T.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1) end)
bad("bad argument #1 to 'randn' (size 2 of the shape must be a non-negative integer)", function() return T.randn({ 2, "x" }) end)
bad("bad argument #2 to 'full' (number has no integer representation)", function() return T.full(1, 1.5) end)
bad("bad argument #1 to 'full' (number expected, got string)", function() return T.full("v", 2) end)
bad("shape [1099511627776 x 1099511627776] has more elements than fit in 64 bits", function() return T.zeros(1 << 40, 1 << 40) end)
bad("shape [4611686018427387904 x 4] has more elements than fit in 64 bits", function() return T.ones(1 << 62, 4) end)
-- a zero size does not excuse an overflowing product of the others (fuzz_tensor_new found totable's
-- row length overflowing for [0 x 3*2^40 x 2^40]; tests/fuzz/regressions/fuzz_tensor_new/)
bad("shape [0 x 3298534883328 x 1099511627776] has more elements than fit in 64 bits", function()
  return T.zeros(0, 3 << 40, 1 << 40)
end)
bad("shape [0 x 4611686018427387904] exceeds the address space", function() return T.zeros(0, 1 << 62) end)
-- empty tensors with huge outer sizes: new and totable would walk or build 2^40 rows (fuzz_tensor_new
-- found the hang; tests/fuzz/regressions/fuzz_tensor_new/empty-rows-hang)
bad("totable: [1099511627776 x 0] has 1099511627776 empty rows, more than the 16777216 Lua tables allowed", function()
  return T.zeros(1 << 40, 0):totable()
end)
bad("bad argument #1 to 'new' (table of 1073741824 empty rows (at most 16777216 for a tensor with no elements))", function()
  local rows = setmetatable({}, { __len = function() return 1 << 30 end, __index = function() return {} end })
  return T.new(rows)
end)
bad("out of memory: 4398046511104 bytes requested, more than this machine's", function() return T.zeros(1 << 20, 1 << 20) end)
bad("arange: start, end and step must be finite (got 0, inf, 1)", function() return T.arange(0, inf) end)
bad("arange: 1e+18 elements is too many", function() return T.arange(0, 1e18) end)
bad("bad argument #1 to 'new' (table nested deeper than 8 levels)", function() return T.new({ { { { { { { { { 1 } } } } } } } } }) end)
bad("bad argument #1 to 'new' (table expected, got no value)", function() return T.new() end)
bad("bad argument #1 to 'new' (number expected at depth 1, got boolean)", function() return T.new({ true }) end)

-- closed tensors and methods called on the wrong object
bad("attempt to use a closed tensor", function() return closed:numel() end)
bad("attempt to use a closed tensor", function() return closed + 1 end)
bad("attempt to use a closed tensor", function() return x:copy(closed) end)
bad("attempt to use a closed tensor", function() return lin:forward(closed) end)
bad("bad argument #1 to 'numel' (selut.Tensor expected, got selut.nn.Linear)", function() return x.numel(lin) end)
bad("bad argument #1 to 'sum' (selut.Tensor expected, got number)", function() return x.sum(5) end)
bad("bad argument #1 to 'forward' (selut.nn module expected, got selut.Tensor)", function()
  local s = nn.SELU(); return s.forward(x, x)
end)
bad("bad argument #1 to 'forward' (selut.nn loss expected, got selut.nn.Linear)", function()
  local c = nn.CrossEntropyLoss(); return c.forward(lin, x, { 1 })
end)
bad("bad argument #1 to 'step' (selut.optim optimizer expected, got selut.nn.Linear)", function()
  local o = optim.Adam(lin:parameters()); return o.step(lin)
end)

-- indices, dims, shapes
bad("reshape: shape [0] (0 elements) does not match [4 x 3] (12 elements)", function() return x:reshape(0) end)
bad("bad argument #1 to 'reshape' (number has no integer representation)", function() return x:reshape(2.5) end)
bad("bad argument #3 to 'narrow' (length -1 out of range 0..4 for start 1)", function() return x:narrow(1, 1, -1) end)
bad("bad argument #1 to 'set' (number has no integer representation)", function() return x:set(nan, 1, 1) end)
bad("bad argument #3 to 'set' (number expected, got string)", function() return x:set(1, 1, "a") end)
bad("bad argument #1 to 'get' (2 indices expected for a 2-D tensor, got 0)", function() return x:get() end)
bad("bad argument #1 to 'argmax' (dimension 0 out of range 1..2)", function() return x:argmax(0) end)
bad("mul: shapes [4 x 3] and [5] cannot broadcast (dim 2: 3 vs 5)", function() return x * T.zeros(5) end)
bad("bad argument #1 to 'div_' (number or selut.Tensor expected, got string)", function() return x:div_("z") end)
bad("matmul: shapes [4 x 3] and [4 x 4] cannot be multiplied (3 != 4)", function() return selut.matmul(x, T.zeros(4, 4)) end)
bad("matmul: shapes [2 x 2 x 2] and [4 x 3] cannot be multiplied (2 != 4)", function() return selut.matmul(T.zeros(2, 2, 2), x) end)
bad("bad argument #2 to 'matmul' (selut.Tensor expected, got number)", function() return selut.matmul(x, 3) end)
bad("bad argument #1 to 'manual_seed' (number has no integer representation)", function() return selut.manual_seed(1.5) end)
bad("bad argument #1 to 'set_num_threads' (thread count 1099511627776 out of range 1..1024)", function() return selut.set_num_threads(1 << 40) end)

-- modules: sizes, NaN/inf parameters, p outside [0, 1)
bad("bad argument #1 to 'Linear' (in_features must be >= 1, got -1)", function() return nn.Linear(-1, 2) end)
bad("Linear(1099511627776, 1099511627776): tensor: shape [1099511627776 x 1099511627776] has more elements", function() return nn.Linear(1 << 40, 1 << 40) end)
bad("bad argument #1 to 'Linear' (number expected, got string)", function() return nn.Linear("a", 2) end)
bad("bad argument #1 to 'ELU' (alpha must be finite)", function() return nn.ELU(nan) end)
bad("bad argument #1 to 'ELU' (alpha must be finite)", function() return nn.ELU(inf) end)
bad("bad argument #1 to 'LeakyReLU' (negative_slope must be finite)", function() return nn.LeakyReLU(nan) end)
bad("bad argument #1 to 'Dropout' (probability in [0, 1) expected, got -0.1)", function() return nn.Dropout(-0.1) end)
bad("bad argument #1 to 'Dropout' (probability in [0, 1) expected, got ", function() return nn.Dropout(nan) end)
bad("bad argument #1 to 'AlphaDropout' (probability in [0, 1) expected, got 1.0)", function() return nn.AlphaDropout(1) end)
bad("bad argument #1 to 'AlphaDropout' (number expected, got string)", function() return nn.AlphaDropout("x") end)
bad("Linear.backward: gradOutput shape [4 x 5] does not match input [4 x 3] and out_features 2", function()
  lin:forward(x); return lin:backward(x, T.zeros(4, 5))
end)
bad("Linear.forward: input shape [4 x 4] does not match in_features 5", function()
  return nn.Sequential { nn.Linear(3, 4), nn.Linear(5, 2) }:forward(x)
end)
bad("bad argument #1 to 'Sequential' (table of modules expected, got string)", function() return nn.Sequential("a") end)
bad("bad argument #1 to 'he_normal' (module expected, got table)", function() return nn.init.he_normal({}) end)

-- losses: labels out of range, NaN/inf labels, mismatched shapes
local ce = nn.CrossEntropyLoss()
bad("bad argument #2 to 'forward' (label ", function() return ce:forward(T.zeros(2, 3), { 1, nan }) end)
bad("bad argument #2 to 'forward' (label inf at position 2 out of range 1..3)", function()
  return ce:forward(T.zeros(2, 3), T.new { 1, inf })
end)
bad("bad argument #2 to 'forward' (label at position 2 is not a number)", function()
  return ce:forward(T.zeros(2, 3), { 1, "a" })
end)
bad("bad argument #2 to 'forward' (selut.Tensor expected, got no value)", function() return ce:forward(T.zeros(2, 3)) end)
bad("bad argument #2 to 'backward' (label 4.0 at position 1 out of range 1..3)", function()
  return ce:backward(T.zeros(2, 3), { 4, 1 })
end)
bad("mse.forward: input shape [2 x 3] does not match target shape [3 x 2]", function()
  return nn.MSELoss():forward(T.zeros(2, 3), T.zeros(3, 2))
end)

-- optimizers: NaN/inf/negative hyper-parameters, wrong types
local params = lin:parameters()
bad("bad argument #2 to 'SGD' (option 'lr' = -1.0 out of range [0.0, inf])", function() return optim.SGD(params, { lr = -1 }) end)
bad("bad argument #2 to 'SGD' (option 'lr' must be a finite number, got ", function() return optim.SGD(params, { lr = nan }) end)
bad("bad argument #2 to 'SGD' (option 'lr' must be a finite number, got inf)", function() return optim.SGD(params, { lr = inf }) end)
bad("bad argument #2 to 'SGD' (option 'momentum' must be a finite number, got string)", function() return optim.SGD(params, { lr = 0.1, momentum = "x" }) end)
bad("bad argument #2 to 'SGD' (option 'momentum' = -1.0 out of range [0.0, inf])", function() return optim.SGD(params, { lr = 0.1, momentum = -1 }) end)
bad("bad argument #1 to 'SGD' (table expected, got nil)", function() return optim.SGD(nil, { lr = 1 }) end)
bad("bad argument #2 to 'SGD' (table expected, got string)", function() return optim.SGD(params, "fast") end)
bad("bad argument #2 to 'Adam' (option 'betas[1]' = 1.5 out of range [0.0, 1.0))", function() return optim.Adam(params, { betas = { 1.5, 0.9 } }) end)
bad("bad argument #2 to 'Adam' (option 'eps' = -1.0 out of range [0.0, inf])", function() return optim.Adam(params, { eps = -1 }) end)
local sgd = optim.SGD(params, { lr = 1 })
bad("bad argument #1 to 'set_lr' (learning rate must be a finite number >= 0, got ", function() return sgd:set_lr(nan) end)
bad("bad argument #1 to 'set_step' (step count must be >= 0, got -1)", function() return sgd:set_step(-1) end)
bad("cannot set field 'foo' of an optimizer (only lr)", function() sgd.foo = 1 end)

-- data sets and batches
local data = selut.data
bad("bad argument #2 to 'Dataset' (y [3] has 3 samples, x [4 x 2] has 4)", function() return data.Dataset(T.zeros(4, 2), T.zeros(3)) end)
bad("bad argument #1 to 'Dataset' (selut.Tensor expected, got string)", function() return data.Dataset("x") end)
local ds = data.Dataset(T.zeros(4, 2))
bad("bad argument #1 to 'batches' (batch size must be >= 1, got 0)", function() return ds:batches(0) end)
bad("bad argument #2 to 'batches' (unknown option 'shuffel' (expected shuffle, drop_last, shard))", function()
  return ds:batches(2, { shuffel = true })
end)
bad("bad argument #1 to 'subset' (n must be in 0..4 (the dataset's size), got 5)", function() return ds:subset(5) end)
bad("bad argument #2 to 'standardize' (std must be > 0, got 0.0)", function() return ds:standardize(0, 0) end)
bad("bad argument #1 to 'standardize' (mean must be finite, got ", function() return ds:standardize(nan, 1) end)

-- plots: options out of range
bad("bad argument #1 to 'plot' (at least one series expected)", function() return viz.plot({}, B.dir .. "/p.png") end)
bad("bad argument #3 to 'plot' (unknown option 'colour' (known: title, xlabel, ylabel, width, height, log_y))", function() return viz.plot({ loss = { 1, 2 } }, B.dir .. "/p.png", { colour = 1 }) end)
bad("bad argument #3 to 'plot' (option 'width' must be an integer in 300..16384, got 1073741824)", function() return viz.plot({ loss = { 1, 2 } }, B.dir .. "/p.png", { width = 1 << 30 }) end)
bad("bad argument #3 to 'histogram' (option 'bins' must be an integer in 1..2048, got 0)", function() return viz.histogram(x, B.dir .. "/h.png", { bins = 0 }) end)
bad("bad argument #1 to 'histograms' (module expected (a table or userdata with a forward method), got number)", function() return viz.histograms(5, x, B.dir .. "/h.png") end)
bad("bad argument #4 to 'histograms' (option 'range' must be {lo, hi} with finite lo < hi)", function() return viz.histograms(nn.Sequential { nn.Linear(3, 2) }, x, B.dir .. "/h.png", { range = { 1, 0 } }) end)

-- memory limit: exceeding it is a Lua error, the state recovers
bad("bad argument #1 to 'set_memory_limit' (byte count must be an integer >= 0, got -1)", function() return selut.set_memory_limit(-1) end)
bad("bad argument #1 to 'set_memory_limit' (byte count expected (e.g. 1048576, \"512K\", \"64M\", \"2G\"), got '12Q')", function() return selut.set_memory_limit("12Q") end)
bad("bad argument #1 to 'set_memory_limit' (byte count (integer or string like \"64M\") expected, got table)", function() return selut.set_memory_limit({}) end)
collectgarbage()
local used = selut.memory()
selut.set_memory_limit(used + (1 << 20))
bad("memory limit exceeded: 4194304 bytes requested", function() return T.zeros(1024, 1024) end)
bad("memory limit exceeded: ", function() return nn.Linear(1024, 1024) end)
selut.set_memory_limit(0)

-- error paths do not leak
B.no_leak(function() return T.new { { 1, 2 }, { 3 } } end)
B.no_leak(function() return ce:forward(T.zeros(2, 3), { 1, 9 }) end)
B.no_leak(function() return lin:forward(T.zeros(2, 5)) end)
B.no_leak(function() return nn.Sequential { nn.Linear(3, 4), nn.Linear(5, 2) }:forward(x) end)

B.done(85)
