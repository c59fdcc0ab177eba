-- docs/api.md documents every public function and method: walk the selut
-- table and the metatables' method tables, and fail on anything missing.
-- Then run every ```lua block of the page (the examples must work).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, nn, optim = selut.tensor, selut.nn, selut.optim

local root = os.getenv("SELUT_ROOT") or (arg[0]:gsub("[^/]*$", "") .. "../..")
local f = assert(io.open(root .. "/docs/api.md"), "cannot open docs/api.md under " .. root)
local doc = f:read("a")
f:close()

local missing = {}
local function need(text)
  if not doc:find(text, 1, true) then missing[#missing + 1] = text end
end
-- a function is documented as "name(" or, when it takes a table, "name{"
local function need_call(name)
  if not doc:find(name .. "(", 1, true) and not doc:find(name .. "{", 1, true) then
    missing[#missing + 1] = name .. "("
  end
end

-- selut.* recursively: functions as "selut.a.b(", other values as "selut.a.b"
local seen = {}
local function walk(t, prefix)
  if seen[t] then return end
  seen[t] = true
  local keys = {}
  for k in pairs(t) do if type(k) == "string" and not k:find("^_") then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v, name = t[k], prefix .. k
    if type(v) == "function" then
      need_call(name)
    elseif type(v) == "table" then
      need(name)
      walk(v, name .. ".")
    else
      need(name)
    end
  end
end
walk(selut, "selut.")

-- methods: C method tables are the first table upvalue of __index (the
-- wrapper of bindings/lua_account.c puts its own two upvalues before it), Lua
-- ones are __index
local function methods_of(obj)
  local idx = getmetatable(obj).__index
  if type(idx) == "function" then
    for i = 1, 255 do
      local name, up = debug.getupvalue(idx, i)
      if name == nil then return nil end
      if type(up) == "table" then return up end
    end
  end
  return idx
end
local function need_methods(obj, prefix, seen_names)
  local t = methods_of(obj)
  H.check(type(t) == "table", "method table of " .. tostring(obj))
  local n = 0
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:find("^_") and not (seen_names or {})[k] then
      need_call(prefix .. k)
      n = n + 1
    end
  end
  return n
end
H.check(need_methods(T.zeros(1), "x:") > 20, "tensor methods found")
H.check(need_methods(nn.Linear(1, 1), "m:") >= 6, "layer methods found")
need_methods(nn.Sequential {}, "seq:", { forward = 1, backward = 1, parameters = 1, zero_grad = 1, train = 1, evaluate = 1 })
need_methods(nn.Module {}, "m:")
need_methods(nn.MSELoss(), "crit:")
need_methods(nn.CrossEntropyLoss(), "crit:")
H.check(need_methods(optim.SGD({ { param = T.zeros(1), grad = T.zeros(1) } }, { lr = 1 }), "opt:") >= 7, "optimizer methods found")
-- fields and operators
for _, s in ipairs { "opt.lr", "m.training", "m.weight", "m.bias", "#x", "x[i]", "#seq", "tostring(x)", "tostring(m)",
                     "x + y", "-x" } do need(s) end

if #missing > 0 then
  error("docs/api.md does not document:\n  " .. table.concat(missing, "\n  "))
end

-- run the examples
local n = 0
for block in doc:gmatch("```lua\n(.-)```") do
  n = n + 1
  local chunk, err = load(block, "=docs/api.md example " .. n)
  H.check(chunk, err)
  local saved = print
  print = function() end -- keep the test log quiet
  local ok, msg = pcall(chunk)
  print = saved
  if not ok then error("docs/api.md example " .. n .. " failed: " .. tostring(msg)) end
end
H.check(n >= 8, "examples found: " .. n)
