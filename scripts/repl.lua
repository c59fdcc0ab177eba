-- REPL value printing: tensors show their values (abbreviated by their own
-- __tostring when large) plus one summary line; tables print their fields.
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

return M
