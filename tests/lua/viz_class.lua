-- selut.viz.histograms and selut.nn.stats on nn.class nets: the net's own
-- forward runs once (residual adds, functional ops, a module used twice),
-- one panel per named submodule in nn.modules' order, statistics of the
-- outputs that forward really produced, hooks and modes restored after.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, viz, F = selut.tensor, selut.nn, selut.viz, selut.nn.F

local dir = os.tmpname(); os.remove(dir); selut.sys.mkdir(dir)

local Block = nn.class("VizBlock")
function Block:init(d)
  self.fc1 = nn.Linear(d, d)
  self.fc2 = nn.Linear(d, d)
end
function Block:forward(x) return (x + F.selu(self.fc2(F.selu(self.fc1(x))))) * 0.5 end

local Net = nn.class("VizNet")
function Net:init()
  self.stem = nn.Linear(6, 8)
  self.blocks = nn.ModuleList { Block(8), Block(8) }
  self.shared = nn.Linear(8, 8) -- called twice in forward
  self.unused = nn.Linear(8, 8) -- never called
  self.head = nn.Sequential { nn.Linear(8, 3), nn.SELU() }
end
function Net:forward(x)
  local h = F.selu(self.stem(x))
  for _, b in ipairs(self.blocks) do h = b(h) end
  h = self.shared(self.shared(h))
  return self.head(h)
end

selut.manual_seed(3)
local net = Net()
nn.init.lecun_normal(net)
local x = T.randn(50, 6)
local linear_call = getmetatable(net.stem).__call
local block_call = getmetatable(net.blocks[1]).__call

-- the outputs forward produces, computed by hand
local want = {}
selut.no_grad(function()
  want.stem = net.stem:forward(x):clone()
  local h = F.selu(want.stem)
  for i, b in ipairs(net.blocks) do
    want["blocks." .. (i - 1) .. ".fc1"] = b.fc1:forward(h):clone()
    want["blocks." .. (i - 1) .. ".fc2"] = b.fc2:forward(F.selu(want["blocks." .. (i - 1) .. ".fc1"])):clone()
    h = b:forward(h)
    want["blocks." .. (i - 1)] = h:clone()
  end
  want.shared_1 = net.shared:forward(h):clone()
  want.shared = net.shared:forward(want.shared_1):clone()
  want["head.0"] = net.head.modules[1]:forward(want.shared):clone()
  want["head.1"] = net.head.modules[2]:forward(want["head.0"]):clone()
  want.head = want["head.1"]
end)

local names = { "stem", "blocks.0", "blocks.0.fc1", "blocks.0.fc2", "blocks.1", "blocks.1.fc1", "blocks.1.fc2",
                "shared", "unused", "head", "head.0", "head.1" }
net:train()
local hs = viz.histograms(net, x, dir .. "/class.png", { title = "class net", input = true, range = { -6, 6 } })
check(#hs == 1 + #names, string.format("input + %d named submodules, got %d panels", #names, #hs))
check(hs[1].name == "input" and hs[1].layer == 0, "the input panel first")
for i, n in ipairs(names) do
  local e = hs[i + 1]
  check(e.name:match("^(%S+)") == n, string.format("panel %d is %s, got %s", i, n, e.name))
  if n == "shared" then
    -- a module called twice shows its last call's output
    check(e.count == want.shared:numel(), "the shared module's panel: " .. e.count)
    H.near(e.mean, want.shared:mean(), 1e-5, "shared: the mean of the second call's output")
    check(math.abs(want.shared_1:mean() - want.shared:mean()) > 1e-3, "the two calls differ (the test can tell)")
  elseif n == "unused" then
    check(e.count == 0, "a submodule forward never calls has an empty panel")
  else
    check(e.count == want[n]:numel(), n .. ": every output element counted")
    H.near(e.mean, want[n]:mean(), 1e-5, n .. ": mean of the output forward produced")
    H.near(e.std, want[n]:std(), 1e-4, n .. ": std")
    H.near(e.max, want[n]:max(), 0, n .. ": max")
  end
end
check(hs[3].type == "VizBlock" and hs[4].type == "Linear", "types: the class name, the layer name")
check(net.training and net.blocks[1].fc1.training, "training mode restored on the net and its submodules")
check(getmetatable(net.stem).__call == linear_call and getmetatable(net.blocks[1]).__call == block_call,
      "the hooked __call metamethods are restored")
local loss = net(x):sum() -- the sheet left no graph behind: a training step still works
check(loss.grad_fn ~= nil, "grad mode back on after the sheet")
loss:backward()
check(net.stem.weight.grad:abs():sum() > 0, "gradients flow after the sheet")

-- nn.stats: one entry per called submodule, the last output of a shared one
local st = nn.stats(net, x)
check(#st == #names - 1, "stats: every called submodule, got " .. #st)
local by = {}
for _, e in ipairs(st) do by[e.name:match("^(%S+)")] = e end
check(by.unused == nil, "stats: no entry for a submodule forward never calls")
H.near(by.shared.mean, want.shared:mean(), 1e-5, "stats: a shared module's last output")
H.near(by["blocks.1"].std, want["blocks.1"]:std(), 1e-4, "stats: a block's output")
H.near(by["head.1"].frac_saturated, 0, 1, "stats: saturation of the head's SELU is a fraction")

-- layer selection by type name works on class nets
local sel = viz.histograms(net, x, dir .. "/sel.png", { layers = { "VizBlock" } })
check(#sel == 2 and sel[1].name == "blocks.0 VizBlock" and sel[2].name == "blocks.1 VizBlock", "layers = {'VizBlock'}")

-- a forward that raises: hooks and modes restored, the error passes through
local Bad = nn.class("VizBad")
function Bad:init() self.fc = nn.Linear(6, 4) end
function Bad:forward(x) local h = self.fc(x) error("forward failed on purpose " .. h:size(2)) end
local bad = Bad()
bad:train()
checkerror("forward failed on purpose 4", viz.histograms, bad, x, dir .. "/bad.png")
check(getmetatable(bad.fc).__call == linear_call, "hook removed after a failing forward")
check(bad.training and bad.fc.training, "modes restored after a failing forward")
local y = bad.fc(x)
check(T.is_tensor(y) and y:size(2) == 4, "the layer still runs after a failing sheet")

for _, f in ipairs { "class.png", "sel.png", "bad.png" } do os.remove(dir .. "/" .. f) end
os.remove(dir)
print("viz_class: class nets give one panel per named submodule from one real forward")
