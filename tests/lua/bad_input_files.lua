-- Bad input from files and the command line: missing, corrupt and
-- truncated data and checkpoint files, checkpoints that do not fit the net,
-- unwritable paths, and wrong launcher flags. Messages name the function or
-- flag, the file and what was expected; the state stays healthy.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local bad, file, dir = B.bad, B.file, B.dir
local T, nn, data = selut.tensor, selut.nn, selut.data

-- IDX
bad("idx: cannot open " .. dir .. "/nope.idx: No such file or directory", function() return data.idx(dir .. "/nope.idx") end)
bad("t.idx: truncated: header [9] of ubyte needs 9 data bytes, file has 3", function()
  return data.idx(file("t.idx", "\0\0\8\1\0\0\0\9abc"))
end)
bad("m.idx: bad magic 0x504b0304 (expected 0x0000<dtype><ndim>)", function() return data.idx(file("m.idx", "PK\3\4garbage")) end)
bad("g.idx.gz: corrupt gzip stream", function() return data.idx(file("g.idx.gz", "\31\139\8\0garbagegarbage")) end)
bad("idx: " .. dir .. ": read error: Is a directory", function() return data.idx(dir) end)
bad("bad argument #2 to 'idx' (scale must be a finite number)", function() return data.idx(dir .. "/t.idx", 0 / 0) end)
-- a gzip file cut in the middle of the stream
do
  local f = assert(io.open((os.getenv("SELUT_ROOT") or ".") .. "/tests/data/small-u8.idx.gz", "rb"))
  local gz = f:read("a")
  f:close()
  bad("cut.idx.gz", function() return data.idx(file("cut.idx.gz", gz:sub(1, #gz // 2))) end)
end

-- CSV
bad("csv: cannot open " .. dir .. "/nope.csv: No such file or directory", function() return data.csv(dir .. "/nope.csv") end)
bad("r.csv:2: 1 columns, expected 2 (as in line 1)", function() return data.csv(file("r.csv", "1,2\n3\n")) end)
bad("b.csv:2: column 2: cannot parse 'x' as a number", function() return data.csv(file("b.csv", "1,2\n3,x\n")) end)
bad("e.csv: empty file", function() return data.csv(file("e.csv", "")) end)
bad("bad argument #2 to 'csv' (unknown option 'hedder' (expected header, label, delimiter))", function()
  return data.csv(dir .. "/r.csv", { hedder = true })
end)
bad("h.csv: no column named \"y\" in the header", function() return data.csv(file("h.csv", "a,b\n1,2\n"), { label = "y" }) end)
bad("bad argument #2 to 'csv' (option 'delimiter' must be one character that cannot be part of a number, got ,,)", function()
  return data.csv(dir .. "/h.csv", { delimiter = ",," })
end)
bad("fashion_mnist: cannot open " .. dir .. "/train-images-idx3-ubyte.gz: No such file or directory; install the Debian package dataset-fashion-mnist",
    function() return data.fashion_mnist(dir) end)

-- checkpoints: missing, truncated, garbage, not fitting the net, unwritable
local x = T.ones(4, 3)
local closed = T.zeros(2)
do local c <close> = closed end
bad("bad argument #2 to 'save' (value of 'x' is number, expected an open selut.Tensor)", function()
  return selut.save(dir .. "/a.safetensors", { x = 1 })
end)
bad("bad argument #2 to 'save' (value of 'x' is a closed selut.Tensor, expected an open selut.Tensor)", function()
  return selut.save(dir .. "/a.safetensors", { x = closed })
end)
bad("bad argument #2 to 'save' (tensor names must be non-empty strings without NUL bytes)", function()
  return selut.save(dir .. "/a.safetensors", { [""] = x })
end)
bad("bad argument #1 to 'save' (string expected, got nil)", function() return selut.save(nil, { x = x }) end)
bad("safetensors.save: cannot create a temporary file next to " .. dir .. "/no/such/dir/a.safetensors: No such file or directory",
    function() return selut.save(dir .. "/no/such/dir/a.safetensors", { x = x }) end)
bad("safetensors: cannot open " .. dir .. "/none.safetensors: No such file or directory", function()
  return selut.load(dir .. "/none.safetensors")
end)
selut.save(dir .. "/ok.safetensors", { w = x })
local f = assert(io.open(dir .. "/ok.safetensors", "rb"))
local good = f:read("a")
f:close()
bad("tr.safetensors: tensor \"w\": data_offsets [0, 48] lie outside the 43-byte data section", function()
  return selut.load(file("tr.safetensors", good:sub(1, #good - 5)))
end)
bad("gb.safetensors: header length 18446744073709551615 exceeds the 100000000-byte limit", function()
  return selut.load(file("gb.safetensors", string.rep("\255", 64)))
end)
bad("short.safetensors", function() return selut.load(file("short.safetensors", "\8\0\0")) end)
local net = nn.Sequential { nn.Linear(3, 2) }
selut.save(dir .. "/net.safetensors", net)
bad("load: tensor '0.weight' is [2 x 3] in '" .. dir .. "/net.safetensors', the net expects [2 x 4] (nothing was loaded)",
    function() return selut.load(dir .. "/net.safetensors", nn.Sequential { nn.Linear(4, 2) }) end)
bad("has no tensor '2.weight' (the net expects [2 x 2])", function()
  return selut.load(dir .. "/net.safetensors", nn.Sequential { nn.Linear(3, 2), nn.SELU(), nn.Linear(2, 2) })
end)
bad("bad argument #2 to 'load' (net (with a parameters method) or table of tensors expected, got number)", function()
  return selut.load(dir .. "/net.safetensors", 5)
end)
-- a failed load leaves the net untouched
do
  local target = nn.Sequential { nn.Linear(3, 2), nn.SELU(), nn.Linear(2, 2) }
  local before = target:parameters()[1].param:clone()
  pcall(selut.load, dir .. "/net.safetensors", target)
  H.check((target:parameters()[1].param - before):abs():sum() == 0, "a failed load changed the net")
end

-- pictures and logs to unwritable places
bad("png: cannot write '" .. dir .. "/no/dir/p.png': No such file or directory", function()
  return selut.viz.plot({ loss = { 1, 2 } }, dir .. "/no/dir/p.png")
end)
bad("write_file: cannot create a temporary file for '" .. dir .. "/no/such/x': No such file or directory", function()
  return selut.sys.write_file(dir .. "/no/such/x", "a")
end)
bad("mkdir: cannot create '" .. dir .. "/f/sub': Not a directory", function()
  file("f", "x"); return selut.sys.mkdir(dir .. "/f/sub")
end)
bad("bad argument #1 to 'set_rng_state' (generator state of 5 bytes, expected 41)", function()
  return selut.sys.set_rng_state("short")
end)

B.no_leak(function() return data.idx(dir .. "/t.idx") end)
B.no_leak(function() return data.csv(dir .. "/b.csv") end)
B.no_leak(function() return selut.load(dir .. "/tr.safetensors") end)
B.no_leak(function() return selut.load(dir .. "/net.safetensors", nn.Sequential { nn.Linear(4, 2) }) end)

-- the launcher: wrong flags are usage errors (exit status 2) with a message
local launcher = os.getenv("SELUT_LAUNCHER")
if launcher then
  local function run(args)
    local p = assert(io.popen("'" .. launcher .. "' " .. args .. " </dev/null 2>&1; echo \"rc=$?\""))
    local out = p:read("a")
    p:close()
    return out
  end
  local function cli(text, args, rc)
    B.bad(text, function()
      local out = run(args)
      H.check(out:find("rc=" .. rc .. "\n", 1, true), "selut " .. args .. ": expected exit status " .. rc .. ", got " .. out)
      error(out)
    end)
  end
  cli("selut: --threads expects a thread count from 1 to 1024, got '0'", "--threads 0 -e 'print(1)'", 2)
  cli("selut: --threads expects a thread count from 1 to 1024, got 'x'", "--threads=x -e 'print(1)'", 2)
  cli("selut: '--threads' needs a number", "--threads", 2)
  cli("selut: unrecognized option '--bogus'", "--bogus", 2)
  cli("selut: '-e' needs an argument", "-e", 2)
  cli("selut: cannot open /nonexistent/x.lua", "/nonexistent/x.lua", 1)
  cli("selut: --max-memory: bad argument #1 to 'selut.set_memory_limit' (byte count expected (e.g. 1048576, \"512K\", \"64M\", \"2G\"), got 'lots')",
      "--max-memory lots -e 'print(1)'", 2)
  cli("selut: '--max-memory' needs a byte count (e.g. 512M)", "--max-memory", 2)
  cli("memory limit exceeded: 4194304 bytes requested", "--max-memory 1M -e 'selut.tensor.zeros(1024, 1024)'", 1)
  -- and the good path of the flag
  local out = run("--max-memory=64M -e 'print(selut.get_memory_limit())'")
  H.check(out == "67108864\nrc=0\n", "--max-memory=64M: " .. out)
end

B.done(launcher and 38 or 29)
