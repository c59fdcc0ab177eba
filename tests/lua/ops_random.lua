-- Random sampling and creation: randint, randperm, bernoulli, multinomial,
-- normal_, uniform_ (distribution checks at 10^5 draws with fixed seeds, so
-- the suite is deterministic), eye, linspace, *_like (bit-exact against
-- PyTorch: tests/ref/sample_refs.lua, made by tests/ref/gen_sample_refs.py),
-- same seed => same bits, for 1 and 2 threads.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T = selut.tensor
local check = H.check
local flat = function(x) return H.flatten(x:totable(), {}) end
-- index-valued results as Lua integers (for keys like "2,4")
local function ints(x)
  local v = flat(x)
  for i = 1, #v do v[i] = assert(math.tointeger(v[i]), "not an integer value") end
  return v
end

-- Chi-square statistic of observed counts against expected counts.
local function chi2(obs, exp)
  local s = 0
  for k, e in pairs(exp) do s = s + ((obs[k] or 0) - e) ^ 2 / e end
  for k, o in pairs(obs) do check(exp[k], "value " .. tostring(k) .. " drawn " .. o .. " times, never expected") end
  return s
end
-- Critical values of the chi-square distribution at p = 0.001 (upper tail),
-- by degrees of freedom: a correct sampler fails one check in 1000 seeds.
local CRIT = { [1] = 10.828, [3] = 16.266, [4] = 18.467, [9] = 27.877, [11] = 31.264, [23] = 49.728 }
local function chi2_ok(what, obs, exp, df)
  local s = chi2(obs, exp)
  check(s < CRIT[df], string.format("%s: chi-square %.3f >= %.3f (df %d, p = 0.001)", what, s, CRIT[df], df))
  return s
end
local function count(values)
  local c = {}
  for _, v in ipairs(values) do c[v] = (c[v] or 0) + 1 end
  return c
end

local N = 100000

-- randint: 10 values in [-3, 7), uniform; 9 degrees of freedom, critical 27.877
selut.manual_seed(11)
do
  local x = T.randint(-3, 7, N)
  check(x:dim() == 1 and x:size(1) == N, "randint shape")
  local exp = {}
  for v = -3, 6 do exp[v] = N / 10 end
  local c = {}
  for _, v in ipairs(flat(x)) do
    check(v == math.floor(v) and v >= -3 and v < 7, "randint value " .. v .. " outside [-3, 7)")
    c[math.tointeger(v)] = (c[math.tointeger(v)] or 0) + 1
  end
  chi2_ok("randint(-3, 7)", c, exp, 9)
  local y = T.randint(0, 3, { 2, 5 })
  check(y:size(1) == 2 and y:size(2) == 5, "randint with a shape table")
  check(T.randint(5, 6, 4):eq(5):sum() == 4, "randint(5, 6) is always 5")
  check(T.randint(0, 2, 0):numel() == 0, "randint of size 0")
  local big = T.randint(-16777216, 16777216, 1000) -- the whole exact range
  check(big:max() < 16777216 and big:min() >= -16777216, "randint over float32's exact integers")
end

-- bernoulli: one probability (df 1, critical 10.828), then a tensor of
-- probabilities cycling through 0, 0.1, 0.25, 0.5, 0.9, 1: p = 0 and 1 are
-- exact, the four others give 4 degrees of freedom (critical 18.467)
selut.manual_seed(12)
do
  local x = T.bernoulli(0.3, N)
  local s = x:sum()
  chi2_ok("bernoulli(0.3)", { [1] = s, [0] = N - s }, { [1] = 0.3 * N, [0] = 0.7 * N }, 1)
  local ps = { 0, 0.1, 0.25, 0.5, 0.9, 1 }
  local pt = {}
  for i = 1, 6 * 20000 do pt[i] = ps[(i - 1) % 6 + 1] end
  local p = T.new(pt)
  local v = flat(T.bernoulli(p))
  local ones, obs, exp = {}, {}, {}
  for i, b in ipairs(v) do
    check(b == 0 or b == 1, "bernoulli value " .. b)
    local k = (i - 1) % 6 + 1
    ones[k] = (ones[k] or 0) + b
  end
  check(ones[1] == 0 and ones[6] == 20000, "bernoulli with p = 0 and p = 1 is exact")
  for k = 2, 5 do
    local pk = T.new({ ps[k] }):get(1) -- the float32 probability
    obs[k .. "/1"], obs[k .. "/0"] = ones[k], 20000 - ones[k]
    exp[k .. "/1"], exp[k .. "/0"] = 20000 * pk, 20000 * (1 - pk)
  end
  chi2_ok("bernoulli(tensor)", obs, exp, 4)
  local q = p:view(6, 20000):bernoulli() -- method form keeps the shape
  check(q:size(1) == 6 and q:size(2) == 20000, "x:bernoulli() keeps the shape")
