-- In-place activations (PyTorch's inplace=True): nn.SELU(true),
-- nn.SELU{inplace=true}, nn.ELU(alpha, true), nn.ReLU(true). The output is
-- the input tensor, overwritten; training through them gives the gradients
-- of the out-of-place net (the backward works from the result: PyTorch's
-- formula, tested against PyTorch in tests/c/test_nn_refs.c); a result
-- overwritten again before backward is an error, not a wrong gradient.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn = selut.tensor, selut.nn

-- constructors, printing, the inplace field, argument errors
H.check(tostring(nn.SELU(true)) == "SELU(inplace=true)", tostring(nn.SELU(true)))
H.check(tostring(nn.SELU(false)) == "SELU()", tostring(nn.SELU(false)))
H.check(tostring(nn.ReLU(true)) == "ReLU(inplace=true)", tostring(nn.ReLU(true)))
H.check(tostring(nn.ELU(0.5, true)) == "ELU(alpha=0.5, inplace=true)", tostring(nn.ELU(0.5, true)))
H.check(tostring(nn.SELU { alpha = 1.5, inplace = true }):find("inplace=true%)$"), "SELU{..., inplace=true}")
H.check(nn.SELU(true).inplace == true and nn.SELU().inplace == false and nn.ELU().inplace == false, "inplace field")
H.checkerror("bad argument #1 to 'selut.nn.ReLU' (boolean (inplace) expected, got number)", nn.ReLU, 1)
H.checkerror("bad argument #2 to 'selut.nn.ELU' (boolean (inplace) expected, got string)", nn.ELU, 1, "yes")
H.checkerror("bad argument #1 to 'selut.nn.SELU' (inplace must be a boolean, got number)", nn.SELU, { inplace = 1 })

-- the result is the input box, with the out-of-place values
selut.manual_seed(3)
local x = T.randn(6, 5) * 3
for _, pair in ipairs { { nn.SELU(true), nn.SELU() }, { nn.ELU(0.5, true), nn.ELU(0.5) }, { nn.ReLU(true), nn.ReLU() } } do
  local inplace, plain = pair[1], pair[2]
  local xi = x:clone()
  local want = plain:forward(x):clone()
  local y = inplace:forward(xi)
  H.check(rawequal(y, xi), tostring(inplace) .. ": the output is the input tensor")
  H.check((xi - want):abs():max() == 0, tostring(inplace) .. ": overwritten with the out-of-place result")
end

-- a net with in-place SELUs trains like the out-of-place one: same loss,
-- gradients within float rounding of the cancellation in y + alpha*scale
local function net_of(inplace)
  selut.manual_seed(11)
  return nn.Sequential { nn.Linear(7, 16), nn.SELU(inplace), nn.AlphaDropout(0.1), nn.Linear(16, 16), nn.SELU(inplace),
                         nn.Linear(16, 3) }
end
local a, b = net_of(true), net_of(false)
local crit = nn.CrossEntropyLoss()
local xb, yb = T.randn(9, 7), T.new { 1, 2, 3, 1, 2, 3, 3, 2, 1 }
for step = 1, 3 do
  local losses, grads = {}, {}
  for k, net in ipairs { a, b } do
    net:zero_grad()
    selut.manual_seed(100 + step) -- the same dropout masks
    local out = net:forward(xb)
    losses[k] = crit:forward(out, yb)
    net:backward(xb, crit:backward(out, yb), false)
    grads[k] = net:parameters()
  end
  H.check(losses[1] == losses[2], string.format("step %d: loss %.9g vs %.9g", step, losses[1], losses[2]))
  for i, p in ipairs(grads[1]) do
    local d = (p.grad - grads[2][i].grad):abs():max()
    local scale = grads[2][i].grad:abs():max()
    H.check(d <= 1e-6 * scale + 1e-7, string.format("step %d, %s: gradients differ by %g (max %g)", step, p.name, d, scale))
  end
end

-- two in-place modules on one tensor: the first one's backward refuses,
-- naming the layer through Sequential
local twice = nn.Sequential { nn.Linear(4, 4), nn.SELU(true), nn.ReLU(true), nn.Linear(4, 2) }
local out = twice:forward(T.randn(3, 4))
H.checkerror("Sequential: layer 1 (SELU(inplace=true)): SELU(inplace).backward: its output (the input it overwrote) "
  .. "was overwritten in place since the forward", twice.backward, twice, T.randn(3, 4), T.ones(3, 2))
H.check(out:size(2) == 2, "forward ran")
