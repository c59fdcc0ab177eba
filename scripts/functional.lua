-- nn.functional (alias nn.F): PyTorch's torch.nn.functional on the autograd
-- path. The losses are C (bindings/lua_loss.c, core/autograd/loss.c); the
-- rest runs the C layers' own kernels through m(x) (activations: one shared
-- module per function; dropout, normalization, convolution, pooling: a
-- private module per call, so its per-forward state belongs to that call),
-- softmax/log_softmax and linear are recorded tensor ops. Arguments follow
-- PyTorch's order; trailing keyword arguments go in one options table
-- (F.batch_norm(x, rm, rv, {training = true, eps = 1e-3})).
local selut = require "selut"
local nn, T = selut.nn, selut.tensor
local F = nn.functional
local layer_call = nn._layer_call

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 4)
end

local function is_opts(v) return type(v) == "table" and not T.is_tensor(v) end

-- Reads the arguments of fname: spec = {{name, default}, ...} in PyTorch's
-- order, the first nreq required; after them, a last plain table holds
-- keyword arguments by name. Unknown names, a name given both ways, and a
-- missing required argument are errors.
local function parse(fname, spec, nreq, ...)
  local a = table.pack(...)
  local n, opts = a.n, nil
  if n > nreq and is_opts(a[n]) then
    opts, n = a[n], n - 1
  end
  if n > #spec then argerror(#spec + 1, fname, string.format("at most %d arguments expected, got %d", #spec, n)) end
  local out = {}
  for i = 1, n do out[spec[i][1]] = a[i] end
  if opts then
    for k, v in pairs(opts) do
      local idx
      for i, s in ipairs(spec) do if s[1] == k then idx = i end end
      if not idx or idx <= nreq then argerror(n + 1, fname, "unknown option '" .. tostring(k) .. "'") end
      if out[k] ~= nil then argerror(n + 1, fname, "option '" .. k .. "' also given by position") end
      out[k] = v
    end
  end
  for i, s in ipairs(spec) do
    if out[s[1]] == nil then
      if i <= nreq then argerror(i, fname, s[1] .. " expected") end
      out[s[1]] = s[2]
    end
  end
  return out
end

local function want_tensor(v, n, fname, what, optional)
  if v == nil and optional then return end
  if not T.is_tensor(v) then argerror(n, fname, string.format("%s: tensor expected, got %s", what, type(v))) end
end

local function want_type(v, n, fname, what, ty)
  if type(v) ~= ty then argerror(n, fname, string.format("%s: %s expected, got %s", what, ty, type(v))) end
end

local function no_inplace(v, n, fname)
  if v ~= nil and v ~= false then argerror(n, fname, "inplace is not supported (use the module's inplace=true)") end
end

---------------------------------------------------------------------------
-- activations: the C layers' kernels through m(x)

local shared = {}
local function shared_module(ctor, key, ...)
  local m = shared[key]
  if not m then
    m = ctor(...)
    shared[key] = m
  end
  return m
end
-- modules with a parameter value, kept while in use
local by_value = setmetatable({}, { __mode = "v" })

local simple = { selu = nn.SELU, relu = nn.ReLU, tanh = nn.Tanh, sigmoid = nn.Sigmoid }
for name, ctor in pairs(simple) do
  F[name] = function(x, inplace, ...)
    want_tensor(x, 1, name, "input")
    no_inplace(inplace, 2, name)
    if select("#", ...) > 0 then argerror(3, name, "at most 2 arguments expected") end
    return shared_module(ctor, name)(x)
  end
end

function F.gelu(x, approximate)
  local o = parse("gelu", { { "input" }, { "approximate", "none" } }, 1, x, approximate)
  want_tensor(o.input, 1, "gelu", "input")
  if o.approximate ~= "none" then
    argerror(2, "gelu", "approximate: only 'none' is supported, got " .. tostring(o.approximate))
  end
  return shared_module(nn.GELU, "gelu")(o.input)
end

local function with_value(fname, ctor, pname, default)
  return function(...)
    local o = parse(fname, { { "input" }, { pname, default }, { "inplace", false } }, 1, ...)
    want_tensor(o.input, 1, fname, "input")
    want_type(o[pname], 2, fname, pname, "number")
    no_inplace(o.inplace, 3, fname)
    local key = fname .. ":" .. string.format("%.17g", o[pname])
    local m = by_value[key]
    if not m then
      m = ctor(o[pname])
      by_value[key] = m
    end
    return m(o.input)
  end
