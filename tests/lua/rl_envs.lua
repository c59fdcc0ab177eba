-- selut.rl.envs against Gymnasium's transitions (tests/ref/gen_rl_refs.py
-- restates cartpole.py / pendulum.py in NumPy and writes rl_traces.lua):
-- 1000 random actions each, episodes started from given states, the state
-- compared to 1e-6 after every step (it matches bit for bit today), rewards
-- and flags exactly. Then resets, seeds, truncation, the vector forms.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local T, envs = selut.tensor, selut.rl.envs
local root = os.getenv("SELUT_ROOT") or "."
local refs = dofile(root .. "/tests/ref/rl_traces.lua")

local TOL = 1e-6
local function replay(make, episodes, name)
  local env, steps, maxdiff = make(), 0, 0
  for e, ep in ipairs(episodes) do
    env:reset()
    env.state = ep.start
    for i, a in ipairs(ep.actions) do
      local obs, r, term, trunc, info = env:step(a)
      local want, got = ep.states[i], env.state
      for k = 1, #want do
        local d = math.abs(got[k] - want[k])
        maxdiff = math.max(maxdiff, d)
        H.check(d <= TOL, string.format("%s episode %d step %d state[%d]: %.17g vs %.17g", name, e, i, k, got[k], want[k]))
      end
      H.check(r == ep.rewards[i] or math.abs(r - ep.rewards[i]) <= TOL,
              string.format("%s episode %d step %d reward %.17g vs %.17g", name, e, i, r, ep.rewards[i]))
      H.check(term == ep.term[i] and trunc == ep.trunc[i], string.format("%s episode %d step %d flags", name, e, i))
      H.check(type(info) == "table" and obs:numel() == env.obs_size, name .. " obs")
      steps = steps + 1
    end
  end
  H.check(steps == 1000, name .. " replayed " .. steps .. " steps")
  return maxdiff
end
local dcp = replay(envs.CartPole, refs.cartpole, "CartPole")
local dpd = replay(envs.Pendulum, refs.pendulum, "Pendulum")
H.check(dcp == 0, "CartPole is bit-exact with the reference (max diff " .. dcp .. ")")
H.check(dpd <= 1e-12, "Pendulum within 1e-12 (max diff " .. dpd .. ")")
if os.getenv("RL_ENVS_VERBOSE") then print("max |state diff|: CartPole", dcp, "Pendulum", dpd) end

-- observations are the float32 state (CartPole) / cos, sin, theta_dot (Pendulum)
local cp = envs.CartPole()
local obs = cp:reset(7)
local s = cp.state
for k = 1, 4 do
  H.check(math.abs(s[k]) < 0.05, "reset state in (-0.05, 0.05)")
  H.check(obs[k] == T.new({ s[k] })[1], "obs is the float32 state")
end
H.check(cp.steps == 0 and cp.obs_size == 4 and cp.n_actions == 2 and cp.max_steps == 500, "CartPole fields")
-- 1 pushes left, 2 pushes right
cp.state = { 0, 0, 0, 0 }
cp:step(1)
H.check(cp.state[2] < 0, "action 1 pushes left")
cp.state = { 0, 0, 0, 0 }
cp:step(2)
H.check(cp.state[2] > 0, "action 2 pushes right")
-- a 1-element tensor as the action
cp.state = { 0, 0, 0, 0 }
cp:step(T.new({ 2 }))
H.check(cp.state[2] > 0, "tensor action")

-- seeds: reset(seed) reproduces; without a seed the env continues its own stream
local a, b = envs.CartPole(), envs.CartPole()
local oa, ob = a:reset(42), b:reset(42)
H.tensor_near(oa, ob, 0, "same seed, same start")
local oa2, ob2 = a:reset(), b:reset()
H.tensor_near(oa2, ob2, 0, "seeded stream continues identically")
H.check(oa2[1] ~= oa[1], "the next reset draws a new state")
-- without any seed: the state's generator (selut.manual_seed)
selut.manual_seed(3)
local c1 = envs.Pendulum():reset()
selut.manual_seed(3)
local c2 = envs.Pendulum():reset()
H.tensor_near(c1, c2, 0, "state generator")

