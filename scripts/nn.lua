-- selut.nn, the Lua half: nn.Module (modules written in Lua), nn.Sequential
-- (a container mixing C and Lua modules) and the nn.init functions that walk
-- containers. The layers themselves are C userdata (bindings/lua_nn.c).
--
-- The module protocol (C and Lua modules alike):
--   m:forward(x)          -> output tensor
--   m:backward(x, gy)     -> gradient w.r.t. x; accumulates parameter grads
--   m:parameters()        -> list of {param=, grad=, name=}
--   m:buffers()           -> list of {tensor=, name=[, dtype=, scalar=]} (checkpointed state)
--   m:zero_grad(), m:train([mode]), m:evaluate()  -> m
local selut = require "selut"
local nn = selut.nn

local function is_module(m)
  local t = type(m)
  if t == "userdata" then
    local mt = getmetatable(m)
    return type(mt) == "table" and type(mt.__name) == "string" and mt.__name:find("^selut%.nn%.") ~= nil
      and m.forward ~= nil
  end
  return t == "table" and type(m.forward) == "function" and type(m.backward) == "function"
end

-- Raises a Lua error styled like luaL_argerror, at the caller's caller.
local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

---------------------------------------------------------------------------
-- The walker (docs/architecture.md, "One walker"). A module's children are
-- m:named_children() when it defines that ({{name, module}, ...} in order),
-- else its `modules` list named "0", "1", ... (nn.Sequential); C layers
-- have none. nn.modules(net) yields (name, module) in PyTorch's
-- named_modules order: the net itself as "", then depth first "0", "1",
-- "1.0", "2.fc1", ...; a module reached twice is yielded once. Parameter,
-- buffer and checkpoint names, nn.init, snn.check and DataParallel all walk
-- through it.

local function children(m)
  if type(m) == "table" then
    if type(m.named_children) == "function" then return m:named_children() end
    if type(m.modules) == "table" then
      local out = {}
      for i, c in ipairs(m.modules) do out[i] = { tostring(i - 1), c } end
      return out
    end
  end
  return {}
end
nn.children = children

