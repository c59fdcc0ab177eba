-- Errors raised inside nn.Sequential name the failing child: "Sequential:
-- layer <i> (<child>): <original message>", i being the 0-based index that
-- print(net) shows and parameter names use; nested containers join indices
-- with dots ("layer 1.2"), forward and backward alike.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check, checkerror = H.check, H.checkerror
local T, nn = selut.tensor, selut.nn

selut.manual_seed(3)
local net = nn.Sequential{nn.Linear(8, 64), nn.SELU(), nn.Linear(32, 10)}
local x = T.randn(4, 8)
local err = checkerror("Sequential: layer 2 (Linear(in_features=32, out_features=10, bias=true)): ", net.forward, net, x)
-- the original message follows the prefix unchanged
local ok, orig = pcall(net.modules[3].forward, net.modules[3], T.zeros(4, 64))
check(not ok, "bare Linear fails")
check(err == "Sequential: layer 2 (Linear(in_features=32, out_features=10, bias=true)): " .. orig,
      "prefix + original message, got: " .. err)
check(tostring(net):find("(2): Linear(in_features=32", 1, true), "index matches print(net)")
check(net.current_layer == nil, "counter cleared after the error")

-- the net still works once fixed; success path unchanged
net.modules[3] = nn.Linear(64, 10)
local y = net:forward(x)
check(y:size(1) == 4 and y:size(2) == 10, "forward after the fix")

-- backward: a gradient of the wrong shape fails in the last layer (index 2)
checkerror("Sequential: layer 2 (Linear(in_features=64, out_features=10, bias=true)): ", net.backward, net, x,
           T.zeros(4, 3))
-- a failure in an earlier layer's backward: a Lua module raising there
local Bad = nn.Module{name = "Bad", forward = function(_, v) return v end,
                      backward = function() error("bad gradient", 0) end}
local net2 = nn.Sequential{nn.Linear(8, 8), Bad, nn.SELU()}
net2:forward(x)
err = checkerror("Sequential: layer 1 (Bad()): bad gradient", net2.backward, net2, x, T.ones(4, 8))
check(err == "Sequential: layer 1 (Bad()): bad gradient", err)
-- need_input_grad = false path, failing first layer
local net3 = nn.Sequential{nn.Linear(8, 8)}
net3:forward(x)
checkerror("Sequential: layer 0 (Linear(in_features=8, out_features=8, bias=true)): ", net3.backward, net3, x,
           T.ones(4, 5), false)

-- Lua-module errors keep their position prefix after the layer prefix
local Boom = nn.Module{name = "Boom", forward = function() error("boom") end, backward = function() end}
err = checkerror("Sequential: layer 0 (Boom()): ", nn.Sequential{Boom}.forward, nn.Sequential{Boom}, x)
check(err:find("seq_errors.lua:%d+: boom$"), "position kept: " .. err)

-- nested containers: indices joined like parameter names (1.2.weight)
local inner = nn.Sequential{nn.Linear(8, 16), nn.SELU(), nn.Linear(5, 4)}
local outer = nn.Sequential{nn.Linear(8, 8), inner, nn.SELU()}
check(outer:parameters()[5].name == "1.2.weight", "parameter naming of the nested Linear")
err = checkerror("Sequential: layer 1.2 (Linear(in_features=5, out_features=4, bias=true)): Linear.forward: input shape [4 x 16]", outer.forward,
                 outer, x)
check(not err:find("Sequential: layer 1 (", 1, true), "one prefix only: " .. err)
local deep = nn.Sequential{nn.Sequential{nn.Sequential{nn.SELU(), Boom}}}
checkerror("Sequential: layer 0.0.1 (Boom()): ", deep.forward, deep, x)
-- nested backward
inner.modules[3] = nn.Linear(16, 4)
outer = nn.Sequential{nn.Linear(8, 8), inner}
outer:forward(x)
checkerror("Sequential: layer 1.2 (Linear(in_features=16, out_features=4, bias=true)): ", outer.backward, outer, x,
           T.ones(4, 7))

-- errors of the container itself are not attributed to a child
checkerror("Sequential: backward called before forward", nn.Sequential{nn.SELU()}.backward,
           nn.Sequential{nn.SELU()}, x, x)
checkerror("bad argument #3 to 'backward' (need_input_grad must be a boolean, got number)", outer.backward, outer,
           x, T.ones(4, 8), 1)
-- non-string error values pass through untouched
local obj = {}
local Thrower = nn.Module{forward = function() error(obj) end, backward = function() end}
local s = nn.Sequential{Thrower}
local ok2, e2 = pcall(s.forward, s, x)
check(not ok2 and e2 == obj, "error objects pass through")
-- a child that is not a module at call time still names the layer
local s2 = nn.Sequential{nn.SELU()}
s2.modules[2] = nn.Module{name = "Half", backward = function() end}
checkerror("Sequential: layer 1 (Half()): Half: forward is not implemented", s2.forward, s2, x)
