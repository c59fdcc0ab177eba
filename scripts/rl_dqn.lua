-- selut.rl.DQN: deep Q-learning with a replay buffer, a target network
-- (hard updates), double DQN targets (the online net picks the next action,
-- the target net values it), the Huber loss (smooth L1, beta 1) and a linear
-- epsilon schedule, as Stable-Baselines3's DQN with double-Q targets.
--
-- Driven one environment step at a time:
--   local a = agent:act(obs)            -- epsilon-greedy, obs [n_envs x obs_size]
--   agent:observe(vec:step(a))          -- next_obs, reward, terminated, truncated, info
--   agent:train_for(ms)                 -- owed gradient steps while they fit in ms
-- Every train_freq steps (after learning_starts) the agent owes
-- gradient_steps gradient steps; train_for pays them within its budget.
local selut = require "selut"
local T, optim = selut.tensor, selut.optim
local rl = selut.rl
local min, max = math.min, math.max
local clock = selut.clock

local probe = T.zeros(1)
local tget, tset = probe.get, probe.set

local DQN = { __name = "selut.rl.DQN" }
DQN.__index = DQN

local defaults = {
  n_envs = 1, hidden = { 64, 64 }, activation = "relu", lr = 1e-4, buffer_size = 100000, batch_size = 32,
  learning_starts = 1000, gamma = 0.99, train_freq = 4, gradient_steps = 1, target_update_interval = 1000,
  exploration_fraction = 0.1, exploration_initial_eps = 1.0, exploration_final_eps = 0.05, total_steps = 100000,
  max_grad_norm = 10, double = true, adam_eps = 1e-8, autograd = false,
}
local known = { obs_size = 1, n_actions = 1 }
for k in pairs(defaults) do known[k] = 1 end

local function fail(msg) error("bad argument #1 to 'DQN' (" .. msg .. ")", 3) end

local function new(opts)
  if type(opts) ~= "table" then fail("options table expected, got " .. type(opts)) end
  for k in pairs(opts) do if not known[k] then fail("unknown option '" .. tostring(k) .. "'") end end
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  if math.type(o.obs_size) ~= "integer" or o.obs_size < 1 then fail("obs_size must be a positive integer") end
  if math.type(o.n_actions) ~= "integer" or o.n_actions < 1 then fail("n_actions must be a positive integer") end
  local N, K = o.n_envs, o.n_actions
  local self = setmetatable({ o = o, obs_size = o.obs_size, n_envs = N, K = K, steps = 0, updates = 0,
                              owed = 0, calls = 0 }, DQN)
  self.q = rl.mlp(o.obs_size, o.hidden, K, { activation = o.activation, init = "default" })
  self.target = rl.copy_params(rl.mlp(o.obs_size, o.hidden, K, { activation = o.activation, init = "default" }), self.q)
  self.params = self.q:parameters()
  self.target_params = self.target:parameters() -- taken once: the target update copies into it
  self.opt = optim.Adam(self.params, { lr = o.lr, eps = o.adam_eps })
  self.buf = rl.ReplayBuffer(o.buffer_size, o.obs_size)
  self.cur_obs, self.cur_actions = T.zeros(N, o.obs_size), T.zeros(N)
  self.u, self.rand_a = T.zeros(N), T.zeros(N)
  self.next_obs, self.rewards, self.dones = T.zeros(N, o.obs_size), T.zeros(N), T.zeros(N)
  self.g = T.zeros(o.batch_size, K)
  self.y = T.zeros(o.batch_size)
  self.y_col = self.y:reshape(o.batch_size, 1)
  self.stats = { loss = 0 }
  self.acted = false
  return self
end

function DQN:epsilon()
  local o = self.o
  local f = min(1, self.steps / max(1, o.exploration_fraction * o.total_steps))
  return o.exploration_initial_eps + f * (o.exploration_final_eps - o.exploration_initial_eps)
end

local function check_obs(self, obs, fname)
  local N, d = self.n_envs, self.obs_size
  if not T.is_tensor(obs) then
    error(string.format("bad argument #1 to '%s' (observations: selut.Tensor expected, got %s)", fname, type(obs)), 3)
  end
  if obs:dim() == 1 and N == 1 and obs:numel() == d then return obs:reshape(1, d) end
  if not (obs:dim() == 2 and obs:size(1) == N and obs:size(2) == d) then
    error(string.format("bad argument #1 to '%s' (observations have shape %s, expected [%d x %d])", fname,
      rl._shapestr(obs), N, d), 3)
  end
  return obs
end

-- agent:act(obs) -> actions [n_envs] (1-based), epsilon-greedy; reused tensor.
function DQN:act(obs)
  obs = check_obs(self, obs, "act")
  local N, K = self.n_envs, self.K
  local eps = self:epsilon()
  rl.categorical_sample(self.q:forward(obs), self.cur_actions, nil, true) -- argmax per row
  rl.randint_(self.u, 1 << 24) -- uniform draws in 24 bits
  rl.randint_(self.rand_a, K)
  for i = 1, N do
    if (self.u[i] - 1) / (1 << 24) < eps then self.cur_actions[i] = self.rand_a[i] end
  end
  self.cur_obs:copy(obs)
  self.acted = true
  return self.cur_actions
