-- selut.nn.class, nn.Parameter and nn.ModuleList: modules written with an
-- `init` and a `forward` only (DESIGN.md §7). Their gradients come from
-- autograd; everything that walks nets (parameters, save/load, nn.init,
-- snn.check, optimizers) sees them through nn.modules, with PyTorch's names.
--
-- Registration follows PyTorch's __setattr__: a module or a Parameter
-- assigned to a field of an instance registers under the field's name, in
-- the order of first assignment; reassigning a field keeps its place (a
-- field set to nil and assigned again goes last, as after `del` in Python).
local selut = require "selut"
local nn = selut.nn
local T = selut.tensor

local is_module = nn.is_module

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

---------------------------------------------------------------------------
-- nn.Parameter(t[, requires_grad]): a leaf sharing t's storage that
-- requires grad (PyTorch's nn.Parameter). Its .grad exists from the start
-- (zeros) and autograd accumulates into that same tensor, so an optimizer
-- made before the first backward steps it; zero_grad zeroes it in place.

local parameters = setmetatable({}, { __mode = "k" }) -- the tensors made by nn.Parameter

function nn.Parameter(t, requires_grad)
  if not T.is_tensor(t) then argerror(1, "Parameter", "tensor expected, got " .. type(t)) end
  if requires_grad ~= nil and type(requires_grad) ~= "boolean" then
    argerror(2, "Parameter", "requires_grad must be a boolean, got " .. type(requires_grad))
  end
  local p = t:detach()
  if requires_grad ~= false then
    p:requires_grad_(true)
    p.grad = T.zeros(p:size())
  end
  parameters[p] = true
  return p
end

function nn.is_parameter(t) return parameters[t] == true end

---------------------------------------------------------------------------
-- The state each instance keeps beside its fields (weak: dies with it).
local order = setmetatable({}, { __mode = "k" })   -- instance -> {field names in registration order}
local buffers = setmetatable({}, { __mode = "k" }) -- instance -> {name -> true}

local function registers(v)
  return is_module(v) or (T.is_tensor(v) and parameters[v] == true)
end

-- Appends k to the registration order, first dropping an earlier entry (a
-- field that was set to nil: it goes last, as after `del` in Python).
local function note(self, k)
  local o = order[self]
  for i, name in ipairs(o) do
    if name == k then
      table.remove(o, i)
      break
    end
  end
  o[#o + 1] = k
end

-- __newindex fires only for keys the instance does not hold: a field
-- reassigned in place keeps its position and is read back by name.
local function newindex(self, k, v)
  if type(k) == "string" and registers(v) then note(self, k) end
  rawset(self, k, v)
end

-- The registered fields that currently hold a registrable value, in order.
local function fields(self, want)
  local out = {}
  for _, k in ipairs(order[self] or {}) do
    local v = rawget(self, k)
    if v ~= nil and want(v) then out[#out + 1] = { k, v } end
  end
  return out
end

local ClassModule = {}

function ClassModule:named_children()
  return fields(self, is_module)
end

-- Own parameters only (not the children's): nn.Sequential-style walkers add
-- the children's under their prefixes.
function ClassModule:own_parameters()
  local out = {}
  for _, f in ipairs(fields(self, function(v) return T.is_tensor(v) and parameters[v] end)) do
    local p = f[2]
    out[#out + 1] = { param = p, grad = p.grad, name = f[1] }
  end
  return out
end

function ClassModule:own_buffers()
  local out = {}
  for _, k in ipairs(order[self] or {}) do
    local t = rawget(self, k)
    if buffers[self][k] and T.is_tensor(t) then out[#out + 1] = { tensor = t, name = k } end
  end
  return out
end

-- PyTorch's named_parameters order: the module's own, then each child's
-- under its name (nn.modules' order).
function ClassModule:parameters() return nn._named_entries(self, "parameters") end
function ClassModule:buffers() return nn._named_entries(self, "buffers") end

-- self:register_buffer(name, tensor): state saved in checkpoints that is not
-- a parameter (running statistics, masks).
function ClassModule:register_buffer(name, t)
  if type(name) ~= "string" then argerror(1, "register_buffer", "string expected, got " .. type(name)) end
  if not T.is_tensor(t) then argerror(2, "register_buffer", "tensor expected, got " .. type(t)) end
  buffers[self][name] = true
  note(self, name)
  rawset(self, name, t)
  return t
end

function ClassModule:zero_grad()
  for _, e in ipairs(self:parameters()) do
    if e.grad then e.grad:zero_() end
  end
  return self
end

function ClassModule:train(mode)
  if mode == nil then mode = true end
  rawset(self, "training", mode and true or false)
  for _, c in ipairs(self:named_children()) do c[2]:train(self.training) end
  return self
end

function ClassModule:evaluate() return self:train(false) end

-- The explicit protocol for a class module: backward(x, gy) runs forward
-- again with recording on and backpropagates gy through it (parameter
-- gradients accumulate, as the C layers' do). It costs a second forward;
-- train class-defined nets with loss:backward() instead.
function ClassModule:backward(x, gy)
  if not selut.is_grad_enabled() then
    error(self.__classname .. ":backward needs grad mode (it was called inside selut.no_grad)", 2)
  end
  local xx = x
  local want_x = T.is_tensor(x)
  if want_x then xx = x:detach():requires_grad_() end
  local y = self:forward(xx)
  if not (T.is_tensor(y) and y.requires_grad) then
    error(self.__classname .. ":backward: forward's result does not depend on anything that requires grad", 2)
  end
  y:backward(gy)
  self.grad_input = want_x and xx.grad or nil
  return self.grad_input
end

local function class_tostring(self)
  local kids = self:named_children()
  local extra = self.extra_repr and self:extra_repr() or ""
  if #kids == 0 then return string.format("%s(%s)", self.__classname, extra) end
  local lines = { self.__classname .. "(" }
  if extra ~= "" then lines[#lines + 1] = "  " .. extra end
  for _, c in ipairs(kids) do
    lines[#lines + 1] = string.format("  (%s): %s", c[1], (tostring(c[2]):gsub("\n", "\n  ")))
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- nn.class(name[, parent]) returns a class table: define cls:init(...) and
-- cls:forward(...); cls(...) makes an instance and calls init; m(x) calls
-- forward. A parent class's methods (and init, through cls.super) are
-- inherited.
function nn.class(name, parent)
  if type(name) ~= "string" then argerror(1, "class", "class name (string) expected, got " .. type(name)) end
  if parent ~= nil and not (type(parent) == "table" and rawget(parent, "__classname")) then
    argerror(2, "class", "parent must be a class made by nn.class, got " .. type(parent))
  end
  local cls = { __classname = name, super = parent }
  cls.__index = cls
  cls.__newindex = newindex
  cls.__name = "selut.nn." .. name
  cls.__tostring = class_tostring
  cls.__call = function(self, ...) return self:forward(...) end
  setmetatable(cls, {
    __index = parent or ClassModule,
    __call = function(c, ...)
      local self = setmetatable({}, c)
      order[self], buffers[self] = {}, {}
      rawset(self, "training", true)
      if c.init then c.init(self, ...) end
      if type(self.forward) ~= "function" then
        error(string.format("nn.class '%s' has no forward method", name), 2)
      end
      return self
    end,
  })
  return cls
end

---------------------------------------------------------------------------
-- nn.ModuleList{m1, m2, ...}: holds modules under "0", "1", ... (PyTorch's
-- ModuleList); index it 1-based, iterate with ipairs, append with :append.
local ModuleList = setmetatable({ __classname = "ModuleList" }, { __index = ClassModule })
ModuleList.__index = ModuleList
ModuleList.__name = "selut.nn.ModuleList"
ModuleList.__len = function(self) return #self.items end
ModuleList.__tostring = class_tostring

function ModuleList:named_children()
  local out = {}
  for i, m in ipairs(self.items) do out[i] = { tostring(i - 1), m } end
  return out
end

function ModuleList:append(m)
  if not is_module(m) then argerror(1, "append", "module expected, got " .. type(m)) end
  self.items[#self.items + 1] = m
  return self
end

function ModuleList:forward()
  error("ModuleList has no forward: iterate over it in the owner's forward", 2)
end

ModuleList.__index = function(self, k)
  if type(k) == "number" then return rawget(self, "items")[k] end
  return ModuleList[k]
end

function nn.ModuleList(list)
  if list ~= nil and type(list) ~= "table" then argerror(1, "ModuleList", "table of modules expected, got " .. type(list)) end
  local self = setmetatable({ items = {}, training = true }, ModuleList)
  order[self], buffers[self] = {}, {}
  for i, m in ipairs(list or {}) do
    if not is_module(m) then argerror(1, "ModuleList", string.format("element %d is not a module (got %s)", i, type(m))) end
    self.items[i] = m
  end
  return self
end

-- Not the nn table itself: package.loaded["selut.nn_class"] = nn would make
-- Lua's error messages name C functions "selut.nn_class.ReLU".
return true
