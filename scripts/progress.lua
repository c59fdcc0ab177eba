-- Progress reporting for training loops: a one-line bar redrawn in place on a
-- terminal (batches done, samples/s, running loss, ETA), or nothing but the
-- caller's own log lines when the stream is not a terminal.
--
--   local bar = progress.new{total = nbatches, label = "epoch 1/10", tty = true}
--   bar:update(done, {samples = s, loss = l}) ... bar:finish()
local M = {}
local Bar = {}
Bar.__index = Bar

local function clock()
  local selut = require "selut"
  return selut.clock()
end

local function fmt_time(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end
M.format_time = fmt_time

function M.new(opts)
  local self = setmetatable({}, Bar)
  self.total = assert(opts.total, "progress.new: total is required")
  self.label = opts.label or ""
  self.stream = opts.stream or io.stderr
  self.tty = opts.tty
  if self.tty == nil then
    local ok, selut = pcall(require, "selut")
    self.tty = ok and selut.sys and selut.sys.isatty(2) or false
  end
  self.width = opts.width or 24
  self.start = clock()
  self.last_draw = -1
  return self
end

function Bar:update(done, info)
  if not self.tty then return end
  local now = clock()
  if done < self.total and now - self.last_draw < 0.1 then return end -- at most 10 redraws/s
  self.last_draw = now
  local elapsed = now - self.start
  local frac = self.total > 0 and done / self.total or 1
  local filled = math.floor(frac * self.width + 0.5)
  local rate = info and info.samples and elapsed > 0 and info.samples / elapsed or nil
  local eta = frac > 0 and elapsed * (1 - frac) / frac or math.huge
  local parts = {string.format("\r%s [%s%s] %d/%d", self.label, string.rep("=", filled),
                               string.rep(" ", self.width - filled), done, self.total)}
  if rate then parts[#parts + 1] = string.format("%.0f samples/s", rate) end
  if info and info.loss then parts[#parts + 1] = string.format("loss %.4f", info.loss) end
  parts[#parts + 1] = "ETA " .. fmt_time(eta)
  self.stream:write(table.concat(parts, "  "), "\27[K")
  self.stream:flush()
end

function Bar:finish()
  if self.tty then
    self.stream:write("\r\27[K")
    self.stream:flush()
  end
  return clock() - self.start
end

return M
