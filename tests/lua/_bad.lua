-- Shared by tests/lua/bad_input*.lua: bad(text, f, ...) asserts that f(...)
-- raises an error whose message contains text (plain), then that the state is
-- still healthy (tensor arithmetic works, the Lua stack and the collector are
-- fine). no_leak(f) runs a failing f 200 times and asserts the core's tensor
-- memory is back where it was after a collection (no leak on the error path).
-- done(min) removes the temporary directory and checks the count.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor
local B = { count = 0 }

local function healthy()
  local a = T.ones(3, 2)
  local s = (a * 2 + 1):sum()
  H.check(s == 18, "state unhealthy after an error: sum is " .. tostring(s))
  H.check(select("#", pcall(error)) == 2, "pcall broken")
end

function B.bad(text, f, ...)
  H.checkerror(text, f, ...)
  B.count = B.count + 1
  healthy()
end

-- A temporary directory removed by B.done().
B.dir = os.tmpname()
os.remove(B.dir)
selut.sys.mkdir(B.dir)
function B.file(name, bytes)
  local p = B.dir .. "/" .. name
  local f = assert(io.open(p, "wb"))
  f:write(bytes)
  f:close()
  return p
end

function B.no_leak(f)
  collectgarbage()
  local before = selut.memory()
  for _ = 1, 200 do H.check(not pcall(f), "no_leak: the call did not fail") end
  collectgarbage()
  local after = selut.memory()
  H.check(after == before, string.format("error path leaks: %d bytes before, %d after 200 failures", before, after))
end

function B.done(min)
  os.execute("rm -rf '" .. B.dir .. "'")
  H.check(B.count >= min, string.format("only %d bad inputs checked, expected at least %d", B.count, min))
end

return B
