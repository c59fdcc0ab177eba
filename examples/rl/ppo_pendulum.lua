-- PPO on Pendulum-v1 with the RL Zoo's settings for Stable-Baselines3 (4 envs,
-- n_steps 1024, batch 64, 10 epochs, gamma 0.9, GAE lambda 0.95, lr 1e-3,
-- clip 0.2) but without gSDE (use_sde: selut's Gaussian policy has a
-- state-independent log std). Evaluates the deterministic policy on 100
-- episodes every eval_every steps.
--   build/selut examples/rl/ppo_pendulum.lua [seed [total_steps [eval_every]]]
local rl = selut.rl
local seed = tonumber(arg and arg[1]) or 1
local total = tonumber(arg and arg[2]) or 500000
local eval_every = tonumber(arg and arg[3]) or 50000
selut.manual_seed(seed)
local N = 4
local agent = rl.PPO{obs_size = 3, action_size = 1, n_envs = N, n_steps = 1024, batch_size = 64, n_epochs = 10,
                     gamma = 0.9, gae_lambda = 0.95, lr = 1e-3, clip_range = 0.2, ent_coef = 0.0}
local env = rl.envs.PendulumVec(N)
local obs = env:reset(seed)
local t0 = selut.clock()
local next_eval, best = eval_every, -math.huge
while agent.steps < total do
  local a = agent:act(obs)
  local o, r, te, tr, info = env:step(a)
  agent:observe(o, r, te, tr, info)
  obs = o
  agent:train_for(math.huge)
  if agent.steps >= next_eval then
    next_eval = next_eval + eval_every
    local mean = rl.evaluate(agent, rl.envs.PendulumVec, 100, 1000 + seed)
    best = math.max(best, mean)
    print(string.format("seed %d steps %7d  eval mean %.1f  (%.1f s)  log_std %.3f  vl %.3f clip %.3f", seed,
      agent.steps, mean, selut.clock() - t0, agent.log_std[1], agent.stats.value_loss, agent.stats.clip_fraction))
  end
end
print(string.format("seed %d: best eval mean %.1f (target -250) wall %.1f s", seed, best, selut.clock() - t0))
