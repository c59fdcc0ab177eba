-- selut.rl.PPO: proximal policy optimization as Stable-Baselines3 runs it
-- (clipped surrogate, value loss, entropy bonus, minibatch epochs, per-batch
-- advantage normalization, gradient clipping, linear schedules), for discrete
-- (Categorical) and continuous (diagonal Gaussian with a state-independent
-- log std) actions. Policy and value are separate MLPs (SB3's MlpPolicy).
--
-- Driven one environment step at a time, so a host calls it once per frame:
--   local a = agent:act(obs)                    -- obs [n_envs x obs_size]
--   agent:observe(vec:step(a))                  -- next_obs, reward, terminated, truncated, info
--   agent:train_for(ms)                         -- gradient steps while they fit in ms
-- When the rollout is full the agent owes an update; act() keeps answering
-- with the policy that collected it (a frozen copy) and observe() drops the
-- transitions until train_for has finished the update (on-policy data only).
--
-- The loss gradients with respect to the network outputs come from fused C
-- kernels (core/rl/loss.c) and are pushed through the nets' backward: the
-- explicit module protocol of DESIGN §3, no tape, nothing allocated. With
-- {autograd = true} the same losses are tensor ops on autograd tensors
-- (scripts/rl_losses.lua) and one loss:backward().
local selut = require "selut"
local T, optim = selut.tensor, selut.optim
local rl = selut.rl
local exp, log, min, max = math.exp, math.log, math.min, math.max
local clock = selut.clock
local LOG_2PI = log(2 * math.pi)

local probe = T.zeros(1)
local tget, tset = probe.get, probe.set

local PPO = { __name = "selut.rl.PPO" }
PPO.__index = PPO

local defaults = {
  n_envs = 1, n_steps = 2048, batch_size = 64, n_epochs = 10, gamma = 0.99, gae_lambda = 0.95,
  clip_range = 0.2, ent_coef = 0.0, vf_coef = 0.5, max_grad_norm = 0.5, lr = 3e-4, adam_eps = 1e-5,
  normalize_advantage = true, hidden = { 64, 64 }, activation = "tanh", linear_schedule = false,
  total_steps = 0, log_std_init = 0.0, autograd = false,
}
local known = { obs_size = 1, n_actions = 1, action_size = 1 }
for k in pairs(defaults) do known[k] = 1 end

local function fail(msg) error("bad argument #1 to 'PPO' (" .. msg .. ")", 3) end

local function new(opts)
  if type(opts) ~= "table" then fail("options table expected, got " .. type(opts)) end
  for k in pairs(opts) do if not known[k] then fail("unknown option '" .. tostring(k) .. "'") end end
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  if math.type(o.obs_size) ~= "integer" or o.obs_size < 1 then fail("obs_size must be a positive integer") end
  local discrete = o.n_actions ~= nil
  if discrete == (o.action_size ~= nil) then fail("give n_actions (discrete) or action_size (continuous)") end
  if o.linear_schedule and not (o.total_steps > 0) then fail("linear_schedule needs total_steps") end
  local self = setmetatable({ o = o, discrete = discrete, obs_size = o.obs_size, n_envs = o.n_envs,
                              K = discrete and o.n_actions or o.action_size, steps = 0, updates = 0 }, PPO)
  local K, N = self.K, o.n_envs
  -- SB3: orthogonal init, output gains 0.01 (policy) and 1 (value)
  self.pi = rl.mlp(o.obs_size, o.hidden, K, { activation = o.activation, out_gain = 0.01 })
  self.vf = rl.mlp(o.obs_size, o.hidden, 1, { activation = o.activation, out_gain = 1 })
  -- frozen copies that act while an update is pending or running
  self.pi_act = rl.copy_params(rl.mlp(o.obs_size, o.hidden, K, { activation = o.activation }), self.pi)
  self.vf_act = rl.copy_params(rl.mlp(o.obs_size, o.hidden, 1, { activation = o.activation }), self.vf)
  local params = {}
  for _, p in ipairs(self.pi:parameters()) do params[#params + 1] = p end
  for _, p in ipairs(self.vf:parameters()) do params[#params + 1] = p end
  if not discrete then
    self.log_std = T.full(o.log_std_init, K)
    self.log_std_grad = T.zeros(K)
    self.log_std_act = self.log_std:clone()
    if o.autograd then -- a leaf that records; its .grad is the optimizer's gradient tensor
      self.log_std_data = self.log_std:detach() -- the same storage, for copies that must not record
      self.log_std:requires_grad_()
      self.log_std.grad = self.log_std_grad
    end
    params[#params + 1] = { param = self.log_std, grad = self.log_std_grad, name = "log_std" }
  end
  self.params = params
  -- parameters() lists taken once: the update's end copies pi into pi_act (and vf into vf_act)
  self.plists = { pi = self.pi:parameters(), vf = self.vf:parameters(), pi_act = self.pi_act:parameters(),
                  vf_act = self.vf_act:parameters() }
  self.opt = optim.Adam(params, { lr = o.lr, eps = o.adam_eps })
  self.buf = rl.RolloutBuffer(o.n_steps, N, o.obs_size, { action_size = discrete and 1 or K })
  -- per-step scratch (the same tensors every step)
  self.cur_actions = T.zeros(N, discrete and 1 or K)
  self.cur_actions_flat = self.cur_actions:reshape(N) -- what act returns (discrete): a view, made once
  self.term1, self.trunc1 = T.zeros(1), T.zeros(1) -- boolean flags of a single env, as tensors
  self.cur_obs, self.cur_values, self.cur_logp = T.zeros(N, o.obs_size), T.zeros(N), T.zeros(N)
  self.rewards, self.starts, self.next_starts = T.zeros(N), T.ones(N), T.zeros(N)
  self.last_values = T.zeros(N)
  self.acted = false
  -- minibatch scratch
  local B = o.batch_size
  self.mb = { B = B, obs = T.zeros(B, o.obs_size), actions = T.zeros(B, discrete and 1 or K), adv = T.zeros(B),
              ret = T.zeros(B), logp = T.zeros(B), gz = T.zeros(B, K), gv = T.zeros(B, 1) }
  self.mb.ret_col = self.mb.ret:reshape(B, 1)
  self.perm_views = {} -- buf.perm:narrow(1, first, count) by first: made once, not per minibatch
  self.pending = false -- an update is owed
  self.stats = { policy_loss = 0, value_loss = 0, entropy = 0, clip_fraction = 0, approx_kl = 0 }
  return self
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

-- Fills actions (and log probs) from the policy outputs out [N x K].
local function sample_rows(self, out, actions, logp, deterministic)
  local N, K = out:size(1), self.K
  if self.discrete then return rl.categorical_sample(out, actions, logp, deterministic) end
  local u = (not deterministic) and (self.discrete and T.rand(N) or T.randn(N, K)) or nil
  if self.discrete then
    for i = 1, N do
      local m = -math.huge
      for j = 1, K do m = max(m, tget(out, i, j)) end
      local s = 0
      for j = 1, K do s = s + exp(tget(out, i, j) - m) end
      local lse = m + log(s)
      local a
      if deterministic then
        a = 1
        for j = 2, K do if tget(out, i, j) > tget(out, i, a) then a = j end end
      else
        local x, c = u[i], 0
        a = K
        for j = 1, K do
          c = c + exp(tget(out, i, j) - lse)
          if x < c then a = j; break end
        end
      end
      tset(actions, i, 1, a)
      if logp then logp[i] = tget(out, i, a) - lse end
    end
  else
    local ls = self.log_std_act
    for i = 1, N do
      local lp = 0
      for j = 1, K do
        local mu, lsj = tget(out, i, j), ls[j]
        local a = deterministic and mu or mu + exp(lsj) * tget(u, i, j)
        tset(actions, i, j, a)
        local zz = (a - mu) / exp(lsj)
        lp = lp - 0.5 * zz * zz - lsj - 0.5 * LOG_2PI
      end
      if logp then logp[i] = lp end
    end
  end
end

-- agent:act(obs) -> actions: [n_envs] 1-based indices (discrete) or
-- [n_envs x action_size] (continuous, unclipped: the env clips). The returned
-- tensor is reused by the next call.
function PPO:act(obs)
  obs = check_obs(self, obs, "act")
  local out = self.pi_act:forward(obs)
  sample_rows(self, out, self.cur_actions, self.cur_logp, false)
  rl.copy_rows(self.cur_values, 1, self.vf_act:forward(obs)) -- [N x 1] into [N]
  self.cur_obs:copy(obs) -- obs may be the env's own buffer, which the step overwrites
  self.acted = true
  return self.discrete and self.cur_actions_flat or self.cur_actions
end

-- agent:policy(obs[, deterministic]) -> actions, without recording anything
-- (evaluation, inference in a host). Any batch size.
function PPO:policy(obs, deterministic)
  if not T.is_tensor(obs) or obs:dim() ~= 2 or obs:size(2) ~= self.obs_size then
    error(string.format("bad argument #1 to 'policy' (observations have shape %s, expected [n x %d])",
      T.is_tensor(obs) and rl._shapestr(obs) or type(obs), self.obs_size), 2)
  end
  local out = self.pi_act:forward(obs)
  local n = obs:size(1)
  local acts = T.zeros(n, self.discrete and 1 or self.K)
  sample_rows(self, out, acts, nil, deterministic)
  return self.discrete and acts:reshape(n) or acts
end

-- The flags as a tensor of N (a boolean of a single env goes into scratch).
local function flags(v, N, what, scratch)
  if T.is_tensor(v) then
    if v:numel() ~= N then
      error(string.format("bad argument to 'observe' (%s has %d elements, expected %d)", what, v:numel(), N), 3)
    end
    return v
  elseif type(v) == "boolean" and N == 1 then
    scratch[1] = v and 1 or 0
    return scratch
  end
  error(string.format("bad argument to 'observe' (%s: tensor of %d flags expected, got %s)", what, N, type(v)), 3)
end

-- agent:observe(next_obs, reward, terminated, truncated[, info]): the
-- outcome of the last act(), in env:step's order (agent:observe(env:step(a))).
-- reward/terminated/truncated are [n_envs] tensors (numbers/booleans for one
-- env); info.final_obs holds the last observation of episodes that ended
-- (vector envs); without it next_obs is used. A truncated episode's reward
-- gets gamma * V(final obs) added (SB3's timeout bootstrap).
function PPO:observe(next_obs, reward, terminated, truncated, info)
  if not self.acted then error("PPO.observe: call act(obs) before observe", 2) end
  self.acted = false
  local N = self.n_envs
  next_obs = check_obs(self, next_obs, "observe")
  local rw = self.rewards
  if T.is_tensor(reward) then
    if reward:numel() ~= N then
      error(string.format("bad argument #2 to 'observe' (reward has %d elements, expected %d)", reward:numel(), N), 2)
    end
    if reward:dim() == 1 then rl.copy_rows(rw, 1, reward) else rw:copy(reward:reshape(N)) end
  elseif type(reward) == "number" and N == 1 then
    rw[1] = reward
  else
    error(string.format("bad argument #2 to 'observe' (reward: number or tensor of %d expected, got %s)", N, type(reward)), 2)
  end
  local bad, r = rl.first_nonfinite(rw)
  if bad then
    error(string.format("bad argument #2 to 'observe' (reward %s at position %d is not finite)", rl._num(r), bad), 2)
  end
  local term, trunc = flags(terminated, N, "terminated", self.term1), flags(truncated, N, "truncated", self.trunc1)
  self.steps = self.steps + N
  if self.pending then return end -- the rollout waits for its update: on-policy data only
  local final = info and info.final_obs or next_obs
  if rl.any_timeout(term, trunc) then
    local v = self.vf_act:forward(check_obs(self, final, "observe"))
    rl.timeout_bootstrap_(rw, v, term, trunc, self.o.gamma)
  end
  self.buf:add(self.cur_obs, self.cur_actions, rw, self.starts, self.cur_values, self.cur_logp)
  rl.episode_starts_(self.starts, term, trunc)
  if self.buf:full() then
    rl.copy_rows(self.last_values, 1, self.vf_act:forward(next_obs))
    self.buf:compute_returns_and_advantage(self.last_values, self.starts, self.o.gamma, self.o.gae_lambda)
    self.pending = true
    self.epoch, self.batches = 0, nil
  end
end

-- Gathers rows perm[first .. first + count - 1] of the rollout into the
-- minibatch tensors (advantages normalized) and returns them.
function PPO:_batch(first, count)
  local buf, o = self.buf, self.o
  local B = count
  local mb = self.mb
  if B ~= o.batch_size then -- the last, short minibatch of an epoch
    mb = self.mb_short
    if not mb or mb.B ~= B then
      mb = { B = B, obs = T.zeros(B, self.obs_size), actions = T.zeros(B, self.mb.actions:size(2)), adv = T.zeros(B),
             ret = T.zeros(B), logp = T.zeros(B), gz = T.zeros(B, self.K), gv = T.zeros(B, 1) }
      mb.ret_col = mb.ret:reshape(B, 1)
      self.mb_short = mb
    end
  end
  local perm = self.perm_views[first]
  if not perm or perm:numel() ~= count then
    perm = buf.perm:narrow(1, first, count)
    self.perm_views[first] = perm
  end
  rl.gather_rows(mb.obs, buf.obs, perm)
  rl.gather_rows(mb.actions, buf.actions, perm)
  rl.gather_rows(mb.adv, buf.advantages, perm)
  rl.gather_rows(mb.ret, buf.returns, perm)
  rl.gather_rows(mb.logp, buf.log_probs, perm)
  if o.normalize_advantage and B > 1 then rl.normalize_(mb.adv) end
  return mb
end

-- One minibatch gradient step on rows perm[first .. first + count - 1]:
-- the loss gradients (fused or through the tape), gradient clipping, Adam.
function PPO:_minibatch(first, count, clip, stats)
  local o = self.o
  local mb = self:_batch(first, count)
  local pl, vl, ent, cf, kl
  if o.autograd then
    pl, vl, ent, cf, kl = self:_autograd_grads(mb, clip)
  else
    pl, vl, ent, cf, kl = self:_fused_grads(mb, clip)
  end
  if o.max_grad_norm and o.max_grad_norm > 0 then rl.clip_grad_norm_(self.params, o.max_grad_norm) end
  self.opt:step()
  self.opt:zero_grad()
  stats.policy_loss = stats.policy_loss + pl
  stats.value_loss = stats.value_loss + vl
  stats.entropy = stats.entropy + ent
  stats.clip_fraction = stats.clip_fraction + cf
  stats.approx_kl = stats.approx_kl + kl
  stats.n = stats.n + 1
end

-- The gradients of one minibatch (into the parameters' .grad) written out:
-- forward both nets, the fused loss gradient (core/rl/loss.c), backward.
-- Returns policy loss, value loss, entropy, clip fraction, approximate KL.
function PPO:_fused_grads(mb, clip)
  local o, B = self.o, mb.B
  local out = self.pi:forward(mb.obs)
  local pl, ent, cf, kl
  if self.discrete then
    pl, ent, cf, kl = rl.ppo_categorical_grad(out, mb.actions, mb.logp, mb.adv, clip, o.ent_coef, mb.gz)
  else
    pl, ent, cf, kl = rl.ppo_gaussian_grad(out, self.log_std, mb.actions, mb.logp, mb.adv, clip, o.ent_coef, mb.gz,
                                           self.log_std_grad)
  end
  self.pi:backward(mb.obs, mb.gz, false)
  local v = self.vf:forward(mb.obs)
  -- vf_coef * mean((v - R)^2): gradient 2 vf_coef (v - R) / B
  local gv = mb.gv
  gv:copy(v)
  gv:sub_(mb.ret_col)
  local vl = rl.sumsq(gv) / B
  gv:mul_(2 * o.vf_coef / B)
  self.vf:backward(mb.obs, gv, false)
  return pl, vl, ent, cf, kl
end

-- The same through the tape: SB3's loss expression in tensor ops
-- (scripts/rl_losses.lua) and one backward.
function PPO:_autograd_grads(mb, clip)
  local o = self.o
  local losses = rl._losses or require "selut.rl_losses"
  local out = self.pi(mb.obs)
  local pl, ent, cf, kl
  if self.discrete then
    pl, ent, cf, kl = losses.ppo_categorical(out, mb.actions, mb.logp, mb.adv, clip)
  else
    pl, ent, cf, kl = losses.ppo_gaussian(out, self.log_std, mb.actions, mb.logp, mb.adv, clip)
  end
  local vl = losses.value(self.vf(mb.obs), mb.ret_col)
  local loss = pl - ent * o.ent_coef + vl * o.vf_coef
  loss:backward()
  return pl[1], vl[1], ent[1], cf, kl
end

local function progress_remaining(self)
  if not self.o.linear_schedule then return 1 end
  return max(0, 1 - self.steps / self.o.total_steps)
end

-- agent:train_for(ms) -> done: runs minibatch steps of the owed update while
-- the next one is expected to fit in ms milliseconds (at least one step when
-- an update is owed). Returns true when no update is owed anymore. How many
-- steps fit depends on the clock: for a run that repeats bit for bit, use
-- train_steps.
function PPO:train_for(ms)
  if type(ms) ~= "number" or ms ~= ms or ms < 0 then
    error("bad argument #1 to 'train_for' (budget in milliseconds must be a number >= 0, got " .. tostring(ms) .. ")", 2)
  end
  return self:_train(clock() + ms / 1000, math.huge)
end

-- agent:train_steps(n) -> done: at most n minibatch steps of the owed update.
function PPO:train_steps(n)
  if math.type(n) ~= "integer" or n < 0 then
    error("bad argument #1 to 'train_steps' (step count must be an integer >= 0, got " .. tostring(n) .. ")", 2)
  end
  return self:_train(math.huge, n)
end

function PPO:_train(deadline, max_steps)
  if not self.pending then return true end
  local o = self.o
  if not self.batches then
    local f = progress_remaining(self)
    self.cur_clip = o.clip_range * (o.linear_schedule and f or 1)
    self.opt.lr = o.lr * (o.linear_schedule and f or 1)
    self.epoch = 1
    self.buf:start_epochs(o.batch_size) -- checks the size and shuffles
    self.batches, self.next_row = true, 1
    local st = self.epoch_stats or {}
    st.policy_loss, st.value_loss, st.entropy, st.clip_fraction, st.approx_kl, st.n = 0, 0, 0, 0, 0, 0
    self.epoch_stats = st
  end
  -- minibatches of an epoch: rows next_row .. of buf.perm, batch_size at a time
  local n, bs = self.buf.step * self.n_envs, o.batch_size
  local step_time, done = self.step_time or 0, 0
  while done < max_steps do
    if self.next_row > n then
      if self.epoch >= o.n_epochs then
        self:_finish_update()
        return true
      end
      self.epoch = self.epoch + 1
      self.buf:shuffle()
      self.next_row = 1
    end
    local first, count = self.next_row, min(bs, n - self.next_row + 1)
    self.next_row = first + bs
    local s0 = clock()
    self:_minibatch(first, count, self.cur_clip, self.epoch_stats)
    done = done + 1
    local dt = clock() - s0
    step_time = step_time == 0 and dt or 0.9 * step_time + 0.1 * dt
    self.step_time = step_time
    if clock() + step_time > deadline then break end
  end
  return false
end

function PPO:_finish_update()
  local st, n = self.epoch_stats, math.max(self.epoch_stats.n, 1)
  for k in pairs(self.stats) do self.stats[k] = st[k] / n end
  rl.copy_param_lists(self.plists.pi_act, self.plists.pi)
  rl.copy_param_lists(self.plists.vf_act, self.plists.vf)
  if self.log_std then self.log_std_act:copy(self.log_std_data or self.log_std) end
  self.buf:reset()
  self.pending, self.batches = false, nil
  self.updates = self.updates + 1
end

-- The trainable parameters (policy, value and log_std), for saving.
function PPO:parameters() return self.params end

return new
