-- selut.Trainer: a training loop cut into pieces a host can afford. A game or
-- tool engine calls trainer:step(n) or trainer:step_for(ms) once per frame and
-- gets a progress table back; the loop state (epoch, batch iterator, running
-- losses) lives in the trainer between calls. Nothing here prints.
--
--   local tr = selut.Trainer{net = net, loss = nn.CrossEntropyLoss(), optim = opt,
--                            data = dataset, batch_size = 32, shuffle = true}
--   local p = tr:step_for(4)   -- whole batches while the next one fits in 4 ms
--   print(p.epoch, p.batch, p.loss)
--
-- Or as a whole run, with the library's pieces (docs/training.md):
--   selut.Trainer{..., epochs = 10, scheduler = sched, eval = function(tr) return {test_loss = ...} end,
--                 clip_grad_norm = 1.0, callbacks = {EarlyStopping{...}, Checkpoint{path = ...}}}:fit()
-- At the end of each epoch: eval (when given) -> the scheduler's epoch step
-- -> on_eval(tr, metrics) -> on_epoch_end(tr, metrics). After each batch:
-- the scheduler's step (scheduler_interval = "step") -> on_step_end(tr, info).
local selut = require "selut"
require "selut.lr_scheduler" -- sets selut.optim.lr_scheduler (this script is loaded eagerly)
require "selut.callbacks"    -- sets selut.callbacks and selut.checkpoint

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

local known = { net = 1, loss = 1, optim = 1, data = 1, batch_size = 1, shuffle = 1, drop_last = 1, epochs = 1,
                scheduler = 1, scheduler_interval = 1, scheduler_metric = 1, eval = 1, callbacks = 1,
                clip_grad_norm = 1, grad_scale = 1, optimizer_step = 1, stop_on_nonfinite = 1 }