end

-- multinomial with replacement: unnormalized weights {1, 2, 3, 0, 4}; the
-- zero category never comes; 4 categories left: 3 degrees of freedom
-- (critical 16.266). 2-D: two rows of 50000 draws, each tested (df 3).
selut.manual_seed(13)
do
  local w = { 1, 2, 3, 0, 4 }
  local x = T.multinomial(T.new(w), N, true)
  check(x:dim() == 1 and x:size(1) == N, "multinomial 1-D shape")
  local exp = {}
  for k, wk in ipairs(w) do if wk > 0 then exp[k] = N * wk / 10 end end
  chi2_ok("multinomial(replacement)", count(flat(x)), exp, 3)
  local rows = T.new({ { 0, 5, 1, 1, 3 }, { 2, 2, 2, 2, 0 } })
  local y = selut.multinomial(rows, N / 2, true)
  check(y:size(1) == 2 and y:size(2) == N / 2, "multinomial 2-D shape")
  local r1, r2 = flat(y:select(1, 1)), flat(y:select(1, 2))
  chi2_ok("multinomial row 1", count(r1), { [2] = N / 2 * 0.5, [3] = N / 2 * 0.1, [4] = N / 2 * 0.1, [5] = N / 2 * 0.3 }, 3)
  chi2_ok("multinomial row 2", count(r2), { [1] = N / 8, [2] = N / 8, [3] = N / 8, [4] = N / 8 }, 3)
  -- a single category with weight: always that index
  check(T.multinomial(T.new({ 0, 0, 7 }), 10, true):eq(3):sum() == 10, "one positive weight")
end

-- multinomial without replacement: 10^5 rows of weights {1, 2, 3, 4}, two
-- draws each. The ordered pair (i, j) has probability p_i * p_j / (1 - p_i):
-- 12 pairs, 11 degrees of freedom (critical 31.264). No row repeats a category.
selut.manual_seed(14)
do
  local p = { 0.1, 0.2, 0.3, 0.4 }
  local probs = T.new({ { 1, 2, 3, 4 } }):expand(N, 4)
  local x = probs:multinomial(2)
  check(x:size(1) == N and x:size(2) == 2, "multinomial without replacement shape")
  local v = ints(x)
  local obs, exp = {}, {}
  for r = 1, N do
    local i, j = v[2 * r - 1], v[2 * r]
    check(i ~= j, "row " .. r .. " draws category " .. i .. " twice without replacement")
    local key = i .. "," .. j
    obs[key] = (obs[key] or 0) + 1
  end
  for i = 1, 4 do
    for j = 1, 4 do
      if i ~= j then exp[i .. "," .. j] = N * p[i] * p[j] / (1 - p[i]) end
    end
  end
  chi2_ok("multinomial(no replacement) pairs", obs, exp, 11)
  -- n == number of positive weights: every one of them, in some order
  local all = ints(T.multinomial(T.new({ 3, 0, 1, 2, 0, 5 }), 4))
  table.sort(all)
  check(table.concat(all, " ") == "1 3 4 6", "all positive categories: " .. table.concat(all, " "))
end

-- randperm: a permutation of 1..n; the 24 orders of randperm(4) equally
-- likely over 24000 calls (23 degrees of freedom, critical 49.728)
selut.manual_seed(15)
do
  local v = ints(T.randperm(1000))
  table.sort(v)
  for i = 1, 1000 do check(v[i] == i, "randperm(1000) is not a permutation of 1..1000") end
  check(T.randperm(0):numel() == 0 and T.randperm(0):dim() == 1, "randperm(0) is empty")
  check(T.randperm(1):get(1) == 1, "randperm(1)")
  local obs, exp = {}, {}
  for _ = 1, 24000 do
    local key = table.concat(ints(T.randperm(4)), "")
    obs[key] = (obs[key] or 0) + 1
  end
  local function perms(prefix, rest)
    if #rest == 0 then exp[prefix] = 1000 return end
    for i = 1, #rest do
      local r = { table.unpack(rest) }
      local e = table.remove(r, i)
      perms(prefix .. e, r)
    end
  end
  perms("", { 1, 2, 3, 4 })
  chi2_ok("randperm(4) orders", obs, exp, 23)
end