end

-- agent:policy(obs[, deterministic]) -> greedy actions (any batch size), nothing recorded.
function DQN:policy(obs)
  if not T.is_tensor(obs) or obs:dim() ~= 2 or obs:size(2) ~= self.obs_size then
    error(string.format("bad argument #1 to 'policy' (observations have shape %s, expected [n x %d])",
      T.is_tensor(obs) and rl._shapestr(obs) or type(obs), self.obs_size), 2)
  end
  local n = obs:size(1)
  local out = T.zeros(n)
  rl.categorical_sample(self.q:forward(obs), out, nil, true)
  return out
end

local function flagval(v, i)
  if type(v) == "boolean" then return v and 1 or 0 end
  return v[i] ~= 0 and 1 or 0
end

-- agent:observe(next_obs, reward, terminated, truncated[, info]) (env:step's
-- order). Only terminated transitions stop the bootstrap; info.final_obs
-- (vector envs) gives the last observation of ended episodes.
function DQN:observe(next_obs, reward, terminated, truncated, info)
  if not self.acted then error("DQN.observe: call act(obs) before observe", 2) end
  self.acted = false
  local N = self.n_envs
  next_obs = check_obs(self, next_obs, "observe")
  local rw, dn = self.rewards, self.dones
  for i = 1, N do
    local r = type(reward) == "number" and reward or (T.is_tensor(reward) and reward:numel() == N and reward[i])
    if type(r) ~= "number" then
      error(string.format("bad argument #2 to 'observe' (reward: number or tensor of %d expected)", N), 2)
    end
    if r ~= r or r == math.huge or r == -math.huge then
      error(string.format("bad argument #2 to 'observe' (reward %s at position %d is not finite)", rl._num(r), i), 2)
    end
    rw[i] = r
    dn[i] = flagval(terminated, i)
  end
  self.next_obs:copy(next_obs)
  local final = info and info.final_obs
  if final then
    for i = 1, N do
      if flagval(terminated, i) == 1 or flagval(truncated, i) == 1 then rl.copy_rows(self.next_obs, i, final, i, 1) end
    end
  end
  self.buf:add(self.cur_obs, self.cur_actions, rw, self.next_obs, dn)
  self.steps = self.steps + N
  self.calls = self.calls + 1
  local o = self.o
  if self.calls % max(o.target_update_interval // N, 1) == 0 then rl.copy_param_lists(self.target_params, self.params) end
  if self.steps > o.learning_starts and self.calls % o.train_freq == 0 then
    self.owed = self.owed + o.gradient_steps
  end
end

-- The loss gradients of one sampled batch, into the parameters' .grad.
function DQN:_grads()
  local o = self.o
  local B = o.batch_size
  local b = self.buf:sample(B)
  -- double DQN: the online net picks the next action, the target net values it
  local qn = o.double and self.q:forward(b.next_obs) or nil
  rl.dqn_targets(qn, self.target:forward(b.next_obs), b.rewards, b.dones, o.gamma, self.y)
  if o.autograd then -- the Huber loss in tensor ops (scripts/rl_losses.lua), through the tape
    local losses = rl._losses or require "selut.rl_losses"
    local loss = losses.dqn_huber(self.q(b.obs), b.actions, self.y_col)
    loss:backward()
    self.stats.loss = loss[1]
  else -- the fused gradient (core/rl/loss.c) and the explicit backward
    local q = self.q:forward(b.obs)
    self.stats.loss = rl.dqn_huber_grad(q, b.actions, self.y, self.g)
    self.q:backward(b.obs, self.g, false)
  end
end

function DQN:_gradient_step()
  local o = self.o
  self:_grads()
  if o.max_grad_norm and o.max_grad_norm > 0 then rl.clip_grad_norm_(self.params, o.max_grad_norm) end
  self.opt:step()
  self.opt:zero_grad()
  self.updates = self.updates + 1
end

-- agent:train_for(ms) -> done: pays owed gradient steps while the next one is
-- expected to fit in ms milliseconds (at least one when any is owed).
-- agent:train_steps(n): at most n of them (a clock-free, repeatable budget).
function DQN:train_for(ms)
  if type(ms) ~= "number" or ms ~= ms or ms < 0 then
    error("bad argument #1 to 'train_for' (budget in milliseconds must be a number >= 0, got " .. tostring(ms) .. ")", 2)
  end
  return self:_train(clock() + ms / 1000, math.huge)
end

function DQN:train_steps(n)
  if math.type(n) ~= "integer" or n < 0 then
    error("bad argument #1 to 'train_steps' (step count must be an integer >= 0, got " .. tostring(n) .. ")", 2)
  end
  return self:_train(math.huge, n)
end

function DQN:_train(deadline, max_steps)
  local st, done = self.step_time or 0, 0
  while self.owed > 0 and done < max_steps do
    local s0 = clock()
    self:_gradient_step()
    self.owed, done = self.owed - 1, done + 1
    local dt = clock() - s0
    st = st == 0 and dt or 0.9 * st + 0.1 * dt
    if clock() + st > deadline then break end
  end
  self.step_time = st
  return self.owed <= 0
end

function DQN:parameters() return self.params end

return new
