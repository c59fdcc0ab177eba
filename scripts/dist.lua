-- selut.dist, the Lua half: DataParallel's setup. What a net synchronizes is
-- found here over the walker (nn.modules): its parameters and buffers (named
-- like a checkpoint) and, with {sync_batchnorm = true}, the layers whose
-- descriptor can synchronize batch statistics. The C constructor
-- (bindings/lua_dist_dp.c) checks them and builds the object, allocating
-- its flat gradient buffer once, there; the collectives and the step are C.
local selut = require "selut"
local dist, nn = selut.dist, selut.nn

local DataParallel = dist.DataParallel -- C: (net, opts, is_module, params, buffers, synced)

function dist.DataParallel(net, opts, ...)
  local is_module, params, buffers, synced = false, nil, false, nil
  local t = type(net)
  if (t == "table" or t == "userdata") and type(net.parameters) == "function" then
    is_module = true
    params = net:parameters()
    if type(params) == "table" and type(net.buffers) == "function" then buffers = net:buffers() end
    if type(opts) == "table" and opts.sync_batchnorm == true then
      synced = {}
      for _, m in nn.modules(net) do
        local d = nn.describe(m)
        if d and d.sync_statistics then synced[#synced + 1] = m end
      end
    end
  end
  local dp = DataParallel(net, opts, is_module, params, buffers, synced) -- not a tail call: errors name 'DataParallel'
  return dp
end

return dist