function nn.modules(net)
  local list, seen = {}, {}
  local function walk(prefix, m)
    if seen[m] then return end
    seen[m] = true
    list[#list + 1] = { prefix, m }
    for _, c in ipairs(children(m)) do walk(prefix == "" and c[1] or prefix .. "." .. c[1], c[2]) end
  end
  walk("", net)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

-- The entries of method `what` ("parameters" or "buffers") of every module
-- without children, plus the own entries (m:own_parameters(), own_buffers())
-- of modules that have children (nn.class instances), named "<module
-- name>.<entry name>" in nn.modules' order (PyTorch's named_parameters); the
-- entry tables are copied with the new name.
local function named_entries(net, what)
  local out = {}
  for prefix, m in nn.modules(net) do
    local list
    if type(m) == "table" and m["own_" .. what] then
      list = m["own_" .. what](m)
    elseif m ~= net and #children(m) == 0 and m[what] then
      list = m[what](m)
    end
    for k, e in ipairs(list or {}) do
      local c = {}
      for key, v in pairs(e) do c[key] = v end
      local name = e.name or (k - 1)
      c.name = prefix == "" and tostring(name) or prefix .. "." .. name
      out[#out + 1] = c
    end
  end
  return out
end
nn._named_entries = named_entries -- for scripts/nn_class.lua

---------------------------------------------------------------------------
-- nn.Module: the base of modules written in Lua.

local Module = {}
Module.__index = Module
Module.__name = "selut.nn.Module"

function Module:forward()
  error((self.name or "Module") .. ": forward is not implemented", 2)
end

function Module:backward()
  error((self.name or "Module") .. ": backward is not implemented", 2)
end

function Module:parameters()
  return {}
end

-- State that is not a parameter but belongs in a checkpoint (PyTorch's
-- buffers, e.g. BatchNorm's running statistics): {name=, tensor=[, dtype=
-- "I64"][, scalar=true]} entries; selut.save/load include them.
function Module:buffers()
  return {}
end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad:zero_() end
  return self
end

function Module:train(mode)
  if mode == nil then mode = true end
  self.training = mode and true or false
  return self
end

function Module:evaluate()
  return self:train(false)
end

function Module:__tostring()
  return (self.name or "Module") .. "()"
end

-- m(x): the autograd path for a module written with forward and backward.
-- In grad mode, when x requires grad or the module has parameters, the call
-- records one node whose backward is m:backward(x, gy) (parameter gradients
-- accumulate into the module's grads as with the explicit protocol). The
-- result is a copy: forward may return a buffer it reuses. A module whose
-- backward reads state of its last forward cannot run its backward for an
-- earlier call, so a second m(x) before the backward of the first makes that
-- backward fail (one call per module per graph).
local autograd, T = selut.autograd, selut.tensor
function Module:__call(x, ...)
  if select("#", ...) > 0 or not T.is_tensor(x) or not selut.is_grad_enabled()
    or not (x.requires_grad or #self:parameters() > 0) then
    return self:forward(x, ...)
  end
  local y = selut.no_grad(function()
    local out = self:forward(x)
    if not T.is_tensor(out) then
      error(string.format("%s: forward must return a tensor, got %s", tostring(self), type(out)), 0)
    end
    return out:clone()
  end)
  local calls = (rawget(self, "_autograd_calls") or 0) + 1
  rawset(self, "_autograd_calls", calls)
  autograd._record((self.name or "Module") .. "Backward", y, { x }, function(gy)
    if rawget(self, "_autograd_calls") ~= calls then
      error(string.format("%s was called again before the backward of an earlier call: its backward(x, gy) "
        .. "may read state of the last forward; use one module per call in a graph", tostring(self)), 0)
    end
    return self:backward(x, gy)
  end)
  return y
end

-- nn.Module(def): turns the table def into a module and returns it. def
-- supplies forward(self, x) and backward(self, x, gy); optionally
-- parameters(self) returning {param=, grad=, name=} entries, name (for
-- printing), and any state of its own.
function nn.Module(def)
  if def == nil then def = {} end
  if type(def) ~= "table" then argerror(1, "Module", "table expected, got " .. type(def)) end
  for _, k in ipairs { "forward", "backward", "parameters", "buffers" } do
    if def[k] ~= nil and type(def[k]) ~= "function" then
      argerror(1, "Module", string.format("field '%s' must be a function, got %s", k, type(def[k])))
    end
  end
  if def.training == nil then def.training = true end
  return setmetatable(def, Module)
end

---------------------------------------------------------------------------
-- nn.Sequential

local Sequential = setmetatable({}, { __index = Module })
Sequential.__index = Sequential
Sequential.__name = "selut.nn.Sequential"
Sequential.__tostring = function(self)
  local lines = { "Sequential(" }
  for i, m in ipairs(self.modules) do
    local s = tostring(m):gsub("\n", "\n  ")
    lines[#lines + 1] = string.format("  (%d): %s", i - 1, s)
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end
Sequential.__len = function(self) return #self.modules end

-- nn.Sequential{m1, m2, ...}: children run in order; parameters are named
-- like PyTorch's state_dict ("0.weight", "2.bias", nested "1.0.weight").
function nn.Sequential(list)
  if list ~= nil and type(list) ~= "table" then
    argerror(1, "Sequential", "table of modules expected, got " .. type(list))
  end
  local self = setmetatable({ modules = {}, inputs = {}, training = true }, Sequential)
  for i, m in ipairs(list or {}) do
    if not is_module(m) then
      argerror(1, "Sequential", string.format("element %d is not a module (got %s)", i, type(m)))
    end
    self.modules[i] = m
  end
  return self
end

function Sequential:add(m)
  if not is_module(m) then argerror(1, "add", "module expected, got " .. type(m)) end
  self.modules[#self.modules + 1] = m
  return self
end

-- Errors raised by a child are re-raised as "Sequential: layer <i>
-- (<child>): <message>", i being the 0-based index print(net) shows and
-- parameter names use; through nested containers the indices join with dots
-- like parameter names ("layer 1.2 (Linear(...)): ..."). One pcall per
-- container call (not per layer); self.current_layer counts the running child.
local function describe(m)
  local ok, s = pcall(tostring, m)
  s = ok and type(s) == "string" and s:match("^[^\n]*") or type(m)
  return (s:gsub("%($", ""))
end

-- A C layer's message carries the position of its caller, the line below in
-- this file: noise once the layer is named, so it is dropped.
local function raise_here() error("", 2) end
local own_position = (select(2, pcall(function() raise_here() end)) or ""):match("^(.-:)%d+: $")
own_position = own_position and "^" .. own_position:gsub("%p", "%%%0") .. "%d+: "

local function layer_error(self, err)
  local i = self.current_layer
  self.current_layer = nil
  local m = i and self.modules[i]
  if type(err) ~= "string" or not m then return err end
  if own_position then err = err:gsub(own_position, "", 1) end
  local path, rest = err:match("^Sequential: layer ([%d%.]+) (%(.*)$")
  if path and type(m) == "table" and type(m.modules) == "table" then
    return string.format("Sequential: layer %d.%s %s", i - 1, path, rest)
  end
  return string.format("Sequential: layer %d (%s): %s", i - 1, describe(m), err)
end

local function forward_layers(self, x)
  local inputs = self.inputs
  for i, m in ipairs(self.modules) do
    self.current_layer = i
    inputs[i] = x
    x = m:forward(x)
  end
  return x
end

function Sequential:forward(x)
  local ok, y = pcall(forward_layers, self, x)
  if not ok then error(layer_error(self, y), 0) end
  x = y
  local inputs = self.inputs
  for i = #self.modules + 1, #inputs do inputs[i] = nil end
  self.output = x
  return x
end

-- net(x): the autograd path; each child is called as c(x) (recording when
-- grad mode is on; a table module without __call runs its forward), errors
-- named like forward's.
-- An intermediate result that one C layer made and the next C layer consumed
-- is seen by nobody else (C layers keep tensors, never their Lua boxes), so
-- its box is closed at once: the graph then holds the only reference, and the
-- tensor goes back to the autograd pool when backward frees the graph, hot
-- in cache for the next step, instead of whenever Lua's collector finds the
-- box (hundreds of steps later).
-- Those closed boxes are then reused for the next intermediate results (of
-- this call and of the next calls, through `spares`): a new box costs an
-- allocation and a finalizer call, a fifth of a small net's step when made
-- per layer. A box is reused only once closed, and the spares are taken out
-- while a call runs, so a nested or concurrent call (a coroutine) of the same
-- net makes its own. The last layer's result is always a new box (the caller
-- keeps it).
local tensor_mt = debug.getmetatable(selut.tensor.zeros(1))
local close_box, getmt = tensor_mt.__close, debug.getmetatable
local layer_into = nn._layer_into
local spares = setmetatable({}, {__mode = "k"})
local function call_layers(self, x)
  local made = false -- x is a tensor box a C layer returned in this loop
  local mods = self.modules
  local n, free = #mods, spares[self]
  spares[self] = nil
  for i, m in ipairs(mods) do
    self.current_layer = i
    local mt = getmetatable(m)
    if type(m) == "userdata" then
      local y
      if i < n and free and free[1] then
        local box = free[#free]
        free[#free] = nil
        y = layer_into(m, x, box)
        if y == nil then -- not a selut layer
          free[#free + 1] = box
          y = m(x)
        end
      else
        y = m(x)
      end
      if not rawequal(y, x) then -- (the same box back: nothing new to track)
        if made then
          close_box(x)
          free = free or {}
          free[#free + 1] = x
        end
        x, made = y, getmt(y) == tensor_mt
      end
    elseif type(mt) == "table" and mt.__call then
      x, made = m(x), false
    else
      x, made = m:forward(x), false
    end
  end
  if free then spares[self] = free end
  return x
end

-- A net of selut layers only runs in one C call (nn._seq_call: the same
-- layer calls without a Lua box per intermediate result); anything else,
-- the loop above.
local seq_call = nn._seq_call
Sequential.__call = function(self, ...)
  local y, i, err = seq_call(self, ...)
  if y then return y end
  if i then
    self.current_layer = i
    error(layer_error(self, err), 0)
  end
  if select("#", ...) > 1 then argerror(2, "Sequential", "one input expected") end
  local ok
  ok, y = pcall(call_layers, self, (...))
  if not ok then error(layer_error(self, y), 0) end
  return y
end

local function backward_layers(self, mods, inputs, gy, need_input_grad)
  for i = #mods, 2, -1 do
    self.current_layer = i
    gy = mods[i]:backward(inputs[i], gy)
  end
  if mods[1] then
    self.current_layer = 1
    if need_input_grad == false then
      mods[1]:backward(inputs[1], gy, false)
      gy = nil
    else
      gy = mods[1]:backward(inputs[1], gy)
    end
  end
  return gy
end

-- need_input_grad = false: the caller does not want dL/dx (x is data), so
-- the first module may skip it (a Linear saves one sgemm); returns nil then.
function Sequential:backward(x, gy, need_input_grad)
  local mods, inputs = self.modules, self.inputs
  if #inputs < #mods then error("Sequential: backward called before forward", 2) end
  if need_input_grad ~= nil and type(need_input_grad) ~= "boolean" then
    argerror(3, "backward", "need_input_grad must be a boolean, got " .. type(need_input_grad))
  end
  inputs[1] = x
  local ok, g = pcall(backward_layers, self, mods, inputs, gy, need_input_grad)
  if not ok then error(layer_error(self, g), 0) end
  self.grad_input = g
  return g
end

-- The parameters and buffers of the modules inside, named by the walker
-- ("0.weight", "3.running_mean", nested "1.0.weight").
function Sequential:parameters() return named_entries(self, "parameters") end
function Sequential:buffers() return named_entries(self, "buffers") end

function Sequential:zero_grad()
  for _, m in ipairs(self.modules) do m:zero_grad() end
  return self
end

function Sequential:train(mode)
  if mode == nil then mode = true end
  self.training = mode and true or false
  for _, m in ipairs(self.modules) do m:train(self.training) end
  return self
end

function Sequential:evaluate()
  return self:train(false)
end

---------------------------------------------------------------------------
-- nn.init: the C functions initialize one C layer as its descriptor says
-- (which parameters are drawn from their fan-in, which zeroed); the walker
-- brings them to every C layer of the net, in order. Lua-defined modules
-- are left alone (they initialize themselves).

local c_init = nn.init
local init = {}
for _, name in ipairs { "lecun_normal", "he_normal", "xavier_uniform" } do
  local f = c_init[name]
  init[name] = function(m)
    if not is_module(m) then argerror(1, name, "module expected, got " .. type(m)) end
    for _, c in nn.modules(m) do
      if type(c) == "userdata" then f(c) end
    end
    return m
  end
end
nn.init = init

nn.is_module = is_module

return nn
