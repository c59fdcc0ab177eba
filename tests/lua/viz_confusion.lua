-- selut.viz.confusion: exact counts (rows = true class, columns =
-- predicted), a real PNG of the documented size, clear errors that leave
-- no file behind.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, viz = selut.tensor, selut.viz

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a"); f:close()
  return s
end

local function png_size(path)
  local s = assert(read(path), path .. " exists")
  check(s:sub(1, 8) == "\137PNG\r\n\26\n", path .. " starts with the PNG signature")
  check(s:sub(13, 16) == "IHDR", "IHDR first")
  return string.unpack(">I4I4", s, 17)
end

-- the size formula of core/viz/viz.h (sl_confusion_size)
local function expected_size(k, longest_name, title)
  local ts = k <= 12 and 2 or 1
  local C = k <= 10 and 64 or math.max(24, 640 // k)
  local N = 6 * ts * math.min(longest_name, 20)
  local Tw = 6 * (ts + 1) * #title
  local w = math.max(12 + 10 * ts + 8 + N + 8 + k * C + 16, Tw + 32)
  local h = 16 + 10 * (ts + 1) + 4 + 10 * ts + 12 + k * C + 8 + N + 8 + 10 * ts + 12
  return w, h
end

local dir = os.tmpname(); os.remove(dir); selut.sys.mkdir(dir)

-- counts: a tensor of predictions against a list of labels
local preds = T.new { 1, 2, 2, 3, 1, 3, 3, 2 }
local labels = { 1, 2, 3, 3, 2, 3, 1, 2 }
local c = viz.confusion(preds, labels, dir .. "/c.png", { classes = { "cat", "dog", "bird" }, title = "pets" })
H.tensor_near(c, { { 1, 0, 1 }, { 1, 2, 0 }, { 0, 1, 2 } }, 0, "counts, rows = true class")
check(c:size(1) == 3 and c:size(2) == 3, "3 x 3")
local w, h = png_size(dir .. "/c.png")
local ew, eh = expected_size(3, 4, "pets")
check(w == ew and h == eh, string.format("size %dx%d, expected %dx%d", w, h, ew, eh))

-- K from the largest index when no names are given; lists on both sides
c = viz.confusion({ 4, 4, 1 }, { 4, 1, 1 }, dir .. "/k.png")
check(c:size(1) == 4, "K = the largest index seen")
H.tensor_near(c, { { 1, 0, 0, 1 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 1 } }, 0, "counts of 4 classes")
w, h = png_size(dir .. "/k.png")
ew, eh = expected_size(4, 1, "confusion matrix")
check(w == ew and h == eh, string.format("default title: %dx%d, expected %dx%d", w, h, ew, eh))

-- many classes, argmax output as preds (floats holding integers)
selut.manual_seed(3)
local out = T.randn(500, 40)
local y = {}
for i = 1, 500 do y[i] = (i % 40) + 1 end
c = viz.confusion(out:argmax(2), y, dir .. "/big.png")
check(c:size(1) == 40 and c:sum() == 500, "40 classes, every sample counted once")
w, h = png_size(dir .. "/big.png")
ew, eh = expected_size(40, 2, "confusion matrix")
check(w == ew and h == eh, string.format("40 classes: %dx%d, expected %dx%d", w, h, ew, eh))

-- bad input: each a clear error, nothing written at the path
local p = dir .. "/bad.png"
checkerror("3 labels for 2 preds, expected as many", viz.confusion, { 1, 2 }, { 1, 2, 1 }, p)
checkerror("preds[2] = 0, expected an integer class index in 1..2", viz.confusion, { 1, 0 }, { 1, 2 }, p)
checkerror("labels[1] = 1.5, expected an integer class index in 1..2", viz.confusion, { 1, 2 }, { 1.5, 2 }, p)
checkerror("preds[1] = -1, expected an integer class index in 1..3", viz.confusion, { -1, 2 }, { 3, 2 }, p)
checkerror("preds[1] = nan", viz.confusion, T.new { 0 / 0 }, { 1 }, p)
checkerror("class index 65 found, at most 64 classes fit a confusion matrix", viz.confusion, { 65 }, { 1 }, p)
checkerror("labels[1] = 4, expected an integer class index in 1..3", viz.confusion, { 1 }, { 4 }, p,
           { classes = { "a", "b", "c" } })
checkerror("option 'classes' has 0 names, expected 1..64", viz.confusion, { 1 }, { 1 }, p, { classes = {} })
local many = {}
for i = 1, 65 do many[i] = "c" .. i end
checkerror("option 'classes' has 65 names, expected 1..64", viz.confusion, { 1 }, { 1 }, p, { classes = many })
checkerror("option 'classes': name 2 must be a string, got table", viz.confusion, { 1 }, { 1 }, p,
           { classes = { "a", {} } })
checkerror("preds is empty, expected at least one class index", viz.confusion, {}, {}, p)
checkerror("preds[2] must be a class index, got string", viz.confusion, { 1, "x" }, { 1, 1 }, p)
checkerror("preds must be a tensor or a list of class indices, got number", viz.confusion, 3, { 1 }, p)
checkerror("unknown option 'colour'", viz.confusion, { 1 }, { 1 }, p, { colour = "red" })
checkerror("path must not be empty", viz.confusion, { 1 }, { 1 }, "")
check(read(p) == nil, "no file after bad input")

-- unwritable paths: a missing directory, a directory in the way; an existing
-- picture survives a failed call untouched
checkerror("/nonexistent-dir/c.png", viz.confusion, { 1 }, { 1 }, "/nonexistent-dir/c.png")
check(read("/nonexistent-dir/c.png") == nil, "nothing at a missing directory's path")
selut.sys.mkdir(dir .. "/sub")
checkerror(dir .. "/sub", viz.confusion, { 1 }, { 1 }, dir .. "/sub")
local before = read(dir .. "/c.png")
checkerror("2 labels for 1 preds", viz.confusion, { 1 }, { 1, 1 }, dir .. "/c.png")
check(read(dir .. "/c.png") == before, "a failed call leaves the existing file as it was")
local ls = io.popen and io.popen("ls -A '" .. dir .. "' '" .. dir .. "/sub'")
if ls then
  local names = ls:read("a"); ls:close()
  check(not names:find("%.sub%.") and not names:find("%.bad"), "no temporary file left behind:\n" .. names)
end

for _, f in ipairs { "c.png", "k.png", "big.png" } do os.remove(dir .. "/" .. f) end
os.remove(dir .. "/sub")
os.remove(dir)
