-- A checkpoint is saved as one unit: a crash at any point of checkpoint.save
-- leaves a pair that loads consistently, the previous one or the new one
-- (scripts/checkpoint.lua: the model file's rename is the commit). The two
-- crash points are simulated with save's test-only `_stop_after`.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim, checkpoint = selut.tensor, selut.nn, selut.optim, selut.checkpoint

local dir = os.tmpname()
os.remove(dir)
selut.sys.mkdir(dir)
local path = dir .. "/last.safetensors"

selut.manual_seed(3)
local net = nn.Sequential { nn.Linear(3, 4), nn.SELU(), nn.Linear(4, 2) }
local opt = optim.SGD(net:parameters(), { lr = 0.1, momentum = 0.9 })
local x, y = T.randn(8, 3), T.new { 1, 2, 1, 2, 2, 1, 1, 2 }
local crit = nn.CrossEntropyLoss()
local function train_step()
  opt:zero_grad()
  local out = net:forward(x)
  crit:forward(out, y)
  net:backward(x, crit:backward(out, y))
  opt:step()
end
local function snapshot()
  local w = net:parameters()[1].param:clone()
  return w, opt:state_dict().step
end

-- epoch 1: a complete save
train_step()
checkpoint.save(path, { net = net, optimizer = opt, epoch = 1 })
local w1, step1 = snapshot()
local function exists(p) local f = io.open(p, "rb"); if f then f:close() end; return f ~= nil end
check(exists(path) and exists(dir .. "/last.state.safetensors"), "a complete save leaves the usual two files")
check(not exists(dir .. "/last.state.1-1.safetensors"), "and no staged state file")

local function loads_as(w_want, step_want, epoch_want, what)
  selut.manual_seed(9)
  local n2 = nn.Sequential { nn.Linear(3, 4), nn.SELU(), nn.Linear(4, 2) }
  local o2 = optim.SGD(n2:parameters(), { lr = 0.1, momentum = 0.9 })
  local info = checkpoint.load(path, { net = n2, optimizer = o2 })
  check(info.epoch == epoch_want, what .. ": epoch " .. info.epoch .. ", expected " .. epoch_want)
  H.tensor_near(n2:parameters()[1].param, w_want, 0, what .. ": weights")
  check(o2:state_dict().step == step_want, what .. ": optimizer step " .. o2:state_dict().step)
end
loads_as(w1, step1, 1, "after a complete save")

-- epoch 2: a crash after the new state file was staged, before the model's
-- rename: the previous checkpoint (epoch 1) still loads, whole
train_step()
checkpoint.save(path, { net = net, optimizer = opt, epoch = 2, _stop_after = "state" })
check(exists(dir .. "/last.state.2-2.safetensors"), "the staged state file of the interrupted save")
loads_as(w1, step1, 1, "crash before the commit")

-- the same save again, crashing after the model's rename, before the state
-- file's: the new checkpoint (epoch 2) loads with its own state
checkpoint.save(path, { net = net, optimizer = opt, epoch = 2, _stop_after = "model" })
local w2, step2 = snapshot()
loads_as(w2, step2, 2, "crash after the commit")

-- and a complete save (epoch 3) after that leaves the usual pair again
train_step()
checkpoint.save(path, { net = net, optimizer = opt, epoch = 3 })
local w3, step3 = snapshot()
loads_as(w3, step3, 3, "the next complete save")
check(not exists(dir .. "/last.state.3-3.safetensors"), "its staged file was renamed into place")
check(not exists(dir .. "/last.state.2-2.safetensors"), "and the staged file the interrupted save left is gone")

-- a crash before the commit, then a complete save: nothing staged is left,
-- and files that only look alike are not touched
local keep = { "last.state.x-1.safetensors", "other.state.4-4.safetensors", "last.state.4-4.safetensors.txt" }
for _, f in ipairs(keep) do selut.sys.write_file(dir .. "/" .. f, "keep") end
train_step()
checkpoint.save(path, { net = net, optimizer = opt, epoch = 4, _stop_after = "state" })
check(exists(dir .. "/last.state.4-4.safetensors"), "the staged file of a save interrupted before the commit")
checkpoint.save(path, { net = net, optimizer = opt, epoch = 5 })
check(not exists(dir .. "/last.state.4-4.safetensors"), "is removed by the next complete save")
for _, f in ipairs(keep) do check(exists(dir .. "/" .. f), "a file that only looks alike stays: " .. f) end
local names = selut.sys.listdir(dir)
check(table.concat(names, " ") == "last.safetensors last.state.4-4.safetensors.txt last.state.safetensors " ..
  "last.state.x-1.safetensors other.state.4-4.safetensors", "listdir, sorted: " .. table.concat(names, " "))
H.checkerror("listdir: cannot open '" .. dir .. "/nope'", selut.sys.listdir, dir .. "/nope")
for _, f in ipairs(keep) do os.remove(dir .. "/" .. f) end

for _, f in ipairs { "last.safetensors", "last.state.safetensors" } do
  os.remove(dir .. "/" .. f)
end
os.remove(dir)
