-- selut.checkpoint: a training checkpoint that a run resumes from bit for bit.
--
--   checkpoint.save(path, {net =, optimizer =, scheduler =, epoch =, meta = {k = "v"}, state = {k = v}})
--   local info = checkpoint.load(path, {net =, optimizer =, scheduler =})
--     --> {epoch =, meta = {...}, state = {...}, format_version =}
--
-- A checkpoint is two safetensors files: `path` holds the model with
-- PyTorch's state_dict names (loads with load_state_dict) and the metadata
-- `format_version`; `<path minus .safetensors>.state.safetensors` holds the
-- optimizer state tensors and, as metadata, the optimizer step and groups,
-- the scheduler state, the generator state, the epoch and the caller's
-- `state` table. Both carry the same `checkpoint_id`.
--
-- The pair is saved as one unit, with the model file's rename as the commit:
--   1. the state goes to `<base>.state.<id>.safetensors` (temporary file +
--      rename, as every selut.save);
--   2. the model goes to `path`, its metadata naming that state file
--      (`state_file`): from here on the new checkpoint is the one loaded;
--   3. the state file is renamed to `<base>.state.safetensors`.
-- load reads the state file the model names when it exists, else
-- `<base>.state.safetensors`. A crash before 2 leaves the previous pair
-- (its model names a state file already renamed in its own step 3, so the
-- previous `.state.safetensors`, untouched, is read); a crash between 2 and
-- 3 leaves the new model with its state under the id name. A pair that still
-- does not match (files copied by hand) is refused instead of mixed.
-- After step 3 no model names a staged file any more, so a complete save
-- removes the staged files that interrupted saves left beside it.
--
-- Format versions: 1 = the files examples/train.lua wrote before versions
-- existed (no format_version key; optimizer state tensors, step, epoch,
-- rng); 2 = this one. A newer version is refused before anything changes.
local selut = require "selut"

local M = {}
M.FORMAT_VERSION = 2

function M.state_path(path) return (path:gsub("%.safetensors$", "")) .. ".state.safetensors" end

-- Where save stages the state file of checkpoint `id` before the commit.
local function staged_path(spath, id)
  return (spath:gsub("%.safetensors$", "")) .. "." .. id:gsub("[^%w%-]", "_") .. ".safetensors"
end

