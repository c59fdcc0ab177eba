-- Shared by tests/lua/*.lua:  local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
-- check(cond, msg)               fails the suite (with a traceback) when cond is false
-- checkerror(text, f, ...)       f(...) must raise an error whose message contains text (plain)
-- near(a, b, tol, msg)           |a - b| <= tol
-- tensor_near(x, want, tol, msg) x (tensor) elementwise within tol of want (tensor or nested table)
-- ref_close(got, want, what)    got within 1e-5 rel + 1e-6 abs of a PyTorch reference
local H = {}
H.selut = selut or require "selut"

function H.check(cond, msg)
  if not cond then error("check failed: " .. tostring(msg or "?"), 2) end
end

function H.checkerror(text, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error(string.format("expected an error containing %q, but the call succeeded", text), 2) end
  err = tostring(err)
  if not err:find(text, 1, true) then
    error(string.format("error message\n  %s\ndoes not contain\n  %s", err, text), 2)
  end
  return err
end

function H.near(a, b, tol, msg)
  if not (math.abs(a - b) <= tol) then
    error(string.format("check failed: %s: got %.9g, expected %.9g (tol %g)", msg or "near", a, b, tol), 2)
  end
end

local function flatten(v, out)
  if type(v) == "table" then
    for _, e in ipairs(v) do flatten(e, out) end
  else
    out[#out + 1] = v
  end
  return out
end
H.flatten = flatten

function H.tensor_near(x, want, tol, msg)
  local got = flatten(x:totable(), {})
  local exp = flatten(H.selut.tensor.is_tensor(want) and want:totable() or want, {})
  if #got ~= #exp then
    error(string.format("check failed: %s: %d elements, expected %d", msg or "tensor", #got, #exp), 2)
  end
  for i = 1, #got do
    if not (math.abs(got[i] - exp[i]) <= tol) then
      error(string.format("check failed: %s: element %d is %.9g, expected %.9g (tol %g)", msg or "tensor", i,
                          got[i], exp[i], tol), 2)
    end
  end
end

-- ref_close(got, want, what): got (tensor or number) matches a PyTorch
-- reference list (or number) to 1e-5 relative + 1e-6 absolute, the
-- tolerance of the generated references in tests/ref/
function H.ref_close(got, want, what)
  local g = flatten(H.selut.tensor.is_tensor(got) and got:totable() or { got }, {})
  want = type(want) == "table" and want or { want }
  if #g ~= #want then error(string.format("check failed: %s: %d elements, expected %d", what, #g, #want), 2) end
  for i = 1, #want do
    local tol = 1e-5 * math.abs(want[i]) + 1e-6
    if not (math.abs(g[i] - want[i]) <= tol) then
      error(string.format("%s[%d]: got %.9g, expected %.9g", what, i, g[i], want[i]), 2)
    end
  end
end

return H
