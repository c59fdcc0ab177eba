-- Training stops on a non-finite loss: examples/train.lua trains
-- one epoch on the committed mini Fashion-MNIST, then resumes with an absurd
-- learning rate; the run must stop with a message naming the epoch and the
-- batch, exit with status 1, and leave the last good checkpoint as it was
-- (byte-identical, loadable).
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local launcher, root = os.getenv("SELUT_LAUNCHER"), os.getenv("SELUT_ROOT") or "."
if not launcher then return end -- needs the launcher (make test sets SELUT_LAUNCHER)

local dir = os.tmpname()
os.remove(dir)
local common = string.format("'%s' '%s/examples/train.lua' --data '%s/tests/data/fashion-mini' --out '%s' " ..
                             "--depth 2 --width 32 --batch 1 --no-plots", launcher, root, root, dir)
local function run(extra)
  local p = assert(io.popen(common .. " " .. extra .. " </dev/null 2>&1; echo \"rc=$?\""))
  local out = p:read("a")
  p:close()
  return out
end
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local out = run("--epochs 1")
H.check(out:find("rc=0\n", 1, true), "first epoch failed:\n" .. out)
local ckpt = dir .. "/last.safetensors"
local good = slurp(ckpt)

out = run("--epochs 3 --lr 1e30 --resume '" .. ckpt .. "'")
H.check(out:find("rc=1\n", 1, true), "a diverging run must exit with status 1:\n" .. out)
H.check(out:find("train.lua: non-finite training loss (", 1, true), "message:\n" .. out)
H.check(out:find(") at epoch 2, batch 2: stopping; the last good checkpoint is " .. ckpt, 1, true),
        "the message must name the epoch, the batch and the checkpoint:\n" .. out)
H.check(slurp(ckpt) == good, "the last good checkpoint changed")
local t = selut.load(ckpt)
H.check(selut.tensor.is_tensor(t["0.weight"]) and t["0.weight"]:size(1) == 32, "the checkpoint does not load")
for _, v in pairs(t) do H.check(v:sum() == v:sum(), "the kept checkpoint holds NaN") end
os.execute("rm -rf '" .. dir .. "'")
