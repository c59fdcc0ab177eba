-- selut.snn and the SNN layers from Lua: solver vectors, the moment map,
-- SELU{}/AlphaDropout(p, {})/BatchNorm1d, and snn.check: silent on a proper
-- SNN, one finding per listed mistake, argument errors.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, snn = selut.tensor, selut.nn, selut.snn

-- solver and moment map
local a, l = snn.params(0, 1)
H.near(a, 1.6732632423543772848, 1e-10, "alpha(0,1)")
H.near(l, 1.0507009873554804934, 1e-10, "scale(0,1)")
a, l = snn.params(-0.1, 2)
H.near(a, 1.97690219542420, 1e-10, "alpha(-0.1,2)")
H.near(l, 1.07385123961605, 1e-10, "scale(-0.1,2)")
local r = snn.moments(0, 1)
H.near(r.spectral_norm, 0.7877, 1e-3, "spectral norm at (0,1)")
H.near(r.mean, 0, 1e-12, "fixed point mean")
H.near(r.var, 1, 1e-12, "fixed point var")
H.near(r.jacobian[1][2], 0.088834, 1e-6, "J12")
H.check(r.jacobian[1][1] == 0 and r.jacobian[2][1] == 0, "omega = 0")
local r2 = snn.moments(-0.1, 2, { alpha = a, scale = l, omega = 1 })
H.near(r2.mean, -0.1, 1e-12, "params round trip mean")
H.near(r2.var, 2, 1e-12, "params round trip var")
local fm, fv, fs = snn.fixed_point()
H.near(fm, 0, 1e-12, "fixed_point mean")
H.near(fv, 1, 1e-12, "fixed_point var")
H.near(fs, 0.78767, 1e-4, "fixed_point spectral norm")
H.checkerror("bad argument #2 to 'selut.snn.params' (var must be > 0, got 0.0)", snn.params, 0, 0)
H.checkerror("bad argument #1 to 'selut.snn.params' (number expected, got string)", snn.params, "x", 1)
H.checkerror("bad argument #3 to 'selut.snn.moments' (field 'alpha' must be a finite number, got string)", snn.moments, 0, 1,
  { alpha = "x" })
H.checkerror("no SELU", snn.params, 5, 0.01)
H.checkerror("bad argument #1 to 'selut.snn.fixed_point' (table or nil expected, got number)", snn.fixed_point, 3)

-- layers
local s = nn.SELU { alpha = a, scale = l }
H.near(s.alpha, a, 1e-6, "SELU{}.alpha")
H.near(s.scale, l, 1e-6, "SELU{}.scale")
local y = s:forward(T.new { { -1, 2 } })
H.near(y:get(1, 1), l * a * (math.exp(-1) - 1), 1e-6, "custom SELU negative branch")
H.near(y:get(1, 2), 2 * l, 1e-6, "custom SELU positive branch")
H.check(tostring(nn.SELU()) == "SELU()", "default SELU prints as SELU()")
H.checkerror("bad argument #1 to 'selut.nn.SELU' (scale must be > 0, got -1.0)", nn.SELU, { scale = -1 })
H.checkerror("bad argument #1 to 'selut.nn.SELU' (table {alpha=, scale=, inplace=} or boolean (inplace) expected, got number)", nn.SELU, 3)

selut.manual_seed(3)
local d = nn.AlphaDropout(0.1, { mean = -0.1, var = 2 })
local x = T.randn(400, 250) * math.sqrt(2) - 0.1
local yd = d:forward(x)
H.near(yd:mean(), -0.1, 0.02, "AlphaDropout keeps mean -0.1")
H.near(yd:var(), 2, 0.05, "AlphaDropout keeps var 2")
local ca, cb, cdrop = snn.alpha_dropout_coeffs(0.1, { mean = -0.1, var = 2 })
local yp = d:forward(T.full(50, 20, 20))      -- kept units become a*50 + b, dropped ones `dropped`
H.near(yp:min(), cdrop, 1e-5, "dropped units take the formula's value")
H.near(yp:max(), ca * 50 + cb, 1e-4, "kept units are a*x + b")
local d0 = nn.AlphaDropout(0.05, {})
local x0 = T.randn(10, 10)
selut.manual_seed(9); local y0 = d0:forward(x0):clone()
local d1 = nn.AlphaDropout(0.05)
selut.manual_seed(9); local y1 = d1:forward(x0)
H.tensor_near(y0, y1, 0, "AlphaDropout(p, {}) == AlphaDropout(p)")
H.checkerror("bad argument #2 to 'selut.nn.AlphaDropout' (var must be > 0, got -1.0)", nn.AlphaDropout, 0.1, { var = -1 })
H.checkerror("bad argument #2 to 'selut.nn.AlphaDropout' (field 'mean' must be a finite number, got ", nn.AlphaDropout,
  0.1, { mean = math.huge })

local bn = nn.BatchNorm1d(2, { momentum = 0.5 })
local xb = T.new { { 1, 10 }, { 3, 10 }, { 5, 10 } }
local yb = bn:forward(xb)
H.near(yb:get(1, 1), -2 / math.sqrt(8 / 3 + 1e-5), 1e-5, "batch-normalized value")
H.near(yb:get(2, 2), 0, 1e-6, "a constant channel normalizes to 0 (eps)")
H.tensor_near(bn.running_mean, { 1.5, 5 }, 1e-6, "running mean, momentum 0.5")
H.tensor_near(bn.running_var, { 0.5 + 0.5 * 4, 0.5 }, 1e-6, "running var uses the unbiased variance")
H.check(bn.num_batches_tracked == 1, "num_batches_tracked")
H.check(tostring(bn) == "BatchNorm1d(2, eps=1e-05, momentum=0.5, affine=true, track_running_stats=true)", tostring(bn))
H.checkerror("bad argument #2 to 'selut.nn.BatchNorm1d' (momentum must be in [0, 1], got 2.0)", nn.BatchNorm1d, 2,
  { momentum = 2 })
