-- selut.rl (Lua half): distributions, buffers and the pieces the algorithms
-- share. The environments and the row helpers (copy_rows, gather_rows,
-- randint_, randperm_) are C (bindings/lua_rl.c); PPO and DQN live in
-- scripts/rl_ppo.lua and scripts/rl_dqn.lua and load on first use
-- (selut.rl.PPO, selut.rl.DQN). Every random draw comes from the state's
-- generator (selut.manual_seed), so a run is reproducible from its seed.
-- docs/rl.md walks through all of it.
local selut = require "selut"
local T, nn = selut.tensor, selut.nn
local rl = selut.rl

local exp, log, sqrt, floor = math.exp, math.log, math.sqrt, math.floor
local LOG_2PI = log(2 * math.pi)

local probe = T.zeros(1)
local tget, tset = probe.get, probe.set -- fetched once: element access in the loss loops

local function argerror(fname, n, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 1) + 2)
end

local function describe(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

local function is_tensor(v) return T.is_tensor(v) end

local function shapestr(t)
  local s = {}
  for d = 1, t:dim() do s[d] = tostring(t:size(d)) end
  return "[" .. table.concat(s, " x ") .. "]"
end
rl._shapestr = shapestr

-- A number for messages: NaN prints as nan whatever its sign bit.
function rl._num(v) return v ~= v and "nan" or tostring(v) end

-- Checks a tensor argument's shape against the dims given (nil = any).
-- Called every environment step: nothing is allocated unless it fails.
local select = select
local function checkshape(fname, n, t, what, ...)
  if not is_tensor(t) then argerror(fname, n, what .. ": selut.Tensor expected, got " .. describe(t), 2) end
  local nd = select("#", ...)
  local ok = t:dim() == nd
  for d = 1, nd do
    local w = (select(d, ...))
    ok = ok and (w == nil or t:size(d) == w)
  end
  if not ok then
    local want, w = table.pack(...), {}
    for d = 1, nd do w[d] = want[d] and tostring(want[d]) or "*" end
    argerror(fname, n, string.format("%s have shape %s, expected [%s]", what, shapestr(t), table.concat(w, " x ")), 2)
  end
end
rl._checkshape = checkshape

-- ---- distributions -------------------------------------------------------

-- Categorical over the rows of logits [B x K] (a 1-D [K] is one row).
-- sample() -> [B] 1-based indices; log_prob(a) -> [B]; entropy() -> [B];
-- probs [B x K]. Sampling inverts each row's CDF with one uniform draw.
local Categorical = { __name = "selut.rl.Categorical" }
Categorical.__index = Categorical

function rl.Categorical(logits)
  if not is_tensor(logits) or logits:dim() < 1 or logits:dim() > 2 then
    argerror("Categorical", 1, "logits must be a 1-D or 2-D selut.Tensor, got " ..
      (is_tensor(logits) and shapestr(logits) or describe(logits)))
  end
  local z = logits:dim() == 1 and logits:reshape(1, logits:size(1)) or logits
  local B, K = z:size(1), z:size(2)
  if K < 1 then argerror("Categorical", 1, "logits have no categories") end
  local logp = T.zeros(B, K)
  for i = 1, B do
    local m = -math.huge
    for j = 1, K do
      local v = tget(z, i, j)
      if v ~= v then argerror("Categorical", 1, string.format("logit (%d, %d) is NaN", i, j)) end
      if v > m then m = v end
    end
    local s = 0
    for j = 1, K do s = s + exp(tget(z, i, j) - m) end
    local lse = m + log(s)
    for j = 1, K do tset(logp, i, j, tget(z, i, j) - lse) end
  end
  return setmetatable({ logp = logp, B = B, K = K, vector = logits:dim() == 1 }, Categorical)
end

function Categorical:probs() return self.logp:exp() end

function Categorical:sample()
  local u = T.rand(self.B)
  local out = T.zeros(self.B)
  for i = 1, self.B do
    local x, c, a = u[i], 0, self.K
    for j = 1, self.K do
      c = c + exp(tget(self.logp, i, j))
      if x < c then a = j; break end
    end
    out[i] = a
  end
  return out
end

function Categorical:log_prob(a)
  local n = is_tensor(a) and a:numel() or (type(a) == "number" and 1 or nil)
  if n ~= self.B then
    argerror("log_prob", 1, string.format("%d actions for %d rows", n or -1, self.B))
  end
  local out = T.zeros(self.B)
  for i = 1, self.B do
    local k = type(a) == "number" and a or a[i]
    if k ~= floor(k) or k < 1 or k > self.K then
      argerror("log_prob", 1, string.format("action %s at position %d out of range 1..%d", tostring(k), i, self.K))
    end
    out[i] = tget(self.logp, i, k)
  end
  return out
end

function Categorical:entropy()
  local out = T.zeros(self.B)
  for i = 1, self.B do
    local h = 0
    for j = 1, self.K do
      local lp = tget(self.logp, i, j)
      h = h - exp(lp) * lp
    end
    out[i] = h
  end
  return out
end

-- Normal(mean, std): mean [B x D] (or [D]), std a tensor of the same shape, a
-- [D] tensor broadcast over rows, or a number. log_prob and entropy sum over
-- the D dims (one value per row), as a diagonal Gaussian policy needs.
local Normal = { __name = "selut.rl.Normal" }
Normal.__index = Normal

function rl.Normal(mean, std)
  if not is_tensor(mean) or mean:dim() < 1 or mean:dim() > 2 then
    argerror("Normal", 1, "mean must be a 1-D or 2-D selut.Tensor, got " .. describe(mean))
  end
  local mu = mean:dim() == 1 and mean:reshape(1, mean:size(1)) or mean
  local B, D = mu:size(1), mu:size(2)
  local sd = T.zeros(B, D)
  for i = 1, B do
    for j = 1, D do
      local s
      if type(std) == "number" then s = std
      elseif is_tensor(std) and std:numel() == D then s = std:reshape(D)[j]
      elseif is_tensor(std) and std:numel() == B * D then s = tget(std:reshape(B, D), i, j)
      else argerror("Normal", 2, "std must be a number or a tensor of " .. D .. " or " .. B * D .. " elements") end
      if not (s > 0 and s < math.huge) then
        argerror("Normal", 2, string.format("std must be positive and finite, got %s", tostring(s)))
      end
      tset(sd, i, j, s)
    end
  end
  return setmetatable({ mean = mu, std = sd, B = B, D = D }, Normal)
end

function Normal:sample()
  local e = T.randn(self.B, self.D)
  local out = T.zeros(self.B, self.D)
  for i = 1, self.B do
    for j = 1, self.D do tset(out, i, j, tget(self.mean, i, j) + tget(self.std, i, j) * tget(e, i, j)) end
  end
  return out
end

function Normal:log_prob(a)
  if not is_tensor(a) or a:numel() ~= self.B * self.D then
    argerror("log_prob", 1, string.format("actions must be a tensor of %d elements", self.B * self.D))
  end
  local x = a:reshape(self.B, self.D)
  local out = T.zeros(self.B)
  for i = 1, self.B do
    local s = 0
    for j = 1, self.D do
      local sd = tget(self.std, i, j)
      local zz = (tget(x, i, j) - tget(self.mean, i, j)) / sd
      s = s - 0.5 * zz * zz - log(sd) - 0.5 * LOG_2PI
    end
    out[i] = s
  end
  return out
end

function Normal:entropy()
  local out = T.zeros(self.B)
  for i = 1, self.B do
    local s = 0
    for j = 1, self.D do s = s + 0.5 + 0.5 * LOG_2PI + log(tget(self.std, i, j)) end
    out[i] = s
  end
  return out
end

-- ---- buffers -------------------------------------------------------------

-- ReplayBuffer(capacity, obs_size[, {action_size = 1}]): a ring of
-- preallocated tensors obs/next_obs [cap x d], actions [cap x a], rewards and
-- dones [cap]. add() stores n rows at once; sample(b) draws b indices
-- uniformly (with replacement) into preallocated batch tensors it returns
-- (the same ones every call: use them before the next sample).
local ReplayBuffer = { __name = "selut.rl.ReplayBuffer" }
ReplayBuffer.__index = ReplayBuffer

local function posint(fname, n, v, what)
  if math.type(v) ~= "integer" or v < 1 then
    argerror(fname, n, string.format("%s must be a positive integer, got %s", what, tostring(v)), 2)
  end
  return v
end

function rl.ReplayBuffer(capacity, obs_size, opts)
  posint("ReplayBuffer", 1, capacity, "capacity")
  posint("ReplayBuffer", 2, obs_size, "obs_size")
  opts = opts or {}
  local a = posint("ReplayBuffer", 3, opts.action_size or 1, "action_size")
  return setmetatable({
    capacity = capacity, obs_size = obs_size, action_size = a, size = 0, pos = 1,
    obs = T.zeros(capacity, obs_size), next_obs = T.zeros(capacity, obs_size),
    actions = T.zeros(capacity, a), rewards = T.zeros(capacity), dones = T.zeros(capacity),
    batch = nil, idx = nil,
  }, ReplayBuffer)
end

-- buf:add(obs [n x d], actions [n] or [n x a], rewards [n], next_obs [n x d], dones [n])
function ReplayBuffer:add(obs, actions, rewards, next_obs, dones)
  local n = is_tensor(obs) and obs:dim() == 2 and obs:size(1) or nil
  checkshape("add", 1, obs, "observations", n, self.obs_size)
  checkshape("add", 4, next_obs, "next observations", n, self.obs_size)
  if not is_tensor(actions) or actions:numel() ~= n * self.action_size then
    argerror("add", 2, string.format("actions have shape %s, expected %d x %d values",
      is_tensor(actions) and shapestr(actions) or describe(actions), n, self.action_size))
  end
  checkshape("add", 3, rewards, "rewards", n)
  checkshape("add", 5, dones, "dones", n)
  local bad, r = rl.first_nonfinite(rewards)
  if bad then argerror("add", 3, string.format("reward %s at position %d is not finite", rl._num(r), bad)) end
  local acts = actions:size(1) == n and actions or actions:reshape(n, self.action_size)
  local i = 1
  while i <= n do -- the ring may wrap inside one add
    local m = math.min(n - i + 1, self.capacity - self.pos + 1)
    rl.copy_rows(self.obs, self.pos, obs, i, m)
    rl.copy_rows(self.next_obs, self.pos, next_obs, i, m)
    rl.copy_rows(self.actions, self.pos, acts, i, m)
    rl.copy_rows(self.rewards, self.pos, rewards, i, m)
    rl.copy_rows(self.dones, self.pos, dones, i, m)
    self.pos = self.pos + m
    if self.pos > self.capacity then self.pos = 1 end
    self.size = math.min(self.size + m, self.capacity)
    i = i + m
  end
end

function ReplayBuffer:sample(batch_size)
  posint("sample", 1, batch_size, "batch size")
  if self.size < batch_size then
    error(string.format("ReplayBuffer.sample: the buffer holds %d transitions, fewer than the batch of %d",
      self.size, batch_size), 2)
  end
  local b = self.batch
  if not b or b.n ~= batch_size then
    b = { n = batch_size, obs = T.zeros(batch_size, self.obs_size), next_obs = T.zeros(batch_size, self.obs_size),
          actions = T.zeros(batch_size, self.action_size), rewards = T.zeros(batch_size), dones = T.zeros(batch_size) }
    self.batch, self.idx = b, T.zeros(batch_size)
  end
  rl.randint_(self.idx, self.size)
  rl.gather_rows(b.obs, self.obs, self.idx)
  rl.gather_rows(b.next_obs, self.next_obs, self.idx)
  rl.gather_rows(b.actions, self.actions, self.idx)
  rl.gather_rows(b.rewards, self.rewards, self.idx)
  rl.gather_rows(b.dones, self.dones, self.idx)
  return b
end

function ReplayBuffer:__len() return self.size end

-- RolloutBuffer(n_steps, n_envs, obs_size[, {action_size = 1}]): one
-- on-policy rollout of n_steps steps of n_envs environments, stored
-- time-major (row (t - 1) * n_envs + e). add() takes one step of all envs;
-- compute_returns_and_advantage(last_values, last_dones, gamma, lambda) is
-- GAE(lambda) as Stable-Baselines3 computes it (episode_starts mark the first
-- step of an episode); minibatches(b) shuffles and yields index tensors.
local RolloutBuffer = { __name = "selut.rl.RolloutBuffer" }
RolloutBuffer.__index = RolloutBuffer

function rl.RolloutBuffer(n_steps, n_envs, obs_size, opts)
  posint("RolloutBuffer", 1, n_steps, "n_steps")
  posint("RolloutBuffer", 2, n_envs, "n_envs")
  posint("RolloutBuffer", 3, obs_size, "obs_size")
  opts = opts or {}
  local a = posint("RolloutBuffer", 4, opts.action_size or 1, "action_size")
  local n = n_steps * n_envs
  return setmetatable({
    n_steps = n_steps, n_envs = n_envs, obs_size = obs_size, action_size = a, step = 0,
    obs = T.zeros(n, obs_size), actions = T.zeros(n, a), rewards = T.zeros(n), episode_starts = T.zeros(n),
    values = T.zeros(n), log_probs = T.zeros(n), advantages = T.zeros(n), returns = T.zeros(n),
    perm = T.zeros(n),
  }, RolloutBuffer)
end

function RolloutBuffer:full() return self.step >= self.n_steps end
function RolloutBuffer:reset() self.step = 0 end

-- buf:add(obs [N x d], actions [N] / [N x a], rewards [N], episode_starts [N], values [N], log_probs [N])
function RolloutBuffer:add(obs, actions, rewards, episode_starts, values, log_probs)
  if self.step >= self.n_steps then
    error(string.format("RolloutBuffer.add: the buffer is full (%d steps): compute the advantages and reset it",
      self.n_steps), 2)
  end
  local N = self.n_envs
  checkshape("add", 1, obs, "observations", N, self.obs_size)
  if not is_tensor(actions) or actions:numel() ~= N * self.action_size then
    argerror("add", 2, string.format("actions have shape %s, expected %d x %d values",
      is_tensor(actions) and shapestr(actions) or describe(actions), N, self.action_size))
  end
  checkshape("add", 3, rewards, "rewards", N)
  local bad, r = rl.first_nonfinite(rewards)
  if bad then argerror("add", 3, string.format("reward %s at position %d is not finite", rl._num(r), bad)) end
  checkshape("add", 4, episode_starts, "episode starts", N)
  checkshape("add", 5, values, "values", N)
  checkshape("add", 6, log_probs, "log probs", N)
  local row = self.step * N + 1
  rl.copy_rows(self.obs, row, obs)
  rl.copy_rows(self.actions, row, actions:size(1) == N and actions or actions:reshape(N, self.action_size))
  rl.copy_rows(self.rewards, row, rewards)
  rl.copy_rows(self.episode_starts, row, episode_starts)
  rl.copy_rows(self.values, row, values)
  rl.copy_rows(self.log_probs, row, log_probs)
  self.step = self.step + 1
end

function RolloutBuffer:compute_returns_and_advantage(last_values, last_dones, gamma, lambda)
  local N = self.n_envs
  checkshape("compute_returns_and_advantage", 1, last_values, "last values", N)
  checkshape("compute_returns_and_advantage", 2, last_dones, "last dones", N)
  rl.gae_(self, last_values, last_dones, gamma, lambda) -- core/rl/gae.c, in double like SB3's numpy
end

-- A new permutation of the stored rows' indices in perm[1 .. n]; returns n.
function RolloutBuffer:shuffle()
  local n = self.step * self.n_envs
  rl.randperm_(n == self.perm:numel() and self.perm or self.perm:narrow(1, 1, n))
  return n
end

-- Shuffled minibatches of the stored rows: an iterator of (first, count)
-- ranges into buf.perm, a permutation of 1..n_steps*n_envs.
-- (Raises at the caller of the caller: minibatches or start_epochs.)
local function check_batch(self, batch_size)
  local n = self.step * self.n_envs
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    argerror("minibatches", 1, string.format("batch size must be a positive integer, got %s", tostring(batch_size)), 2)
  end
  if n < batch_size then
    error(string.format("RolloutBuffer.minibatches: the buffer holds %d transitions, fewer than the batch of %d",
      n, batch_size), 3)
  end
  return n
end

-- The checks of minibatches(batch_size) and a first shuffle, without the
-- iterator (an algorithm walking perm itself allocates nothing).
function RolloutBuffer:start_epochs(batch_size)
  check_batch(self, batch_size)
  return self:shuffle()
end

function RolloutBuffer:minibatches(batch_size)
  local n = check_batch(self, batch_size)
  self:shuffle()
  local first = 1
  return function()
    if first > n then return nil end
    local f, c = first, math.min(batch_size, n - first + 1)
    first = first + batch_size
    return f, c
  end
end

-- ---- networks ------------------------------------------------------------

-- Orthogonal initialization (torch.nn.init.orthogonal_): a Gaussian matrix
-- made orthonormal by Gram-Schmidt (the QR of PyTorch, signs fixed so R's
-- diagonal is positive), times gain. Biases 0. From the state's generator.
function rl.orthogonal_(linear, gain)
  local w = linear.weight
  local rows, cols = w:size(1), w:size(2)
  local tall = rows >= cols
  local m, n = tall and rows or cols, tall and cols or rows -- m x n with m >= n, orthonormal columns
  local g = T.randn(m, n)
  local q = {}
  for j = 1, n do
    local v = {}
    for i = 1, m do v[i] = tget(g, i, j) end
    for k = 1, j - 1 do
      local d = 0
      for i = 1, m do d = d + q[k][i] * v[i] end
      for i = 1, m do v[i] = v[i] - d * q[k][i] end
    end
    local s = 0
    for i = 1, m do s = s + v[i] * v[i] end
    s = sqrt(s)
    for i = 1, m do v[i] = v[i] / s end
    q[j] = v
  end
  for i = 1, rows do
    for j = 1, cols do
      local val = tall and q[j][i] or q[i][j]
      tset(w, i, j, gain * val)
    end
  end
  if linear.bias then linear.bias:zero_() end
  return linear
end

local activations = { tanh = nn.Tanh, relu = nn.ReLU, selu = nn.SELU, elu = nn.ELU }

-- rl.mlp(in, hidden, out[, {activation = "tanh", out_gain = 1, init}]):
-- Linear/activation stacks initialized as Stable-Baselines3's actor-critic
-- does (orthogonal, gain sqrt(2) for hidden layers, the given output gain);
-- init = "default" keeps nn.Linear's own initialization (SB3's Q-networks).
function rl.mlp(n_in, hidden, n_out, opts)
  opts = opts or {}
  local act = activations[opts.activation or "tanh"]
  if not act then argerror("mlp", 4, "unknown activation '" .. tostring(opts.activation) .. "' (expected tanh, relu, selu or elu)") end
  local layers, d = {}, n_in
  for _, h in ipairs(hidden) do
    local lin = nn.Linear(d, h)
    if opts.init ~= "default" then rl.orthogonal_(lin, opts.hidden_gain or sqrt(2)) end
    layers[#layers + 1] = lin
    layers[#layers + 1] = act()
    d = h
  end
  local out = nn.Linear(d, n_out)
  if opts.init ~= "default" then rl.orthogonal_(out, opts.out_gain or 1) end
  layers[#layers + 1] = out
  return nn.Sequential(layers)
end

-- Copies the parameters of net into copy (same architecture).
function rl.copy_params(copy, net)
  rl.copy_param_lists(copy:parameters(), net:parameters())
  return copy
end

-- The same between two parameters() lists taken once: parameters() builds
-- a new list (about 10 KB for a 64-64 MLP) that a per-update copy would
-- leave to the collector.
function rl.copy_param_lists(dst, src)
  for i = 1, #src do dst[i].param:copy(src[i].param) end
end

-- Scales the gradients of params (a parameters() list) so that their joint
-- L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_: coefficient
-- max_norm / (norm + 1e-6), applied when below 1). Returns the norm before.
function rl.clip_grad_norm_(params, max_norm)
  local s = 0
  for _, p in ipairs(params) do s = s + rl.sumsq(p.grad) end
  local norm = sqrt(s)
  local coef = max_norm / (norm + 1e-6)
  if coef < 1 then
    for _, p in ipairs(params) do p.grad:mul_(coef) end
  end
  return norm
end

-- Mean and (unbiased) standard deviation of n values of a 1-D tensor through idx.
function rl._mean_std(t, n)
  local s = 0
  for i = 1, n do s = s + t[i] end
  local m = s / n
  local v = 0
  for i = 1, n do local d = t[i] - m; v = v + d * d end
  return m, sqrt(v / math.max(n - 1, 1))
end

-- Evaluation: runs the agent's deterministic policy on a fresh vector env of
-- n copies until each has finished one episode; returns the mean return, the
-- list of returns and the steps taken. make_vec(n) builds the env.
function rl.evaluate(agent, make_vec, n, seed)
  local vec = make_vec(n)
  local obs = vec:reset(seed)
  local ret, done, returns, left, steps = {}, {}, {}, n, 0
  for i = 1, n do ret[i] = 0 end
  while left > 0 do
    local a = agent:policy(obs, true)
    local o, r, te, tr = vec:step(a)
    obs = o
    steps = steps + 1
    for i = 1, n do
      if not done[i] then
        ret[i] = ret[i] + r[i]
        if te[i] == 1 or tr[i] == 1 then
          done[i] = true
          returns[#returns + 1] = ret[i]
          left = left - 1
        end
      end
    end
  end
  local s = 0
  for _, v in ipairs(returns) do s = s + v end
  return s / n, returns, steps
end

-- The algorithms load on first use.
setmetatable(rl, { __index = function(t, k)
  if k == "PPO" then rawset(t, k, require "selut.rl_ppo")
  elseif k == "DQN" then rawset(t, k, require "selut.rl_dqn") end
  return rawget(t, k)
end })

return rl
