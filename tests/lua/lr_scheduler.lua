-- selut.optim.lr_scheduler against PyTorch 1.13 (tests/ref/gen_sched_refs.py):
-- every scheduler's learning rates over 300 steps with two parameter groups,
-- to 1e-12 relative; OneCycleLR's momentum / beta1; state_dict round trips;
-- bad input.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, optim = selut.tensor, selut.optim
local S = optim.lr_scheduler
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/sched_refs.lua")

local function entry(n, name) return { param = T.zeros(n), grad = T.zeros(n), name = name } end

local function optimizer(kind)
  local groups = { { params = { entry(2, "a") } }, { params = { entry(3, "b") }, lr = 0.01 } }
  if kind == "adam" then return optim.Adam(groups, { lr = 0.1 }) end
  return optim.SGD(groups, { lr = 0.1, momentum = 0.9 })
end

local function rel_check(got, want, what)
  local tol = 1e-12 * math.max(math.abs(want), 1e-300)
  if not (math.abs(got - want) <= tol) then
    error(string.format("%s: got %.17g, expected %.17g (rel 1e-12)", what, got, want), 2)
  end
end

local makers = {
  StepLR = function(o) return S.StepLR(o, { step_size = 7, gamma = 0.5 }) end,
  MultiStepLR = function(o) return S.MultiStepLR(o, { milestones = { 30, 80, 80, 150 }, gamma = 0.3 }) end,
  ExponentialLR = function(o) return S.ExponentialLR(o, { gamma = 0.99 }) end,
  CosineAnnealingLR = function(o) return S.CosineAnnealingLR(o, { T_max = 50, eta_min = 0.001 }) end,
  CosineAnnealingWarmRestarts = function(o)
    return S.CosineAnnealingWarmRestarts(o, { T_0 = 10, T_mult = 2, eta_min = 1e-4 })
  end,
  CosineAnnealingWarmRestarts_1 = function(o) return S.CosineAnnealingWarmRestarts(o, { T_0 = 13 }) end,
  LinearLR = function(o) return S.LinearLR(o, { start_factor = 0.25, end_factor = 1.0, total_iters = 40 }) end,
  OneCycleLR = function(o) return S.OneCycleLR(o, { max_lr = { 0.5, 0.05 }, total_steps = refs.steps + 1 }) end,
  OneCycleLR_three_phase = function(o)
    return S.OneCycleLR(o, { max_lr = 0.3, total_steps = refs.steps + 1, three_phase = true,
      anneal_strategy = "linear", pct_start = 0.25 })
  end,
  ReduceLROnPlateau = function(o)
    return S.ReduceLROnPlateau(o, { mode = "min", factor = 0.5, patience = 5, threshold = 1e-3, cooldown = 2,
      min_lr = 1e-4 })
  end,
  SequentialLR = function(o)
    return S.SequentialLR(o, { schedulers = { S.LinearLR(o, { start_factor = 0.1, total_iters = 10 }),
      S.CosineAnnealingLR(o, { T_max = 100 }) }, milestones = { 10 } })
  end,
  LambdaLR = function(o)
    return S.LambdaLR(o, { lr_lambda = { function(e) return 0.95 ^ e end, function(e) return 1.0 / (1 + e) end } })
  end,
}
local kinds = { OneCycleLR_three_phase = "adam" }

local count = 0
for name, ref in pairs(refs.sched) do
  local make = assert(makers[name], name)
  local kind = kinds[name]
  local opt = optimizer(kind)
  local sched = make(opt)
  local function mom(g) return kind == "adam" and g.betas[1] or g.momentum end
  for t = 0, refs.steps do
    if t > 0 then
      opt:step()
      if name == "ReduceLROnPlateau" then sched:step(refs.plateau[t]) else sched:step() end
    end
    local last = sched:get_last_lr()
    for gi, g in ipairs(opt.param_groups) do
      rel_check(g.lr, ref.lr[t + 1][gi], string.format("%s step %d group %d lr", name, t, gi))
      rel_check(last[gi], ref.lr[t + 1][gi], string.format("%s step %d get_last_lr()[%d]", name, t, gi))
      if ref.momentum then
        rel_check(mom(g), ref.momentum[t + 1][gi], string.format("%s step %d group %d momentum", name, t, gi))
      end
    end
  end
  count = count + 1
