-- selut.optim.lr_scheduler: PyTorch 1.13's learning-rate schedulers, with
-- its names, keyword arguments and exact sequences (the recursive "chainable"
-- forms of get_lr, in double precision, as torch computes them).
--
--   local sched = lr_scheduler.StepLR(opt, {step_size = 30, gamma = 0.1})
--   for epoch = 1, 100 do train(); sched:step() end   -- or once per batch
--   sched:get_last_lr()  --> {lr of group 1, ...}; opt.param_groups[i].lr is live
--
-- sched:step([metric]) advances the schedule (ReduceLROnPlateau takes the
-- metric); state_dict()/load_state_dict() save and restore it (LambdaLR's
-- functions are not saved, as in PyTorch).
local selut = require "selut"

local M = {}

local function fail(fname, msg, level)
  error(string.format("%s: %s", fname, msg), (level or 1) + 1)
end

local function describe(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

-- The optimizer's param_groups, checked to hold the keys a scheduler needs.
local function param_groups(fname, opt, need)
  local ok, pg = pcall(function() return opt.param_groups end)
  if not ok or type(pg) ~= "table" or #pg == 0 then
    fail(fname, "expected an optimizer with param_groups, got " .. describe(opt), 3)
  end
  for i, g in ipairs(pg) do
    for _, key in ipairs(need or { "lr" }) do
      if type(g[key]) ~= "number" then
        fail(fname, string.format("the optimizer's param_groups[%d] has no '%s' (a number), which this scheduler needs",
          i, key), 3)
      end
    end
  end
  return pg
end

-- Options: a table of PyTorch's keyword arguments, unknown keys refused.
local function options(fname, opts, defaults, required)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then fail(fname, "options must be a table of keyword arguments, got " .. describe(opts), 3) end
  local o = {}
  for k, v in pairs(opts) do
    if defaults[k] == nil then
      local names = {}
      for name in pairs(defaults) do names[#names + 1] = name end
      table.sort(names)
      fail(fname, string.format("unknown option '%s' (expected %s)", tostring(k), table.concat(names, ", ")), 3)
    end
    o[k] = v
  end
  for k, v in pairs(defaults) do
    if o[k] == nil then
      if v == "required" then fail(fname, string.format("option '%s' is required", k), 3) end
      if v ~= "none" then o[k] = v end
    end
  end
  for _, k in ipairs(required or {}) do
    if o[k] == nil then fail(fname, string.format("option '%s' is required", k), 3) end
  end
  return o
end

local function number_opt(fname, o, key, cond, what)
  local v = o[key]
  if type(v) ~= "number" or v ~= v or not cond(v) then
    fail(fname, string.format("option '%s' must be %s, got %s", key, what, tostring(v)), 3)
  end
  return v
end

local function integer_opt(fname, o, key, min)
  local v = o[key]
  if math.type(v) ~= "integer" or v < min then
    fail(fname, string.format("option '%s' must be an integer >= %d, got %s", key, min, tostring(v)), 3)
  end
  return v
end

local function check_milestones(fname, ms, key)
  if type(ms) ~= "table" then fail(fname, string.format("option '%s' must be a list of integers", key), 3) end
  for i, m in ipairs(ms) do
    if math.type(m) ~= "integer" then
      fail(fname, string.format("%s[%d] must be an integer, got %s", key, i, tostring(m)), 3)
    end
    if i > 1 and m < ms[i - 1] then
      fail(fname, string.format("%s must be increasing, but %s[%d] = %d comes after %d", key, key, i, m, ms[i - 1]), 3)
    end
  end
  local copy = {}
  for i, m in ipairs(ms) do copy[i] = m end
  return copy
end

-- ---- the common part (PyTorch's _LRScheduler) ----

local Base = {}
Base.__index = Base

local function new_sched(class, fname, opt, last_epoch, need)
  local self = setmetatable({}, class)
  local pg = param_groups(fname, opt, need)
  self.optimizer = opt
  if math.type(last_epoch) ~= "integer" or last_epoch < -1 then
    fail(fname, "option 'last_epoch' must be an integer >= -1, got " .. tostring(last_epoch), 3)
  end
  if last_epoch == -1 then
    for _, g in ipairs(pg) do
      if g.initial_lr == nil then g.initial_lr = g.lr end
    end
  else
    for i, g in ipairs(pg) do
      if g.initial_lr == nil then
        fail(fname, string.format("param 'initial_lr' is not specified in param_groups[%d] when resuming an " ..
          "optimizer (last_epoch = %d)", i, last_epoch), 3)
      end
    end
  end
  self.base_lrs = {}
  for i, g in ipairs(pg) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  return self
end

function Base:_initial_step()
  self._step_count = 0
  self:step()
end

function Base:step(epoch)
  self._step_count = self._step_count + 1
  local values
  if epoch == nil then
    self.last_epoch = self.last_epoch + 1
    values = self:get_lr()
  else
    self.last_epoch = epoch
    values = self.closed_form and self:closed_form() or self:get_lr()
  end
  local pg = self.optimizer.param_groups
  for i, g in ipairs(pg) do g.lr = values[i] end
  self._last_lr = {}
  for i, g in ipairs(pg) do self._last_lr[i] = g.lr end
end

function Base:get_last_lr()
  local t = {}
  for i, v in ipairs(self._last_lr) do t[i] = v end
  return t
end

local function copy_value(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy_value(x) end
  return t
end

-- Every plain field but the optimizer (and functions), copied; nested
-- schedulers (SequentialLR) give their own state dicts.
function Base:state_dict()
  local sd = { type = self.type }
  for k, v in pairs(self) do
    if k ~= "optimizer" and k ~= "_schedulers" and type(v) ~= "function" and k ~= "lr_lambdas" then
      sd[k] = copy_value(v)
    end
  end
  if self._schedulers then
    sd._schedulers = {}
    for i, s in ipairs(self._schedulers) do sd._schedulers[i] = s:state_dict() end
  end
  return sd
end

-- Refuses a state dict of another scheduler type or with other fields before
-- changing anything.
function Base:load_state_dict(sd)
  if type(sd) ~= "table" then fail("load_state_dict", "state dict must be a table, got " .. describe(sd), 2) end
  if sd.type ~= self.type then
    fail("load_state_dict", string.format("the state dict is for %s, this scheduler is %s (nothing was loaded)",
      tostring(sd.type), self.type), 2)
  end
  local mine = self:state_dict()
  for k, v in pairs(mine) do
    if sd[k] == nil or type(sd[k]) ~= type(v) then
      fail("load_state_dict", string.format("%s state dict: field '%s' is %s, expected a %s (nothing was loaded)",
        self.type, k, sd[k] == nil and "missing" or type(sd[k]), type(v)), 2)
    end
  end
  for k in pairs(sd) do
    if mine[k] == nil then
      fail("load_state_dict", string.format("%s state dict has an unknown field '%s' (nothing was loaded)",
        self.type, tostring(k)), 2)
    end
  end
  if self._schedulers then
    if #sd._schedulers ~= #self._schedulers then
      fail("load_state_dict", string.format("%s state dict has %d schedulers, this one has %d (nothing was loaded)",
        self.type, #sd._schedulers, #self._schedulers), 2)
    end
    for i, s in ipairs(self._schedulers) do
      if sd._schedulers[i].type ~= s.type then
        fail("load_state_dict", string.format("scheduler %d of the state dict is %s, expected %s (nothing was loaded)",
          i, tostring(sd._schedulers[i].type), s.type), 2)
      end
    end
  end
  for k, v in pairs(sd) do
    if k ~= "_schedulers" and k ~= "type" then self[k] = copy_value(v) end
  end
  if self._schedulers then
    for i, s in ipairs(self._schedulers) do s:load_state_dict(sd._schedulers[i]) end
  end
end

function Base:__tostring()
  return string.format("selut.optim.lr_scheduler.%s(last_epoch %d)", self.type, self.last_epoch)
end

local function class(name)
  local c = setmetatable({}, { __index = Base })
  c.__index = c
  c.__name = "selut.optim.lr_scheduler." .. name
  c.__tostring = Base.__tostring
  c.type = name
  return c
end

local function group_lrs(self)
  local t = {}
  for i, g in ipairs(self.optimizer.param_groups) do t[i] = g.lr end
  return t
end

-- ---- LambdaLR ----
local LambdaLR = class("LambdaLR")
function M.LambdaLR(opt, opts)
  local o = options("LambdaLR", opts, { lr_lambda = "required", last_epoch = -1 })
  local pg = param_groups("LambdaLR", opt)
  local lambdas = {}
  if type(o.lr_lambda) == "function" then
    for i = 1, #pg do lambdas[i] = o.lr_lambda end
  elseif type(o.lr_lambda) == "table" then
    if #o.lr_lambda ~= #pg then
      fail("LambdaLR", string.format("expected %d lr_lambdas, but got %d", #pg, #o.lr_lambda), 2)
    end
    for i, f in ipairs(o.lr_lambda) do
      if type(f) ~= "function" then fail("LambdaLR", string.format("lr_lambda[%d] must be a function", i), 2) end
      lambdas[i] = f
    end
  else
    fail("LambdaLR", "option 'lr_lambda' must be a function or a list of functions, got " .. describe(o.lr_lambda), 2)
  end
  local self = new_sched(LambdaLR, "LambdaLR", opt, o.last_epoch)
  self.lr_lambdas = lambdas
  self:_initial_step()
  return self
end
function LambdaLR:get_lr()
  local t = {}
  for i, base in ipairs(self.base_lrs) do t[i] = base * self.lr_lambdas[i](self.last_epoch) end
  return t
end

-- ---- StepLR ----
local StepLR = class("StepLR")
function M.StepLR(opt, opts)
  local o = options("StepLR", opts, { step_size = "required", gamma = 0.1, last_epoch = -1 })
  integer_opt("StepLR", o, "step_size", 1)
  number_opt("StepLR", o, "gamma", function(v) return v >= 0 end, "a number >= 0")
  local self = new_sched(StepLR, "StepLR", opt, o.last_epoch)
  self.step_size, self.gamma = o.step_size, o.gamma
  self:_initial_step()
  return self
end
function StepLR:get_lr()
  local lrs = group_lrs(self)
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs end
  for i, lr in ipairs(lrs) do lrs[i] = lr * self.gamma end
  return lrs
end
function StepLR:closed_form()
  local t = {}
  for i, base in ipairs(self.base_lrs) do t[i] = base * self.gamma ^ (self.last_epoch // self.step_size) end
  return t
end

-- ---- MultiStepLR ----
local MultiStepLR = class("MultiStepLR")
function M.MultiStepLR(opt, opts)
  local o = options("MultiStepLR", opts, { milestones = "required", gamma = 0.1, last_epoch = -1 })
  local ms = check_milestones("MultiStepLR", o.milestones, "milestones")
  number_opt("MultiStepLR", o, "gamma", function(v) return v >= 0 end, "a number >= 0")
  local self = new_sched(MultiStepLR, "MultiStepLR", opt, o.last_epoch)
  self.milestones, self.gamma = ms, o.gamma
  self:_initial_step()
  return self
end
local function count_in(list, v)
  local c = 0
  for _, m in ipairs(list) do if m == v then c = c + 1 end end
  return c
end
function MultiStepLR:get_lr()
  local lrs = group_lrs(self)
  local c = count_in(self.milestones, self.last_epoch)
  if c == 0 then return lrs end
  for i, lr in ipairs(lrs) do lrs[i] = lr * self.gamma ^ c end
  return lrs
end
function MultiStepLR:closed_form()
  local passed = 0
  for _, m in ipairs(self.milestones) do if m <= self.last_epoch then passed = passed + 1 end end
  local t = {}
  for i, base in ipairs(self.base_lrs) do t[i] = base * self.gamma ^ passed end
  return t
end

-- ---- ExponentialLR ----
local ExponentialLR = class("ExponentialLR")
function M.ExponentialLR(opt, opts)
  local o = options("ExponentialLR", opts, { gamma = "required", last_epoch = -1 })
  number_opt("ExponentialLR", o, "gamma", function(v) return v >= 0 end, "a number >= 0")
  local self = new_sched(ExponentialLR, "ExponentialLR", opt, o.last_epoch)
  self.gamma = o.gamma
  self:_initial_step()
  return self
end
function ExponentialLR:get_lr()
  local lrs = group_lrs(self)
  if self.last_epoch == 0 then return lrs end
  for i, lr in ipairs(lrs) do lrs[i] = lr * self.gamma end
  return lrs
end
function ExponentialLR:closed_form()
  local t = {}
  for i, base in ipairs(self.base_lrs) do t[i] = base * self.gamma ^ self.last_epoch end
  return t
end

-- ---- LinearLR ----
local LinearLR = class("LinearLR")
function M.LinearLR(opt, opts)
  local o = options("LinearLR", opts, { start_factor = 1.0 / 3, end_factor = 1.0, total_iters = 5, last_epoch = -1 })
  number_opt("LinearLR", o, "start_factor", function(v) return v > 0 and v <= 1 end, "in (0, 1]")
  number_opt("LinearLR", o, "end_factor", function(v) return v >= 0 and v <= 1 end, "in [0, 1]")
  integer_opt("LinearLR", o, "total_iters", 1)
  local self = new_sched(LinearLR, "LinearLR", opt, o.last_epoch)
  self.start_factor, self.end_factor, self.total_iters = o.start_factor, o.end_factor, o.total_iters
  self:_initial_step()
  return self
end
function LinearLR:get_lr()
  local lrs = group_lrs(self)
  if self.last_epoch == 0 then
    for i, lr in ipairs(lrs) do lrs[i] = lr * self.start_factor end
    return lrs
  end
  if self.last_epoch > self.total_iters then return lrs end
  local sf, ef = self.start_factor, self.end_factor
  for i, lr in ipairs(lrs) do
    lrs[i] = lr * (1.0 + (ef - sf) / (self.total_iters * sf + (self.last_epoch - 1) * (ef - sf)))
  end
  return lrs
end
function LinearLR:closed_form()
  local t = {}
  for i, base in ipairs(self.base_lrs) do
    t[i] = base * (self.start_factor + (self.end_factor - self.start_factor) *
      math.min(self.total_iters, self.last_epoch) / self.total_iters)
  end
  return t
end

-- ---- CosineAnnealingLR (the recursive form PyTorch steps with) ----
local CosineAnnealingLR = class("CosineAnnealingLR")
function M.CosineAnnealingLR(opt, opts)
  local o = options("CosineAnnealingLR", opts, { T_max = "required", eta_min = 0.0, last_epoch = -1 })
  integer_opt("CosineAnnealingLR", o, "T_max", 1)
  number_opt("CosineAnnealingLR", o, "eta_min", function(v) return v >= 0 end, "a number >= 0")
  local self = new_sched(CosineAnnealingLR, "CosineAnnealingLR", opt, o.last_epoch)
  self.T_max, self.eta_min = o.T_max, o.eta_min
  self:_initial_step()
  return self
end
function CosineAnnealingLR:get_lr()
  local e, T, eta = self.last_epoch, self.T_max, self.eta_min
  local lrs = group_lrs(self)
  if e == 0 then return lrs end
  if self._step_count == 1 and e > 0 then
    for i, base in ipairs(self.base_lrs) do lrs[i] = eta + (base - eta) * (1 + math.cos(e * math.pi / T)) / 2 end
    return lrs
  end
  if (e - 1 - T) % (2 * T) == 0 then
    for i, base in ipairs(self.base_lrs) do lrs[i] = lrs[i] + (base - eta) * (1 - math.cos(math.pi / T)) / 2 end
    return lrs
  end
  for i, lr in ipairs(lrs) do
    lrs[i] = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - eta) + eta
  end
  return lrs
end
function CosineAnnealingLR:closed_form()
  local t = {}
  for i, base in ipairs(self.base_lrs) do
    t[i] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
  end
  return t
end

-- ---- CosineAnnealingWarmRestarts ----
local CosineAnnealingWarmRestarts = class("CosineAnnealingWarmRestarts")
function M.CosineAnnealingWarmRestarts(opt, opts)
  local fname = "CosineAnnealingWarmRestarts"
  local o = options(fname, opts, { T_0 = "required", T_mult = 1, eta_min = 0.0, last_epoch = -1 })
  integer_opt(fname, o, "T_0", 1)
  integer_opt(fname, o, "T_mult", 1)
  number_opt(fname, o, "eta_min", function(v) return v >= 0 end, "a number >= 0")
  local self = new_sched(CosineAnnealingWarmRestarts, fname, opt, o.last_epoch)
  self.T_0, self.T_i, self.T_mult, self.eta_min, self.T_cur = o.T_0, o.T_0, o.T_mult, o.eta_min, o.last_epoch
  self:_initial_step()
  return self
end
function CosineAnnealingWarmRestarts:get_lr()
  local t = {}
  for i, base in ipairs(self.base_lrs) do
    t[i] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
  end
  return t
end
-- step([epoch]): epoch may be fractional (a batch's position within an epoch).
function CosineAnnealingWarmRestarts:step(epoch)
  self._step_count = (self._step_count or 0) + 1
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    if type(epoch) ~= "number" or epoch < 0 then
      fail("CosineAnnealingWarmRestarts.step", "expected a non-negative epoch, got " .. tostring(epoch), 2)
    end
    if epoch >= self.T_0 then
      if self.T_mult == 1 then
        self.T_cur = math.fmod(epoch, self.T_0)
      else
        local n = math.floor(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
        self.T_cur = epoch - self.T_0 * (self.T_mult ^ n - 1) / (self.T_mult - 1)
        self.T_i = self.T_0 * self.T_mult ^ n
      end
    else
      self.T_i = self.T_0
      self.T_cur = epoch
    end
  end
  self.last_epoch = math.floor(epoch)
  local values = self:get_lr()
  local pg = self.optimizer.param_groups
  for i, g in ipairs(pg) do g.lr = values[i] end
  self._last_lr = {}
  for i, g in ipairs(pg) do self._last_lr[i] = g.lr end
end

-- ---- OneCycleLR ----
local OneCycleLR = class("OneCycleLR")
function M.OneCycleLR(opt, opts)
  local fname = "OneCycleLR"
  local o = options(fname, opts, {
    max_lr = "required", total_steps = "none", epochs = "none", steps_per_epoch = "none", pct_start = 0.3,
    anneal_strategy = "cos", cycle_momentum = true, base_momentum = 0.85, max_momentum = 0.95, div_factor = 25.0,
    final_div_factor = 1e4, three_phase = false, last_epoch = -1 })
  local total
  if o.total_steps ~= nil then
    total = integer_opt(fname, o, "total_steps", 1)
  elseif o.epochs ~= nil and o.steps_per_epoch ~= nil then
    total = integer_opt(fname, o, "epochs", 1) * integer_opt(fname, o, "steps_per_epoch", 1)
  else
    fail(fname, "you must define either total_steps OR (epochs AND steps_per_epoch)", 2)
  end
  local pct = number_opt(fname, o, "pct_start", function(v) return v >= 0 and v <= 1 end, "in [0, 1]")
  if o.anneal_strategy ~= "cos" and o.anneal_strategy ~= "linear" then
    fail(fname, "option 'anneal_strategy' must be 'cos' or 'linear', got " .. tostring(o.anneal_strategy), 2)
  end
  local pg = param_groups(fname, opt)
  local function per_group(key)
    local v = o[key]
    if type(v) == "table" then
      if #v ~= #pg then fail(fname, string.format("expected %d values for %s, got %d", #pg, key, #v), 3) end
      return v
    end
    if type(v) ~= "number" then fail(fname, string.format("option '%s' must be a number or a list", key), 3) end
    local t = {}
    for i = 1, #pg do t[i] = v end
    return t
  end
  local max_lrs = per_group("max_lr")
  local use_beta1
  if o.cycle_momentum then
    local g = pg[1]
    if g.momentum == nil and g.betas == nil then
      fail(fname, string.format("the optimizer's param_groups have no 'momentum' or 'betas' (%s), which " ..
        "cycle_momentum needs (pass cycle_momentum = false)", describe(opt)), 2)
    end
    use_beta1 = g.momentum == nil
  end
  local max_m, base_m
  if o.cycle_momentum then max_m, base_m = per_group("max_momentum"), per_group("base_momentum") end
  if o.last_epoch == -1 then
    for i, g in ipairs(pg) do
      g.initial_lr = max_lrs[i] / o.div_factor
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / o.final_div_factor
      if o.cycle_momentum then
        if use_beta1 then g.betas = { max_m[i], g.betas[2] } else g.momentum = max_m[i] end
        g.max_momentum, g.base_momentum = max_m[i], base_m[i]
      end
    end
  end
  local self = new_sched(OneCycleLR, fname, opt, o.last_epoch)
  self.total_steps, self.cycle_momentum, self.use_beta1 = total, o.cycle_momentum, use_beta1 or false
  self.anneal_strategy = o.anneal_strategy
  if o.three_phase then
    self._schedule_phases = {
      { end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr",
        start_momentum = "max_momentum", end_momentum = "base_momentum" },
      { end_step = 2 * pct * total - 2, start_lr = "max_lr", end_lr = "initial_lr",
        start_momentum = "base_momentum", end_momentum = "max_momentum" },
      { end_step = total - 1, start_lr = "initial_lr", end_lr = "min_lr",
        start_momentum = "max_momentum", end_momentum = "max_momentum" },
    }
  else
    self._schedule_phases = {
      { end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr",
        start_momentum = "max_momentum", end_momentum = "base_momentum" },
      { end_step = total - 1, start_lr = "max_lr", end_lr = "min_lr",
        start_momentum = "base_momentum", end_momentum = "max_momentum" },
    }
  end
  self:_initial_step()
  return self
end
local function anneal(strategy, start, stop, pct)
  if strategy == "cos" then
    local cos_out = math.cos(math.pi * pct) + 1
    return stop + (start - stop) / 2.0 * cos_out
  end
  return (stop - start) * pct + start
end
function OneCycleLR:get_lr()
  local step_num = self.last_epoch
  if step_num > self.total_steps then
    fail("OneCycleLR.step", string.format("tried to step %d times; the specified number of total steps is %d",
      step_num + 1, self.total_steps), 3)
  end
  local lrs = {}
  local phases = self._schedule_phases
  for gi, group in ipairs(self.optimizer.param_groups) do
    local start_step, lr, mom = 0, nil, nil
    for i, phase in ipairs(phases) do
      local end_step = phase.end_step
      if step_num <= end_step or i == #phases then
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = anneal(self.anneal_strategy, group[phase.start_lr], group[phase.end_lr], pct)
        if self.cycle_momentum then
          mom = anneal(self.anneal_strategy, group[phase.start_momentum], group[phase.end_momentum], pct)
        end
        break
      end
      start_step = phase.end_step
    end
    lrs[gi] = lr
    if self.cycle_momentum then
      if self.use_beta1 then group.betas = { mom, group.betas[2] } else group.momentum = mom end
    end
  end
  return lrs
end

-- ---- SequentialLR ----
local SequentialLR = class("SequentialLR")
function M.SequentialLR(opt, opts)
  local fname = "SequentialLR"
  local o = options(fname, opts, { schedulers = "required", milestones = "required", last_epoch = -1 })
  local pg = param_groups(fname, opt)
  if type(o.schedulers) ~= "table" or #o.schedulers == 0 then fail(fname, "option 'schedulers' must be a list", 2) end
  for i, s in ipairs(o.schedulers) do
    if type(s) ~= "table" or s.optimizer ~= opt then
      fail(fname, string.format("expects all schedulers to belong to the same optimizer, but scheduler %d does not", i), 2)
    end
  end
  local ms = check_milestones(fname, o.milestones, "milestones")
  if #ms ~= #o.schedulers - 1 then
    fail(fname, string.format("expects one milestone fewer than schedulers, got %d schedulers and %d milestones",
      #o.schedulers, #ms), 2)
  end
  local self = setmetatable({}, SequentialLR)
  self._schedulers, self._milestones, self.optimizer = o.schedulers, ms, opt
  self.last_epoch = o.last_epoch + 1
  for _, g in ipairs(pg) do g.lr = g.initial_lr end
  for _, s in ipairs(self._schedulers) do s.last_epoch = s.last_epoch - 1 end
  self._schedulers[1]:_initial_step()
  self._last_lr = self._schedulers[1]:get_last_lr()
  return self
end
function SequentialLR:step()
  self.last_epoch = self.last_epoch + 1
  local idx = 0 -- bisect_right
  for _, m in ipairs(self._milestones) do if m <= self.last_epoch then idx = idx + 1 end end
  local s = self._schedulers[idx + 1]
  if idx > 0 and self._milestones[idx] == self.last_epoch then s:step(0) else s:step() end
  self._last_lr = s:get_last_lr()
end

-- ---- ReduceLROnPlateau ----
local ReduceLROnPlateau = class("ReduceLROnPlateau")
function M.ReduceLROnPlateau(opt, opts)
  local fname = "ReduceLROnPlateau"
  local o = options(fname, opts, { mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
    threshold_mode = "rel", cooldown = 0, min_lr = 0.0, eps = 1e-8 })
  local pg = param_groups(fname, opt)
  number_opt(fname, o, "factor", function(v) return v >= 0 and v < 1 end, "in [0, 1)")
  integer_opt(fname, o, "patience", 0)
  integer_opt(fname, o, "cooldown", 0)
  number_opt(fname, o, "threshold", function(v) return v >= 0 end, "a number >= 0")
  number_opt(fname, o, "eps", function(v) return v >= 0 end, "a number >= 0")
  if o.mode ~= "min" and o.mode ~= "max" then fail(fname, "mode " .. tostring(o.mode) .. " is unknown (min or max)", 2) end
  if o.threshold_mode ~= "rel" and o.threshold_mode ~= "abs" then
    fail(fname, "threshold mode " .. tostring(o.threshold_mode) .. " is unknown (rel or abs)", 2)
  end
  local min_lrs = {}
  if type(o.min_lr) == "table" then
    if #o.min_lr ~= #pg then fail(fname, string.format("expected %d min_lrs, got %d", #pg, #o.min_lr), 2) end
    for i, v in ipairs(o.min_lr) do min_lrs[i] = v end
  else
    number_opt(fname, o, "min_lr", function(v) return v >= 0 end, "a number >= 0 or a list")
    for i = 1, #pg do min_lrs[i] = o.min_lr end
  end
  local self = setmetatable({ optimizer = opt, factor = o.factor, min_lrs = min_lrs, patience = o.patience,
    cooldown = o.cooldown, cooldown_counter = 0, mode = o.mode, threshold = o.threshold,
    threshold_mode = o.threshold_mode, eps = o.eps, last_epoch = 0, num_bad_epochs = 0 }, ReduceLROnPlateau)
  self.best = o.mode == "min" and math.huge or -math.huge
  self._last_lr = group_lrs(self)
  return self
end
function ReduceLROnPlateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then return a < best * (1.0 - self.threshold) end
  if self.mode == "min" then return a < best - self.threshold end
  if self.threshold_mode == "rel" then return a > best * (self.threshold + 1.0) end
  return a > best + self.threshold
end
function ReduceLROnPlateau:step(metric)
  if type(metric) ~= "number" then
    fail("ReduceLROnPlateau.step", "expected the monitored metric (a number), got " .. describe(metric), 2)
  end
  self.last_epoch = self.last_epoch + 1
  if self:is_better(metric, self.best) then
    self.best, self.num_bad_epochs = metric, 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local old = g.lr
      local new = math.max(old * self.factor, self.min_lrs[i])
      if old - new > self.eps then g.lr = new end
    end
    self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
  end
  self._last_lr = group_lrs(self)
end

local opt_mod = selut.optim
if type(opt_mod) == "table" then opt_mod.lr_scheduler = M end
return M
