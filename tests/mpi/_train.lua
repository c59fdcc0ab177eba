-- Shared by tests/mpi/equivalence.lua and syncbn.lua: `epochs` epochs of SGD
-- on ds, either in one process over global batches of size * b, or through
-- the DataParallel dp over shards of b (then the loss is the global batch's,
-- and with scaled the loss gradient is weighted by dp:loss_scale(n) before
-- backward). Epoch e shuffles with seed seed + e. Returns the per-step losses.
return function(t)
  local dist, T = selut.dist, selut.tensor
  local net, opt, crit, dp, ds = t.net, t.opt, t.crit, t.dp, t.ds
  local losses = {}
  for epoch = 1, t.epochs do
    selut.manual_seed(t.seed + epoch)
    local it = dp and dp:batches(ds, t.b, { shuffle = true }) or ds:batches(t.size * t.b, { shuffle = true })
    for xb, yb in it do
      local out = net:forward(xb)
      local loss = crit:forward(out, yb)
      opt:zero_grad()
      local gy = crit:backward(out, yb)
      if dp and t.scaled then gy:mul_(dp:loss_scale(#yb)) end
      net:backward(xb, gy)
      if dp then
        dp:allreduce_gradients(#yb)
        loss = dist.allreduce(T.new { loss * #yb, #yb }):totable()
        loss = loss[1] / loss[2]
      end
      opt:step()
      losses[#losses + 1] = loss
    end
  end
  return losses
end
