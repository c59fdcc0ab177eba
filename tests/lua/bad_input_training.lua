-- Bad input to the training library: each gives a clear error, and nothing
-- is left half changed.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad, check = B.bad, H.check
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local S, checkpoint = optim.lr_scheduler, selut.checkpoint

local function net(w)
  selut.manual_seed(1)
  return nn.Sequential { nn.Linear(3, w or 4), nn.SELU(), nn.Linear(w or 4, 2) }
end

-- a scheduler on an optimizer that lacks the group key it needs
local ada = optim.Adagrad(net():parameters())
bad("OneCycleLR: the optimizer's param_groups have no 'momentum' or 'betas'", S.OneCycleLR, ada,
  { max_lr = 0.1, total_steps = 10 })
bad("StepLR: the optimizer's param_groups[1] has no 'lr' (a number), which this scheduler needs", S.StepLR,
  { param_groups = { { weight_decay = 0 } } }, { step_size = 2 })
bad("param 'initial_lr' is not specified in param_groups[1] when resuming an optimizer", S.ExponentialLR,
  optim.SGD(net():parameters(), { lr = 0.1 }), { gamma = 0.9, last_epoch = 3 })

-- a non-monotonic milestones list
local sgd = optim.SGD(net():parameters(), { lr = 0.1 })
bad("MultiStepLR: milestones must be increasing, but milestones[2] = 3 comes after 5", S.MultiStepLR, sgd,
  { milestones = { 5, 3 } })
check(sgd.param_groups[1].initial_lr == nil and sgd.lr == 0.1, "a refused scheduler left the optimizer alone")

-- max_norm <= 0
local m = net()
bad("bad argument #2 to 'clip_grad_norm_' (max_norm must be > 0, got 0.0)", function() nn.utils.clip_grad_norm_(m, 0) end)
bad("bad argument #2 to 'clip_grad_norm_' (max_norm must be > 0, got -2.0)", function() nn.utils.clip_grad_norm_(m, -2) end)
bad("bad argument #3 to 'clip_grad_norm_' (norm type p must be > 0", function() nn.utils.clip_grad_norm_(m, 1, 0) end)

-- an optimizer state dict whose shapes do not match the parameters
local small = optim.Adam(net(4):parameters())
for _, e in ipairs(net(4):parameters()) do e.grad:fill_(1) end
local sd = small:state_dict()
local other = optim.Adam(net(5):parameters(), { lr = 0.3 })
local before = other:state_dict()
bad("in the state dict, Adam expects [5 x 3] (nothing was loaded)", other.load_state_dict, other, sd)
local after = other:state_dict()
check(after.step == before.step and after.param_groups[1].lr == 0.3, "step and groups unchanged")
for name, t in pairs(after.state) do check((t - before.state[name]):abs():max() == 0, name .. " unchanged") end

-- a checkpoint from a newer format
local m1 = net()
local o1 = optim.SGD(m1:parameters(), { lr = 0.1, momentum = 0.9 })
local path = B.dir .. "/ck.safetensors"
checkpoint.save(path, { net = m1, optimizer = o1, epoch = 4 })
local tensors, meta = selut.load(path)
meta.format_version = "3"
selut.save(path, tensors, meta)
local m2 = net(4)
for _, e in ipairs(m2:parameters()) do e.param:fill_(0.5) end
local o2 = optim.SGD(m2:parameters(), { lr = 0.2, momentum = 0.9 })
bad("checkpoint: '" .. path .. "' has format version 3, newer than the 2 this selut " .. selut.version ..
  " reads; update selut to resume from it (nothing was loaded)", checkpoint.load, path, { net = m2, optimizer = o2 })
check(m2:parameters()[1].param[1][1] == 0.5 and o2.lr == 0.2, "nothing was loaded")
meta.format_version = "2"
selut.save(path, tensors, meta)
checkpoint.load(path, { net = m2, optimizer = o2 })
check(m2:parameters()[1].param[1][1] ~= 0.5 and o2.lr == 0.1, "version 2 loads")
-- a torn pair (the state file of another save)
meta.checkpoint_id = "9-99"
selut.save(path, tensors, meta)
bad("come from different saves (ids 9-99 and 4-0): the pair was torn (nothing was loaded)", checkpoint.load, path,
  { net = m2, optimizer = o2 })
B.done(10)
