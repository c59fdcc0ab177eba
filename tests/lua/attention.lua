-- MultiheadAttention and nn.F.scaled_dot_product_attention against PyTorch
-- (tests/ref/gen_attention_refs.py: float64 results from the same float32
-- values) to 1e-5 relative: outputs, weights, gradients of query, key,
-- value and every parameter; then the checkpoint names, init, dropout,
-- fully masked rows, 1 vs 2 threads and buffer reuse. Bad input:
-- tests/lua/bad_input_attention.lua.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/attention_refs.lua")
local check = H.check
local T, nn, F = selut.tensor, selut.nn, selut.nn.F

local function mk(r) return T.new(r.x):reshape(table.unpack(r.shape)) end

-- |got - want| <= 1e-5 |want| + 1e-6 max|want| elementwise, shapes equal
local function close(got, want, what)
  check(got ~= nil, what .. ": missing")
  local gs = table.concat(got:shape(), "x")
  check(gs == table.concat(want.shape, "x"), what .. ": shape " .. gs)
  local g, big = H.flatten(got:totable(), {}), 0
  for _, w in ipairs(want.x) do big = math.max(big, math.abs(w)) end
  for i, w in ipairs(want.x) do
    local tol = 1e-5 * math.abs(w) + 1e-6 * big
    if not (math.abs(g[i] - w) <= tol) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what, i, g[i], w), 2)
    end
  end
end

local function opts_of(c)
  local o = {}
  for k, v in pairs(c.opts) do o[k] = type(v) == "table" and mk(v) or v end
  return o
end

local ncases = 0
for _, c in ipairs(refs.mha) do
  local m = nn.MultiheadAttention(c.E, c.H, {bias = c.bias, batch_first = c.batch_first})
  for _, p in ipairs(m:parameters()) do p.param:copy(mk(c.params[p.name])) end
  local q, k, v = mk(c.query), mk(c.key), mk(c.value)
  if c.self_attn then k, v = q, q end
  local out, w = m:forward(q, k, v, opts_of(c))
  close(out, c.out, c.name .. " out")
  if c.weights then close(w, c.weights, c.name .. " weights") else check(w == nil, c.name .. ": no weights") end
  m:zero_grad()
  local gq, gk, gv = m:backward(q, k, v, mk(c.gout))
  if c.self_attn then
    close(gq + gk + gv, c.gq, c.name .. " grad query (= key = value)")
    -- the one-input layer form sums the three
    m:zero_grad()
    m:forward(q)
    close(m:backward(q, mk(c.gout)), c.gq, c.name .. " self-attention backward(x, gy)")
  else
    close(gq, c.gq, c.name .. " grad query")
    close(gk, c.gk, c.name .. " grad key")
    close(gv, c.gv, c.name .. " grad value")
  end
  for _, p in ipairs(m:parameters()) do close(p.grad, c.grads[p.name], c.name .. " grad " .. p.name) end
  ncases = ncases + 1
end
check(ncases == 15, "MultiheadAttention cases: " .. ncases)

-- the same cases on the autograd path: m(q, k, v) records one node
for _, c in ipairs(refs.mha) do
  local m = nn.MultiheadAttention(c.E, c.H, {bias = c.bias, batch_first = c.batch_first})
  for _, p in ipairs(m:parameters()) do p.param:copy(mk(c.params[p.name])) end
  local q, k, v = mk(c.query):requires_grad_(), mk(c.key):requires_grad_(), mk(c.value):requires_grad_()
  if c.self_attn then k, v = q, q end
  local out, w = m(q, k, v, opts_of(c))
  check(out.grad_fn ~= nil and (w == nil or w.grad_fn == nil), c.name .. ": out recorded, weights not")
  close(out, c.out, c.name .. " autograd out")
  m:zero_grad()
  out:backward(mk(c.gout))
  close(q.grad, c.gq, c.name .. " autograd grad query")
  if not c.self_attn then
    close(k.grad, c.gk, c.name .. " autograd grad key")
    close(v.grad, c.gv, c.name .. " autograd grad value")
  end
  for _, p in ipairs(m:parameters()) do close(m[p.name].grad, c.grads[p.name], c.name .. " autograd .grad " .. p.name) end
  ncases = ncases + 1
end
check(ncases == 30, "MultiheadAttention autograd cases: " .. ncases)
-- a second call before the backward of the first is refused (its weights are gone)
local ma = nn.MultiheadAttention(4, 2)
local xa = T.randn(3, 1, 4):requires_grad_()
local ya = ma(xa)
ma(xa)
H.checkerror("backward: MultiheadAttention ran forward again before the backward of an earlier call", function()
  ya:sum():backward()
end)
-- gradcheck through the module (float32 defaults)
local mg = nn.MultiheadAttention(4, 2, {batch_first = true})
check(selut.autograd.gradcheck(function(a, b)
  return (mg(a, b, b, {key_padding_mask = T.new{{0, 0, 1}}}))
end, {T.randn(1, 2, 4):requires_grad_(), T.randn(1, 3, 4):requires_grad_()}) == true, "MultiheadAttention gradcheck")

-- scaled_dot_product_attention, gradients through autograd
for _, c in ipairs(refs.sdpa) do
  local q, k, v = mk(c.q):requires_grad_(), mk(c.k):requires_grad_(), mk(c.v):requires_grad_()
  local out = F.scaled_dot_product_attention(q, k, v, opts_of(c))
  close(out, c.out, "sdpa " .. c.name .. " out")
  check(out.grad_fn ~= nil, "sdpa records")
  out:backward(mk(c.gout))
  close(q.grad, c.gq, "sdpa " .. c.name .. " grad q")
  close(k.grad, c.gk, "sdpa " .. c.name .. " grad k")
  close(v.grad, c.gv, "sdpa " .. c.name .. " grad v")
  ncases = ncases + 1