-- truncation at 500 (CartPole) and 200 (Pendulum): terminated and truncated are separate
local env = envs.CartPole()
env:reset(1)
local term, trunc
for i = 1, 500 do
  env.state = { 0, 0, 0, 0 } -- keep it balanced; the step counter runs on
  _, _, term, trunc = env:step(i % 2 + 1)
  H.check(not term and (trunc == (i == 500)), "CartPole truncates at step 500 only (step " .. i .. ")")
end
H.checkerror("cartpole.step: the episode has ended (terminated or truncated): call reset first", env.step, env, 1)
env:reset()
H.check(env.steps == 0, "reset clears the counter")
-- termination: theta beyond 12 degrees
env.state = { 0, 0, 0.2094, 1 }
_, _, term, trunc = env:step(1)
H.check(term and not trunc, "terminated past 12 degrees")
env.state = { 2.39, 1, 0, 0 }
local _, r
_, r, term = env:step(2)
H.check(term and r == 1, "terminated past x = 2.4, reward 1")

local pd = envs.Pendulum()
pd:reset(5)
for i = 1, 200 do
  _, r, term, trunc = pd:step(0)
  H.check(term == false and trunc == (i == 200), "Pendulum truncates at 200")
end
-- torque clipping: 100 acts as 2, -inf as -2; cost uses the clipped torque
pd:reset(5)
local p2 = envs.Pendulum()
p2:reset(5)
local _, r1 = pd:step(100)
local _, r2 = p2:step(2)
H.check(r1 == r2 and pd.state[2] == p2.state[2], "torque clipped to 2")
pd.state = { 0, 0 }
_, r = pd:step(-math.huge)
H.near(r, -0.004, 1e-12, "cost of torque -2 at rest, upright")
pd.state = { math.pi, 0 }
_, r = pd:step(T.new({ 0 }))
H.near(r, -math.pi ^ 2, 1e-12, "cost hanging down")
H.check(pd.action_low == -2 and pd.action_high == 2 and pd.obs_size == 3, "Pendulum fields")

-- vector form: same transitions as N single envs, autoreset with final_obs
local N = 5
local vec = envs.CartPoleVec(N)
local vobs = vec:reset(9)
H.check(vobs:size(1) == N and vobs:size(2) == 4 and vec.num_envs == N, "vec obs shape")
local singles = {}
for i = 1, N do
  singles[i] = envs.CartPole()
  singles[i]:reset()
  singles[i].state = vec:state(i)
end
local acts = T.zeros(N)
local ended = 0
for t = 1, 60 do
  for i = 1, N do acts[i] = (t * i) % 3 == 0 and 1 or 2 end
  local o, rw, te, tr, info = vec:step(acts)
  H.check(o == vobs, "vec returns the same obs tensor every step")
  for i = 1, N do
    local so, sr, st, su = singles[i]:step(acts[i])
    H.check(rw[i] == sr and te[i] == (st and 1 or 0) and tr[i] == (su and 1 or 0), "vec flags")
    if st or su then
      ended = ended + 1
      for k = 1, 4 do H.check(info.final_obs[i][k] == so[k], "final_obs holds the last obs") end
      singles[i]:reset()
      singles[i].state = vec:state(i) -- the vec env already reset it
      local sob = singles[i].state
      for k = 1, 4 do H.check(math.abs(sob[k]) < 0.05, "autoreset state") end
    else
      for k = 1, 4 do H.check(o[i][k] == so[k], "vec obs == single obs") end
    end
  end
end
H.check(ended > 0, "some vec episodes ended")
local pv = envs.PendulumVec(3)
pv:reset(1)
local po = pv:step(T.new({ { 1 }, { -1 }, { 0.5 } }))
H.check(po:size(1) == 3 and po:size(2) == 3, "PendulumVec takes [n x 1]")
pv:set_state(2, { 0, 0 })
H.check(pv.obs[2][1] == 1 and pv.obs[2][2] == 0, "set_state updates the obs row")
