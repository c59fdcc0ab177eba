-- selut.callbacks: hooks for selut.Trainer. A callback is any table with some
-- of the methods on_step_end(tr, info), on_epoch_end(tr, metrics),
-- on_eval(tr, metrics) and on_checkpoint(tr, path, info); the trainer calls
-- them in the order of its `callbacks` list. Two come with selut:
--
--   EarlyStopping{monitor = "test_loss", mode = "min", patience = 3, min_delta = 0[, path =]}
--     stops when the monitored metric has not improved by more than min_delta
--     for `patience` evaluations, and puts the best weights back (keeping a
--     copy in memory, and a checkpoint at `path` when given);
--   Checkpoint{path =[, every = 1][, best = {monitor =, mode =, path =}]}
--     saves net + optimizer + scheduler + generator + epoch (selut.checkpoint)
--     at the end of every `every`-th epoch, so Trainer:resume continues bit for bit.
local selut = require "selut"
local checkpoint = require "selut.checkpoint"

local M = {}

local function fail(fname, msg) error(string.format("%s: %s", fname, msg), 3) end

local function check_opts(fname, opts, known)
  if type(opts) ~= "table" then fail(fname, "options must be a table") end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      fail(fname, string.format("unknown option '%s' (expected %s)", tostring(k), table.concat(names, ", ")))
    end
  end
end

local function check_mode(fname, mode)
  if mode ~= "min" and mode ~= "max" then fail(fname, "mode must be 'min' or 'max', got " .. tostring(mode)) end
end

-- Every parameter and buffer tensor of net, in a stable order.
local function tensors_of(net)
  local list = {}
  for _, e in ipairs(net:parameters()) do list[#list + 1] = e.param end
  if net.buffers then
    for _, e in ipairs(net:buffers()) do list[#list + 1] = e.tensor end
  end
  return list
end

-- ---- EarlyStopping ----
local EarlyStopping = {}
EarlyStopping.__index = EarlyStopping
EarlyStopping.__name = "selut.callbacks.EarlyStopping"

function M.EarlyStopping(opts)
  local fname = "EarlyStopping"
  opts = opts or {}
  check_opts(fname, opts, { monitor = 1, mode = 1, patience = 1, min_delta = 1, path = 1, restore_best = 1 })
  local self = setmetatable({ monitor = opts.monitor or "test_loss", mode = opts.mode or "min",
    patience = opts.patience or 3, min_delta = opts.min_delta or 0, path = opts.path,
    restore_best = opts.restore_best ~= false, wait = 0, best = nil, best_epoch = nil, stopped_epoch = nil }, EarlyStopping)
  check_mode(fname, self.mode)
  if type(self.monitor) ~= "string" then fail(fname, "monitor must be a metric name (a string)") end
  if math.type(self.patience) ~= "integer" or self.patience < 0 then
    fail(fname, "patience must be an integer >= 0, got " .. tostring(self.patience))
  end
  if type(self.min_delta) ~= "number" or self.min_delta < 0 then
    fail(fname, "min_delta must be a number >= 0, got " .. tostring(self.min_delta))
  end
  return self
end

function EarlyStopping:improved(v)
  if self.best == nil then return true end
  if self.mode == "min" then return v < self.best - self.min_delta end
  return v > self.best + self.min_delta
end

function EarlyStopping:on_eval(tr, metrics)
  local v = metrics[self.monitor]
  if type(v) ~= "number" then
    local names = {}
    for k in pairs(metrics) do names[#names + 1] = tostring(k) end
    table.sort(names)
    error(string.format("EarlyStopping: the evaluation gave no metric '%s' (it gave %s)", self.monitor,
      table.concat(names, ", ")), 0)
  end
  if self:improved(v) then
    self.best, self.best_epoch, self.wait = v, metrics.epoch, 0
    local src = tensors_of(tr.net)
    if not self.saved then
      self.saved = {}
      for i, t in ipairs(src) do self.saved[i] = t:clone() end
    else
      for i, t in ipairs(src) do self.saved[i]:copy(t) end
    end
    if self.path then tr:save_checkpoint(self.path) end
    return
  end
  self.wait = self.wait + 1
  if self.wait >= self.patience then
    self.stopped_epoch = metrics.epoch
    if self.restore_best and self.saved then
      for i, t in ipairs(tensors_of(tr.net)) do t:copy(self.saved[i]) end
    end
    tr:stop(string.format("early stopping: %s did not improve for %d evaluations (best %.6g at epoch %s)",
      self.monitor, self.patience, self.best, tostring(self.best_epoch)))
  end
end

function EarlyStopping:__tostring()
  return string.format("EarlyStopping(%s %s, patience %d, best %s)", self.mode, self.monitor, self.patience,
    tostring(self.best))
end

-- ---- Checkpoint ----
local Checkpoint = {}
Checkpoint.__index = Checkpoint
Checkpoint.__name = "selut.callbacks.Checkpoint"

function M.Checkpoint(opts)
  local fname = "Checkpoint"
  check_opts(fname, opts, { path = 1, every = 1, best = 1, meta = 1 })
  if type(opts.path) ~= "string" then fail(fname, "path must be a string (the .safetensors file)") end
  local every = opts.every or 1
  if math.type(every) ~= "integer" or every < 1 then fail(fname, "every must be an integer >= 1") end
  local best = opts.best
  if best ~= nil then
    if type(best) ~= "table" or type(best.monitor) ~= "string" or type(best.path) ~= "string" then
      fail(fname, "best must be {monitor =, path =[, mode =]}")
    end
    check_mode(fname, best.mode or "max")
  end
  return setmetatable({ path = opts.path, every = every, best = best, meta = opts.meta, best_value = nil }, Checkpoint)
end

function Checkpoint:on_epoch_end(tr, metrics)
  if self.best then
    local v, mode = metrics[self.best.monitor], self.best.mode or "max"
    if type(v) == "number" and (self.best_value == nil or (mode == "max" and v > self.best_value) or
        (mode == "min" and v < self.best_value)) then
      self.best_value, self.best_epoch = v, metrics.epoch
      tr:save_checkpoint(self.best.path, self.meta and self.meta(tr, metrics))
    end
  end
  if metrics.epoch % self.every == 0 or tr.done then
    tr:save_checkpoint(self.path, self.meta and self.meta(tr, metrics))
  end
end

selut.callbacks = M
return M
