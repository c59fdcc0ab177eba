-- selut.rl's losses written with tensor ops on autograd tensors: the same
-- expressions as Stable-Baselines3 (PPO's clipped surrogate, value loss and
-- entropy bonus; DQN's Huber loss on Q(s, a)), differentiated by the tape
-- instead of the fused kernels of core/rl/loss.c. PPO and DQN use them with
-- {autograd = true}; tests/lua/rl_autograd.lua checks that both forms give
-- the same gradients. Each call records a graph and makes its intermediate
-- tensors anew (the fused path allocates nothing), which is why the fused
-- kernels stay the default (docs/rl.md, "How the gradients are computed").
local selut = require "selut"
local T = selut.tensor
local rl = selut.rl
local L = {}

local LOG_2PI = math.log(2 * math.pi)

-- Statistics SB3 logs, from the detached ratio: clip fraction mean(|r - 1| > clip)
-- and approximate KL mean((r - 1) - log r).
local function ratio_stats(log_ratio, clip)
  local lr = log_ratio:detach()
  local r = lr:exp()
  local cf = (r - 1):abs():gt(clip):mean()
  local kl = ((r - 1) - lr):mean()
  return cf, kl
end

-- The clipped surrogate -mean(min(r A, clip(r, 1 - c, 1 + c) A)) from the
-- log probabilities of the taken actions (recording) and the old ones.
local function surrogate(logp, old_logp, adv, clip)
  local log_ratio = logp - old_logp
  local ratio = log_ratio:exp()
  local l1 = ratio * adv
  local l2 = ratio:clamp(1 - clip, 1 + clip) * adv
  return -selut.minimum(l1, l2):mean(), log_ratio
end

-- PPO, categorical policy. logits [B x K] (recording), actions [B x 1]
-- (1-based), old_logp and adv [B] (adv already normalized). Returns the
-- policy loss and the mean entropy (1-element tensors that record), and the
-- clip fraction and approximate KL (numbers).
function L.ppo_categorical(logits, actions, old_logp, adv, clip)
  local B = logits:size(1)
  local logp_all = logits:log_softmax(2)
  local logp = logp_all:gather(2, actions):reshape(B)
  local pl, log_ratio = surrogate(logp, old_logp, adv, clip)
  local entropy = -(logp_all:exp() * logp_all):sum(2):mean()
  return pl, entropy, ratio_stats(log_ratio, clip)
end

-- PPO, diagonal Gaussian policy N(mean, exp(log_std)). mean [B x K]
-- (recording), log_std [K] (a leaf that requires grad), actions [B x K].
-- torch.distributions.Normal's log_prob and entropy, summed over the K dims.
function L.ppo_gaussian(mean, log_std, actions, old_logp, adv, clip)
  local var = (log_std * 2):exp()
  local d = actions - mean
  local logp = (-(d * d) / (var * 2) - log_std - 0.5 * LOG_2PI):sum(2)
  local pl, log_ratio = surrogate(logp, old_logp, adv, clip)
  local entropy = (log_std + (0.5 + 0.5 * LOG_2PI)):sum()
  return pl, entropy, ratio_stats(log_ratio, clip)
end

-- The value loss mean((v - R)^2): v [B x 1] (recording), ret [B x 1].
function L.value(v, ret) return selut.nn.F.mse_loss(v, ret) end

-- DQN: the Huber loss (smooth L1, beta 1), mean over the batch, between
-- Q(s, a) = q[i, actions[i]] (gathered; q [B x K] recording, actions
-- [B x 1]) and the targets y [B x 1].
function L.dqn_huber(q, actions, y)
  local d = q:gather(2, actions) - y
  local ad = d:abs()
  return selut.where(ad:lt(1), d * d * 0.5, ad - 0.5):mean()
end

rl._losses = L
return L