H.checkerror("bad argument #2 to 'selut.nn.BatchNorm1d' (field 'affine' must be a boolean, got number)", nn.BatchNorm1d, 2,
  { affine = 1 })
H.checkerror("expected more than 1 value per channel when training", bn.forward, bn, T.new { { 1, 2 } })
H.check(#nn.BatchNorm1d(3, { affine = false }):parameters() == 0, "affine = false: no parameters")

-- snn.check
selut.manual_seed(42)
local function snn_net(width, depth, opts)
  opts = opts or {}
  local act = opts.act or nn.SELU
  local l = { nn.Linear(16, width), act() }
  for i = 1, depth do
    l[#l + 1] = nn.Linear(width, width)
    l[#l + 1] = (opts.mix and i == 2) and nn.ReLU() or act()
    if opts.dropout then l[#l + 1] = opts.dropout() end
  end
  l[#l + 1] = nn.Linear(width, 10)
  l[#l + 1] = nn.LogSoftmax()
  return nn.Sequential(l)
end
local function kinds(findings)
  local k = {}
  for _, f in ipairs(findings) do
    H.check(type(f.message) == "string" and #f.message > 40, "each finding explains itself")
    k[f.kind] = (k[f.kind] or 0) + 1
  end
  return k
end
local xs = T.randn(256, 16)

-- a proper SNN, shallow and deep, with and without AlphaDropout: silent
for _, depth in ipairs { 2, 16 } do
  local net = nn.init.lecun_normal(snn_net(64, depth, { dropout = function() return nn.AlphaDropout(0.05) end }))
  local f = snn.check(net, xs)
  H.check(#f == 0, "proper SNN of depth " .. depth .. ": " .. (f[1] and f[1].message or ""))
  H.check(net.training and net.modules[3].training, "modes restored")
end
-- nested containers are walked, and nothing found either
local nested = nn.init.lecun_normal(nn.Sequential { nn.Sequential { nn.Linear(16, 32), nn.SELU() }, nn.Linear(32, 4) })
H.check(#snn.check(nested, xs) == 0, "nested proper SNN")

-- PyTorch's default init (1/(3 fan_in)) on every Linear
local k = kinds(snn.check(snn_net(64, 3), xs))
H.check(k.init == 5, "default init flagged on 5 Linear layers, got " .. tostring(k.init))
-- calculate_gain('selu') = 0.75: N(0, 0.5625/fan_in)
local g = nn.init.lecun_normal(snn_net(128, 3))
for _, m in ipairs(g.modules) do
  if tostring(m):find("^Linear") then m.weight:mul_(0.75) end
end
local fg = snn.check(g, xs)
H.check(kinds(fg).init == 5, "gain 0.75 flagged")
H.check(fg[1].message:find("calculate_gain", 1, true), "the gain is named: " .. fg[1].message)
-- plain Dropout after SELU
local kd = kinds(snn.check(nn.init.lecun_normal(snn_net(64, 3, { dropout = function() return nn.Dropout(0.1) end })), xs))
H.check(kd.dropout == 3 and not kd.init, "plain Dropout flagged 3 times")
-- input not standardized (raw pixel-like range)
local ki = kinds(snn.check(nn.init.lecun_normal(snn_net(64, 3)), T.rand(256, 16)))
H.check(ki.input == 1 and not ki.init, "input flagged")
-- mixed activations
local fm2 = snn.check(nn.init.lecun_normal(snn_net(64, 3, { mix = true })), xs)
H.check(kinds(fm2).mixed_activations == 1 and fm2[1].layer == 6, "ReLU at layer 6 flagged")
-- drift: a deep net whose weights are too small (0.3/fan_in) collapses
local dn = nn.init.lecun_normal(snn_net(64, 12))
for _, m in ipairs(dn.modules) do
  if tostring(m):find("^Linear") then m.weight:mul_(math.sqrt(0.3)) end
end
local kdr = kinds(snn.check(dn, xs))
H.check(kdr.drift == 1 and kdr.init == 14, "drift flagged once, init 14 times")
-- no SELU at all
local relu = kinds(snn.check(nn.init.he_normal(snn_net(32, 2, { act = nn.ReLU })), xs))
H.check(relu.no_selu == 1, "no SELU")
-- argument errors
H.checkerror("bad argument #1 to 'selut.snn.check' (module expected, got number)", snn.check, 1, xs)
H.checkerror("bad argument #2 to 'selut.snn.check' (selut.Tensor expected, got nil)", snn.check, dn)

-- nn.stats counts saturation against a custom SELU's own limit (-scale*alpha)
local sat = selut.nn.stats(nn.Sequential { nn.SELU { alpha = 3, scale = 1 } }, T.full(-2, 10, 10))[1]
H.check(sat.frac_saturated == 0, "3*(exp(-2)-1) = -2.59 is not within 95% of the limit -3")
sat = selut.nn.stats(nn.Sequential { nn.SELU { alpha = 3, scale = 1 } }, T.full(-10, 10, 10))[1]
H.check(sat.frac_saturated == 1, "-3*(1-exp(-10)) is saturated")