end
check(count == 12, "all 12 reference sequences ran, got " .. count)

-- state_dict: a scheduler saved halfway and loaded into a fresh one (on a
-- fresh optimizer given the same state) continues the same sequence.
for _, name in ipairs { "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR",
  "CosineAnnealingWarmRestarts", "MultiStepLR" } do
  local opt = optimizer()
  local sched = makers[name](opt)
  local function advance(s, o, t)
    o:step()
    if name == "ReduceLROnPlateau" then s:step(refs.plateau[t]) else s:step() end
  end
  for t = 1, 120 do advance(sched, opt, t) end
  local ssd, osd = sched:state_dict(), opt:state_dict()
  local opt2 = optimizer()
  local sched2 = makers[name](opt2)
  opt2:load_state_dict(osd)
  sched2:load_state_dict(ssd)
  for t = 121, 200 do
    advance(sched, opt, t)
    advance(sched2, opt2, t)
    check(sched:get_last_lr()[1] == sched2:get_last_lr()[1] and opt.param_groups[2].lr == opt2.param_groups[2].lr,
      name .. " resumed from state_dict: same lr at step " .. t)
  end
  rel_check(opt2.param_groups[1].lr, refs.sched[name].lr[201][1], name .. " resumed lr vs PyTorch")
end

-- the live value: writing param_groups[i].lr changes what the optimizer uses
do
  local e = { param = T.new { 1 }, grad = T.new { 1 } }
  local o = optim.SGD({ e }, { lr = 0.1 })
  o.param_groups[1].lr = 0.5
  o:step()
  H.near(e.param[1], 0.5, 1e-7, "param_groups[1].lr = 0.5 used by step")
  check(o.lr == 0.5, "opt.lr reads group 1")
end

-- bad input
local o = optimizer()
checkerror("MultiStepLR: milestones must be increasing, but milestones[3] = 20 comes after 30",
  S.MultiStepLR, o, { milestones = { 10, 30, 20 } })
checkerror("SequentialLR: milestones must be increasing, but milestones[2] = 2 comes after 5", S.SequentialLR, o,
  { schedulers = { S.StepLR(o, { step_size = 1 }), S.StepLR(o, { step_size = 2 }), S.StepLR(o, { step_size = 3 }) },
    milestones = { 5, 2 } })
local ada = optim.Adagrad({ entry(2, "w") })
checkerror("OneCycleLR: the optimizer's param_groups have no 'momentum' or 'betas'", S.OneCycleLR, ada,
  { max_lr = 0.1, total_steps = 10 })
checkerror("param 'initial_lr' is not specified in param_groups[1] when resuming an optimizer",
  S.StepLR, optim.SGD({ entry(2, "w") }, { lr = 0.1 }), { step_size = 3, last_epoch = 4 })
checkerror("StepLR: expected an optimizer with param_groups, got table", S.StepLR, {}, { step_size = 3 })
checkerror("StepLR: the optimizer's param_groups[1] has no 'lr'", S.StepLR, { param_groups = { {} } },
  { step_size = 3 })
checkerror("StepLR: unknown option 'stepsize'", S.StepLR, o, { stepsize = 3 })
checkerror("StepLR: option 'step_size' is required", S.StepLR, o, {})
checkerror("StepLR: option 'step_size' must be an integer >= 1, got 0", S.StepLR, o, { step_size = 0 })
checkerror("ReduceLROnPlateau.step: expected the monitored metric", function()
  S.ReduceLROnPlateau(optimizer()):step()
end)
checkerror("OneCycleLR.step: tried to step 5 times; the specified number of total steps is 3", function()
  local oc = S.OneCycleLR(optimizer(), { max_lr = 0.1, total_steps = 3 })
  for _ = 1, 4 do oc:step() end
end)
local st = S.StepLR(optimizer(), { step_size = 3 })
checkerror("load_state_dict: the state dict is for ExponentialLR, this scheduler is StepLR (nothing was loaded)",
  st.load_state_dict, st, S.ExponentialLR(optimizer(), { gamma = 0.5 }):state_dict())
local bad = st:state_dict()
bad.last_epoch = "x"
checkerror("field 'last_epoch' is string, expected a number (nothing was loaded)", st.load_state_dict, st, bad)
check(st.last_epoch == 0, "a refused state dict changed nothing")
