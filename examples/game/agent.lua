-- The agent of examples/game/host.c: PPO on the host's CartPoles. The host
-- owns every buffer (OBS [N x 4], ACTIONS [N], REWARD, TERMINATED,
-- TRUNCATED [N], FINAL_OBS [N x 4]) and passes them in as zero-copy
-- tensors before this script runs; it calls act_frame(stepped) and
-- train_frame(budget_ms) once per frame and policy_into(obs, actions) for
-- the filmstrip. Set by the host too: SEED, N, TRAIN_STEPS (0 = use the
-- millisecond budget).
local rl = selut.rl
selut.manual_seed(SEED)

-- 64-64 policy and value nets; ReLU (Tanh's scalar tanhf would take most of
-- the frame at 256 agents); RL Zoo's CartPole settings scaled to N envs.
agent = rl.PPO{obs_size = 4, n_actions = 2, n_envs = N, n_steps = math.max(8, 256 // N), batch_size = 256,
               n_epochs = 10, gamma = 0.98, gae_lambda = 0.8, lr = 1e-3, clip_range = 0.2, ent_coef = 0.0,
               activation = "relu"}
local info = { final_obs = FINAL_OBS }

-- A refused observation (say a NaN reward) loses that one transition: the
-- agent still acts, and the error goes back to the host.
function act_frame(stepped)
  local ok, err = true, nil
  if stepped then ok, err = pcall(agent.observe, agent, OBS, REWARD, TERMINATED, TRUNCATED, info) end
  rl.copy_rows(ACTIONS, 1, agent:act(OBS)) -- into the host's action array
  if not ok then error(err, 0) end
end

function train_frame(budget_ms)
  if TRAIN_STEPS > 0 then return agent:train_steps(TRAIN_STEPS) end
  return agent:train_for(budget_ms)
end

-- deterministic actions for obs [n x 4] written into actions [n]
function policy_into(obs, actions)
  rl.copy_rows(actions, 1, agent:policy(obs, true))
end

function agent_stats() return agent.updates, agent.steps end