-- Removes `<base>.state.<epoch>-<step>.safetensors` files beside spath:
-- called after a commit, when no model names one of them.
local function remove_stale_staged(spath)
  local dir, base = spath:match("^(.*/)([^/]*)$")
  if not dir then dir, base = "", spath end
  local stem = base:gsub("%.safetensors$", "")
  local ok, names = pcall(selut.sys.listdir, dir == "" and "." or dir)
  if not ok then return end -- a directory we may write but not read: leave it
  for _, name in ipairs(names) do
    local rest = name:sub(#stem + 2)
    if name:sub(1, #stem + 1) == stem .. "." and rest:match("^%d+%-%d+%.safetensors$") then os.remove(dir .. name) end
  end
end

-- ---- a small serializer for metadata values (plain data: numbers,
-- strings, booleans, nested tables) ----
local function ser(v, out)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    elseif v ~= v then
      out[#out + 1] = "0/0"
    elseif v == math.huge then
      out[#out + 1] = "1e999"
    elseif v == -math.huge then
      out[#out + 1] = "-1e999"
    else
      out[#out + 1] = string.format("%.17g", v)
      if not out[#out]:find("[%.eEn]") then out[#out] = out[#out] .. ".0" end -- stays a float
    end
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    out[#out + 1] = "{"
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    for _, k in ipairs(keys) do
      out[#out + 1] = "["
      ser(k, out)
      out[#out + 1] = "]="
      ser(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  else
    error("checkpoint: cannot store a " .. t .. " value", 0)
  end
  return out
end
function M._serialize(v) return table.concat(ser(v, {})) end

function M._deserialize(s, what)
  local f, err = load("return " .. s, "=" .. what, "t", {})
  if not f then error(string.format("checkpoint: %s is not readable (%s)", what, err), 0) end
  local ok, v = pcall(f)
  if not ok then error(string.format("checkpoint: %s is not readable (%s)", what, v), 0) end
  return v
end

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(s) return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end

local function new_id(epoch, step) -- deterministic: same run, same bytes
  return string.format("%d-%d", epoch or 0, step or 0)
end

-- save(path, parts): see the header. Writes the state file, then the model file.
function M.save(path, parts)
  if type(path) ~= "string" then error("checkpoint.save: path must be a string", 2) end
  if type(parts) ~= "table" or parts.net == nil then error("checkpoint.save: parts must be a table with net", 2) end
  local opt, sched = parts.optimizer, parts.scheduler
  local epoch = parts.epoch or 0
  local tensors, smeta = {}, {}
  local step = 0
  if opt then
    local sd = opt:state_dict()
    for name, t in pairs(sd.state) do tensors[name] = t end
    step = sd.step
    smeta.optimizer_type = sd.type
    smeta.step = tostring(sd.step)
    smeta.param_groups = M._serialize(sd.param_groups)
  end
  if sched then smeta.scheduler = M._serialize(sched:state_dict()) end
  local id = new_id(epoch, step)
  smeta.format_version = tostring(M.FORMAT_VERSION)
  smeta.checkpoint_id = id
  smeta.epoch = tostring(epoch)
  smeta.rng = hex(selut.sys.get_rng_state())
  if parts.state then smeta.state = M._serialize(parts.state) end
  local spath = M.state_path(path)
  local staged = staged_path(spath, id)
  selut.save(staged, tensors, smeta)
  if parts._stop_after == "state" then return id end -- tests: a crash before the commit
  local meta = { format_version = tostring(M.FORMAT_VERSION), checkpoint_id = id, epoch = tostring(epoch),
                 state_file = staged:match("[^/]*$") }
  for k, v in pairs(parts.meta or {}) do meta[k] = tostring(v) end
  selut.save(path, parts.net, meta)
  if parts._stop_after == "model" then return id end -- tests: a crash between the commit and the rename
  local ok, err = os.rename(staged, spath)
  if not ok then error("checkpoint.save: cannot rename " .. staged .. " to " .. spath .. ": " .. tostring(err), 0) end
  remove_stale_staged(spath)
  return id
end

-- The state file a model's metadata names (beside the model), if it exists;
-- else the usual name.
local function state_file_of(path, meta)
  local name = meta.state_file
  if type(name) == "string" and name:match("^[^/]+%.safetensors$") then
    local dir = path:match("^(.*/)") or ""
    local f = io.open(dir .. name, "rb")
    if f then
      f:close()
      return dir .. name
    end
  end
  return M.state_path(path)
end

local function check_version(meta, path)
  local v = meta.format_version
  if v == nil then return 1 end
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 then
    error(string.format("checkpoint: '%s' has format version '%s', which is not a version number (nothing was loaded)",
      path, tostring(v)), 0)
  end
  if n > M.FORMAT_VERSION then
    error(string.format("checkpoint: '%s' has format version %d, newer than the %d this selut %s reads; update " ..
      "selut to resume from it (nothing was loaded)", path, n, M.FORMAT_VERSION, selut.version), 0)
  end
  return n
end

-- load(path, parts) -> info. Checks both files' versions, the pair's id and
-- the optimizer and scheduler types before changing anything; then loads
-- the model (all names and shapes checked first), the optimizer, the
-- scheduler and the generator state.
function M.load(path, parts)
  if type(path) ~= "string" then error("checkpoint.load: path must be a string", 2) end
  parts = parts or {}
  local _, meta = selut.load(path)
  local version = check_version(meta, path)
  local spath = state_file_of(path, meta)
  local stensors, smeta = selut.load(spath)
  local sversion = check_version(smeta, spath)
  if version >= 2 or sversion >= 2 then
    if meta.checkpoint_id ~= smeta.checkpoint_id then
      error(string.format("checkpoint: '%s' and '%s' come from different saves (ids %s and %s): the pair was torn " ..
        "(nothing was loaded)", path, spath, tostring(meta.checkpoint_id), tostring(smeta.checkpoint_id)), 0)
    end
  end
  local opt, sched = parts.optimizer, parts.scheduler
  local osd
  if opt then
    if version >= 2 then
      if smeta.optimizer_type ~= opt.type then
        error(string.format("checkpoint: '%s' holds %s state, the optimizer is %s (nothing was loaded)", spath,
          tostring(smeta.optimizer_type), tostring(opt.type)), 0)
      end
      osd = { type = smeta.optimizer_type, step = math.tointeger(tonumber(smeta.step)) or 0, state = stensors,
              param_groups = M._deserialize(smeta.param_groups or "{}", spath .. " param_groups") }
    else -- version 1: state tensors, step; the groups stay as they are
      osd = opt:state_dict()
      osd.state, osd.step = stensors, math.tointeger(tonumber(smeta.step)) or 0
    end
  end
  local ssd
  if sched and not smeta.scheduler and version == 1 then
    sched = nil -- version 1 had no scheduler state: the caller replays it (info.scheduler_missing)
  elseif sched then
    if not smeta.scheduler then
      error(string.format("checkpoint: '%s' holds no scheduler state (nothing was loaded)", spath), 0)
    end
    ssd = M._deserialize(smeta.scheduler, spath .. " scheduler")
    if type(ssd) ~= "table" or ssd.type ~= sched.type then
      error(string.format("checkpoint: '%s' holds %s scheduler state, the scheduler is %s (nothing was loaded)", spath,
        type(ssd) == "table" and tostring(ssd.type) or "no", tostring(sched.type)), 0)
    end
  end
  if parts.net then selut.load(path, parts.net) end -- names and shapes checked before any copy
  if opt then opt:load_state_dict(osd) end
  if sched then sched:load_state_dict(ssd) end
  if smeta.rng then selut.sys.set_rng_state(unhex(smeta.rng)) end
  local state = smeta.state and M._deserialize(smeta.state, spath .. " state") or {}
  return { epoch = math.tointeger(tonumber(smeta.epoch or meta.epoch)) or 0, meta = meta, state_meta = smeta,
           state = state, format_version = version, scheduler_missing = parts.scheduler ~= nil and sched == nil }
end

selut.checkpoint = M
return M