-- normal_ and uniform_: moments at 10^5 draws, in place (also through a view)
selut.manual_seed(16)
do
  local x = T.zeros(N)
  check(x:normal_(1.5, 2) == x, "normal_ returns self")
  local m, var = x:mean(), x:var()
  -- sd of the mean 2/sqrt(N) = 0.0063; of the variance ~ sqrt(2/N)*4 = 0.018
  H.near(m, 1.5, 0.03, "normal_ mean")
  H.near(var, 4, 0.09, "normal_ variance")
  check(T.zeros(5):normal_(3, 0):eq(3):sum() == 5, "normal_ with std 0 is the mean")
  local d = T.zeros(N):normal_() -- defaults N(0, 1)
  H.near(d:mean(), 0, 0.015, "normal_() mean")
  H.near(d:std(), 1, 0.01, "normal_() std")
  local u = T.zeros(N):uniform_(-2, 3)
  check(u:min() >= -2 and u:max() < 3, "uniform_ outside [-2, 3)")
  -- mean 0.5 (sd 0.0046), variance 25/12 (sd 0.006)
  H.near(u:mean(), 0.5, 0.025, "uniform_ mean")
  H.near(u:var(), 25 / 12, 0.03, "uniform_ variance")
  check(T.zeros(4):uniform_(2, 2):eq(2):sum() == 4, "uniform_(a, a) is a")
  local base = T.zeros(4, 3)
  base:narrow(1, 2, 2):uniform_(5, 6) -- a view: rows 2..3 of base
  check(base:narrow(1, 1, 1):sum() == 0 and base:narrow(1, 4, 1):sum() == 0, "uniform_ wrote outside the view")
  check(base:narrow(1, 2, 2):min() >= 5, "uniform_ through a view reaches the base")
  -- uniform_() draws T.rand's stream
  selut.manual_seed(3)
  local a = T.rand(7)
  selut.manual_seed(3)
  check(T.zeros(7):uniform_():eq(a):sum() == 7, "uniform_() has T.rand's bits")
end

-- creation ops: PyTorch's float32 bits
do
  local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/sample_refs.lua")
  local env = setmetatable({ T = T }, { __index = _G })
  local bits = function(v) return string.pack("<f", v) end
  for _, c in ipairs(refs) do
    local got = assert(load("return " .. c[1], c[1], "t", env))()
    local shape = got:shape()
    check(#shape == #c.shape, c[1] .. ": " .. #shape .. " dims, expected " .. #c.shape)
    for i = 1, #shape do check(shape[i] == c.shape[i], c[1] .. ": size " .. i .. " is " .. shape[i]) end
    local v = flat(got)
    check(#v == #c.values, c[1] .. ": " .. #v .. " values, expected " .. #c.values)
    for i = 1, #v do
      if bits(v[i]) ~= bits(c.values[i]) then
        error(string.format("%s: element %d is %.9g, PyTorch %.9g", c[1], i, v[i], c.values[i]))
      end
    end
  end
  check(#refs >= 20, "reference cases loaded")
  check(not T.zeros_like(T.ones(3)):shares_storage(T.ones(3)), "zeros_like is a new tensor")
end

-- same seed => same bits, for 1 and 2 threads
local function draw_all(seed)
  selut.manual_seed(seed)
  local out = {}
  local function add(x) for _, v in ipairs(flat(x)) do out[#out + 1] = v end end
  add(T.randint(0, 100, 3000))
  add(T.randperm(3000))
  add(T.bernoulli(T.rand(3000)))
  add(T.bernoulli(0.7, 3000))
  add(T.multinomial(T.rand(30, 40), 20, true))
  add(T.multinomial(T.rand(30, 40), 20))
  add(T.zeros(3001):normal_(0.5, 3))
  add(T.zeros(3001):uniform_(-1, 4))
  return out
end
local saved = selut.get_num_threads()
selut.set_num_threads(1)
local one = draw_all(42)
local again = draw_all(42)
selut.set_num_threads(2)
local two = draw_all(42)
selut.set_num_threads(saved)
local other = draw_all(43)
check(#one == #two and #one == #again, "same number of draws")
local differ = 0
for i = 1, #one do
  check(string.pack("<f", one[i]) == string.pack("<f", again[i]), "same seed, different bits at " .. i)
  check(string.pack("<f", one[i]) == string.pack("<f", two[i]), "1 vs 2 threads, different bits at " .. i)
  if one[i] ~= other[i] then differ = differ + 1 end
end
check(differ > #one / 2, "seeds 42 and 43 agree on " .. (#one - differ) .. " of " .. #one .. " draws")
