-- Double DQN on CartPole-v1: trains for total_steps environment steps and
-- evaluates the greedy policy on 100 episodes every eval_every steps.
--   build/selut examples/rl/dqn_cartpole.lua [seed [total_steps [eval_every [grads]]]]
-- grads: "fused" (the C loss kernel, the default) or "autograd" (the Huber
-- loss through the tape).
local rl = selut.rl
local seed = tonumber(arg and arg[1]) or 1
local total = tonumber(arg and arg[2]) or 100000
local eval_every = tonumber(arg and arg[3]) or 10000
local autograd = arg and arg[4] == "autograd"
selut.manual_seed(seed)
local agent = rl.DQN{obs_size = 4, n_actions = 2, hidden = {256, 256}, lr = 2.3e-3, batch_size = 64,
                     buffer_size = 100000, learning_starts = 1000, gamma = 0.99, target_update_interval = 10,
                     train_freq = 256, gradient_steps = 128, exploration_fraction = 0.16,
                     exploration_final_eps = 0.04, total_steps = 50000, autograd = autograd}
local env = rl.envs.CartPoleVec(1)
local obs = env:reset(seed)
local t0 = selut.clock()
local next_eval, reached = eval_every, nil
while agent.steps < total do
  local a = agent:act(obs)
  local o, r, te, tr, info = env:step(a)
  agent:observe(o, r, te, tr, info)
  obs = o
  agent:train_for(math.huge)
  if agent.steps >= next_eval then
    next_eval = next_eval + eval_every
    local mean = rl.evaluate(agent, rl.envs.CartPoleVec, 100, 1000 + seed)
    print(string.format("seed %d steps %6d  eval mean %.1f  (%.1f s)  loss %.4f eps %.3f", seed, agent.steps,
      mean, selut.clock() - t0, agent.stats.loss, agent:epsilon()))
    if mean >= 475 and not reached then reached = agent.steps end
  end
end
print(string.format("seed %d: %s (wall %.1f s)", seed, reached and ("reached 475 at " .. reached .. " steps") or "did not reach 475",
  selut.clock() - t0))
