-- selut.viz, the Lua half: viz.histograms and nn.stats run a net layer by
-- layer and describe each output. The layers are the net's children (the
-- walker's first level, nn.children: an nn.Sequential's modules), or the net
-- itself when it has none; each output is binned or summarized by C
-- (bindings/lua_viz.c) as soon as it is produced, so a sheet of a deep net
-- never holds more than one activation batch besides the modules' buffers.
-- The walk runs in evaluation mode by default and restores every module's
-- mode afterwards, also when a layer raises. The saturation rule of a layer
-- comes from its descriptor (nn.describe).
local selut = require "selut"
local viz, nn = selut.viz, selut.nn
local sheet_new, output_stats = viz._sheet, viz._stats
viz._sheet, viz._stats = nil, nil

-- Errors styled like luaL_argerror / luaL_error from C (no position).
local function argerror(n, fname, msg) error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 0) end

-- A table or userdata whose forward is a function (a userdata without
-- __index is not indexed: that would raise).
local function runnable(m)
  local t = type(m)
  if t == "userdata" then
    local mt = getmetatable(m)
    if type(mt) ~= "table" or mt.__index == nil then return false end
  elseif t ~= "table" then
    return false
  end
  return type(m.forward) == "function"
end

-- "Linear" for a C layer, a Lua module's name, its metatable's __name
-- without "selut.nn." ("Sequential"), else "Module".
local function type_name(m)
  if type(m) == "table" and type(m.name) == "string" then return m.name end
  local mt = getmetatable(m)
  local name = type(mt) == "table" and mt.__name
  if type(name) == "string" then return name:match("^selut%.nn%.(.+)$") or name end
  return "Module"
end

-- An nn.class net: its forward is arbitrary code (residual adds, several
-- inputs, a module used twice), so its children are not a chain to replay.
local function is_class_net(net)
  local mt = type(net) == "table" and getmetatable(net)
  return type(mt) == "table" and mt.__classname ~= nil and mt.__classname ~= "ModuleList"
end

-- The layers of the net, their panel names ("3 SELU", or "blocks.0.fc1
-- Linear" in a class net) and types; [0] is the input.
local function layers_of(net, fname)
  if not runnable(net) then
    argerror(1, fname, "module expected (a table or userdata with a forward method), got " .. type(net))
  end
  if is_class_net(net) then -- every named submodule, in nn.modules' order
    local layers, names, types = {}, { [0] = "input" }, { [0] = "input" }
    for name, m in nn.modules(net) do
      local mt = getmetatable(m)
      if m ~= net and not (type(mt) == "table" and mt.__classname == "ModuleList") then -- a list is never called
        layers[#layers + 1] = m
        types[#layers] = type_name(m)
        names[#layers] = name .. " " .. types[#layers]
      end
    end
    return layers, names, types
  end
  local layers = {}
  local children = nn.children(net)
  if #children == 0 and not (type(net) == "table" and type(net.modules) == "table") then
    layers[1] = net
  end
  for i, c in ipairs(children) do
    if not runnable(c[2]) then
      error(string.format("%s: layer %d of the net is not a module (got %s)", fname, i, type(c[2])), 0)
    end
    layers[i] = c[2]
  end
  local names, types = { [0] = "input" }, { [0] = "input" }
  for i, m in ipairs(layers) do
    types[i] = type_name(m)
    names[i] = i .. " " .. types[i]
  end
  return layers, names, types
end

-- A class net runs its own forward once, net(x) under no_grad, with each
-- submodule's call hooked (PyTorch's forward hooks): the __call metamethod
-- of every metatable among the layers is wrapped for the run and restored
-- after it, also when forward raises. visit(i, y) gets the first result of
-- each call of layer i (a module called twice shows its last call); a
-- submodule that forward never calls, or calls as m:forward(x),
-- is not seen and its panel stays empty.
local function run_hooked(net, layers, x, visit)
  local index, saved = {}, {}
  for i, m in ipairs(layers) do index[m] = i end
  for _, m in ipairs(layers) do
    local mt = getmetatable(m)
    local orig = type(mt) == "table" and not saved[mt] and rawget(mt, "__call")
    if orig then
      saved[mt] = orig
      mt.__call = function(self, ...)
        local i = index[self]
        if not i then return orig(self, ...) end
        local r = table.pack(orig(self, ...))
        if selut.tensor.is_tensor(r[1]) then visit(i, r[1]) end
        return table.unpack(r, 1, r.n)
      end
    end
  end
  local ok, err = pcall(selut.no_grad, function() return net(x) end)
  for mt, orig in pairs(saved) do mt.__call = orig end
  if not ok then error(err, 0) end
end

-- Runs each layer on the previous output in the requested mode, calling
-- visit(i, y) on every output; restores the modes, then re-raises.
local function walk(net, layers, x, training, visit)
  local saved = { [0] = net.training }
  for i, m in ipairs(layers) do saved[i] = m.training end
  local set = training and net.train or net.evaluate
  if type(set) == "function" then set(net, training or nil) end
  local ok, err = pcall(function()
    if is_class_net(net) then return run_hooked(net, layers, x, visit) end
    local h = x
    for i, m in ipairs(layers) do
      h = m:forward(h)
      visit(i, h)
    end
  end)
  if type(saved[0]) == "boolean" and type(net.train) == "function" then net:train(saved[0]) end
  for i, m in ipairs(layers) do
    if type(saved[i]) == "boolean" and m.training ~= saved[i] and type(m.train) == "function" then
      m:train(saved[i]) -- e.g. a child that was in another mode
    end
  end
  if not ok then error(err, 0) end
end

-- selut.viz.histograms(net, x, path[, opts]) -> one entry per panel
function viz.histograms(net, x, path, opts)
  local layers, names, types = layers_of(net, "histograms")
  local _sheet = sheet_new -- a local of this name: argument errors name 'histograms'
  local histograms = _sheet
  local sheet, training = histograms(net, x, path, opts, types)
  walk(net, layers, x, training, function(i, y) sheet:add(i, y, names[i]) end)
  return sheet:write(path, names, types)
end

-- selut.nn.stats(net, x) -> {name=, type=, layer=, mean=, std=, var=, min=,
-- max=, count=, nonfinite=, frac_saturated=} per layer (evaluation mode)
function nn.stats(net, x)
  if not selut.tensor.is_tensor(x) then argerror(2, "stats", "selut.Tensor expected, got " .. type(x)) end
  local layers, names, types = layers_of(net, "stats")
  local out = {}
  walk(net, layers, x, false, function(i, y)
    local sat = (nn.describe(layers[i]) or {}).saturation or {}
    local e = output_stats(y, names[i], sat.rule, sat.at)
    e.name, e.type, e.layer = names[i], types[i], i
    out[i] = e -- a module called twice: its last output
  end)
  local list = {} -- a class net's submodules that forward never called have no entry
  for i = 1, #layers do list[#list + 1] = out[i] end
  return list
end

return viz
