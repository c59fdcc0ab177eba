-- selut.snn, the Lua half: snn.fixed_point (where a SELU's moment map
-- settles) and snn.check (the usual mistakes that break self-normalization,
-- each explained). The math is C (bindings/lua_snn.c, core/nn/snn.c).
local selut = require "selut"
local snn, nn = selut.snn, selut.nn

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

local function fmt(v)
  return string.format("%.3g", v)
end

-- snn.fixed_point([{alpha=, scale=, omega=0, tau=1}]) -> mean, var, spectral_norm
-- Newton's method on g(mean, var) = (mean, var) from (0, 1), with the
-- analytic Jacobian, so unstable fixed points are found too; the third value
-- is the Jacobian's spectral norm there (< 1: the map contracts toward it).
function snn.fixed_point(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(1, "selut.snn.fixed_point", "table or nil expected, got " .. type(opts))
  end
  local mu, nu = 0.0, 1.0
  for _ = 1, 100 do
    local r = snn.moments(mu, nu, opts)
    local f1, f2 = r.mean - mu, r.var - nu
    if math.abs(f1) + math.abs(f2) < 1e-14 then return mu, nu, r.spectral_norm end
    local j = r.jacobian
    local a, b, c, d = j[1][1] - 1, j[1][2], j[2][1], j[2][2] - 1
    local det = a * d - b * c
    if det == 0 then break end
    local dmu, dnu = -(d * f1 - b * f2) / det, -(a * f2 - c * f1) / det
    local t = 1.0
    while nu + t * dnu <= 0 and t > 1e-6 do t = t / 2 end -- keep the variance positive
    mu, nu = mu + t * dmu, nu + t * dnu
  end
  error(string.format("fixed_point: no fixed point found from (0, 1) (reached mean %s, var %s)", fmt(mu), fmt(nu)), 2)
end

---------------------------------------------------------------------------
-- snn.check

-- What the check needs to know of a layer comes from its descriptor
-- (nn.describe): SELU is the activation that is self-normalizing,
-- AlphaDropout the stochastic layer that is; Lua modules are unknown.
local function type_of(m)
  local d = nn.describe(m)
  if d then return d.type end
  return m.name or (getmetatable(m) or {}).__name or "Module"
end

-- the modules without children, in the walker's order: {module=, type=, index=, info=}
local function flatten(net)
  local out = {}
  for _, m in nn.modules(net) do
    if #nn.children(m) == 0 then
      out[#out + 1] = { module = m, type = type_of(m), index = #out + 1, info = nn.describe(m) or {} }
    end
  end
  return out
end

local function is_selu(l) return l.info.activation and l.info.self_normalizing end

-- the weight nn.init draws from its fan-in, if the layer has one
local function fan_weight(l)
  for name, role in pairs(l.info.params or {}) do
    if role == "fan" then return l.module[name] end
  end
end

local function describe(l)
  local w = fan_weight(l)
  if w and w:dim() == 2 then
    return string.format("layer %d (%s %d->%d)", l.index, l.type, w:size(2), w:size(1))
  end
  return string.format("layer %d (%s)", l.index, l.type)
end

-- What a weight variance of `ratio`/fan_in usually comes from.
local function init_culprit(ratio)
  local known = {
    { 1 / 3, "PyTorch's default nn.Linear init (kaiming_uniform with a=sqrt(5)) gives 1/(3 fan_in)" },
    { 0.5625, "calculate_gain('selu') = 0.75 gives 0.5625/fan_in (PyTorch's gain is not LeCun)" },
    { 2, "He (kaiming) init for ReLU gives 2/fan_in" },
  }
  for _, k in ipairs(known) do
    if math.abs(ratio / k[1] - 1) < 0.15 then return k[2] end
  end
  return nil
end

local DEFAULTS = {
  init_tol = 0.15,       -- |fan_in * var(W) - 1|, widened for small layers (sampling noise)
  input_mean = 0.2,      -- |mean(x)|
  input_var = { 0.5, 2 },  -- var(x) range
  drift_mean = 0.25,     -- |mean - mean*| after a SELU
  drift_var = { 0.5, 2 },  -- var / var* range after a SELU
}

-- snn.check(net, x[, opts]) -> list of {kind=, layer=, message=}
function snn.check(net, x, opts)
  if not nn.is_module(net) then argerror(1, "selut.snn.check", "module expected, got " .. type(net)) end
  if not selut.tensor.is_tensor(x) then argerror(2, "selut.snn.check", "selut.Tensor expected, got " .. type(x)) end
  if opts ~= nil and type(opts) ~= "table" then argerror(3, "selut.snn.check", "table or nil expected, got " .. type(opts)) end
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = (opts or {})[k] or v end
  local findings = {}
  local function add(kind, layer, msg)
    findings[#findings + 1] = { kind = kind, layer = layer, message = msg }
  end

  local layers = flatten(net)
  local selus, others = {}, {}
  for i, l in ipairs(layers) do
    if is_selu(l) then
      selus[#selus + 1] = l
    elseif l.info.activation or l.info.normalization or (l.info.output and i < #layers) then
      others[#others + 1] = l
    end
  end
  if #selus == 0 then
    add("no_selu", nil, "the net has no SELU layer, so self-normalization does not apply "
      .. "(an SNN is Linear layers with LeCun-normal init, each followed by nn.SELU())")
    return findings
  end

  -- the fixed point the SELUs aim at ((0, 1) for the standard constants)
  local s1 = selus[1].module
  local target_mean, target_var = 0.0, 1.0
  if s1.alpha and (math.abs(s1.alpha - 1.6732632423543772) > 1e-6 or math.abs(s1.scale - 1.0507009873554805) > 1e-6) then
    local ok, m, v = pcall(snn.fixed_point, { alpha = s1.alpha, scale = s1.scale })
    if ok then target_mean, target_var = m, v end
  end
  local target = string.format("(%s, %s)", fmt(target_mean), fmt(target_var))

  -- mixed activations
  if #others > 0 then
    local names = {}
    for _, l in ipairs(others) do names[#names + 1] = describe(l) end
    add("mixed_activations", others[1].index, "the net mixes SELU with other activations or normalization: "
      .. table.concat(names, ", ") .. ". Self-normalization holds only when every hidden layer is "
      .. "Linear + SELU; a ReLU/Tanh/BatchNorm layer resets the mean and variance the SELUs keep at " .. target)
  end

  -- plain Dropout after a SELU
  local seen_selu = false
  for _, l in ipairs(layers) do
    if is_selu(l) then seen_selu = true end
    if l.info.stochastic and not l.info.self_normalizing and seen_selu then
      add("dropout", l.index, describe(l) .. " is plain Dropout after a SELU: zeroing units and scaling the rest "
        .. "by 1/(1-p) moves the activations away from the fixed point " .. target .. ", and evaluation mode "
        .. "then sees a different variance. Use nn.AlphaDropout(p), which sets dropped units to the SELU's "
        .. "saturation value and corrects mean and variance")
    end
  end

  -- weight variance vs 1/fan_in
  for _, l in ipairs(layers) do
    local w = fan_weight(l)
    if w and w:numel() > 1 and w:dim() >= 2 then
      local fan_in = w:numel() // w:size(1)
      local ratio = w:var() * fan_in
      local tol = math.max(o.init_tol, 5 * math.sqrt(2 / w:numel()))
      if math.abs(ratio - 1) > tol then
        local why = init_culprit(ratio)
        add("init", l.index, string.format("%s: weight variance is %s/fan_in (fan_in %d); SELU's fixed point "
          .. "needs 1/fan_in (LeCun normal). %snn.init.lecun_normal(net) fixes it", describe(l), fmt(ratio),
          fan_in, why and (why .. ". ") or ""))
      end
    end
  end

  -- the input
  local xm, xv = x:mean(), x:var()
  if math.abs(xm) > o.input_mean or xv < o.input_var[1] or xv > o.input_var[2] then
    add("input", 0, string.format("the input has mean %s and variance %s; SNNs assume standardized inputs "
      .. "(mean 0, variance 1): subtract the training set's per-feature mean and divide by its standard "
      .. "deviation", fmt(xm), fmt(xv)))
  end

  -- activation statistics after each SELU (evaluation mode, like nn.stats)
  local saved = {}
  for _, m in nn.modules(net) do saved[#saved + 1] = { m, m.training } end
  net:evaluate()
  local ok, err = pcall(function()
    local h = x
    local drift = {}
    for _, l in ipairs(layers) do
      h = l.module:forward(h)
      if is_selu(l) then
        local m, v = h:mean(), h:var()
        if math.abs(m - target_mean) > o.drift_mean or v / target_var < o.drift_var[1]
            or v / target_var > o.drift_var[2] then
          drift[#drift + 1] = string.format("%d (mean %s, var %s)", l.index, fmt(m), fmt(v))
          drift.first = drift.first or l.index
        end
      end
    end
    if #drift > 0 then
      add("drift", drift.first, string.format("activations drift from the fixed point %s after %d of %d SELU "
        .. "layers: %s. Check the findings above (init, input, dropout); with LeCun-normal weights and "
        .. "standardized input each SELU layer maps mean/variance back toward %s", target, #drift, #selus,
        table.concat(drift, ", ", 1, math.min(#drift, 6)) .. (#drift > 6 and ", ..." or ""), target))
    end
  end)
  for _, e in ipairs(saved) do -- restore each module's own mode
    if type(e[1]) == "userdata" then e[1]:train(e[2] and true or false) elseif e[2] ~= nil then e[1].training = e[2] end
  end
  if not ok then error(err, 2) end
  return findings
end

return snn
