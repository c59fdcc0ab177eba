-- Bad input to selut.rl.envs: actions out of range or of the wrong shape, NaN
-- torques, states of the wrong length or non-finite, stepping an ended
-- episode. Each message names the value and what was expected; the state
-- stays healthy (tests/lua/_bad.lua).
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, envs = selut.tensor, selut.rl.envs
local nan = 0 / 0

local cp = envs.CartPole()
bad("cartpole.step: the episode has ended (terminated or truncated): call reset first", function() return cp:step(1) end) -- before reset
cp:reset(1)
bad("bad argument #1 to 'step' (action 0 is out of range (expected 1 or 2))", function() return cp:step(0) end)
bad("bad argument #1 to 'step' (action 3 is out of range (expected 1 or 2))", function() return cp:step(3) end)
bad("bad argument #1 to 'step' (action 1.5 is out of range (expected 1 or 2))", function() return cp:step(1.5) end)
bad("bad argument #1 to 'step' (action nan is out of range (expected 1 or 2))", function() return cp:step(nan) end)
bad("bad argument #1 to 'step' (number expected, got string)", function() return cp:step("left") end)
bad("bad argument #1 to 'step' (action tensor has shape [2], expected 1 element)", function() return cp:step(T.new({ 1, 2 })) end)
bad("bad argument #1 to 'step' (action 0.0 is out of range (expected 1 or 2))", function() return cp:step(T.zeros(1)) end)
bad("CartPole state must be a list of 4 numbers {x, x_dot, theta, theta_dot}, got 3", function() cp.state = { 1, 2, 3 } end)
bad("CartPole state[2] must be a finite number, got nan", function() cp.state = { 0, nan, 0, 0 } end)
bad("CartPole state[4] must be a finite number, got string", function() cp.state = { 0, 0, 0, "x" } end)
bad("CartPole state must be a list of 4 numbers {x, x_dot, theta, theta_dot}, got number", function() cp.state = 5 end)
bad("CartPole: cannot set field 'steps' (only state)", function() cp.steps = 3 end)
bad("bad argument #1 to 'reset' (number has no integer representation)", function() return cp:reset(1.5) end)
cp:step(1) -- still usable

local pd = envs.Pendulum()
pd:reset(2)
bad("bad argument #1 to 'step' (torque is NaN (expected a number, clipped to [-2, 2]))", function() return pd:step(nan) end)
bad("bad argument #1 to 'step' (torque tensor has shape [3], expected 1 element)", function() return pd:step(T.zeros(3)) end)
bad("bad argument #1 to 'step' (number or 1-element selut.Tensor expected, got no value)", function() return pd:step() end)
bad("Pendulum state must be a list of 2 numbers {theta, theta_dot}, got 4", function() pd.state = { 0, 0, 0, 0 } end)
pd:step(1)

local vec = envs.CartPoleVec(3)
bad("bad argument #1 to 'CartPoleVec' (number of envs must be in [1, 1048576], got 0)", function() return envs.CartPoleVec(0) end)
bad("bad argument #1 to 'step' (actions have shape [4], expected [3])", function() return vec:step(T.ones(4)) end)
bad("bad argument #1 to 'step' (actions have shape [3 x 1], expected [3])", function() return vec:step(T.ones(3, 1)) end)
bad("cartpole.step: action 3 at index 2 is out of range (expected 1 or 2)", function() return vec:step(T.new({ 1, 3, 2 })) end)
bad("bad argument #1 to 'state' (env index 4 out of range [1, 3])", function() return vec:state(4) end)
local before = vec:state(1)
bad("cartpole.step: action 0 at index 3 is out of range (expected 1 or 2)", function() return vec:step(T.new({ 1, 2, 0 })) end)
local after = vec:state(1)
for k = 1, 4 do assert(before[k] == after[k], "a rejected vec step moves no env") end
local pv = envs.PendulumVec(2)
bad("pendulum.step: torque at index 2 is NaN (expected a number, clipped to [-2, 2])", function() return pv:step(T.new({ 0, nan })) end)
bad("bad argument #1 to 'step' (actions have shape [3], expected [2] or [2 x 1])", function() return pv:step(T.zeros(3)) end)
B.done(20)
