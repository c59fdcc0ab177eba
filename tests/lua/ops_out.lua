-- The out= option: each op writing into a caller's tensor gives the same
-- bits as the op's fresh result (binary ops with broadcasting and numbers,
-- unary math, reductions along a dim with keepdim both ways, softmax, cat,
-- permute), returns that very tensor, may be the input itself where the op
-- allows it, and runs at 1 and 2 threads with the same bits. Bad uses are in
-- tests/lua/bad_input_out.lua.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor

local function bits(t)
  local flat = {}
  for i, v in ipairs(H.flatten(t:totable(), {})) do flat[i] = string.pack("f", v) end
  return table.concat(flat)
end

local function same(got, want, what)
  H.check(#got:shape() == #want:shape(), what .. ": rank")
  for d = 1, #want:shape() do H.check(got:size(d) == want:size(d), what .. ": size of dim " .. d) end
  H.check(bits(got) == bits(want), what .. ": bits differ from the fresh result")
end

local function empty_like(t) return T.zeros(table.unpack(t:shape())) end

-- op(out_table) must return out and hold the bits of fresh()
local function check_out(what, fresh, op)
  local want = fresh()
  local out = empty_like(want):fill_(7)
  local r = op({out = out})
  H.check(rawequal(r, out), what .. ": out= returns the out tensor itself")
  same(out, want, what)
end

selut.manual_seed(3)
local x = T.randn(4, 3)
x[1][2] = 0 / 0 -- NaN travels through every op
local shapes = { {4, 3}, {3}, {4, 1}, {1, 3}, {1} }
local binary = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"}
for _, threads in ipairs {1, 2} do
  selut.set_num_threads(threads)
  for _, name in ipairs(binary) do
    for _, s in ipairs(shapes) do
      local y = T.randn(table.unpack(s))
      local tag = string.format("%s [4 x 3] with [%s] at %d threads", name, table.concat(s, " x "), threads)
      check_out(tag, function() return selut[name](x, y) end, function(o) return selut[name](x, y, o) end)
      check_out(tag .. " (method)", function() return x[name](x, y) end, function(o) return x[name](x, y, o) end)
      check_out(tag .. " (reversed)", function() return selut[name](y, x) end, function(o) return selut[name](y, x, o) end)
    end
    check_out(name .. " with a number", function() return selut[name](x, 1.5) end,
              function(o) return selut[name](x, 1.5, o) end)
    check_out(name .. " number first", function() return selut[name](-2, x) end,
              function(o) return selut[name](-2, x, o) end)
  end
  for _, name in ipairs {"neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh", "sigmoid",
                         "sin", "cos", "floor", "ceil", "round"} do
    check_out(name, function() return x[name](x) end, function(o) return x[name](x, o) end)
    check_out(name .. " (function)", function() return selut[name](x) end, function(o) return selut[name](x, o) end)
  end
  for _, name in ipairs {"sum", "mean", "prod", "var", "std", "argmax", "argmin", "logsumexp"} do
    for _, d in ipairs {1, 2, -1} do
      for _, keep in ipairs {false, true} do
        local tag = string.format("%s(%d, keepdim=%s)", name, d, tostring(keep))
        check_out(tag, function() return x[name](x, d, keep) end,
                  function(o) o.keepdim = keep return x[name](x, d, o) end)
      end
    end
  end
  check_out("var unbiased=false", function() return x:var(2, {unbiased = false}) end,
            function(o) o.unbiased = false return x:var(2, o) end)
  check_out("norm(1, 2)", function() return x:norm(1, 2) end, function(o) return x:norm(1, 2, o) end)
  for _, d in ipairs {1, 2} do
    check_out("softmax " .. d, function() return x:softmax(d) end, function(o) return x:softmax(d, o) end)
    check_out("log_softmax " .. d, function() return selut.log_softmax(x, d) end,
              function(o) return selut.log_softmax(x, d, o) end)
  end
  local a, b = T.randn(2, 3, 4), T.randn(2, 5, 4)
  check_out("cat dim 2", function() return selut.cat({a, b, a}, 2) end, function(o) return selut.cat({a, b, a}, 2, o) end)
  check_out("cat dim -1", function() return selut.cat({a, a}, -1) end, function(o) return selut.cat({a, a}, -1, o) end)
  check_out("cat legacy empty", function() return selut.cat({T.zeros(0), a}, 1) end,
            function(o) return selut.cat({T.zeros(0), a}, 1, o) end)
  check_out("permute 3-D", function() return a:permute(3, 1, 2) end, function(o) return a:permute(3, 1, 2, o) end)
  check_out("permute list", function() return a:permute({2, 3, 1}) end, function(o) return a:permute({2, 3, 1}, o) end)
  local big = T.randn(70, 45) -- several transpose tiles and a ragged edge
  check_out("permute 2-D", function() return big:permute(2, 1) end, function(o) return big:permute(2, 1, o) end)
end
selut.set_num_threads(1)

-- out may be the input itself for elementwise ops and softmax (in place)
local y = x:clone()
local want = x:exp()
H.check(rawequal(y:exp({out = y}), y), "exp into its own input returns it")
same(y, want, "exp into its own input")
y = x:clone()
want = x + T.ones(3)
selut.add(y, T.ones(3), {out = y})
same(y, want, "add broadcast into its own first input")
y = x:clone()
want = x:softmax(2)
y:softmax(2, {out = y})
same(y, want, "softmax into its own input")

-- big enough for the thread pool (4M floats): same values at 1
-- and 2 threads (no NaN here: ne counts every differing element)
local function eqt(a, b) return a:ne(b):sum() == 0 end
local n = 1 << 22
local u, v = T.randn(n // 1024, 1024), T.randn(1024)
local o1, o2 = T.zeros(n // 1024, 1024), T.zeros(n // 1024, 1024)
for _, op in ipairs {"add", "mul", "maximum"} do
  selut.set_num_threads(1)
  selut[op](u, v, {out = o1})
  selut.set_num_threads(2)
  selut[op](u, v, {out = o2})
  H.check(eqt(o1, o2), op .. ": 1 and 2 threads differ")
  H.check(eqt(o2, selut[op](u, v)), op .. " large: out= differs from the fresh result")
end
for _, op in ipairs {"exp", "tanh", "sigmoid", "abs"} do
  selut.set_num_threads(1)
  u[op](u, {out = o1})
  selut.set_num_threads(2)
  u[op](u, {out = o2})
  H.check(eqt(o1, o2), op .. " large: 1 and 2 threads differ")
  H.check(eqt(o2, u[op](u)), op .. " large: out= differs from the fresh result")
end
selut.set_num_threads(1)
-- under no_grad a tensor that requires grad may be an input
local w = T.randn(3, 2)
w.requires_grad = true
local o = T.zeros(3, 2)
selut.no_grad(function() selut.mul(w, 2, {out = o}) end)
same(o, selut.no_grad(function() return w * 2 end), "out= under no_grad")
print("ops_out: ok")
