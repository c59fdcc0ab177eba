-- Batched inference on the frame loop: one PPO act() for n agents (64-64
-- policy and value nets, forward + sampling) and the policy alone (forward +
-- sampling), median of repeated timings. build/selut bench/rl_inference.lua [n] [activation]
local rl, T = selut.rl, selut.tensor
local n = tonumber(arg and arg[1]) or 256
local activation = arg and arg[2] or "relu"
selut.manual_seed(1)
local agent = rl.PPO{obs_size = 4, n_actions = 2, n_envs = n, n_steps = 8, activation = activation}
local obs = T.randn(n, 4)
local acts, logp = T.zeros(n), T.zeros(n)
-- wall clock (selut.clock) and this process's CPU time (os.clock): on a
-- loaded machine the CPU time is what the work costs, the wall time what the
-- scheduler added
local function median_us(clock, f, reps)
  local t = {}
  for r = 1, 15 do
    local t0 = clock()
    for _ = 1, reps do f() end
    t[r] = (clock() - t0) / reps * 1e6
  end
  table.sort(t)
  return t[8]
end
local function policy() rl.categorical_sample(agent.pi_act:forward(obs), acts, logp) end
local function act() agent:act(obs) end
print(string.format("%d agents, %s: policy forward + sample %.1f us wall, %.1f us cpu; act (policy + value) %.1f us wall, %.1f us cpu",
  n, activation, median_us(selut.clock, policy, 200), median_us(os.clock, policy, 200), median_us(selut.clock, act, 200),
  median_us(os.clock, act, 200)))
