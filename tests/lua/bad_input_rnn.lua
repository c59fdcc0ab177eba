-- Bad input to the recurrent layers: constructor arguments, input and state
-- shapes, backward misuse. Each error names the layer, the argument and the
-- shapes; the state stays healthy and failing calls leak nothing.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, nn = selut.tensor, selut.nn

-- constructors
bad("GRU: input_size must be >= 1, got 0", function() return nn.GRU(0, 4) end)
bad("LSTM: hidden_size must be >= 1, got 0", function() return nn.LSTM(3, 0) end)
bad("GRU: num_layers must be in 1..8, got 0", function() return nn.GRU(3, 4, {num_layers = 0}) end)
bad("LSTM: num_layers must be in 1..8, got 9", function() return nn.LSTM(3, 4, 9) end)
bad("bad argument #3 to 'GRU' (unknown option 'hidden')", function() return nn.GRU(3, 4, {hidden = 2}) end)
bad("bad argument #3 to 'GRU' (num_layers must be an integer, got number)",
    function() return nn.GRU(3, 4, {num_layers = 1.5}) end)
bad("bad argument #3 to 'LSTM' (batch_first must be a boolean, got number)",
    function() return nn.LSTM(3, 4, {batch_first = 1}) end)
bad("GRU: bidirectional=true is not supported", function() return nn.GRU(3, 4, {bidirectional = true}) end)
bad("LSTM: dropout between layers is not supported (got 0.5; expected 0)",
    function() return nn.LSTM(3, 4, {num_layers = 2, dropout = 0.5}) end)
bad("LSTM: proj_size is not supported (got 2, expected 0)", function() return nn.LSTM(3, 4, {proj_size = 2}) end)
bad("bad argument #2 to 'GRUCell' (hidden_size expected)", function() return nn.GRUCell(3) end)
bad("GRUCell: input_size must be >= 1, got -1", function() return nn.GRUCell(-1, 3) end)

-- forward: input and state shapes
local gru = nn.GRU(3, 4, {num_layers = 2})
local lstm = nn.LSTM(3, 4, {batch_first = true})
local cell = nn.LSTMCell(3, 4)
bad("GRU.forward: expected input of shape [T x N x 3] or [T x 3], got [5 x 2 x 4]",
    function() return gru(T.randn(5, 2, 4)) end)
bad("GRU.forward: expected input of shape [T x N x 3] or [T x 3], got [5 x 2 x 2 x 3]",
    function() return gru(T.randn(5, 2, 2, 3)) end)
bad("LSTM.forward: expected input of shape [N x T x 3] or [T x 3], got [3]", function() return lstm(T.randn(3)) end)
bad("GRU.forward: h0 of shape [2 x 2 x 4] expected, got [1 x 2 x 4]",
    function() return gru(T.randn(5, 2, 3), T.zeros(1, 2, 4)) end)
bad("GRU.forward: h0 of shape [2 x 4] expected, got [2 x 1 x 4]",
    function() return gru(T.randn(5, 3), T.zeros(2, 1, 4)) end)
bad("LSTM.forward: c0 of shape [1 x 6 x 4] expected, got [1 x 5 x 4]",
    function() return lstm(T.randn(6, 2, 3), T.zeros(1, 6, 4), T.zeros(1, 5, 4)) end)
bad("LSTM.forward: h0 and c0 must be given together (got only h0)",
    function() return lstm(T.randn(6, 2, 3), T.zeros(1, 6, 4)) end)
bad("LSTMCell.forward: cx of shape [2 x 4] expected, got [2 x 3]",
    function() return cell(T.randn(2, 3), T.zeros(2, 4), T.zeros(2, 3)) end)
bad("LSTMCell.forward: expected input of shape [N x 3] or [3], got [2 x 2 x 3]",
    function() return cell(T.randn(2, 2, 3)) end)
bad("GRU.forward: input [0 x 2 x 3] is empty", function() return gru(T.zeros(0, 2, 3)) end)
bad("bad argument #3 to 'forward' (GRU takes (x[, h0]))",
    function() return gru:forward(T.randn(5, 2, 3), nil, T.zeros(2, 2, 4)) end)
bad("bad argument #2 to 'forward' (selut.Tensor expected, got number)", function() return gru:forward(T.randn(5, 2, 3), 0) end)

-- backward misuse
local fresh = nn.GRU(3, 4)
bad("GRU.backward: called before forward", function() return fresh:backward(T.randn(5, 2, 3), T.zeros(5, 2, 4)) end)
local x = T.randn(5, 2, 3)
gru(x)
bad("GRU.backward: gradient of output of shape [5 x 2 x 4] expected, got [5 x 2 x 3]",
    function() return gru:backward(x, T.zeros(5, 2, 3)) end)
bad("GRU.backward: gradient of h_n of shape [2 x 2 x 4] expected, got [1 x 2 x 4]",
    function() return gru:backward(x, nil, T.zeros(1, 2, 4)) end)
bad("GRU.backward: input [4 x 2 x 3] is not the shape of the last forward's",
    function() return gru:backward(T.randn(4, 2, 3), T.zeros(4, 2, 4)) end)
bad("GRU.backward: no gradient given", function() return gru:backward(x) end)
bad("bad argument #4 to 'backward' (too many arguments)", function() return gru:backward(x, nil, nil, T.zeros(1)) end)
-- a failed forward leaves nothing to backpropagate
pcall(gru, T.randn(5, 2, 9))
bad("GRU.backward: called before forward", function() return gru:backward(x, T.zeros(5, 2, 4)) end)

B.no_leak(function() return gru(T.randn(5, 2, 3), T.zeros(1, 2, 4)) end)
B.no_leak(function() return nn.LSTM(3, 4, {bidirectional = true}) end)
B.done(31)
