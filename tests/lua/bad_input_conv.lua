-- Bad input to the image layers (Conv1d, Conv2d, MaxPool2d, AvgPool2d,
-- AdaptiveAvgPool2d, Flatten): constructor arguments and options, wrong
-- input rank or channels, kernels larger than the padded input (output size
-- <= 0), groups not dividing the channels, gradients of the wrong shape.
-- Each message names the layer, the argument and the shapes.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, nn = selut.tensor, selut.nn

-- constructor arguments
bad("bad argument #1 to 'Conv2d' (in_channels must be >= 1, got 0)", function() return nn.Conv2d(0, 4, 3) end)
bad("bad argument #2 to 'Conv2d' (number expected, got no value)", function() return nn.Conv2d(3) end)
bad("bad argument #3 to 'Conv2d' (value expected)", function() return nn.Conv2d(3, 4) end)
bad("bad argument #3 to 'Conv2d' (kernel_size must be a positive integer, got 0)", function() return nn.Conv2d(3, 4, 0) end)
bad("bad argument #3 to 'Conv2d' (kernel_size must be an integer or a list of 2 integers, got a list of 3)",
    function() return nn.Conv2d(3, 4, {3, 3, 3}) end)
bad("bad argument #3 to 'Conv1d' (kernel_size must be an integer or a list of 1, got string)",
    function() return nn.Conv1d(3, 4, "3") end)
bad("bad argument #3 to 'Conv2d' (kernel_size[2] must be a positive integer)",
    function() return nn.Conv2d(3, 4, {3, 1.5}) end)
bad("bad argument #4 to 'Conv2d' (unknown option 'strides' (expected one of stride, padding, dilation, groups, bias, padding_mode))",
    function() return nn.Conv2d(3, 4, 3, {strides = 2}) end)
bad("bad argument #5 to 'Conv2d' (Conv2d: 'stride' given both positionally and in the options table)",
    function() return nn.Conv2d(3, 4, 3, 2, {stride = 2}) end)
bad("bad argument #5 to 'Conv2d' (nothing expected after the options table)",
    function() return nn.Conv2d(3, 4, 3, {}, 1) end)
bad("bad argument #4 to 'Conv2d' (stride must be a positive integer, got 0)",
    function() return nn.Conv2d(3, 4, 3, {stride = 0}) end)
bad("bad argument #4 to 'Conv2d' (padding must be a non-negative integer, got -1)",
    function() return nn.Conv2d(3, 4, 3, {padding = -1}) end)
bad("bad argument #4 to 'Conv2d' (padding must be an integer, a list, 'same' or 'valid', got 'full')",
    function() return nn.Conv2d(3, 4, 3, {padding = "full"}) end)
bad("bad argument #4 to 'Conv2d' (padding='same' is not supported for strided convolutions)",
    function() return nn.Conv2d(3, 4, 3, {padding = "same", stride = 2}) end)
bad("bad argument #4 to 'Conv2d' (bias must be a boolean, got number)",
    function() return nn.Conv2d(3, 4, 3, {bias = 0}) end)
bad("bad argument #4 to 'Conv2d' (padding_mode: only 'zeros' is supported)",
    function() return nn.Conv2d(3, 4, 3, {padding_mode = "reflect"}) end)
bad("Conv2d: groups 2 must divide in_channels 3 and out_channels 4", function() return nn.Conv2d(3, 4, 3, {groups = 2}) end)
bad("Conv1d: groups 3 must divide in_channels 6 and out_channels 4", function() return nn.Conv1d(6, 4, 3, {groups = 3}) end)
bad("bad argument #2 to 'MaxPool2d' (stride must be a positive integer, got 0)", function() return nn.MaxPool2d(2, 0) end)
bad("MaxPool2d: padding (width) must be between 0 and half the kernel size 3, got 2",
    function() return nn.MaxPool2d(3, {padding = {1, 2}}) end)
bad("bad argument #2 to 'MaxPool2d' (return_indices is not supported)",
    function() return nn.MaxPool2d(2, {return_indices = true}) end)
bad("bad argument #2 to 'AvgPool2d' (divisor_override is not supported)",
    function() return nn.AvgPool2d(2, {divisor_override = 3}) end)
bad("bad argument #2 to 'AvgPool2d' (unknown option 'dilation' (expected one of stride, padding, ceil_mode, count_include_pad, divisor_override))",
    function() return nn.AvgPool2d(2, {dilation = 2}) end)
bad("bad argument #1 to 'AdaptiveAvgPool2d' (output_size must be a positive integer, got 0)",
    function() return nn.AdaptiveAvgPool2d(0) end)
bad("bad argument #1 to 'Flatten' (start_dim must be in 1..8 or -8..-1 (dims are 1-based), got 0)",
    function() return nn.Flatten(0) end)

-- inputs: rank, channels, too small for the kernel (output size <= 0)
local conv = nn.Conv2d(3, 4, 3, {padding = 1, dilation = {1, 3}})
bad("Conv2d.forward: expected input of shape [N x 3 x H x W] or [3 x H x W], got [3 x 8]",
    function() return conv:forward(T.zeros(3, 8)) end)
bad("Conv2d.forward: input [2 x 5 x 8 x 8] has 5 channels, expected in_channels 3",
    function() return conv:forward(T.zeros(2, 5, 8, 8)) end)
bad("Conv2d.forward: input [2 x 3 x 4 x 4] padded to 6 x 6 is smaller than the dilated kernel 3 x 7 (kernel_size 3 x 3, dilation 1 x 3): the output size would be <= 0",
    function() return conv:forward(T.zeros(2, 3, 4, 4)) end)
bad("Conv1d.forward: input [2 x 3 x 4] padded to 4 is smaller than the dilated kernel 5",
    function() return nn.Conv1d(3, 2, 5):forward(T.zeros(2, 3, 4)) end)
bad("Conv1d.forward: input [2 x 4 x 9] has 4 channels, expected in_channels 3",
    function() return nn.Conv1d(3, 2, 5):forward(T.zeros(2, 4, 9)) end)
bad("MaxPool2d.forward: input [1 x 1 x 2 x 5] padded to 2 x 5 is smaller than the kernel 3 x 3: the output size would be 0 x 1",
    function() return nn.MaxPool2d(3):forward(T.zeros(1, 1, 2, 5)) end)
bad("AvgPool2d.forward: expected input of shape [N x C x H x W] or [C x H x W], got [4 x 4]",
    function() return nn.AvgPool2d(2):forward(T.zeros(4, 4)) end)
bad("Flatten.forward: start_dim 1 / end_dim -1 out of range for input [4]", function() return nn.Flatten():forward(T.zeros(4)) end)
local x = T.zeros(2, 3, 8, 8)
conv:forward(x)
bad("Conv2d.backward: gradOutput shape [2 x 4 x 8 x 7] does not match the output of input [2 x 3 x 8 x 8]",
    function() return conv:backward(x, T.zeros(2, 4, 8, 7)) end)
-- in a container the message names the layer
local net = nn.Sequential{nn.Conv2d(1, 2, 3), nn.SELU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 13 * 13, 3)}
bad("Sequential: layer 0 (Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))): Conv2d.forward: input [2 x 3 x 28 x 28] has 3 channels, expected in_channels 1",
    function() return net:forward(T.zeros(2, 3, 28, 28)) end)
B.no_leak(function() return nn.Conv2d(3, 4, 3):forward(T.zeros(2, 4, 8, 8)) end)
B.done(25)
