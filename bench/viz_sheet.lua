-- Renders a 16-panel histogram sheet of a 10000 x 512 batch per panel (
-- "well under a second").  build/selut bench/viz_sheet.lua
local nn, T = selut.nn, selut.tensor
local layers = {}
for i = 1, 16 do layers[i] = nn.SELU() end
local net = nn.Sequential(layers)
local x = T.randn(10000, 512)
local best = math.huge
for _ = 1, 3 do
  local t0 = selut.clock()
  selut.viz.histograms(net, x, (os.getenv("TMPDIR") or "/tmp") .. "/selut_sheet16.png")
  best = math.min(best, selut.clock() - t0)
end
local t0 = selut.clock(); for _ = 1, 3 do net:forward(x) end
local fwd = (selut.clock() - t0) / 3
print(string.format("16-panel sheet, 10000x512 per panel: %.3f s incl. the forward pass (%.3f s of it)", best, fwd))
