-- selut.viz and selut.nn.stats from Lua: real PNG files, statistics that
-- match the tensors, training mode restored, clear errors.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, viz = selut.tensor, selut.nn, selut.viz

local function png_size(path)
  local f = assert(io.open(path, "rb")); local s = f:read(24); f:close()
  check(s:sub(1, 8) == "\137PNG\r\n\26\n", path .. " starts with the PNG signature")
  check(s:sub(13, 16) == "IHDR", "IHDR first")
  return string.unpack(">I4I4", s, 17)
end

local dir = os.tmpname(); os.remove(dir); selut.sys.mkdir(dir)

-- histogram of one tensor: the statistics are the tensor's own
local x = T.new { -5, -1, 0, 0.5, 1, 2, 7 }
local s = viz.histogram(x, dir .. "/one.png", { bins = 8, range = { -4, 4 }, name = "x" })
H.near(s.mean, x:mean(), 1e-6, "mean")
H.near(s.std, x:std(), 1e-5, "std")
check(s.min == -5 and s.max == 7 and s.count == 7, "min, max, count")
check(s.under == 1 and s.over == 1, "under/overflow counted outside the range")
local w, h = png_size(dir .. "/one.png")
check(w >= 400 and h >= 200, "a readable single panel: " .. w .. "x" .. h)

-- histograms of a net: one entry per layer, in order, values = nn.stats
selut.manual_seed(2)
local net = nn.Sequential { nn.Linear(32, 64), nn.SELU(), nn.AlphaDropout(0.1), nn.Linear(64, 10) }
nn.init.lecun_normal(net)
net:train()
local xb = T.randn(256, 32)
local hs = viz.histograms(net, xb, dir .. "/act.png", { title = "test", input = true })
check(#hs == 5 and hs[1].layer == 0 and hs[3].type == "SELU" and hs[5].type == "Linear", "input + 4 layers in order")
check(net.training, "the net's training mode is restored")
local st = nn.stats(net, xb)
check(#st == 4, "stats: one entry per layer")
for i = 1, 4 do
  H.near(st[i].mean, hs[i + 1].mean, 1e-9, "histograms and stats agree (layer " .. i .. ")")
end
-- eval mode: AlphaDropout is the identity, so its output equals the SELU's
H.near(st[3].mean, st[2].mean, 0, "eval-mode dropout is the identity")
local y = net:evaluate():forward(xb)
H.near(st[4].mean, y:mean(), 1e-5, "last layer mean is the output's")
w = png_size(dir .. "/act.png")
check(w >= 800, "sheet at least 800 px wide, got " .. w)
local sel = viz.histograms(net, xb, dir .. "/sel.png", { layers = { "SELU" } })
check(#sel == 1 and sel[1].type == "SELU", "layers chosen by type name")

-- plot: NaN/inf skipped, both series forms
viz.plot({ loss = { 1, 0.5, 0 / 0, 0.25 }, acc = T.new { 0.1, 0.5, 0.7, 0.8 } }, dir .. "/p.png", { title = "c" })
viz.plot({ { name = "a", x = { 1, 2, 4 }, y = { 3, 2, 1 } } }, dir .. "/p2.png", { log_y = true })
check(png_size(dir .. "/p.png") >= 800, "plot at least 800 px wide")

-- errors name the function, the argument and what was expected
checkerror("option 'range' must be {lo, hi} with finite lo < hi", function() viz.histogram(x, dir .. "/e.png", { range = { 1, 1 } }) end)
checkerror("bad argument #2 to 'histogram' (path must not be empty)", function() viz.histogram(x, "") end)
checkerror("/nonexistent-dir/a.png", function() viz.histogram(x, "/nonexistent-dir/a.png") end)
checkerror("option 'layers': index 9 out of range 1..4", function() viz.histograms(net, xb, dir .. "/e.png", { layers = { 9 } }) end)
checkerror("the net has no layer of type 'GELU'", function() viz.histograms(net, xb, dir .. "/e.png", { layers = { "GELU" } }) end)
checkerror("is not a number", function() viz.plot({ loss = { 1, "x" } }, dir .. "/e.png") end)
local f = io.open(dir .. "/e.png"); check(f == nil, "failed writes leave no file"); if f then f:close() end

for _, n in ipairs { "one", "act", "sel", "p", "p2" } do os.remove(dir .. "/" .. n .. ".png") end
os.remove(dir)
