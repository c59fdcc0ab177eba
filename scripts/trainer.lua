-- selut.Trainer: a training loop cut into pieces a host can afford. A game or
-- tool engine calls trainer:step(n) or trainer:step_for(ms) once per frame and
-- gets a progress table back; the loop state (epoch, batch iterator, running
-- losses) lives in the trainer between calls. Nothing here prints.
--
--   local tr = selut.Trainer{net = net, loss = nn.CrossEntropyLoss(), optim = opt,
--                            data = dataset, batch_size = 32, shuffle = true}
--   local p = tr:step_for(4)   -- whole batches while the next one fits in 4 ms
--   print(p.epoch, p.batch, p.loss)
local selut = require "selut"
require "selut.lr_scheduler" -- sets selut.optim.lr_scheduler (this script is loaded eagerly)

local Trainer = {}
Trainer.__index = Trainer
Trainer.__name = "selut.Trainer"

local clock = selut.clock

local function fielderror(field, msg)
  error(string.format("bad argument #1 to 'Trainer' (field '%s' %s)", field, msg), 3)
end

local function has_methods(v, ...)
  local t = type(v)
  if t ~= "table" and t ~= "userdata" then return false end
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    if type(v[name]) ~= "function" then return false end
  end
  return true
end

local function describe(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

local known = { net = 1, loss = 1, optim = 1, data = 1, batch_size = 1, shuffle = 1, drop_last = 1, epochs = 1 }

local function new(opts)
  if type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'Trainer' (table expected, got %s)", describe(opts)), 2)
  end
  for k in pairs(opts) do
    if not known[k] then
      error(string.format("bad argument #1 to 'Trainer' (unknown field '%s' (expected net, loss, optim, data, " ..
        "batch_size, shuffle, drop_last, epochs))", tostring(k)), 2)
    end
  end
  if not has_methods(opts.net, "forward", "backward", "train") then
    fielderror("net", "must be a module with forward/backward/train, got " .. describe(opts.net))
  end
  if not has_methods(opts.loss, "forward", "backward") then
    fielderror("loss", "must be a loss with forward/backward, got " .. describe(opts.loss))
  end
  if not has_methods(opts.optim, "step", "zero_grad") then
    fielderror("optim", "must be an optimizer with step/zero_grad, got " .. describe(opts.optim))
  end
  local data = opts.data
  if type(data) ~= "function" and not has_methods(data, "batches") then
    fielderror("data", "must be a dataset (with :batches) or a function returning x, y, got " .. describe(data))
  end
  local bs = opts.batch_size or 32
  if math.type(bs) ~= "integer" or bs < 1 then
    fielderror("batch_size", "must be a positive integer, got " .. tostring(bs))
  end
  local epochs = opts.epochs
  if epochs ~= nil and (math.type(epochs) ~= "integer" or epochs < 1) then
    fielderror("epochs", "must be a positive integer or nil, got " .. tostring(epochs))
  end
  for _, f in ipairs { "shuffle", "drop_last" } do
    if opts[f] ~= nil and type(opts[f]) ~= "boolean" then
      fielderror(f, "must be a boolean, got " .. describe(opts[f]))
    end
  end
  return setmetatable({
    net = opts.net, loss = opts.loss, optim = opts.optim, data = data,
    batch_size = bs, shuffle = opts.shuffle ~= false, drop_last = opts.drop_last or false,
    epochs = epochs,
    steps = 0, samples = 0, epoch = 1, batch = 0, last_loss = nil,
    epoch_loss_sum = 0, epoch_loss = nil, batch_seconds = nil,
    iter = nil, done = false,
  }, Trainer)
end

-- Next (x, y) batch, starting a new epoch when one runs out; nil when done.
local function next_batch(self)
  for _ = 1, 2 do
    local x, y
    if type(self.data) == "function" then
      x, y = self.data(self)
    else
      if not self.iter then
        self.iter, self.iter_s, self.iter_c, self.iter_close =
          self.data:batches(self.batch_size, { shuffle = self.shuffle, drop_last = self.drop_last })
      end
      x, y = self.iter(self.iter_s, self.iter_c)
    end
    if x ~= nil then return x, y end
    -- end of an epoch
    self.iter, self.iter_s, self.iter_c, self.iter_close = nil, nil, nil, nil
    if self.batch == 0 then
      error("Trainer: the data produced no batch in a whole epoch", 3)
    end
    if self.epochs and self.epoch >= self.epochs then
      self.done = true
      return nil
    end
    self.epoch = self.epoch + 1
    self.batch, self.epoch_loss_sum, self.epoch_loss = 0, 0, nil
  end
end

-- One optimization step on one batch; returns its loss or nil when done.
local function train_batch(self)
  local x, y = next_batch(self)
  if x == nil then return nil end
  local net, crit, opt = self.net, self.loss, self.optim
  opt:zero_grad()
  local out = net:forward(x)
  local loss = crit:forward(out, y)
  net:backward(x, crit:backward(out, y), false) -- x is data: no input gradient
  opt:step()
  self.steps = self.steps + 1
  self.batch = self.batch + 1
  self.samples = self.samples + (selut.tensor.is_tensor(x) and #x or 0)
  self.last_loss = loss
  self.epoch_loss_sum = self.epoch_loss_sum + loss
  self.epoch_loss = self.epoch_loss_sum / self.batch
  return loss
end

local function progress(self, ran, loss_sum, elapsed)
  return {
    ran = ran, elapsed = elapsed or 0,
    mean_loss = ran > 0 and loss_sum / ran or nil,
    loss = self.last_loss, epoch_loss = self.epoch_loss,
    steps = self.steps, samples = self.samples, epoch = self.epoch, batch = self.batch,
    done = self.done,
  }
end

local function checkself(self, fname)
  if getmetatable(self) ~= Trainer then
    error(string.format("bad argument #1 to '%s' (selut.Trainer expected, got %s)", fname, describe(self)), 3)
  end
end

function Trainer:step(n)
  checkself(self, "step")
  if n == nil then n = 1 end
  if math.type(n) ~= "integer" or n < 0 then
    error(string.format("bad argument #1 to 'step' (number of batches must be a non-negative integer, got %s)",
      tostring(n)), 2)
  end
  self.net:train()
  local t0, ran, sum = clock(), 0, 0
  while ran < n and not self.done do
    local loss = train_batch(self)
    if loss == nil then break end
    ran, sum = ran + 1, sum + loss
  end
  return progress(self, ran, sum, clock() - t0)
end

-- Whole batches while the next one is predicted (from a running average of
-- batch times) to end within ms milliseconds; at least one when ms > 0.
function Trainer:step_for(ms)
  checkself(self, "step_for")
  if type(ms) ~= "number" or ms ~= ms or ms < 0 then
    error(string.format("bad argument #1 to 'step_for' (milliseconds must be a number >= 0, got %s)",
      tostring(ms)), 2)
  end
  self.net:train()
  local t0, ran, sum = clock(), 0, 0
  local budget = ms / 1000
  while not self.done do
    local now = clock()
    local predicted = self.batch_seconds or 0
    if ran > 0 and now - t0 + predicted > budget then break end
    if ran == 0 and budget <= 0 then break end
    local loss = train_batch(self)
    if loss == nil then break end
    local dt = clock() - now
    self.batch_seconds = self.batch_seconds and 0.8 * self.batch_seconds + 0.2 * dt or dt
    ran, sum = ran + 1, sum + loss
  end
  return progress(self, ran, sum, clock() - t0)
end

-- The counters as they stand, without training.
function Trainer:progress()
  checkself(self, "progress")
  return progress(self, 0, 0, 0)
end

function Trainer:__tostring()
  return string.format("selut.Trainer(epoch %d, batch %d, %d steps%s)", self.epoch, self.batch, self.steps,
    self.done and ", done" or "")
end

selut.Trainer = new
return Trainer
