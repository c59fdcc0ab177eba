-- selut.rl: the loss kernels and GAE against PyTorch / Stable-Baselines3
-- (tests/ref/gen_rl_loss_refs.py), the distributions, the buffers, and
-- short PPO / DQN runs: they learn, respect train_for's budget and repeat
-- bit for bit from a seed. The full learning targets are examples/rl/*.lua.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, rl = selut.tensor, selut.rl
local root = os.getenv("SELUT_ROOT") or "."
local R = dofile(root .. "/tests/ref/rl_loss_refs.lua")

local function near_rel(got, want, tol, msg)
  H.check(math.abs(got - want) <= tol * math.max(1, math.abs(want)),
          string.format("%s: got %.9g, expected %.9g", msg, got, want))
end

-- PPO categorical
for _, name in ipairs { "categorical", "categorical_noent" } do
  local c = R[name]
  local B, K = #c.logits, #c.logits[1]
  local g = T.zeros(B, K)
  local pl, ent, cf, kl = rl.ppo_categorical_grad(T.new(c.logits), T.new(c.actions), T.new(c.old), T.new(c.adv),
                                                  c.clip, c.ent_coef, g)
  H.tensor_near(g, c.grad, 1e-6, name .. " gradient")
  near_rel(pl, c.pl, 1e-6, name .. " policy loss")
  near_rel(ent, c.ent, 1e-6, name .. " entropy")
  near_rel(cf, c.cf, 1e-12, name .. " clip fraction")
  near_rel(kl, c.kl, 1e-5, name .. " approx kl")
  H.check(cf > 0 and cf < 1, name .. ": some ratios clipped, some not")
  -- the distribution object agrees
  local d = rl.Categorical(T.new(c.logits))
  local lp = d:log_prob(T.new(c.actions))
  local e = d:entropy()
  local s = 0
  for i = 1, B do s = s + e[i] end
  near_rel(s / B, c.ent, 1e-6, name .. " Categorical:entropy")
  H.check(lp:numel() == B, "log_prob shape")
end

-- PPO Gaussian
do
  local c = R.gaussian
  local B, K = #c.mean, #c.mean[1]
  local gm, gls = T.zeros(B, K), T.full(0.5, K) -- log_std gradient accumulates
  local pl, ent, cf, kl = rl.ppo_gaussian_grad(T.new(c.mean), T.new(c.log_std), T.new(c.actions), T.new(c.old),
                                               T.new(c.adv), c.clip, c.ent_coef, gm, gls)
  H.tensor_near(gm, c.grad_mean, 1e-6, "gaussian mean gradient")
  H.tensor_near(gls, { c.grad_log_std[1] + 0.5, c.grad_log_std[2] + 0.5 }, 1e-6, "gaussian log_std gradient (+=)")
  near_rel(pl, c.pl, 1e-6, "gaussian policy loss")
  near_rel(ent, c.ent, 1e-6, "gaussian entropy")
  near_rel(cf, c.cf, 1e-12, "gaussian clip fraction")
  near_rel(kl, c.kl, 1e-5, "gaussian kl")
  local d = rl.Normal(T.new(c.mean), T.new(c.log_std):exp())
  local e = d:entropy()
  local s = 0
  for i = 1, B do s = s + e[i] end
  near_rel(s / B, c.ent, 1e-6, "Normal:entropy")
end

-- DQN targets and Huber gradient
do
  local c = R.dqn
  local B, K = #c.q, #c.q[1]
  local y = T.zeros(B)
  rl.dqn_targets(T.new(c.qo), T.new(c.qt), T.new(c.r), T.new(c.d), c.gamma, y)
  H.tensor_near(y, c.y, 1e-5, "double DQN targets")
  rl.dqn_targets(nil, T.new(c.qt), T.new(c.r), T.new(c.d), c.gamma, y)
  H.tensor_near(y, c.y_plain, 1e-5, "DQN targets")
  local g = T.zeros(B, K)
  local yt = T.new(c.y)
  local loss = rl.dqn_huber_grad(T.new(c.q), T.new(c.actions), yt, g)
  H.tensor_near(g, c.grad, 1e-7, "Huber gradient")
  near_rel(loss, c.loss, 1e-6, "Huber loss")
end

-- GAE(lambda) and returns through RolloutBuffer
do
  local c = R.gae
  local S, N = #c.rewards, #c.rewards[1]
  local buf = rl.RolloutBuffer(S, N, 2)
  for t = 1, S do
    buf:add(T.zeros(N, 2), T.ones(N), T.new(c.rewards[t]), T.new(c.starts[t]), T.new(c.values[t]), T.zeros(N))
  end
  H.check(buf:full(), "buffer full")
  buf:compute_returns_and_advantage(T.new(c.last_values), T.new(c.last_dones), c.gamma, c.lam)
  H.tensor_near(buf.advantages, c.adv, 1e-5, "GAE advantages")
  H.tensor_near(buf.returns, c.ret, 1e-5, "returns")
  H.checkerror("RolloutBuffer.add: the buffer is full (6 steps)", function()
    buf:add(T.zeros(N, 2), T.ones(N), T.zeros(N), T.zeros(N), T.zeros(N), T.zeros(N))
  end)
  -- minibatches cover every row once per epoch
  local seen, n = {}, 0
  for first, count in buf:minibatches(5) do
    for k = first, first + count - 1 do
      local r = buf.perm[k]
      H.check(not seen[r], "row drawn twice")
      seen[r], n = true, n + 1
    end
  end
  H.check(n == S * N, "minibatches cover the rollout")
end

-- Categorical sampling frequencies and Normal moments from the state's generator
do
  selut.manual_seed(5)
  local logits = T.new({ { 0, math.log(3) } }) -- p = 1/4, 3/4
  local n2, n = 0, 4000
  for _ = 1, n do if rl.Categorical(logits):sample()[1] == 2 then n2 = n2 + 1 end end
  H.near(n2 / n, 0.75, 0.03, "Categorical sample frequency")
  selut.manual_seed(5)
  local a1 = rl.Categorical(T.zeros(6, 3)):sample()
  selut.manual_seed(5)
  local a2 = rl.Categorical(T.zeros(6, 3)):sample()
  H.tensor_near(a1, a2, 0, "same seed, same samples")
  local d = rl.Normal(T.full(2, 2000, 1), 0.5)
  local x = d:sample()
  H.near(x:mean(), 2, 0.05, "Normal mean")
  H.near(x:std(), 0.5, 0.03, "Normal std")
  local lp = rl.Normal(T.zeros(1, 1), 1):log_prob(T.zeros(1, 1))
  H.near(lp[1], -0.5 * math.log(2 * math.pi), 1e-6, "Normal log_prob at the mean")
end

-- ReplayBuffer: a ring that wraps inside one add, samples rows it holds
do
  local buf = rl.ReplayBuffer(5, 2)
  local function rows(n, base)
    local t = {}
    for i = 1, n do t[i] = { base + i, -(base + i) } end
    return T.new(t)
  end
  H.checkerror("ReplayBuffer.sample: the buffer holds 0 transitions, fewer than the batch of 4", buf.sample, buf, 4)
  buf:add(rows(3, 0), T.ones(3), T.new({ 1, 2, 3 }), rows(3, 100), T.zeros(3))
  buf:add(rows(4, 10), T.ones(4), T.new({ 11, 12, 13, 14 }), rows(4, 110), T.ones(4))
  H.check(#buf == 5 and buf.pos == 3, "ring wrapped: size 5, next slot 3")
  H.tensor_near(buf.rewards, { 13, 14, 3, 11, 12 }, 0, "ring contents")
  selut.manual_seed(2)
  for _ = 1, 4 do
    local b = buf:sample(4)
    for i = 1, 4 do
      local r = b.rewards[i]
      H.check(b.obs:get(i, 1) == r and b.next_obs:get(i, 1) == r + 100, "sampled rows stay aligned")
    end
  end
end

-- PPO learns a little on CartPole in a few thousand steps, and repeats bit for bit
local function ppo_run(seed, steps)
  selut.manual_seed(seed)
  local agent = rl.PPO { obs_size = 4, n_actions = 2, n_envs = 4, n_steps = 64, batch_size = 64, n_epochs = 4,
                         lr = 3e-3, gamma = 0.98, gae_lambda = 0.8 }
  local env = rl.envs.CartPoleVec(4)
  local obs = env:reset(seed)
  local trace = 0
  while agent.steps < steps do
    local a = agent:act(obs)
    trace = trace * 0.5 + a[1]
    agent:observe(env:step(a))
    agent:train_for(math.huge)
  end
  return agent, trace
end
local agent, tr1 = ppo_run(3, 6000)
local _, tr2 = ppo_run(3, 6000)
H.check(tr1 == tr2, "PPO: same seed, same run")
H.check(agent.updates >= 20, "PPO updated " .. agent.updates .. " times")
local mean = rl.evaluate(agent, rl.envs.CartPoleVec, 20, 77)
H.check(mean > 60, "PPO learns on CartPole (mean return " .. mean .. " after 6000 steps, random ~22)")

-- train_for respects the budget: an owed update spread over several calls
do
  selut.manual_seed(1)
  local a = rl.PPO { obs_size = 4, n_actions = 2, n_envs = 2, n_steps = 256, batch_size = 16, n_epochs = 10 }
  local env = rl.envs.CartPoleVec(2)
  local obs = env:reset(1)
  while not a.pending do
    local act = a:act(obs)
    obs = env:step(act)
    a:observe(obs, T.ones(2), T.zeros(2), T.zeros(2))
  end
  local calls, t0 = 0, selut.clock()
  while not a:train_for(0) do calls = calls + 1 end -- budget 0: one minibatch per call
  -- 10 epochs x 32 minibatches, one per call; the call after the last one finishes the update
  H.check(calls == 10 * 512 / 16, "train_for(0) runs one minibatch per call (" .. calls .. " calls)")
  H.check(a.updates == 1 and a:train_for(5) == true, "update finished")
  -- while an update is owed, act() still answers and observe() drops the transition
  H.check(selut.clock() - t0 < 30, "time")
end

-- DQN: a short run learns something and repeats bit for bit
local function dqn_run(seed)
  selut.manual_seed(seed)
  local agent = rl.DQN { obs_size = 4, n_actions = 2, hidden = { 32, 32 }, lr = 1e-3, batch_size = 32,
                         learning_starts = 200, train_freq = 4, target_update_interval = 200,
                         exploration_fraction = 0.3, total_steps = 4000 }
  local env = rl.envs.CartPole()
  local obs = env:reset(seed)
  local sum = 0
  while agent.steps < 4000 do
    local a = agent:act(obs)
    local o, r, te, trn = env:step(a)
    agent:observe(o, r, te, trn)
    agent:train_for(math.huge)
    sum = sum + a[1]
    obs = (te or trn) and env:reset() or o
  end
  return agent, sum
end
local d1, s1 = dqn_run(4)
local _, s2 = dqn_run(4)
H.check(s1 == s2, "DQN: same seed, same run")
H.check(d1.updates == (4000 - 200) // 4, "DQN owed one gradient step per 4 env steps after 200: " .. d1.updates)
H.near(d1:epsilon(), 0.05, 1e-12, "epsilon schedule ends at its final value")

-- A frame of a host's loop (act, env step, observe, training) allocates
-- nothing once the buffers exist, so Lua's collector has no work to land
-- inside a frame: PPO through whole updates (rollout completions included)
-- and DQN through its target updates.
do
  local function frames(agent, env, n, train)
    local obs = env.obs
    for _ = 1, n do
      agent:observe(env:step(agent:act(obs)))
      obs = env.obs
      train(agent)
    end
  end
  local function allocated(agent, env, n, train)
    -- warm: scratch tensors and views made once (no full collection after
    -- it: that would also drop the cached output boxes, made again on use)
    frames(agent, env, 3 * n, train)
    collectgarbage("stop")
    local k0 = collectgarbage("count")
    frames(agent, env, n, train)
    local bytes = (collectgarbage("count") - k0) * 1024
    collectgarbage("restart")
    return bytes
  end
  selut.manual_seed(5)
  local p = rl.PPO { obs_size = 4, n_actions = 2, n_envs = 16, n_steps = 8, batch_size = 32, n_epochs = 2,
                     activation = "relu" }
  local env = rl.envs.CartPoleVec(16)
  env:reset(5)
  local u0 = p.updates
  local bytes = allocated(p, env, 60, function(a) a:train_steps(3) end)
  H.check(p.updates - u0 >= 6, "PPO updated during the measured frames (" .. p.updates - u0 .. ")")
  H.check(bytes == 0, "PPO: act + observe + train allocate nothing per frame (" .. bytes .. " bytes in 60 frames)")
  local d = rl.DQN { obs_size = 4, n_actions = 2, n_envs = 16, learning_starts = 64, batch_size = 32, train_freq = 1,
                     target_update_interval = 64, buffer_size = 4096 }
  env:reset(6)
  bytes = allocated(d, env, 60, function(a) a:train_steps(2) end)
  H.check(bytes == 0, "DQN: act + observe + train allocate nothing per frame (" .. bytes .. " bytes in 60 frames)")
end