local function new(opts)
  if type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'Trainer' (table expected, got %s)", describe(opts)), 2)
  end
  for k in pairs(opts) do
    if not known[k] then
      error(string.format("bad argument #1 to 'Trainer' (unknown field '%s' (expected net, loss, optim, data, " ..
        "batch_size, shuffle, drop_last, epochs, scheduler, scheduler_interval, scheduler_metric, eval, callbacks, " ..
        "clip_grad_norm, grad_scale, optimizer_step, stop_on_nonfinite))", tostring(k)), 2)
    end
  end
  if not has_methods(opts.net, "forward", "backward", "train") then
    fielderror("net", "must be a module with forward/backward/train, got " .. describe(opts.net))
  end
  if type(opts.loss) ~= "function" and not has_methods(opts.loss, "forward", "backward") then
    fielderror("loss", "must be a loss with forward/backward or a function (out, y) -> 1-element tensor " ..
      "(nn.F.cross_entropy), got " .. describe(opts.loss))
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
  local interval = opts.scheduler_interval or "epoch"
  if interval ~= "epoch" and interval ~= "step" then
    fielderror("scheduler_interval", "must be 'epoch' or 'step', got " .. tostring(interval))
  end
  if opts.scheduler ~= nil and not has_methods(opts.scheduler, "step", "state_dict", "load_state_dict") then
    fielderror("scheduler", "must be a scheduler (selut.optim.lr_scheduler), got " .. describe(opts.scheduler))
  end
  for _, f in ipairs { "eval", "grad_scale", "optimizer_step" } do
    if opts[f] ~= nil and type(opts[f]) ~= "function" then fielderror(f, "must be a function, got " .. describe(opts[f])) end
  end
  local callbacks = opts.callbacks or {}
  if type(callbacks) ~= "table" then fielderror("callbacks", "must be a list of callbacks, got " .. describe(callbacks)) end
  for i, cb in ipairs(callbacks) do
    if type(cb) ~= "table" then fielderror("callbacks", string.format("entry %d is a %s, expected a table", i, describe(cb))) end
  end
  local clip = opts.clip_grad_norm
  if clip ~= nil and (type(clip) ~= "number" or not (clip > 0)) then
    fielderror("clip_grad_norm", "must be a number > 0, got " .. tostring(clip))
  end
  return setmetatable({
    net = opts.net, loss = opts.loss, optim = opts.optim, data = data,
    batch_size = bs, shuffle = opts.shuffle ~= false, drop_last = opts.drop_last or false,
    epochs = epochs, scheduler = opts.scheduler, scheduler_interval = interval,
    scheduler_metric = opts.scheduler_metric, eval = opts.eval, callbacks = callbacks, clip_grad_norm = clip,
    grad_scale = opts.grad_scale, optimizer_step = opts.optimizer_step, stop_on_nonfinite = opts.stop_on_nonfinite,
    history = {}, stop_reason = nil,
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
    if self.epochs and self.epoch >= self.epochs then self.done = true end
    self:end_epoch()
    if self.done then return nil end
    if self.epochs and self.epoch >= self.epochs then
      self.done = true
      return nil
    end
    self.epoch = self.epoch + 1
    self.batch, self.epoch_loss_sum, self.epoch_loss = 0, 0, nil
  end
end

local function checkself(self, fname)
  if getmetatable(self) ~= Trainer then
    error(string.format("bad argument #1 to '%s' (selut.Trainer expected, got %s)", fname, describe(self)), 3)
  end
end

local function fire(self, event, ...)
  for _, cb in ipairs(self.callbacks) do
    local f = cb[event]
    if f then f(cb, self, ...) end
  end
end

local function check_finite(self, loss)
  if self.stop_on_nonfinite and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    error(string.format("non-finite training loss (%s) at epoch %d, batch %d", loss, self.epoch, self.batch + 1), 0)
  end
end

-- The gradients of one batch, two ways. A loss module (nn.CrossEntropyLoss)
-- takes the explicit path: forward, the loss's gradient, net:backward. A
-- loss function (nn.F.cross_entropy, or any f(out, y) returning a 1-element
-- tensor) takes the autograd path: net(x) records, loss:backward(). For C
-- layers both reach the same kernels and give the same bits. Returns the
-- loss as a number.
local function batch_gradients(self, x, y, n)
  local net, crit = self.net, self.loss
  if type(crit) == "function" then
    local lt = crit(net(x), y)
    if not (selut.tensor.is_tensor(lt) and lt:numel() == 1) then
      error("Trainer: the loss function must return a 1-element tensor, got " .. describe(lt), 0)
    end
    local loss = lt[1]
    check_finite(self, loss)
    if self.grad_scale then lt = lt * self.grad_scale(n) end
    lt:backward()
    return loss
  end
  local out = net:forward(x)
  local loss = crit:forward(out, y)
  check_finite(self, loss)
  local gy = crit:backward(out, y)
  if self.grad_scale then gy:mul_(self.grad_scale(n)) end
  net:backward(x, gy, false) -- x is data: no input gradient
  return loss
end

-- One optimization step on one batch; returns its loss or nil when done.
local function train_batch(self)
  local x, y = next_batch(self)
  if x == nil then return nil end
  local net, opt = self.net, self.optim
  opt:zero_grad()
  local n = selut.tensor.is_tensor(x) and #x or 0
  local loss = batch_gradients(self, x, y, n)
  if self.clip_grad_norm then self.last_grad_norm = selut.nn.utils.clip_grad_norm_(net, self.clip_grad_norm) end
  if self.optimizer_step then self.optimizer_step(opt, n) else opt:step() end
  self.steps = self.steps + 1
  self.batch = self.batch + 1
  self.samples = self.samples + n
  self.last_loss = loss
  self.epoch_loss_sum = self.epoch_loss_sum + loss
  self.epoch_loss = self.epoch_loss_sum / self.batch
  if self.scheduler and self.scheduler_interval == "step" then self.scheduler:step() end
  if #self.callbacks > 0 then
    fire(self, "on_step_end", { loss = loss, n = n, step = self.steps, epoch = self.epoch, batch = self.batch })
  end
  return loss
end

-- End of an epoch: eval, the scheduler's epoch step, then the callbacks.
function Trainer:end_epoch()
  local metrics = { epoch = self.epoch, train_loss = self.epoch_loss, steps = self.steps }
  local evaluated = false
  if self.eval then
    local m = self.eval(self)
    if type(m) ~= "table" then error("Trainer: eval must return a table of metrics, got " .. describe(m), 0) end
    for k, v in pairs(m) do metrics[k] = v end
    evaluated = true
    self.net:train()
  end
  if self.scheduler then
    metrics.lr = self.optim.param_groups and self.optim.param_groups[1].lr or self.optim.lr
    if self.scheduler_interval == "epoch" then
      if self.scheduler_metric then
        local v = metrics[self.scheduler_metric]
        if type(v) ~= "number" then
          error(string.format("Trainer: scheduler_metric '%s' is not among the epoch's metrics", self.scheduler_metric), 0)
        end
        self.scheduler:step(v)
      else
        self.scheduler:step()
      end
    end
  end
  self.last_metrics = metrics
  self.history[#self.history + 1] = metrics
  if evaluated then fire(self, "on_eval", metrics) end
  fire(self, "on_epoch_end", metrics)
  if self.stop_reason then self.done = true end
  return metrics
end

-- Ends the run after the current epoch's callbacks (EarlyStopping uses it).
function Trainer:stop(reason)
  self.stop_reason = reason or "stopped"
  self.done = true
end

-- Runs until the last epoch (or a stop); returns the history of epoch metrics.
function Trainer:fit()
  checkself(self, "fit")
  if not self.epochs then error("bad argument #1 to 'fit' (the trainer needs epochs= to fit)", 2) end
  self.net:train()
  while not self.done do
    if train_batch(self) == nil then break end
  end
  return self.history
end

-- Checkpoint of net + optimizer + scheduler + generator + epoch + the
-- trainer's counters and trainer.checkpoint_state (plain data, for the
-- script; back as info.state.user on resume) (selut.checkpoint), then
-- on_checkpoint(tr, path).
function Trainer:save_checkpoint(path, meta)
  local cb_state = {}
  for i, cb in ipairs(self.callbacks) do
    if cb.state_dict then cb_state[i] = cb:state_dict() end
  end
  local checkpoint = require "selut.checkpoint"
  checkpoint.save(path, { net = self.net, optimizer = self.optim, scheduler = self.scheduler, epoch = self.epoch,
    meta = meta, state = { steps = self.steps, samples = self.samples, callbacks = cb_state,
      user = self.checkpoint_state } })
  fire(self, "on_checkpoint", path, { epoch = self.epoch })
end

-- Continues from a checkpoint written at the end of an epoch: the next
-- batch is the first of the following epoch.
function Trainer:resume(path)
  checkself(self, "resume")
  local checkpoint = require "selut.checkpoint"
  local info = checkpoint.load(path, { net = self.net, optimizer = self.optim, scheduler = self.scheduler })
  if info.scheduler_missing then -- a version-1 file: the epoch schedule is replayed
    for _ = 1, info.epoch do self.scheduler:step() end
  end
  local st = info.state
  self.epoch, self.batch = info.epoch + 1, 0
  self.steps, self.samples = st.steps or 0, st.samples or 0
  self.epoch_loss_sum, self.epoch_loss, self.iter = 0, nil, nil
  self.done = self.epochs ~= nil and info.epoch >= self.epochs
  for i, cb in ipairs(self.callbacks) do
    if cb.load_state_dict and st.callbacks and st.callbacks[i] then cb:load_state_dict(st.callbacks[i]) end
  end
  return info
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