end
F.elu = with_value("elu", nn.ELU, "alpha", 1.0)
F.leaky_relu = with_value("leaky_relu", nn.LeakyReLU, "negative_slope", 0.01)

-- softmax / log_softmax over dim (1-based; negative from the end): the
-- tensor ops, recorded
for _, name in ipairs { "softmax", "log_softmax" } do
  F[name] = function(...)
    local o = parse(name, { { "input" }, { "dim" } }, 1, ...)
    want_tensor(o.input, 1, name, "input")
    if math.type(o.dim) ~= "integer" then
      argerror(2, name, "dim: integer expected (which dim to normalize over), got " .. type(o.dim))
    end
    return o.input[name](o.input, o.dim)
  end
end

---------------------------------------------------------------------------
-- linear: y = x W^T + b with recorded tensor ops (x of shape (*, in))

function F.linear(...)
  local o = parse("linear", { { "input" }, { "weight" }, { "bias" } }, 2, ...)
  local x, w, b = o.input, o.weight, o.bias
  want_tensor(x, 1, "linear", "input")
  want_tensor(w, 2, "linear", "weight")
  want_tensor(b, 3, "linear", "bias", true)
  if w:dim() ~= 2 then argerror(2, "linear", "weight of shape [out x in] expected, got " .. w:dim() .. " dims") end
  local nin = w:size(2)
  if x:size(x:dim()) ~= nin then
    argerror(1, "linear", string.format("input's last dim is %d, weight expects %d (weight [%d x %d])",
      x:size(x:dim()), nin, w:size(1), nin))
  end
  local shape = x:shape()
  local flat = x:dim() == 2 and x or x:reshape(-1, nin)
  local y = selut.matmul(flat, w:t())
  if b then y = y + b end
  if x:dim() ~= 2 then
    shape[#shape] = w:size(1)
    y = y:reshape(table.unpack(shape))
  end
  return y
end

---------------------------------------------------------------------------
-- dropout: a private module per call (its mask belongs to the call), drawing
-- from the state's generator like nn.Dropout

local function dropout(fname, ctor)
  return function(...)
    local o = parse(fname, { { "input" }, { "p", 0.5 }, { "training", true }, { "inplace", false } }, 1, ...)
    want_tensor(o.input, 1, fname, "input")
    want_type(o.p, 2, fname, "p", "number")
    want_type(o.training, 3, fname, "training", "boolean")
    no_inplace(o.inplace, 4, fname)
    if not (o.p >= 0 and o.p < 1) then
      argerror(2, fname, string.format("p: probability in [0, 1) expected, got %s", tostring(o.p)))
    end
    if not o.training or o.p == 0 then return o.input end
    return ctor(o.p)(o.input)
  end
end
F.dropout = dropout("dropout", nn.Dropout)
F.alpha_dropout = dropout("alpha_dropout", nn.AlphaDropout)

---------------------------------------------------------------------------
-- normalization: a private module per call; weight and bias (tensors that
-- may require grad) stand for its parameters

function F.batch_norm(...)
  local o = parse("batch_norm", { { "input" }, { "running_mean" }, { "running_var" }, { "weight" }, { "bias" },
    { "training", false }, { "momentum", 0.1 }, { "eps", 1e-5 } }, 1, ...)
  local x = o.input
  want_tensor(x, 1, "batch_norm", "input")
  want_tensor(o.running_mean, 2, "batch_norm", "running_mean", true)
  want_tensor(o.running_var, 3, "batch_norm", "running_var", true)
  want_tensor(o.weight, 4, "batch_norm", "weight", true)
  want_tensor(o.bias, 5, "batch_norm", "bias", true)
  want_type(o.training, 6, "batch_norm", "training", "boolean")
  want_type(o.momentum, 7, "batch_norm", "momentum", "number")
  want_type(o.eps, 8, "batch_norm", "eps", "number")
  local nd = x:dim()
  if nd < 2 or nd > 4 then
    argerror(1, "batch_norm", "input of 2, 3 or 4 dims expected ([N x C], [N x C x L], [N x C x H x W]), got " .. nd)
  end
  if (o.running_mean == nil) ~= (o.running_var == nil) then
    argerror(2, "batch_norm", "running_mean and running_var go together (both tensors or both nil)")
  end
  local track = o.running_mean ~= nil
  if not o.training and not track then
    argerror(2, "batch_norm", "running_mean and running_var are required when training is false")
  end
  local c = x:size(2)
  local affine = o.weight ~= nil or o.bias ~= nil
  local m = (nd == 4 and nn.BatchNorm2d or nn.BatchNorm1d)(c, { eps = o.eps, momentum = o.momentum,
    affine = affine, track_running_stats = track })
  m:train(o.training)
  if track then
    selut.no_grad(function()
      m.running_mean:copy(o.running_mean)
      m.running_var:copy(o.running_var)
    end)
  end
  local y
  if affine then
    y = layer_call(m, x, o.weight or T.ones(c), o.bias or T.zeros(c))
  else
    y = layer_call(m, x)
  end
  if track and o.training then -- PyTorch updates the running statistics in place
    selut.no_grad(function()
      o.running_mean:copy(m.running_mean)
      o.running_var:copy(m.running_var)
    end)
  end
  return y
end

function F.layer_norm(...)
  local o = parse("layer_norm", { { "input" }, { "normalized_shape" }, { "weight" }, { "bias" }, { "eps", 1e-5 } },
    2, ...)
  local x = o.input
  want_tensor(x, 1, "layer_norm", "input")
  want_tensor(o.weight, 3, "layer_norm", "weight", true)
  want_tensor(o.bias, 4, "layer_norm", "bias", true)
  want_type(o.eps, 5, "layer_norm", "eps", "number")
  local affine = o.weight ~= nil or o.bias ~= nil
  local m = nn.LayerNorm(o.normalized_shape, { eps = o.eps, elementwise_affine = affine })
  if not affine then return layer_call(m, x) end
  local shape = m:parameters()[1].param:shape()
  return layer_call(m, x, o.weight or T.ones(table.unpack(shape)), o.bias or T.zeros(table.unpack(shape)))
end

---------------------------------------------------------------------------
-- convolution and pooling: a private module per call (made without
-- touching the state's generator)

function F.conv2d(...)
  local o = parse("conv2d", { { "input" }, { "weight" }, { "bias" }, { "stride", 1 }, { "padding", 0 },
    { "dilation", 1 }, { "groups", 1 } }, 2, ...)
  want_tensor(o.input, 1, "conv2d", "input")
  want_tensor(o.weight, 2, "conv2d", "weight")
  want_tensor(o.bias, 3, "conv2d", "bias", true)
  local w = o.weight
  if w:dim() ~= 4 then
    argerror(2, "conv2d", "weight of shape [out x in/groups x kH x kW] expected, got " .. w:dim() .. " dims")
  end
  if math.type(o.groups) ~= "integer" or o.groups < 1 then argerror(7, "conv2d", "groups: integer >= 1 expected") end
  local state = selut.sys.get_rng_state()
  local ok, m = pcall(nn.Conv2d, w:size(2) * o.groups, w:size(1), { w:size(3), w:size(4) },
    { stride = o.stride, padding = o.padding, dilation = o.dilation, groups = o.groups, bias = o.bias ~= nil })
  selut.sys.set_rng_state(state)
  if not ok then error("conv2d: " .. tostring(m), 2) end
  if o.bias then return layer_call(m, o.input, w, o.bias) end
  return layer_call(m, o.input, w)
end

local function pool(fname, ctor, spec)
  return function(...)
    local o = parse(fname, spec, 2, ...)
    want_tensor(o.input, 1, fname, "input")
    local opts = {}
    for i = 3, #spec do opts[spec[i][1]] = o[spec[i][1]] end
    if opts.stride == nil then opts.stride = o.kernel_size end
    local ok, m = pcall(ctor, o.kernel_size, opts)
    if not ok then error(fname .. ": " .. tostring(m), 2) end
    return m(o.input)
  end
end
F.max_pool2d = pool("max_pool2d", nn.MaxPool2d, { { "input" }, { "kernel_size" }, { "stride" }, { "padding", 0 },
  { "dilation", 1 }, { "ceil_mode", false }, { "return_indices", false } })
F.avg_pool2d = pool("avg_pool2d", nn.AvgPool2d, { { "input" }, { "kernel_size" }, { "stride" }, { "padding", 0 },
  { "ceil_mode", false }, { "count_include_pad", true } })

return F