end
check(ncases == 37, "cases: " .. ncases)
check(selut.nn.functional == F, "nn.functional is nn.F")
-- no recording under no_grad or without inputs that require grad
local q0 = T.randn(2, 3, 4)
check(F.scaled_dot_product_attention(q0, q0, q0).grad_fn == nil, "no grad_fn without requires_grad")
-- gradcheck (float32 defaults) on a small case with a mask and a scale
local gc = selut.autograd.gradcheck(function(a, b, c)
  return F.scaled_dot_product_attention(a, b, c, {attn_mask = T.new{{0, -1, 0.5}, {0.2, 0, 0}}, scale = 0.7})
end, {T.randn(2, 2, 3):requires_grad_(), T.randn(2, 3, 3):requires_grad_(), T.randn(2, 3, 2):requires_grad_()})
check(gc == true, "gradcheck")

-- construction, names, init, printing
selut.manual_seed(3)
local m = nn.MultiheadAttention(12, 3)
check(tostring(m) == "MultiheadAttention(12, 3, dropout=0.0, bias=true, batch_first=false)", tostring(m))
check(m.embed_dim == 12 and m.num_heads == 3 and m.head_dim == 4 and m.batch_first == false, "fields")
local names = {}
for i, p in ipairs(m:parameters()) do names[i] = p.name .. ":" .. table.concat(p.param:shape(), "x") end
check(table.concat(names, " ") == "in_proj_weight:36x12 in_proj_bias:36 out_proj.weight:12x12 out_proj.bias:12",
      table.concat(names, " "))
local xb, lb = math.sqrt(6 / 48), 1 / math.sqrt(12)
check(m.in_proj_weight:abs():max() <= xb and m.in_proj_weight:abs():max() > 0.9 * xb, "xavier_uniform_ bound")
check(m["out_proj.weight"]:abs():max() <= lb and m["out_proj.weight"]:abs():max() > 0.9 * lb, "out_proj bound")
check(m.in_proj_bias:abs():max() == 0 and m["out_proj.bias"]:abs():max() == 0, "biases zero")
local nb = nn.MultiheadAttention(4, 2, {bias = false, batch_first = true})
check(#nb:parameters() == 2 and nb:parameters()[2].name == "out_proj.weight", "no biases")
check(nn.describe(m).params.in_proj_weight == "fan" and nn.describe(m).params["out_proj.bias"] == "zero", "roles")
nn.init.lecun_normal(m)
check(m.in_proj_bias:abs():max() == 0 and m.in_proj_weight:std() > 0.1, "nn.init")

-- a checkpoint with PyTorch's names round trips, inside a Sequential too
local net = nn.Sequential{nn.Linear(12, 12), m}
local x = T.randn(5, 2, 12)
local y1 = net:forward(x):clone()
local path = os.tmpname()
selut.save(path, net)
local saved = selut.load(path)
for _, key in ipairs{"1.in_proj_weight", "1.in_proj_bias", "1.out_proj.weight", "1.out_proj.bias"} do
  check(saved[key] ~= nil, "checkpoint has " .. key)
end
local net2 = nn.Sequential{nn.Linear(12, 12), nn.MultiheadAttention(12, 3)}
selut.load(path, net2)
H.tensor_near(net2:forward(x), y1, 0, "same output after the round trip")
os.remove(path)

-- fully masked rows give NaN (PyTorch); other rows stay finite
local a = nn.MultiheadAttention(4, 2)
local qq, kk = T.randn(2, 1, 4), T.randn(3, 1, 4)
local o = a(qq, kk, kk, {attn_mask = T.new{{1, 1, 1}, {0, 1, 0}}})
check(o[1][1][1] ~= o[1][1][1] and o[2][1][1] == o[2][1][1], "NaN for the masked row only")

-- dropout: identity in evaluation mode, drawn from the generator in training
local d = nn.MultiheadAttention(8, 2, {dropout = 0.5})
local qd = T.randn(4, 2, 8)
d:evaluate()
local e1 = d(qd, qd, qd):clone()
local e2 = d(qd, qd, qd):clone()
H.tensor_near(e1, e2, 0, "eval: deterministic")
d:train()
selut.manual_seed(9)
local t1, w1 = d(qd, qd, qd)
selut.manual_seed(9)
local t2 = d(qd, qd, qd):clone()
H.tensor_near(t1, t2, 0, "same seed, same dropout")
check((t1 - e1):detach():abs():max() > 1e-3, "training mode drops")
check(w1:min() == 0, "dropped weights are zero")

-- 1 and 2 threads: same bits; a second call reuses the output buffer
local big = nn.MultiheadAttention(64, 4)
local qb, kb = T.randn(40, 3, 64), T.randn(50, 3, 64)
local threads = selut.get_num_threads()
local outs = {}
for i, n in ipairs{1, 2} do
  selut.set_num_threads(n)
  local ob = big:forward(qb, kb, kb)
  local g1 = big:backward(qb, kb, kb, T.ones(40, 3, 64))
  outs[i] = {ob:clone(), g1:clone()}
  if i == 2 then check(rawequal(ob, big:forward(qb, kb, kb)), "output box reused") end
end
selut.set_num_threads(threads)
H.tensor_near(outs[1][1], outs[2][1], 0, "1 vs 2 threads: output")
H.tensor_near(outs[1][2], outs[2][2], 0, "1 vs 2 threads: grad")
