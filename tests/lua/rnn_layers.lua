-- GRU, LSTM, GRUCell and LSTMCell against PyTorch (tests/ref/gen_rnn_refs.py:
-- forward outputs, h_n / c_n, gradients of the input, the initial states and
-- every parameter, to 1e-5 relative + 1e-6 absolute), then state_dict names,
-- printing, the default init's range, checkpoints, 1 vs 2 threads, buffer
-- reuse (no core allocation per step) and a gradient check of the recurrence.
local dir = arg[0]:gsub("[^/]*$", "")
local H = dofile(dir .. "_helper.lua")
local refs = dofile(dir .. "../ref/rnn_refs.lua")
local check = H.check
local T, nn = selut.tensor, selut.nn

local function from(r)
  local t = T.new(r.data)
  return t:reshape(table.unpack(r.shape))
end

local function shape(t) return table.concat(t:shape(), "x") end

-- |got - want| <= 1e-5 |want| + 1e-6, elementwise
local function close(got, r, what)
  check(shape(got) == table.concat(r.shape, "x"), what .. ": shape " .. shape(got) .. ", expected "
        .. table.concat(r.shape, "x"))
  local g = H.flatten(got:totable(), {})
  for i, w in ipairs(r.data) do
    if not (math.abs(g[i] - w) <= 1e-5 * math.abs(w) + 1e-6) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what, i, g[i], w), 2)
    end
  end
end

