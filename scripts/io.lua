-- selut.save / selut.load, the Lua half: what a checkpoint holds. The C
-- functions (bindings/lua_io.c) do the file I/O; before it they call
-- collect(), which walks the net's parameters() and buffers() lists (or the
-- table of tensors), the formats and the metadata into flat lists. A bad
-- argument comes back as (nil, argument number, message) and the C function
-- raises it as its own "bad argument #n to 'save'", so the message names the
-- function as the caller called it, exactly as before.
--
-- collect(target, is_net, formats, meta, is_open, call)
--   -> {name, tensor, format, ...}, {key, value, ...}
-- is_open(v): v is an open selut.Tensor; call(f, x): f(x) called from C (a
-- value that cannot be called raises C's plain "attempt to call" message).
-- Formats are core/io/io.h's SL_ST_F32 (0), SL_ST_I64 (1), | SL_ST_SCALAR.
local selut = require "selut"
local T = selut.tensor

local F32, I64, SCALAR = 0, 1, 0x100
local MAX = 1000000
local fail_mt = {}

local function fail(arg, msg, ...) error(setmetatable({arg = arg, msg = string.format(msg, ...)}, fail_mt), 0) end

-- What lua_pushfstring's %s shows of a string: up to its first NUL byte.
local function cstr(s) return (s:match("^[^\0]*")) end

-- strcmp's order (the < operator on strings follows the locale).
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A name as lua_tolstring reads it (numbers become strings), or nil; ok
-- when it is a non-empty string without NUL bytes.
local function name_of(v)
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then return nil, false end
  return v, #v > 0 and not v:find("\0", 1, true)
end

-- f(x) must return a list; its length, checked.
local function call_list(call, f, x, arg, method, max)
  local list = call(f, x)
  if type(list) ~= "table" then fail(arg, "%s() returned a %s, expected a list", method, type(list)) end
  local len = #list
  if len > max then fail(arg, "too many %s", method) end
  return list, len
end

-- The storage format in e ({dtype = "F32" | "I64", scalar = true}, either optional).
local function read_format(e, arg, what)
  local fmt, d = F32, e.dtype
  local s = type(d) == "string" and cstr(d) -- compared as C strings
  if s == "I64" then
    fmt = I64
  elseif d ~= nil and s ~= "F32" then
    -- (a number dtype reads as "string": lua_tostring converted it in place)
    fail(arg, "%s has dtype %s, expected \"F32\" or \"I64\"", what, s or type(d) == "number" and "string" or type(d))
  end
  if e.scalar then fmt = fmt | SCALAR end
  return fmt
end

-- Entry i of a parameters() or buffers() list ("parameter" / "buffer"):
-- its name, checked, and the open tensor in its field.
local function entry(e, i, arg, what, field, expected, is_open)
  if type(e) ~= "table" then fail(arg, "%s %d is a %s, expected %s", what, i, type(e), expected) end
  local name, ok = name_of(e.name)
  if not ok then
    fail(arg, "%s %d has %s name (a non-empty string without NUL bytes expected)", what, i, name and "an invalid" or "no")
  end
  local t = e[field]
  if not is_open(t) then fail(arg, "%s %d ('%s') has no open tensor '%s'", what, i, name, field) end
  return name, t
end

local function net_entries(net, arg, is_open, call, out)
  local list, len = call_list(call, net.parameters, net, arg, "parameters", MAX)
  for i = 1, len do
    local name, p = entry(list[i], i, arg, "parameter", "param", "{param=, name=}", is_open)
    out[#out + 1], out[#out + 2], out[#out + 3] = name, p, F32
  end
  local buffers = net.buffers
  if buffers == nil then return end
  list, len = call_list(call, buffers, net, arg, "buffers", MAX - #out // 3)
  for i = 1, len do
    local e = list[i]
    local name, t = entry(e, i, arg, "buffer", "tensor", "{tensor=, name=}", is_open)
    local fmt = read_format(e, arg, string.format("buffer %d ('%s')", i, name))
    out[#out + 1], out[#out + 2], out[#out + 3] = name, t, fmt
  end
end

-- A table name -> tensor, sorted by name.
local function table_entries(t, arg, is_open, out)
  local names, tensors = {}, {}
  for k, v in next, t do
    if type(k) ~= "string" then fail(arg, "table keys must be tensor names (strings), got a %s key", type(k)) end
    if not is_open(v) then
      fail(arg, "value of '%s' is %s, expected an open selut.Tensor", cstr(k),
           T.is_tensor(v) and "a closed selut.Tensor" or type(v))
    end
    if not select(2, name_of(k)) then fail(arg, "tensor names must be non-empty strings without NUL bytes") end
    names[#names + 1] = k
    tensors[k] = v
    if #names > MAX then fail(arg, "too many tensors") end
  end
  table.sort(names, before)
  for _, k in ipairs(names) do out[#out + 1], out[#out + 2], out[#out + 3] = k, tensors[k], F32 end
end

-- save(path, t, metadata, formats): formats[name] = {dtype=, scalar=} for
-- tensors of the table (what load(path) returns third).
local function apply_formats(formats, arg, is_net, out)
  if is_net then fail(arg, "formats are for a table of tensors (a net's buffers() give theirs)") end
  for k, v in next, formats do
    if type(k) ~= "string" then fail(arg, "formats keys must be tensor names (strings), got a %s key", type(k)) end
    local name = cstr(k)
    if type(v) ~= "table" then fail(arg, "format of '%s' is a %s, expected {dtype=, scalar=}", name, type(v)) end
    local i = 1
    while i <= #out and out[i] ~= name do i = i + 3 end
    if i > #out then fail(arg, "formats name '%s', which is not in the table", name) end
    out[i + 2] = read_format(v, arg, string.format("format of '%s'", name))
  end
end

-- Metadata: string keys, string or number values (numbers as tostring()
-- writes them), sorted by key: pairs() order is arbitrary, the file's is not.
local function metadata(meta, arg)
  local keys, values = {}, {}
  for k, v in next, meta do
    if type(k) ~= "string" then fail(arg, "metadata keys must be strings, got a %s key", type(k)) end
    if type(v) ~= "string" and type(v) ~= "number" then
      fail(arg, "metadata value of '%s' is a %s, expected a string or number", cstr(k), type(v))
    end
    v = tostring(v)
    if k:find("\0", 1, true) or v:find("\0", 1, true) then
      fail(arg, "metadata entry '%s' contains a NUL byte", cstr(k))
    end
    keys[#keys + 1] = k
    values[k] = v
  end
  table.sort(keys, before)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1], out[#out + 2] = k, values[k] end
  return out
end

-- The argument numbers are save's and load's: 2 the target, 3 the
-- metadata, 4 the formats.
local function walk(target, is_net, formats, meta, is_open, call)
  local out = {}
  if is_net then net_entries(target, 2, is_open, call, out) else table_entries(target, 2, is_open, out) end
  if formats ~= nil then apply_formats(formats, 4, is_net, out) end
  return out, meta ~= nil and metadata(meta, 3) or {}
end

local M = {}

function M.collect(...)
  local ok, a, b = pcall(walk, ...)
  if ok then return a, b end
  if getmetatable(a) == fail_mt then return nil, a.arg, a.msg end
  error(a, 0) -- the net's own error (from parameters() or buffers()), unchanged
end

return M
