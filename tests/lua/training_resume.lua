-- The training library end to end: 3 epochs == 2 epochs + checkpoint +
-- resume for 1, bit for bit (weights, optimizer state, scheduler, metrics),
-- with a cosine schedule, AlphaDropout and shuffling; EarlyStopping stops on
-- a synthetic plateau at the right epoch and puts the best weights back;
-- callbacks see their events in order; a today's-format (version 1)
-- checkpoint still loads.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local S, callbacks, checkpoint = optim.lr_scheduler, selut.callbacks, selut.checkpoint

local dir = os.tmpname()
os.remove(dir)
selut.sys.mkdir(dir)

local function data()
  selut.manual_seed(5)
  local x = T.randn(50, 4)
  local y = T.zeros(50)
  for i = 1, 50 do y[i] = (x:get(i, 1) + x:get(i, 2) > 0) and 2 or 1 end
  return selut.data.Dataset(x, y)
end
local train = data()

local function setup(epochs, ckpt)
  selut.manual_seed(7)
  local net = nn.Sequential { nn.Linear(4, 16), nn.SELU(), nn.AlphaDropout(0.2), nn.Linear(16, 2) }
  nn.init.lecun_normal(net)
  local opt = optim.SGD(net:parameters(), { lr = 0.1, momentum = 0.9 })
  local sched = S.CosineAnnealingLR(opt, { T_max = 3 })
  local crit = nn.CrossEntropyLoss()
  local tr = selut.Trainer { net = net, loss = crit, optim = opt, data = train, batch_size = 8, shuffle = true,
    epochs = epochs, scheduler = sched,
    eval = function(t)
      t.net:evaluate()
      return { test_loss = crit:forward(t.net:forward(train.x), train.y) }
    end,
    callbacks = { callbacks.Checkpoint { path = ckpt } } }
  return tr, net, opt, sched
end

local a, net_a, opt_a, sched_a = setup(3, dir .. "/a.safetensors")
local hist_a = a:fit()
check(#hist_a == 3 and a.epoch == 3, "3 epochs ran")

local b = setup(2, dir .. "/b.safetensors")
b:fit()
-- a fresh process would start from another generator state: make sure the
-- resumed run does not depend on it
selut.manual_seed(999)
local c, net_c, opt_c, sched_c = setup(3, dir .. "/c.safetensors")
local info = c:resume(dir .. "/b.safetensors")
check(info.epoch == 2 and info.format_version == 2, "resumed after epoch 2 of a version-2 checkpoint")
local hist_c = c:fit()
check(#hist_c == 1 and hist_c[1].epoch == 3, "the resumed run trains epoch 3 only")
local pa, pc = net_a:parameters(), net_c:parameters()
for i = 1, #pa do
  local x, y = H.flatten(pa[i].param:totable(), {}), H.flatten(pc[i].param:totable(), {})
  for j = 1, #x do check(x[j] == y[j], "parameter " .. pa[i].name .. " bit for bit at " .. j) end
end
local sa, sc = opt_a:state(), opt_c:state()
for name, t in pairs(sa) do
  check((t - sc[name]):abs():max() == 0, "optimizer state " .. name .. " bit for bit")
end
check(opt_a:get_step() == opt_c:get_step(), "optimizer step")
check(opt_a.param_groups[1].lr == opt_c.param_groups[1].lr and sched_a.last_epoch == sched_c.last_epoch,
  "scheduler state")
check(hist_a[3].test_loss == hist_c[1].test_loss and hist_a[3].train_loss == hist_c[1].train_loss,
  "epoch 3's metrics equal")
check(io.open(dir .. "/c.safetensors") and io.open(dir .. "/c.state.safetensors"), "the resumed run checkpoints too")

-- EarlyStopping: a plateau after epoch 3 (min_delta 0.02), patience 3 -> stops after epoch 6
local series = { 1.0, 0.8, 0.7, 0.71, 0.69, 0.75, 0.5, 0.4 }
selut.manual_seed(7)
local net = nn.Sequential { nn.Linear(4, 3), nn.SELU(), nn.Linear(3, 2) }
local events, snap = {}, nil
local recorder = {
  on_step_end = function(_, t, i) if i.batch == 1 then events[#events + 1] = "step" .. t.epoch end end,
  on_eval = function(_, t) events[#events + 1] = "eval" .. t.epoch end,
  on_epoch_end = function(_, t)
    events[#events + 1] = "end" .. t.epoch
    if t.epoch == 3 then snap = net:parameters()[1].param:clone() end
  end,
  on_checkpoint = function(_, t) events[#events + 1] = "ckpt" .. t.epoch end,
}
local es = callbacks.EarlyStopping { monitor = "val", mode = "min", patience = 3, min_delta = 0.02,
  path = dir .. "/best.safetensors" }
local tr = selut.Trainer { net = net, loss = nn.CrossEntropyLoss(), optim = optim.SGD(net:parameters(), { lr = 0.5 }),
  data = train, batch_size = 10, epochs = 8, eval = function(t) return { val = series[t.epoch] } end,
  callbacks = { es, recorder } }
local hist = tr:fit()
check(#hist == 6 and tr.epoch == 6 and es.stopped_epoch == 6 and tr.done, "stopped after epoch 6, got " .. #hist)
check(es.best == 0.7 and es.best_epoch == 3, "best 0.7 at epoch 3")
check((net:parameters()[1].param - snap):abs():max() == 0, "the best (epoch 3) weights are back")
check(tr.stop_reason:find("early stopping: val did not improve for 3 evaluations", 1, true), tr.stop_reason)
check(table.concat(events, " ") == "step1 ckpt1 eval1 end1 step2 ckpt2 eval2 end2 step3 ckpt3 eval3 end3 " ..
  "step4 eval4 end4 step5 eval5 end5 step6 eval6 end6", table.concat(events, " "))
local best = selut.load(dir .. "/best.safetensors")
check((best["0.weight"] - snap):abs():max() == 0, "EarlyStopping's checkpoint holds the best weights")

-- a checkpoint of today's format (tests/data/ckpt-v1: examples/train.lua
-- before format versions, 2 epochs of --depth 2 --width 16 --batch 2) loads
do
  local root = arg[0]:gsub("[^/]*$", "") .. "../data/ckpt-v1/"
  local layers = {}
  for _ = 1, 2 do
    layers[#layers + 1] = nn.Linear(#layers == 0 and 784 or 16, 16)
    layers[#layers + 1] = nn.SELU()
    layers[#layers + 1] = nn.AlphaDropout(0.05)
  end
  layers[#layers + 1] = nn.Linear(16, 10)
  local v1 = nn.Sequential(layers)
  local o = optim.SGD(v1:parameters(), { lr = 0.01, momentum = 0.9 })
  local i1 = checkpoint.load(root .. "last.safetensors", { net = v1, optimizer = o })
  check(i1.format_version == 1 and i1.epoch == 2 and o:get_step() == 4, "version 1 loads: epoch 2, step 4")
  check(i1.state_meta.best_epoch == "1", "its metadata is there")
  local w = selut.load(root .. "last.safetensors")["0.weight"]
  check((v1:parameters()[1].param - w):abs():max() == 0, "weights loaded")
end
os.execute("rm -rf '" .. dir .. "'")
