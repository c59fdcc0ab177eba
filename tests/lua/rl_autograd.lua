-- selut.rl's losses through autograd (scripts/rl_losses.lua, {autograd =
-- true}) against the fused kernels of core/rl/loss.c (themselves checked
-- against PyTorch in rl_algos.lua): the same gradients to 1e-6 on random
-- batches, loss by loss and through a whole PPO / DQN minibatch step into
-- the parameters' gradients; and a short autograd run learns and repeats.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, rl = selut.tensor, selut.rl
local L = require "selut.rl_losses"

local TOL = 1e-6

local function grad_near(got, want, msg)
  H.check(got ~= nil, msg .. ": no gradient")
  H.tensor_near(got, want, TOL, msg)
end

-- random actions in 1..K as a [B x 1] float tensor
local function actions(B, K)
  local a = T.zeros(B, 1)
  rl.randint_(a, K)
  return a
end

-- the advantages as PPO sees them: normalized
local function advantages(B)
  local a = T.randn(B)
  rl.normalize_(a)
  return a
end

-- PPO categorical: d(policy_loss - ent_coef * entropy)/dlogits
for seed = 1, 4 do
  selut.manual_seed(seed)
  local B, K = 64, 2 + seed % 3
  local logits = T.randn(B, K) * 2
  local a = actions(B, K)
  -- old log probs from nearby logits: ratios on both sides of the clip range
  local old = (logits + T.randn(B, K) * 0.3):log_softmax(2):gather(2, a):reshape(B)
  local adv = advantages(B)
  local clip, ent_coef = 0.2, seed % 2 == 0 and 0.01 or 0.0
  local gz = T.zeros(B, K)
  local pl, ent, cf, kl = rl.ppo_categorical_grad(logits, a, old, adv, clip, ent_coef, gz)
  local z = logits:clone():requires_grad_()
  local apl, aent, acf, akl = L.ppo_categorical(z, a, old, adv, clip)
  local loss = apl - aent * ent_coef
  loss:backward()
  local name = "categorical seed " .. seed
  grad_near(z.grad, gz, name .. ": gradient")
  H.near(apl[1], pl, TOL, name .. ": policy loss")
  H.near(aent[1], ent, TOL, name .. ": entropy")
  H.near(acf, cf, 1e-12, name .. ": clip fraction")
  H.near(akl, kl, TOL, name .. ": approx kl")
  H.check(cf > 0.05 and cf < 0.95, name .. ": some ratios clipped, some not (" .. cf .. ")")
end

-- PPO diagonal Gaussian: gradients to the mean and to log_std
for seed = 1, 3 do
  selut.manual_seed(10 + seed)
  local B, K = 64, seed
  local mean, log_std = T.randn(B, K), T.randn(K) * 0.5
  local a = mean + T.randn(B, K) * log_std:exp()
  local old = T.zeros(B)
  do -- old log probs under a nearby mean
    local om = mean + T.randn(B, K) * 0.2
    for i = 1, B do
      local s = 0
      for j = 1, K do
        local sd = math.exp(log_std[j])
        local zz = (a:get(i, j) - om:get(i, j)) / sd
        s = s - 0.5 * zz * zz - log_std[j] - 0.5 * math.log(2 * math.pi)
      end
      old[i] = s
    end
  end
  local adv = advantages(B)
  local clip, ent_coef = 0.2, 0.01 * seed
  local gm, gls = T.zeros(B, K), T.zeros(K)
  local pl, ent, cf = rl.ppo_gaussian_grad(mean, log_std, a, old, adv, clip, ent_coef, gm, gls)
  local m = mean:clone():requires_grad_()
  local ls = log_std:clone():requires_grad_()
  local apl, aent, acf = L.ppo_gaussian(m, ls, a, old, adv, clip)
  local loss = apl - aent * ent_coef
  loss:backward()
  local name = "gaussian seed " .. seed
  grad_near(m.grad, gm, name .. ": mean gradient")
  grad_near(ls.grad, gls, name .. ": log_std gradient")
  H.near(apl[1], pl, TOL, name .. ": policy loss")
  H.near(aent[1], ent, TOL, name .. ": entropy")
  H.near(acf, cf, 1e-12, name .. ": clip fraction")
end

