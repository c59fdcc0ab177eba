-- selut.save / selut.load: safetensors round trips, PyTorch-made files,
-- all-or-nothing loading, atomic saves, hostile files.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn = selut.tensor, selut.nn
local root = os.getenv("SELUT_ROOT") or "."

local function mlp() return nn.Sequential { nn.Linear(4, 3), nn.SELU(), nn.Linear(3, 2) } end
local function params(net)
  local out = {}
  for _, p in ipairs(net:parameters()) do out[p.name] = p.param:totable() end
  return out
end
local function same(a, b)
  for name, v in pairs(a) do
    local x, y = H.flatten(v, {}), H.flatten(b[name], {})
    if #x ~= #y then return false end
    for i = 1, #x do if x[i] ~= y[i] then return false end end
  end
  return true
end
local function slurp(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); return s
end
local function spit(path, s)
  local f = assert(io.open(path, "wb")); f:write(s); f:close()
end

-- round trip of a net, bit for bit, with metadata
selut.manual_seed(3)
local net, path = mlp(), os.tmpname()
selut.save(path, net, { epoch = 7, recipe = "selu" })
local tensors, meta = selut.load(path)
check(meta.epoch == "7" and meta.recipe == "selu", "metadata comes back as strings")
local names = {}
for name in pairs(tensors) do names[#names + 1] = name end
table.sort(names)
check(table.concat(names, " ") == "0.bias 0.weight 2.bias 2.weight", "PyTorch state_dict names: " .. table.concat(names, " "))
check(tensors["0.weight"]:size(1) == 3 and tensors["0.weight"]:size(2) == 4, "weight is out x in")
selut.manual_seed(4)
local other = mlp()
check(not same(params(net), params(other)), "different seeds differ")
local m2 = selut.load(path, other)
check(m2.epoch == "7", "load into a net returns the metadata")
check(same(params(net), params(other)), "round trip is exact")

-- the header is the documented layout: 8-byte little-endian length, JSON
local bytes = slurp(path)
local hlen = string.unpack("<I8", bytes)
local header = bytes:sub(9, 8 + hlen)
check(header:find('"0.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[', 1, true), header)
check(header:find('"__metadata__":{', 1, true), "metadata in the header")
check(#bytes == 8 + hlen + 4 * (12 + 3 + 6 + 2), "header + raw float32 data, nothing else")

-- a file made by PyTorch (tests/ref/gen_io_refs.py: safetensors of a torch Sequential state_dict)
local ref = selut.load(root .. "/tests/data/torch-ref.safetensors")
local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end
H.tensor_near(ref["0.bias"], { f32(-4.776742458e-01), f32(-3.311410546e-01), f32(-2.061115503e-01) }, 0, "torch 0.bias")
H.tensor_near(ref["2.bias"], { f32(4.794246852e-01), f32(-1.188187823e-01) }, 0, "torch 2.bias")

-- all-or-nothing: a mismatch is an error naming it and nothing changes
local before = params(other)
local wide = nn.Sequential { nn.Linear(4, 3), nn.SELU(), nn.Linear(3, 5) }
checkerror("load: tensor '2.weight' is [2 x 3] in '" .. path .. "', the net expects [5 x 3]", selut.load, path, wide)
checkerror("nothing was loaded", selut.load, path, nn.Sequential { nn.Linear(4, 3) })
local before_short = nn.Sequential { nn.Linear(4, 3) }
local w0 = before_short:parameters()[1].param:clone()
pcall(selut.load, path, before_short)
H.tensor_near(before_short:parameters()[1].param, w0, 0, "a failed load leaves the net untouched")
selut.load(path, before_short, { strict = false })
H.tensor_near(before_short:parameters()[1].param, tensors["0.weight"], 0, "strict = false loads what matches")
checkerror("unknown option 'strct'", selut.load, path, other, { strct = false })

-- tables of tensors, including views and 0-d-like shapes
local tpath = os.tmpname()
local big = T.arange(12):reshape(3, 4)
selut.save(tpath, { a = big, row = big[2], s = T.new { 42 } })
local back = selut.load(tpath)
H.tensor_near(back.a, big, 0, "matrix")
H.tensor_near(back.row, { 4, 5, 6, 7 }, 0, "a row view saves its own elements")
check(back.s[1] == 42, "1-element tensor")
checkerror("tensor names must be non-empty strings", selut.save, tpath, { [""] = big })
checkerror("metadata value of 'x' is a table", selut.save, tpath, { a = big }, { x = {} })

-- atomic save: a save that fails leaves the previous file intact
local good = slurp(path)
checkerror("/nonexistent-dir/", selut.save, "/nonexistent-dir/model.safetensors", net)
local ok = pcall(selut.save, path, { bad = "not a tensor" })
check(not ok, "saving a non-tensor fails")
check(slurp(path) == good, "a failed save leaves the old checkpoint byte for byte")
local dir = path:match("^(.*)/")
for entry in io.popen("ls -a " .. dir):lines() do
  check(not entry:find((path:match("[^/]*$")) .. ".tmp", 1, true), "no temporary file left behind: " .. entry)
end

-- hostile files: truncated, lying header length, bad JSON, wrong dtype
local bad = os.tmpname()
spit(bad, good:sub(1, #good - 1))
checkerror(bad, selut.load, bad)
spit(bad, string.pack("<I8", 1 << 40) .. good:sub(9))
checkerror(bad, selut.load, bad)
spit(bad, string.pack("<I8", hlen) .. header:gsub("F32", "F64", 1) .. good:sub(9 + hlen))
checkerror("F64", selut.load, bad)
spit(bad, "")
checkerror(bad, selut.load, bad)
checkerror("No such file", selut.load, "/nonexistent/x.safetensors")
check(slurp(path) == good, "loading bad files never touches another checkpoint")
os.remove(path); os.remove(tpath); os.remove(bad)

-- load(path) without a target returns the storage formats third (only for
-- tensors not stored as plain F32): save(path, tensors, metadata, formats)
-- writes them back the same way, so a BatchNorm's num_batches_tracked stays
-- a 0-dim I64 (PyTorch's layout) through a load/save round trip.
do
  local bn = nn.Sequential { nn.Linear(3, 4), nn.BatchNorm1d(4) }
  bn:forward(T.randn(5, 3))
  bn:forward(T.randn(5, 3))
  local p1, p2, p3 = os.tmpname(), os.tmpname(), os.tmpname()
  selut.save(p1, bn, { epoch = 3 })
  local t, m, fmt = selut.load(p1)
  check(fmt["1.num_batches_tracked"] and fmt["1.num_batches_tracked"].dtype == "I64"
        and fmt["1.num_batches_tracked"].scalar == true, "formats: num_batches_tracked is a 0-dim I64")
  check(fmt["0.weight"] == nil and fmt["1.running_mean"] == nil, "plain F32 tensors are not listed")
  selut.save(p2, t, m, fmt)
  local kept = slurp(p2)
  check(kept:find('"1.num_batches_tracked":{"dtype":"I64","shape":[],', 1, true), "written back as a 0-dim I64")
  local t2, m2, fmt2 = selut.load(p2)
  check(fmt2["1.num_batches_tracked"].dtype == "I64", "and read back as one")
  selut.save(p3, t2, m2, fmt2)
  check(slurp(p3) == kept, "a second load/save round trip writes the same bytes")
  selut.save(p3, t, m)
  check(slurp(p3):find('"1.num_batches_tracked":{"dtype":"F32","shape":[1],', 1, true), "without formats: F32")
  checkerror("bad argument #4 to 'selut.save' (formats name 'nope', which is not in the table)", selut.save, p3, t,
             m, { nope = { dtype = "I64" } })
  checkerror("(format of '1.running_mean' has dtype F16, expected \"F32\" or \"I64\")", selut.save, p3, t, m,
             { ["1.running_mean"] = { dtype = "F16" } })
  checkerror("(format of '1.running_mean' is a string, expected {dtype=, scalar=})", selut.save, p3, t, m,
             { ["1.running_mean"] = "I64" })
  checkerror("(formats are for a table of tensors (a net's buffers() give theirs))", selut.save, p3, bn, m, fmt)
  checkerror("is stored as I64 but element 1 is", selut.save, p3, t, m, { ["1.running_mean"] = { dtype = "I64" } })
  check(slurp(p2) == kept, "failed saves leave other files alone")
  os.remove(p1); os.remove(p2); os.remove(p3)
end