local ncompared = 0
for _, c in ipairs(refs) do
  local m = nn[c.kind](c.input_size, c.hidden_size, c.opts)
  local ps = m:parameters()
  check(#ps == #c.names, c.name .. ": parameter count")
  for i, p in ipairs(ps) do
    check(p.name == c.names[i], c.name .. ": parameter " .. i .. " is " .. p.name .. ", PyTorch's is " .. c.names[i])
    p.param:copy(from(c.params[p.name]))
  end
  local lstm, cell = c.kind:find("LSTM") ~= nil, c.kind:find("Cell") ~= nil
  local x = from(c.x)
  local h0, c0 = c.h0 and from(c.h0), c.c0 and from(c.c0)
  local r = table.pack(m(x, h0, c0))
  close(r[1], c.out, c.name .. ": output")
  if not cell then close(r[2], c.hn, c.name .. ": h_n") end
  if lstm then close(r[cell and 2 or 3], c.cn, c.name .. ": c_n") end
  m:zero_grad()
  local gout, ghn, gcn = c.gout and from(c.gout), c.ghn and from(c.ghn), c.gcn and from(c.gcn)
  local g
  if cell then
    g = table.pack(m:backward(x, gout, gcn))
  else
    g = table.pack(m:backward(x, gout, ghn, gcn))
  end
  close(g[1], c.gx, c.name .. ": grad input")
  if c.gh0 then close(g[2], c.gh0, c.name .. ": grad h0") end
  if c.gc0 then close(g[3], c.gc0, c.name .. ": grad c0") end
  for _, p in ipairs(ps) do close(p.grad, c.grads[p.name], c.name .. ": grad " .. p.name) end
  -- a second backward accumulates the parameter gradients (the nn.h contract)
  if cell then m:backward(x, gout, gcn) else m:backward(x, gout, ghn, gcn) end
  local w = c.grads[ps[1].name]
  local twice = {shape = w.shape, data = {}}
  for i, v in ipairs(w.data) do twice.data[i] = 2 * v end
  close(ps[1].grad, twice, c.name .. ": accumulated grad")
  -- the autograd path: m(x[, h0, c0]) records; loss:backward() gives the same gradients
  m:zero_grad()
  x:requires_grad_()
  if h0 then h0:requires_grad_() end
  if c0 then c0:requires_grad_() end
  local y = table.pack(m(x, h0, c0))
  local loss = (y[1] * (gout or y[1]:detach() * 0)):sum()
  if ghn then loss = loss + (y[2] * ghn):sum() end
  if gcn then loss = loss + (y[cell and 2 or 3] * gcn):sum() end
  loss:backward()
  close(x.grad, c.gx, c.name .. ": autograd grad input")
  if h0 then close(h0.grad, c.gh0, c.name .. ": autograd grad h0") end
  if c0 then close(c0.grad, c.gc0, c.name .. ": autograd grad c0") end
  for _, p in ipairs(ps) do close(p.param.grad, c.grads[p.name], c.name .. ": autograd grad " .. p.name) end
  ncompared = ncompared + 1
end
check(ncompared == 19, "all reference cases ran")

-- autograd: gradcheck through two layers and the states; a second call before
-- the backward of the first is refused (the BPTT reads the last forward)
selut.manual_seed(9)
local ag = nn.LSTM(3, 4, {num_layers = 2, batch_first = true})
local function f(xx, hh, cc)
  local out, hn, cn = ag(xx, hh, cc)
  return out:sum() + (hn * hn):sum() + cn:sum() * 0.5
end
local ok = selut.autograd.gradcheck(f, {T.randn(2, 3, 3):requires_grad_(), T.randn(2, 2, 4):requires_grad_(),
                                        T.randn(2, 2, 4):requires_grad_()})
check(ok == true, "gradcheck of LSTM(x, h0, c0)")
local gcell = nn.GRUCell(3, 4)
local wcell = T.randn(2, 4)
ok = selut.autograd.gradcheck(function(xx, hh) return (gcell(xx, hh) * wcell):sum() end,
                              {T.randn(2, 3):requires_grad_(), T.randn(2, 4):requires_grad_()})
check(ok == true, "gradcheck of GRUCell(x, h)")
local xr = T.randn(3, 2, 3):requires_grad_()
local first = ag(xr)
ag(xr)
H.checkerror("backward: LSTM ran forward again before the backward of an earlier call", function() first:sum():backward() end)

-- printing, fields and state_dict names (PyTorch's repr, with Lua booleans)
local gru = nn.GRU(10, 20, {num_layers = 2, batch_first = true})
check(tostring(gru) == "GRU(10, 20, num_layers=2, batch_first=true)", tostring(gru))
check(gru.hidden_size == 20 and gru.num_layers == 2 and gru.batch_first == true, "fields")
check(tostring(nn.LSTM(3, 4, 1, false)) == "LSTM(3, 4, bias=false)", tostring(nn.LSTM(3, 4, 1, false)))
check(tostring(nn.GRUCell(3, 4)) == "GRUCell(3, 4)" and tostring(nn.LSTMCell(3, 4, {bias = false})) ==
      "LSTMCell(3, 4, bias=false)", "cell repr")
local names = {}
for _, p in ipairs(nn.LSTM(3, 4, {num_layers = 2}):parameters()) do names[#names + 1] = p.name end
check(table.concat(names, " ") == "weight_ih_l0 weight_hh_l0 bias_ih_l0 bias_hh_l0 weight_ih_l1 weight_hh_l1 "
      .. "bias_ih_l1 bias_hh_l1", table.concat(names, " "))
check(shape(gru.weight_ih_l0) == "60x10" and shape(gru.weight_ih_l1) == "60x20" and shape(gru.bias_hh_l1) == "60",
      "PyTorch's layouts")
local lc = nn.LSTMCell(3, 5)
check(shape(lc.weight_ih) == "20x3" and shape(lc.weight_hh) == "20x5" and shape(lc.bias_ih) == "20", "cell layouts")
-- PyTorch's default init: U(-1/sqrt(hidden), 1/sqrt(hidden)) for every parameter
local bound = 1 / math.sqrt(20)
for _, p in ipairs(gru:parameters()) do
  check(p.param:abs():max() <= bound and p.param:abs():max() > 0.9 * bound, "init range of " .. p.name)
end
-- nn.init draws the weights from their fan-in and zeroes the biases
nn.init.lecun_normal(gru)
check(gru.bias_ih_l0:abs():max() == 0 and gru.weight_hh_l1:std() > 0.15, "nn.init")

-- a checkpoint with PyTorch's names round-trips
selut.manual_seed(3)
local net = nn.LSTM(4, 6, {num_layers = 2})
local path = os.tmpname()
selut.save(path, net)
local saved = selut.load(path)
for _, k in ipairs{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1", "bias_hh_l1"} do
  check(saved[k] ~= nil, "checkpoint has " .. k)
end
local copy = nn.LSTM(4, 6, {num_layers = 2})
selut.load(path, copy)
local x = T.randn(3, 2, 4)
local o1 = net:forward(x):clone()
check((copy:forward(x) - o1):abs():max() == 0, "loaded net gives the same bits")
os.remove(path)

-- 1 and 2 threads give the same bits (outputs and gradients)
local function run(threads)
  selut.set_num_threads(threads)
  selut.manual_seed(11)
  local m = nn.GRU(33, 64, {num_layers = 2, batch_first = true})
  local xx = T.randn(16, 9, 33)
  local out, hn = m:forward(xx)
  local gx = m:backward(xx, out * 0 + 1, hn)
  return out:clone(), gx:clone(), m.weight_hh_l0:clone(), m:parameters()[2].grad:clone()
end
local before = selut.get_num_threads()
local a = table.pack(run(1))
local b = table.pack(run(2))
selut.set_num_threads(before)
for i = 1, 4 do check((a[i] - b[i]):abs():max() == 0, "1 vs 2 threads, result " .. i) end

-- buffers are reused: no core allocation per step once shapes are stable
local m = nn.LSTM(8, 16, {num_layers = 2})
local xs = T.randn(7, 4, 8)
local function step()
  local out, hn, cn = m:forward(xs)
  m:backward(xs, out, hn, cn)
end
step()
step()
local bytes0, count0 = selut.memory()
for _ = 1, 5 do step() end
local bytes1, count1 = selut.memory()
check(count1 == count0 and bytes1 == bytes0, "core allocations during 5 steps: " .. (count1 - count0))
-- same boxes returned
local o_a = m:forward(xs)
local o_b = m:forward(xs)
check(rawequal(o_a, o_b), "the output box is reused")

-- a gradient check of the recurrence (finite differences in float32)
selut.manual_seed(5)
local gc = nn.GRU(3, 4, {num_layers = 2})
local gx_in = T.randn(3, 2, 3)
local gw = T.randn(3, 2, 4)
local function loss(xx) return (gc:forward(xx) * gw):sum() end
gc:forward(gx_in)
local analytic = gc:backward(gx_in, gw):clone()
for i = 1, 6 do
  local flat = gx_in:reshape(18)
  local v = flat[i]
  flat[i] = v + 1e-2
  local lp = loss(gx_in)
  flat[i] = v - 1e-2
  local lm = loss(gx_in)
  flat[i] = v
  H.near(analytic:reshape(18)[i], (lp - lm) / 2e-2, 2e-3, "finite difference " .. i)
end
