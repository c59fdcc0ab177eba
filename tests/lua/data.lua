-- selut.data: Fashion-MNIST / IDX / CSV loaders, datasets, batch iteration.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, data = selut.tensor, selut.data
local root = os.getenv("SELUT_ROOT") or "."
local mini = root .. "/tests/data/fashion-mini"

-- fashion_mnist: x = pixels / 255 (same bytes as the IDX reader), labels + 1
local train, test = data.fashion_mnist(mini)
check(train:size() == 3 and #test == 2, "mini sizes")
check(train.x:size(2) == 784 and train.x:dim() == 2, "x is N x 784")
local raw = data.idx(mini .. "/train-images-idx3-ubyte.gz")
check(raw:dim() == 3 and raw:size(2) == 28 and raw:size(3) == 28, "idx keeps the file's dims")
H.tensor_near(train.x, (raw / 255):reshape(3, 784), 0, "fashion_mnist x == idx / 255")
local rawy = data.idx(mini .. "/train-labels-idx1-ubyte.gz")
H.tensor_near(train.y, rawy + 1, 0, "labels 1-based")
check(train.y:min() >= 1 and train.y:max() <= 10, "labels in 1..10")
check(tostring(train):find("Dataset(3 samples", 1, true), tostring(train))

-- the real dataset, when installed (CI installs dataset-fashion-mnist)
local f = io.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
if f then
  f:close()
  local _, real = data.fashion_mnist()
  check(real:size() == 10000 and real.x:size(2) == 784, "real test set is 10000 x 784")
  local counts = {}
  for i = 1, real:size() do local c = real.y[i]; counts[c] = (counts[c] or 0) + 1 end
  for c = 1, 10 do check(counts[c] == 1000, "1000 test images of class " .. c) end
end

-- errors: missing files name the package; short files are errors
checkerror("install the Debian package dataset-fashion-mnist", data.fashion_mnist, "/nonexistent")
checkerror("bad argument #1 to 'fashion_mnist' (string expected, got table)", function() data.fashion_mnist({}) end)
local tmp = os.tmpname()
local src = assert(io.open(root .. "/tests/data/small-u8.idx", "rb")); local bytes = src:read("a"); src:close()
local out = assert(io.open(tmp, "wb")); out:write(bytes:sub(1, #bytes - 3)); out:close()
checkerror(tmp, data.idx, tmp)
checkerror("scale must be a finite number", data.idx, tmp, 0 / 0)

-- standardize: statistics of the training set, reused on the test set
local x = T.new { { 1, 2 }, { 3, 4 }, { 5, 6 } }
local ds = data.Dataset(x:clone(), T.new { 1, 2, 3 })
local m, s = ds:standardize()
H.near(m, 3.5, 1e-12, "mean")
H.near(s, math.sqrt(17.5 / 5), 1e-6, "std over all elements (unbiased, like torch.std)")
H.near(ds.x:mean(), 0, 1e-6, "standardized mean")
local ds2 = data.Dataset(T.new { { 3.5, 3.5 } })
local m2, s2 = ds2:standardize(m, s)
check(m2 == m and s2 == s, "given statistics are returned")
H.near(ds2.x:get(1, 1), 0, 1e-6, "given statistics are applied")
checkerror("std must be > 0", ds2.standardize, ds2, 0, 0)
checkerror("mean must be finite", ds2.standardize, ds2, 1 / 0, 1)
local cols = data.Dataset(T.new { { 1, 10 }, { 3, 30 } })
local cm, cs = cols:standardize_features()
H.tensor_near(cm, { 2, 20 }, 1e-6, "column means")
H.tensor_near(cs, { math.sqrt(2), 10 * math.sqrt(2) }, 1e-5, "column stds (unbiased)")
local r = 1 / math.sqrt(2)
H.tensor_near(cols.x, { { -r, -r }, { r, r } }, 1e-6, "columns standardized")

-- Dataset / subset
checkerror("bad argument #2 to 'Dataset' (y [2] has 2 samples, x [3 x 2] has 3)", function() data.Dataset(x, T.new { 1, 2 }) end)
local sub = ds:subset(2)
check(#sub == 2 and sub.y:get(2) == 2, "subset keeps the first rows")
checkerror("bad argument #1 to 'subset' (n must be in 0..3 (the dataset's size), got 4)", function() ds:subset(4) end)

-- batches: every sample exactly once, the last batch shorter, buffers reused
local n = 10
local ids = data.Dataset(T.arange(n):reshape(n, 1) + 1, T.arange(n) + 1)
local function epoch(size, opts)
  local seen, sizes, boxes = {}, {}, {}
  for xb, yb in ids:batches(size, opts) do
    sizes[#sizes + 1] = xb:size(1)
    boxes[xb] = true
    for i = 1, xb:size(1) do
      check(xb:get(i, 1) == yb[i], "x and y rows stay paired")
      seen[#seen + 1] = yb[i]
    end
  end
  return seen, sizes, boxes
end
local seen, sizes, boxes = epoch(4)
check(#sizes == 3 and sizes[3] == 2, "10 = 4 + 4 + 2")
for i = 1, n do check(seen[i] == i, "no shuffle keeps the order") end
local nboxes = 0; for _ in pairs(boxes) do nboxes = nboxes + 1 end
check(nboxes == 1, "the same x tensor comes back at every step")
local _, dsizes = epoch(4, { drop_last = true })
check(#dsizes == 2, "drop_last drops the short batch")
selut.manual_seed(5)
local p1 = epoch(3, { shuffle = true })
selut.manual_seed(5)
local p2 = epoch(3, { shuffle = true })
local sorted, moved = {}, false
for i = 1, n do
  check(p1[i] == p2[i], "same seed, same permutation")
  sorted[i] = p1[i]; moved = moved or p1[i] ~= i
end
table.sort(sorted)
for i = 1, n do check(sorted[i] == i, "a shuffled epoch is a permutation") end
check(moved, "shuffle moves something")
for xb in ids:batches(3) do break end -- leaving early closes the iterator
checkerror("bad argument #1 to 'batches' (batch size must be >= 1, got 0)", function() ids:batches(0) end)
checkerror("unknown option 'shufle'", ids.batches, ids, 2, { shufle = true })
checkerror("option 'shuffle' must be a boolean", ids.batches, ids, 2, { shuffle = 1 })

-- csv: header, label by name and number, bad cells with line and column
local csv = os.tmpname()
out = assert(io.open(csv, "w")); out:write("a,b,label\n1,2,3\n4,5,6\n"); out:close()
local cds, names = data.csv(csv, { label = "label" })
check(#cds == 2 and names[1] == "a" and names[2] == "b", "names without the label column")
H.tensor_near(cds.x, { { 1, 2 }, { 4, 5 } }, 0, "csv features")
H.tensor_near(cds.y, { 3, 6 }, 0, "csv labels")
local cds2 = data.csv(csv, { label = 1 })
H.tensor_near(cds2.y, { 1, 4 }, 0, "label by column number")
out = assert(io.open(csv, "w")); out:write("a,b\n1,2\n3,x\n"); out:close()
checkerror(':3: column 2 ("b"): cannot parse \'x\' as a number', data.csv, csv)
checkerror("unknown option 'lable'", data.csv, csv, { lable = "a" })
os.remove(csv); os.remove(tmp)
