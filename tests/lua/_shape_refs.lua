-- Shared by ops_shape.lua, ops_index.lua and ops_matmul.lua: runs the cases of
-- one group of tests/ref/shape_refs.lua (made by tests/ref/gen_shape_refs.py
-- with PyTorch). Each case is a Lua expression over the named inputs and
-- PyTorch's result: exact cases must match bit for bit, the others to 1e-6
-- relative (plus 1e-6 absolute for sums that cancel).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/shape_refs.lua")

local env = setmetatable({ selut = selut, T = T }, { __index = _G })
for name, r in pairs(refs.inputs) do env[name] = T.new(r.data):view(r.shape) end

-- the reference's 9 significant digits, rounded to the float32 they name
local function f32(x) return (string.unpack("f", string.pack("f", x))) end

local function compare(got, want, exact, what)
  H.check(T.is_tensor(got), what .. ": a tensor expected, got " .. type(got))
  local shape = got:shape()
  H.check(#shape == #want.shape, what .. ": " .. #shape .. " dims, expected " .. #want.shape)
  for i = 1, #shape do
    H.check(shape[i] == want.shape[i], string.format("%s: size %d of dim %d, expected %d", what, shape[i], i, want.shape[i]))
  end
  local flat = got:numel() > 0 and got:reshape(got:numel()):totable() or {}
  H.check(#flat == #want.data, what .. ": element count")
  for i, w in ipairs(want.data) do
    local g = flat[i]
    w = f32(w)
    local ok
    if exact then
      ok = g == w or (g ~= g and w ~= w)
    else
      ok = math.abs(g - w) <= 1e-6 * math.abs(w) + 1e-6
    end
    if not ok then error(string.format("%s: element %d is %.9g, PyTorch gives %.9g", what, i, g, w), 3) end
  end
end

return function(group)
  local n = 0
  for _, c in ipairs(refs.cases) do
    if c.group == group then
      local f = assert(load("return " .. c.expr, "=" .. c.expr, "t", env))
      local got = f()
      if c.want.list then
        H.check(type(got) == "table" and #got == #c.want.list,
                string.format("%s: %d pieces expected, got %s", c.expr, #c.want.list, type(got) == "table" and #got or type(got)))
        for i, w in ipairs(c.want.list) do compare(got[i], w, c.exact, c.expr .. " piece " .. i) end
      else
        compare(got, c.want, c.exact, c.expr)
      end
      n = n + 1
    end
  end
  H.check(n > 0, "no cases for group " .. group)
  return n, env
end
