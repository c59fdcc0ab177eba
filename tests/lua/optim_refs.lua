-- RMSprop, Adagrad and clip_grad_norm_ against PyTorch 1.13
-- (tests/ref/gen_sched_refs.py); parameter groups; optimizer state_dict.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn, optim = selut.tensor, selut.nn, selut.optim
local refs = dofile(arg[0]:gsub("[^/]*$", "") .. "../ref/sched_refs.lua")

local function close(got, want, tol, what)
  for i = 1, #want do
    local g = got[i]
    if not (math.abs(g - want[i]) <= tol * math.max(1, math.abs(want[i]))) then
      error(string.format("%s[%d]: got %.9g, expected %.9g (tol %g)", what, i, g, want[i], tol), 2)
    end
  end
end

local makers = {
  RMSprop = function(e) return optim.RMSprop(e, { lr = 0.01 }) end,
  RMSprop_full = function(e)
    return optim.RMSprop(e, { lr = 0.02, alpha = 0.9, eps = 1e-6, weight_decay = 0.01, momentum = 0.8, centered = true })
  end,
  Adagrad = function(e) return optim.Adagrad(e, { lr = 0.1 }) end,
  Adagrad_full = function(e)
    return optim.Adagrad(e, { lr = 0.1, lr_decay = 0.01, weight_decay = 0.05, initial_accumulator_value = 0.3,
      eps = 1e-8 })
  end,
}
for name, want in pairs(refs.optim) do
  local e = { param = T.new(refs.p0), grad = T.zeros(#refs.p0), name = "w" }
  local o = makers[name]({ e })
  for t = 1, 50 do
    e.grad:copy(T.new(refs.grads[t]))
    o:step()
  end
  close(e.param:totable(), want, 1e-6, name .. " after 50 steps (1e-6)")
end

-- clip_grad_norm_: total norm and clipped gradients, p = 2, 1, inf
for name, p in pairs { p2 = 2, p1 = 1, pinf = math.huge } do
  local a = { param = T.zeros(2, 3), grad = T.new { { 0.3, -1.2, 0.7 }, { 2.0, -0.1, 0.05 } } }
  local b = { param = T.zeros(4), grad = T.new { -0.9, 0.4, 1.1, -0.6 } }
  local total = nn.utils.clip_grad_norm_({ a, b }, 1.5, p)
  local want = refs.clip[name]
  check(math.type(total) == "float", "the total norm is a number")
  close({ total }, { want.total }, 1e-6, name .. " total norm")
  close(H.flatten(a.grad:totable(), {}), want.a, 1e-6, name .. " clipped a")
  close(b.grad:totable(), want.b, 1e-6, name .. " clipped b")
end
-- a module works too; below max_norm nothing changes; clip_grad_value_
do
  local net = nn.Sequential { nn.Linear(3, 2) }
  local ps = net:parameters()
  ps[1].grad:fill_(0.01)
  ps[2].grad:fill_(-3)
  local before = ps[1].grad:totable()
  local total = nn.utils.clip_grad_norm_(net, 100)
  H.near(total, math.sqrt(6 * 1e-4 + 2 * 9), 1e-5, "module total norm")
  check(H.flatten(ps[1].grad:totable(), {})[1] == H.flatten(before, {})[1], "no clipping under max_norm")
  nn.utils.clip_grad_value_(net, 0.5)
  check(ps[2].grad[1] == -0.5 and H.flatten(ps[1].grad:totable(), {})[1] == H.flatten(before, {})[1],
    "clip_grad_value_ clamps to [-0.5, 0.5]")
  checkerror("max_norm must be > 0, got 0.0", nn.utils.clip_grad_norm_, net, 0)
  checkerror("max_norm must be > 0, got -1.0", nn.utils.clip_grad_norm_, net, -1)
  checkerror("clip_value must be >= 0", nn.utils.clip_grad_value_, net, -1)
  checkerror("module or list of parameters", nn.utils.clip_grad_norm_, 42, 1)
end

-- parameter groups: different lr and weight decay per group
do
  local a = { param = T.new { 1 }, grad = T.new { 1 }, name = "a" }
  local b = { param = T.new { 1 }, grad = T.new { 1 }, name = "b" }
  local o = optim.SGD({ { params = { a }, lr = 0.5 }, { params = { b }, weight_decay = 1 } }, { lr = 0.1 })
  check(#o.param_groups == 2 and o.param_groups[1].lr == 0.5 and o.param_groups[2].lr == 0.1, "group options")
  o:step()
  H.near(a.param[1], 0.5, 1e-7, "group 1: lr 0.5")
  H.near(b.param[1], 0.8, 1e-7, "group 2: lr 0.1, weight decay 1")
  o.lr = 0.01
  check(o.param_groups[1].lr == 0.01 and o.param_groups[2].lr == 0.01, "opt.lr sets every group")
  checkerror("parameter group 1: unknown option 'betas'", optim.SGD, { { params = { a }, betas = { 1, 2 } } },
    { lr = 0.1 })
  checkerror("param_groups[0].lr: invalid value -1", function() o.param_groups[1].lr = -1 end)
  checkerror("this optimizer was built without momentum buffers", function() o.param_groups[1].momentum = 0.9 end)
  local ad = optim.Adam({ { params = { a } }, { params = { b }, betas = { 0.5, 0.6 } } })
  check(ad.param_groups[2].betas[1] == 0.5 and ad.param_groups[1].betas[2] == 0.999, "Adam betas per group")
end

-- state_dict / load_state_dict: copies; a mismatch is refused before anything changes
do
  local function make()
    local net = nn.Sequential { nn.Linear(3, 2) }
    return net, optim.Adam(net:parameters(), { lr = 0.01 })
  end
  local net, o = make()
  for _, p in ipairs(net:parameters()) do p.grad:fill_(0.5) end
  o:step()
  o:step()
  o.param_groups[1].initial_lr = 0.02
  local sd = o:state_dict()
  check(sd.type == "Adam" and sd.step == 2 and sd.param_groups[1].lr == 0.01 and sd.param_groups[1].initial_lr == 0.02,
    "state_dict fields")
  o:step()
  check(sd.step == 2 and sd.state["0.weight.exp_avg"][1][1] ~= o:state()["0.weight.exp_avg"][1][1],
    "state_dict holds copies")
  local _, o2 = make()
  o2:load_state_dict(sd)
  check(o2:get_step() == 2 and o2.param_groups[1].initial_lr == 0.02, "loaded step and group keys")
  check(o2:state()["0.weight.exp_avg"][1][1] == sd.state["0.weight.exp_avg"][1][1], "loaded state tensors")
  -- mismatched shapes: nothing changes
  local net3 = nn.Sequential { nn.Linear(4, 2) }
  local o3 = optim.Adam(net3:parameters(), { lr = 0.5 })
  local msg = checkerror("is [2 x 3] in the state dict, Adam expects [2 x 4] (nothing was loaded)",
    o3.load_state_dict, o3, sd)
  check(msg:find("load_state_dict: state '0.weight.exp_avg", 1, true), "the message names the state tensor: " .. msg)
  check(o3:get_step() == 0 and o3.param_groups[1].lr == 0.5 and o3:state()["0.bias.exp_avg"][1] == 0,
    "a refused state dict changed nothing")
  local bad = o:state_dict()
  bad.param_groups[1].betas = { 0.9, 2 }
  local _, o4 = make()
  checkerror("invalid value 2 (nothing was loaded)", o4.load_state_dict, o4, bad)
  check(o4:get_step() == 0 and o4.param_groups[1].betas[1] == 0.9 and o4.param_groups[1].lr == 0.01,
    "a refused group left every value as it was")
  checkerror("the state dict is for Adam, this optimizer is SGD", function()
    optim.SGD(net:parameters(), { lr = 0.1, momentum = 0.9 }):load_state_dict(sd)
  end)
end
