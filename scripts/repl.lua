-- The REPL's Lua half (the launcher, bindings/selut_main.c, reads lines with
-- readline and calls these): value printing (tensors show their values,
-- abbreviated by their own __tostring when large, plus one summary line;
-- tables print their fields) and tab completion.
local debug = require "debug"
local M = {}

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "selut.Tensor"
end

local function count_nan(x)
  local flat = x:reshape(x:numel())
  local n = 0
  for i = 1, x:numel() do
    local v = flat[i]
    if v ~= v then n = n + 1 end
  end
  return n
end

-- "shape 2x3  mean 0.1234  std 1.0021  min -2.1  max 3.3  nan 0"
function M.summary(x)
  local n = x:numel()
  local dims = table.concat(x:shape(), "x")
  if n == 0 then return string.format("[shape %s, empty]", dims) end
  local mean, lo, hi = x:mean(), x:min(), x:max()
  local std = n > 1 and x:std() or 0 / 0
  local nan = (mean ~= mean) and count_nan(x) or 0
  return string.format("[shape %s  mean %.6g  std %.6g  min %.6g  max %.6g  nan %d]",
                       dims, mean, std, lo, hi, nan)
end

local function format_table(t)
  local parts, n = {}, 0
  for k, v in pairs(t) do
    n = n + 1
    if n > 20 then parts[#parts + 1] = "..." break end
    local key = type(k) == "string" and k or ("[" .. tostring(k) .. "]")
    local val = is_tensor(v) and ("Tensor " .. table.concat(v:shape(), "x")) or
                (type(v) == "string" and string.format("%q", v) or tostring(v))
    parts[#parts + 1] = key .. " = " .. val
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function M.format(v)
  if is_tensor(v) then
    local ok, s = pcall(tostring, v)
    if not ok then return s end
    local ok2, summ = pcall(M.summary, v)
    return s .. "\n" .. (ok2 and summ or ("[summary unavailable: " .. tostring(summ) .. "]"))
  elseif type(v) == "table" and getmetatable(v) == nil then
    return format_table(v)
  end
  return tostring(v)
end

-- Tab completion (the launcher's readline hook calls it): the candidates
-- for text, the word before the cursor. Its last dotted name (a.b.c or a:b)
-- is completed by walking tables from _G with rawget (no user code runs),
-- then looking through the value's metatable: its __index table, or for a C
-- __index the first table among its upvalues (tensors keep their methods
-- there). Without a separator, Lua's keywords complete too.
local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
                  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

function M.complete(text)
  local matches, seen = {}, {}
  local sep = text:find("[.:][^.:]*$") -- the last separator
  local prefix, word = "", text
  local v = _G
  if sep then
    prefix, word = text:sub(1, sep), text:sub(sep + 1)
    if sep - 1 >= 256 then return matches end
    for name in text:sub(1, sep - 1):gmatch("[^.:]+") do
      if type(v) ~= "table" then return matches end
      v = rawget(v, name)
    end
  end
  local function add(key)
    if type(key) == "string" and key:sub(1, #word) == word and not seen[key] then
      seen[key] = true
      matches[#matches + 1] = prefix .. key
    end
  end
  local function keys(t) for k in next, t do add(k) end end
  if type(v) == "table" then keys(v) end
  local mt = debug.getmetatable(v)
  if mt then
    local index = mt.__index
    if type(index) == "table" then
      keys(index)
    elseif type(index) == "function" then
      for i = 1, math.huge do
        local name, up = debug.getupvalue(index, i)
        if name == nil then break end
        if type(up) == "table" then
          keys(up)
          break
        end
      end
    end
  end
  if not sep then for _, k in ipairs(KEYWORDS) do add(k) end end
  return matches
end

return M
