-- Module buffers (BatchNorm1d's running statistics) in checkpoints:
-- m:buffers(), Sequential naming, selut.save/load carrying them (all or
-- nothing, strict and strict=false), I64 num_batches_tracked, PyTorch
-- checkpoints in both directions (tests/ref/gen_bn_refs.py), resume.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local root = os.getenv("SELUT_ROOT") or "."

local function same_bits(a, b, what)
  local x, y = a:totable(), b:totable()
  local fx, fy = H.flatten(x, {}), H.flatten(y, {})
  check(#fx == #fy, what .. ": sizes")
  for i = 1, #fx do
    check(string.pack("<f", fx[i]) == string.pack("<f", fy[i]), string.format("%s: element %d %.9g vs %.9g", what, i,
                                                                               fx[i], fy[i]))
  end
end

local function net5() -- the net of tests/ref/gen_bn_refs.py
  return nn.Sequential{nn.Linear(5, 4), nn.BatchNorm1d(4), nn.SELU(), nn.Linear(4, 3)}
end

-- buffers(): names, dtype, sharing
local bn = nn.BatchNorm1d(3)
local b = bn:buffers()
check(#b == 3 and b[1].name == "running_mean" and b[2].name == "running_var" and b[3].name == "num_batches_tracked",
      "BatchNorm1d buffers")
check(b[1].dtype == nil and b[3].dtype == "I64" and b[3].scalar == true, "num_batches_tracked is a 0-dim I64")
b[1].tensor:fill_(2)
check(bn.running_mean:get(1) == 2, "buffers share the module's tensors")
check(#nn.BatchNorm1d(3, {track_running_stats = false}):buffers() == 0, "no buffers without running stats")
check(#nn.Linear(2, 2):buffers() == 0 and #nn.Module{}:buffers() == 0, "layers without buffers")
local nested = nn.Sequential{nn.Linear(5, 4), nn.Sequential{nn.BatchNorm1d(4), nn.SELU()}, nn.BatchNorm1d(4)}
local names = {}
for _, e in ipairs(nested:buffers()) do names[#names + 1] = e.name end
check(table.concat(names, " ") == "1.0.running_mean 1.0.running_var 1.0.num_batches_tracked 2.running_mean "
      .. "2.running_var 2.num_batches_tracked", table.concat(names, " "))
check(nested:buffers()[3].dtype == "I64" and nested:buffers()[3].scalar, "flags kept through containers")

-- the counter counts training forwards only
local x = T.randn(8, 4)
bn = nn.BatchNorm1d(4)
for _ = 1, 3 do bn:forward(x) end
bn:evaluate():forward(x)
check(bn.num_batches_tracked == 3 and bn:buffers()[3].tensor:get(1) == 3, "count 3")

-- round trip: save -> load into a fresh net -> eval output bit-identical
selut.manual_seed(7)
local net = net5()
local opt = optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
local crit = nn.MSELoss()
local function train_steps(n, o, k)
  for i = 1, n do
    local xb = T.randn(16, 5) * (1 + 0.1 * (i + (k or 0))) + 0.2
    local out = net:forward(xb)
    o:zero_grad()
    net:backward(xb, crit:backward(out, T.zeros(16, 3)), false)
    o:step()
  end
end
train_steps(5, opt)
local path = os.tmpname()
selut.save(path, net)
local file = selut.load(path)
check(file["1.running_mean"] and file["1.running_var"] and file["1.num_batches_tracked"]:get(1) == 5,
      "the checkpoint holds the running statistics")
selut.manual_seed(99)
local net2 = net5()
selut.load(path, net2)
local xe = T.randn(6, 5)
net:evaluate()
net2:evaluate()
same_bits(net2:forward(xe), net:forward(xe), "eval output after load")
same_bits(net2.modules[2].running_mean, net.modules[2].running_mean, "running_mean")
same_bits(net2.modules[2].running_var, net.modules[2].running_var, "running_var")
check(net2.modules[2].num_batches_tracked == 5, "num_batches_tracked")
-- the file itself: num_batches_tracked is I64 with shape [] (PyTorch's layout)
local f = assert(io.open(path, "rb"))
local raw = f:read("a")
f:close()
local hlen = string.unpack("<I8", raw)
local header = raw:sub(9, 8 + hlen)
check(header:find('"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[', 1, true), header)
check(header:find('"1.running_var":{"dtype":"F32","shape":[4],', 1, true), header)
check(string.unpack("<i8", raw, #raw - 7) == 5, "int64 little-endian 5 at the end of the data")

-- a PyTorch checkpoint (7 training batches) gives PyTorch's eval output
local ref = selut.load(root .. "/tests/data/bn-torch-io.safetensors")
local tnet = net5()
selut.load(root .. "/tests/data/bn-torch.safetensors", tnet)
check(tnet.modules[2].num_batches_tracked == 7, "PyTorch's count")
tnet:evaluate()
H.tensor_near(tnet:forward(ref.x), ref.y, 1e-5, "eval output vs PyTorch")
local diff = (tnet:forward(ref.x) - ref.y):abs():max()
check(diff > 0 or diff == 0, "finite")
-- ... and without the buffers the output would differ (the test can fail)
local fresh = net5()
selut.load(root .. "/tests/data/bn-torch.safetensors", fresh)
fresh.modules[2].running_mean:zero_()
fresh.modules[2].running_var:fill_(1)
fresh:evaluate()
check((fresh:forward(ref.x) - ref.y):abs():max() > 1e-2, "initial statistics give another output")

-- strict: a checkpoint without buffers (saved before buffers existed) is refused, nothing loaded
local params_only = {}
for _, p in ipairs(net:parameters()) do params_only[p.name] = p.param end
local old = os.tmpname()
selut.save(old, params_only)
local target = net5()
local w0 = target.modules[1].weight:clone()
checkerror("load: '" .. old .. "' has no tensor '1.running_mean' (the net expects [4]) (and 2 more mismatches; "
           .. "nothing was loaded)", selut.load, old, target)
same_bits(target.modules[1].weight, w0, "nothing loaded")
-- strict = false: parameters load, buffers keep their values
selut.load(old, target, {strict = false})
same_bits(target.modules[1].weight, net.modules[1].weight, "parameters loaded with strict=false")
check(target.modules[2].running_mean:abs():max() == 0 and target.modules[2].num_batches_tracked == 0,
      "buffers untouched with strict=false")
-- extra buffers in the file: strict refuses, strict=false ignores
local nobuf = nn.Sequential{nn.Linear(5, 4), nn.BatchNorm1d(4, {track_running_stats = false}), nn.SELU(),
                            nn.Linear(4, 3)}
checkerror("has tensor '1.running_mean' [4] that the net does not have (pass {strict = false} to ignore extra tensors) (and 2 more mismatches; nothing was loaded)", selut.load, path, nobuf)
selut.load(path, nobuf, {strict = false})
same_bits(nobuf.modules[4].weight, net.modules[4].weight, "extra buffers ignored")
-- a shape mismatch in a buffer: nothing loaded
local wide = nn.Sequential{nn.Linear(5, 4), nn.BatchNorm1d(4), nn.SELU(), nn.Linear(4, 3)}
local bad = os.tmpname()
local t = selut.load(path)
t["1.running_mean"] = T.zeros(5)
selut.save(bad, t)
local wb = wide.modules[1].weight:clone()
checkerror("load: tensor '1.running_mean' is [5] in '" .. bad .. "', the net expects [4] (nothing was loaded)",
           selut.load, bad, wide)
same_bits(wide.modules[1].weight, wb, "nothing loaded after a buffer shape mismatch")
-- an integer buffer refuses a non-integer value (F32 file); an integral F32 loads
t["1.running_mean"] = T.zeros(4)
t["1.num_batches_tracked"] = T.new{2.5}
selut.save(bad, t)
checkerror("load: tensor '1.num_batches_tracked' in '" .. bad .. "' has element 1 = 2.5, the net expects integers "
           .. "(I64) (nothing was loaded)", selut.load, bad, wide)
same_bits(wide.modules[1].weight, wb, "nothing loaded after a non-integer count")
t["1.num_batches_tracked"] = T.new{12}
selut.save(bad, t)
selut.load(bad, wide)
check(wide.modules[2].num_batches_tracked == 12, "integral F32 count loads")
-- an I64 value float32 cannot hold is refused by the reader
local hdr = '{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}'
f = assert(io.open(bad, "wb"))
f:write(string.pack("<I8", #hdr), hdr, string.pack("<i8", 16777217))
f:close()
checkerror("tensor \"n\" (I64) element 1 is 16777217, which float32 cannot represent exactly", selut.load, bad)

-- the counter stops at 2^24 (the last integer float32 counts exactly)
local big = nn.BatchNorm1d(2)
big:buffers()[3].tensor:fill_(16777216)
big:forward(T.randn(4, 2))
check(big.num_batches_tracked == 16777216, "count saturates at 2^24")

-- Lua modules' buffers: dtype checked on save, names collide with parameters
local Lm = nn.Module{forward = function(_, v) return v end, backward = function(_, _, g) return g end,
                     n = T.new{1.5}}
function Lm:buffers() return {{name = "n", tensor = self.n, dtype = "I64"}} end
local before = io.open(path, "rb"):read("a")
checkerror("tensor \"0.n\" is stored as I64 but element 1 is 1.5, not an integer", selut.save, path,
           nn.Sequential{Lm})
check(io.open(path, "rb"):read("a") == before, "failed save leaves the old file")
function Lm:buffers() return {{name = "n", tensor = self.n, dtype = "F16"}} end
checkerror("bad argument #2 to 'selut.save' (buffer 1 ('n') has dtype F16, expected \"F32\" or \"I64\")", selut.save, path, Lm)
function Lm:buffers() return {{name = "n"}} end
checkerror("buffer 1 ('n') has no open tensor 'tensor'", selut.save, path, Lm)
function Lm:parameters() return {{name = "n", param = T.zeros(1), grad = T.zeros(1)}} end
function Lm:buffers() return {{name = "n", tensor = T.zeros(1)}} end
checkerror("duplicate tensor name \"n\"", selut.save, path, Lm)
checkerror("bad argument #1 to 'Module' (field 'buffers' must be a function, got number)", nn.Module, {buffers = 1})

-- resume: k steps, checkpoint (net + optimizer state), n more steps ==
-- load into a fresh net + optimizer, the same n steps, bit for bit
selut.manual_seed(11)
net = net5()
opt = optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
train_steps(4, opt)
local ck, st = os.tmpname(), os.tmpname()
selut.save(ck, net)
selut.save(st, opt:state(), {step = tostring(opt:get_step())})
local rng = selut.sys.get_rng_state()
train_steps(3, opt, 4)
local want_out = net:evaluate():forward(xe):clone()
local want_rv = net.modules[2].running_var:clone()
selut.manual_seed(12345)
net = net5()
local opt2 = optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
selut.load(ck, net)
local state, meta = selut.load(st)
for name, tt in pairs(opt2:state()) do tt:copy(state[name]) end
opt2:set_step(math.tointeger(tonumber(meta.step)))
selut.sys.set_rng_state(rng)
train_steps(3, opt2, 4)
check(net.modules[2].num_batches_tracked == 7, "count continues after resume")
same_bits(net.modules[2].running_var, want_rv, "running_var after resume")
same_bits(net:evaluate():forward(xe), want_out, "eval output after resume")
for _, p in ipairs({path, old, bad, ck, st}) do os.remove(p) end
