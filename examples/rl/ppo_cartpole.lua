-- PPO on CartPole-v1 with the RL Zoo's hyperparameters for Stable-Baselines3
-- (8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8,
-- linear schedules from lr 1e-3 and clip 0.2, entropy 0): trains for
-- 1e5 environment steps and evaluates the deterministic policy on 100
-- episodes every eval_every steps.
--   build/selut examples/rl/ppo_cartpole.lua [seed [total_steps [eval_every [stop [activation [grads]]]]]]
-- stop = "stop": end at the first evaluation reaching 475 (bench/rl_vs_torch);
-- activation: "tanh" (SB3's default) or "relu"; grads: "fused" (the C loss
-- kernels, the default) or "autograd" (the losses through the tape).
local rl = selut.rl
local seed = tonumber(arg and arg[1]) or 1
local total = tonumber(arg and arg[2]) or 100000
local eval_every = tonumber(arg and arg[3]) or 10000
local stop = arg and arg[4] == "stop"
local activation = arg and arg[5] or "tanh"
local autograd = arg and arg[6] == "autograd"
selut.manual_seed(seed)
local N = 8
local agent = rl.PPO{obs_size = 4, n_actions = 2, n_envs = N, n_steps = 32, batch_size = 256, n_epochs = 20,
                     gamma = 0.98, gae_lambda = 0.8, lr = 1e-3, clip_range = 0.2, ent_coef = 0.0,
                     linear_schedule = true, total_steps = total, activation = activation, autograd = autograd}
local env = rl.envs.CartPoleVec(N)
local obs = env:reset(seed)
local t0 = selut.clock()
local next_eval, reached = eval_every, nil
local train_time = 0
while agent.steps < total do
  local a = agent:act(obs)
  local o, r, te, tr, info = env:step(a)
  agent:observe(o, r, te, tr, info)
  obs = o
  local s = selut.clock()
  agent:train_for(math.huge)
  train_time = train_time + selut.clock() - s
  if agent.steps >= next_eval then
    next_eval = next_eval + eval_every
    local mean = rl.evaluate(agent, rl.envs.CartPoleVec, 100, 1000 + seed)
    print(string.format("seed %d steps %6d  eval mean %.1f  (%.1f s, train %.1f s)  pl %.4f vl %.3f ent %.3f clip %.3f",
      seed, agent.steps, mean, selut.clock() - t0, train_time, agent.stats.policy_loss, agent.stats.value_loss,
      agent.stats.entropy, agent.stats.clip_fraction))
    if mean >= 475 and not reached then
      reached = agent.steps
      if stop then break end
    end
  end
end
print(string.format("seed %d: %s (wall %.1f s, train %.2f s)", seed,
  reached and ("reached 475 at " .. reached .. " steps") or "did not reach 475", selut.clock() - t0, train_time))
