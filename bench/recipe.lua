-- bench/recipe.lua: the default recipe of examples/train.lua (784 -> 8 x 512
-- SELU + AlphaDropout 0.05 -> 10, LeCun-normal init, cross-entropy, SGD lr
-- 0.01 momentum 0.9), built once here for every bench that times it
-- (bench/epoch.lua, bench/dist_compute.lua). Seed the generator first.
-- BENCH_INPLACE=1 in the environment: SELU(inplace=true) (PyTorch's
-- inplace=True: bench/torch_epoch.py --inplace).
--   local net, crit, opt = dofile(dir .. "recipe.lua")(selut)
return function(selut)
  local nn, optim = selut.nn, selut.optim
  local layers, fan_in = {}, 784
  local inplace = os.getenv("BENCH_INPLACE") == "1"
  for _ = 1, 8 do
    layers[#layers + 1] = nn.Linear(fan_in, 512)
    layers[#layers + 1] = nn.SELU(inplace)
    layers[#layers + 1] = nn.AlphaDropout(0.05)
    fan_in = 512
  end
  layers[#layers + 1] = nn.Linear(fan_in, 10)
  local net = nn.Sequential(layers)
  nn.init.lecun_normal(net)
  local crit = nn.CrossEntropyLoss()
  local opt = optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
  return net, crit, opt
end
