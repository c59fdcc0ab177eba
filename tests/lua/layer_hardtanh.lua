-- nn.Hardtanh, the layer added with no binding code (docs/architecture.md,
-- "Adding a layer"): its descriptor alone puts it in nn.Hardtanh(...),
-- tostring, m.min_val, save/load, viz.histograms, nn.stats and snn.check.
-- Values against PyTorch (tests/ref/gen_hardtanh_refs.py).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local selut = H.selut
local T, nn = selut.tensor, selut.nn
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/hardtanh_refs.lua")

-- forward / backward against torch.nn.Hardtanh (float32: exact)
for _, r in ipairs(refs) do
  local m = nn.Hardtanh(r.min_val, r.max_val)
  local x = T.new(r.x):reshape(4, 5)
  H.tensor_near(m:forward(x), T.new(r.y):reshape(4, 5), 0, "Hardtanh forward")
  H.tensor_near(m:backward(x, T.new(r.gy):reshape(4, 5)), T.new(r.gx):reshape(4, 5), 0, "Hardtanh backward (0 at the bounds)")
end

-- constructor: defaults, names, printing, fields
H.check(tostring(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)", tostring(nn.Hardtanh()))
H.check(tostring(nn.Hardtanh { max_val = 2 }) == "Hardtanh(min_val=-1.0, max_val=2.0)", "named arguments")
local h = nn.Hardtanh(-0.5, 2)
H.check(h.min_val == -0.5 and h.max_val == 2, "m.min_val / m.max_val")
H.check(nn.describe(h).activation and nn.describe(h).saturation.rule == "atmost", "descriptor facts")
H.checkerror("max_val (-2) must be greater than min_val (1)", nn.Hardtanh, 1, -2)
H.checkerror("min_val must be a number, got string", nn.Hardtanh, "x")

-- in a net: tostring, parameters/checkpoints, stats, histograms, snn.check
selut.manual_seed(3)
local net = nn.Sequential { nn.Linear(6, 8), nn.Hardtanh(), nn.Linear(8, 3) }
nn.init.lecun_normal(net)
H.check(tostring(net):find("(1): Hardtanh(min_val=-1.0, max_val=1.0)", 1, true), tostring(net))
local path = os.tmpname()
selut.save(path, net)
local copy = nn.Sequential { nn.Linear(6, 8), nn.Hardtanh(), nn.Linear(8, 3) }
selut.load(path, copy)
os.remove(path)
H.tensor_near(copy.modules[3].weight, net.modules[3].weight:totable(), 0, "save/load round trip")

local x = T.randn(64, 6) * 3
local stats = nn.stats(net, x)
local y1 = net.modules[2]:forward(net.modules[1]:forward(x))
local at_min = 0
for _, v in ipairs(H.flatten(y1:totable(), {})) do if v <= -1 then at_min = at_min + 1 end end
H.check(stats[2].type == "Hardtanh", "stats type")
H.near(stats[2].frac_saturated, at_min / y1:numel(), 1e-12, "Hardtanh saturation: units at min_val")
H.check(at_min > 0, "some units saturate")

local png = os.tmpname() .. ".png"
local sheet = selut.viz.histograms(net, x, png)
os.remove(png)
H.check(#sheet == 3 and sheet[2].name == "2 Hardtanh", "histogram panel named after the layer")

local snet = nn.Sequential { nn.Linear(6, 8), nn.SELU(), nn.Linear(8, 8), nn.Hardtanh(), nn.Linear(8, 3) }
nn.init.lecun_normal(snet)
local found
for _, f in ipairs(selut.snn.check(snet, T.randn(256, 6))) do
  if f.kind == "mixed_activations" then found = f.message end
end
H.check(found and found:find("layer 4 (Hardtanh)", 1, true), "snn.check names the Hardtanh: " .. tostring(found))
