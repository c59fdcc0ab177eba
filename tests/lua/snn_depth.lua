-- examples/snn_depth.lua end to end at toy size: runs the three nets per
-- depth on real Fashion-MNIST, prints the table, and writes legible PNGs
-- (one loss plot per depth, histograms at init and at the end).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local root = os.getenv("SELUT_ROOT") or (arg[0]:gsub("[^/]*$", "") .. "../..")
local dir = os.tmpname()
os.remove(dir)

local out = {}
local saved_print, saved_arg = print, arg
print = function(...) -- collect the script's output instead of flooding the test log
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  out[#out + 1] = table.concat(t, "\t")
end
arg = { [0] = root .. "/examples/snn_depth.lua", "--depths", "2,3", "--width", "16", "--epochs", "1",
        "--limit", "640", "--test_limit", "200", "--batch", "64", "--out", dir }
local ok, err = pcall(dofile, arg[0])
print, arg = saved_print, saved_arg
H.check(ok, err)
local text = table.concat(out, "\n")
H.check(text:find("snn.check(SELU net, depth 2): 0 finding(s)", 1, true), "the SNN passes its own check:\n" .. text)
for _, depth in ipairs { 2, 3 } do
  for _, label in ipairs { "SELU + LeCun", "ReLU + He", "ReLU + BatchNorm" } do
    local pat = "\n" .. depth .. "%s+" .. label:gsub("%+", "%%+") .. "%s+([%d.]+)%s+([%d.]+)%%"
    local loss, acc = text:match(pat)
    H.check(loss and tonumber(loss) > 0 and tonumber(loss) < 3 and tonumber(acc) > 10,
      "table row for depth " .. depth .. " " .. label .. ":\n" .. text)
  end
end
-- the PNGs exist, are PNGs, and have plausible sizes
local function png_size(path)
  local f = io.open(path, "rb")
  H.check(f, "missing " .. path)
  local head = f:read(24)
  f:close()
  H.check(head:sub(1, 8) == "\137PNG\r\n\26\n", path .. " is not a PNG")
  return string.unpack(">I4I4", head, 17)
end
for _, depth in ipairs { 2, 3 } do
  local w, h = png_size(string.format("%s/loss_depth%d.png", dir, depth))
  H.check(w >= 800 and h >= 400, "loss plot size " .. w .. "x" .. h)
  os.remove(string.format("%s/loss_depth%d.png", dir, depth))
  for _, kind in ipairs { "selu", "relu", "relu_bn" } do
    for _, when in ipairs { "init", "end" } do
      local p = string.format("%s/hist_d%d_%s_%s.png", dir, depth, kind, when)
      local hw = png_size(p)
      H.check(hw >= 800, "histogram sheet width " .. hw)
      os.remove(p)
    end
  end
end
H.check(os.remove(dir), "only the expected files were written")