-- DQN: the Huber loss on Q(s, a), both branches (|d| < 1 and beyond)
for seed = 1, 3 do
  selut.manual_seed(20 + seed)
  local B, K = 32, 1 + seed
  local q, a = T.randn(B, K), actions(B, K)
  local y = q:gather(2, a):reshape(B) + T.randn(B) * 1.5
  local g = T.zeros(B, K)
  local loss = rl.dqn_huber_grad(q, a, y, g)
  local qa = q:clone():requires_grad_()
  local aloss = L.dqn_huber(qa, a, y:reshape(B, 1))
  aloss:backward()
  grad_near(qa.grad, g, "huber seed " .. seed .. ": gradient")
  H.near(aloss[1], loss, TOL, "huber seed " .. seed .. ": loss")
end

-- A whole minibatch: the parameters' gradients of one PPO step, fused and
-- through the tape, from one agent and one batch.
local function param_grads(params)
  local out = {}
  for i, p in ipairs(params) do out[i] = p.grad:clone() end
  return out
end

-- (opts.autograd: log_std records; the fused path reads the same tensors)
local function ppo_minibatch_grads(opts, env)
  selut.manual_seed(7)
  local agent = rl.PPO(opts)
  local obs = env:reset(7)
  while not agent.pending do
    agent:observe(env:step(agent:act(obs)))
    obs = env.obs
  end
  agent.buf:start_epochs(opts.batch_size)
  local mb = agent:_batch(1, opts.batch_size)
  agent.opt:zero_grad()
  agent:_fused_grads(mb, 0.2)
  local fused = param_grads(agent.params)
  agent.opt:zero_grad()
  agent:_autograd_grads(mb, 0.2)
  local tape = param_grads(agent.params)
  agent.opt:zero_grad()
  return fused, tape, agent
end

do
  local opts = { obs_size = 4, n_actions = 2, n_envs = 8, n_steps = 32, batch_size = 64, ent_coef = 0.01, autograd = true }
  local fused, tape = ppo_minibatch_grads(opts, rl.envs.CartPoleVec(8))
  for i = 1, #fused do grad_near(tape[i], fused[i], "PPO categorical minibatch: parameter " .. i) end
  local nz = 0
  for i = 1, #fused do nz = nz + rl.sumsq(fused[i]) end
  H.check(nz > 0, "the minibatch gradients are not zero")
end
do
  local opts = { obs_size = 3, action_size = 1, n_envs = 4, n_steps = 32, batch_size = 64, ent_coef = 0.01,
                 activation = "relu", autograd = true }
  local fused, tape, agent = ppo_minibatch_grads(opts, rl.envs.PendulumVec(4))
  H.check(#fused == #agent.pi:parameters() + #agent.vf:parameters() + 1, "log_std is a parameter")
  for i = 1, #fused do grad_near(tape[i], fused[i], "PPO Gaussian minibatch: parameter " .. i) end
end

-- DQN: one gradient step's parameter gradients, fused and through the tape
do
  local function dqn_grads(autograd)
    selut.manual_seed(9)
    local d = rl.DQN { obs_size = 4, n_actions = 2, n_envs = 4, learning_starts = 32, batch_size = 32, train_freq = 1,
                       autograd = autograd }
    local env = rl.envs.CartPoleVec(4)
    local obs = env:reset(9)
    for _ = 1, 20 do
      d:observe(env:step(d:act(obs)))
      obs = env.obs
    end
    selut.manual_seed(99) -- the same replay sample on both sides
    d.opt:zero_grad()
    d:_grads()
    return param_grads(d.params)
  end
  local fused, tape = dqn_grads(false), dqn_grads(true)
  for i = 1, #fused do grad_near(tape[i], fused[i], "DQN minibatch: parameter " .. i) end
end

-- {autograd = true}: a short PPO run learns a little and repeats bit for bit
local function run(seed)
  selut.manual_seed(seed)
  local agent = rl.PPO { obs_size = 4, n_actions = 2, n_envs = 4, n_steps = 64, batch_size = 64, n_epochs = 4,
                         lr = 3e-3, gamma = 0.98, gae_lambda = 0.8, autograd = true }
  local env = rl.envs.CartPoleVec(4)
  local obs = env:reset(seed)
  local trace = 0
  while agent.steps < 6000 do
    local a = agent:act(obs)
    trace = trace * 0.5 + a[1]
    agent:observe(env:step(a))
    agent:train_for(math.huge)
    obs = env.obs
  end
  return agent, trace
end
local agent, t1 = run(3)
local _, t2 = run(3)
H.check(t1 == t2, "PPO {autograd = true}: same seed, same run")
local mean = rl.evaluate(agent, rl.envs.CartPoleVec, 20, 77)
H.check(mean > 60, "PPO {autograd = true} learns on CartPole (mean return " .. mean .. " after 6000 steps, random ~22)")
