-- The main job: a self-normalizing MLP on Fashion-MNIST.
--   build/selut examples/train.lua                 (784 -> 8 x 512 SELU -> 10, 10 epochs)
--   build/selut examples/train.lua --epochs 1 --limit 10000   (a quick try)
--   build/selut examples/train.lua --help
local selut = require "selut"
local args = require "selut.args"
local progress = require "selut.progress"
local nn, optim = selut.nn, selut.optim
local S = optim.lr_scheduler

local spec = {
  {"epochs", 10, "number of epochs", min = 1},
  {"depth", 8, "hidden layers", min = 1, max = 1000},
  {"width", 512, "units per hidden layer", min = 1},
  {"act", "selu", "activation", choices = {"selu", "elu", "relu"}},
  {"init", "auto", "weight init (auto: lecun for selu/elu, he for relu)", choices = {"auto", "lecun", "he", "xavier"}},
  {"dropout", 0.05, "dropout rate (AlphaDropout for selu, Dropout otherwise; 0 = off)", min = 0},
  {"optim", "sgd", "optimizer", choices = {"sgd", "adam", "adamw"}},
  {"lr", 0.01, "learning rate", min = 0},
  {"momentum", 0.9, "SGD momentum", min = 0},
  {"weight_decay", 0.0, "weight decay", min = 0},
  {"schedule", "none", "learning-rate schedule over the run", choices = {"none", "cosine", "step"}},
  {"batch", 128, "batch size", min = 1},
  {"seed", 1, "random seed"},
  {"threads", 0, "BLAS threads (0 = keep the launcher's setting)", min = 0},
  {"limit", 0, "use only the first N training (and test) samples (0 = all)", min = 0},
  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory"},
  {"out", "", "output folder [default: runs/<timestamp>]"},
  {"resume", "", "checkpoint (last.safetensors) to continue from"},
  {"plots", true, "write activation histograms and curves as PNG"},
  {"grad", "autograd", "how gradients are computed: autograd (net(x), loss:backward()) or the explicit " ..
    "forward/backward protocol; same kernels, same bits", choices = {"autograd", "explicit"}},
  {"distributed", false, "data-parallel over MPI ranks: mpirun -np N build/selut examples/train.lua --distributed"},
}

local opt, err, usage = args.parse(arg, spec, "selut examples/train.lua [options]")
if not opt then
  io.stderr:write("train.lua: ", err, "\n", usage, "\n")
  os.exit(2)
end
if opt.help then
  print(usage)
  os.exit(0)
end
if opt.dropout >= 1 then
  io.stderr:write("train.lua: option '--dropout' must be in [0, 1), got ", opt.dropout, "\n", usage, "\n")
  os.exit(2)
end

-- --distributed (docs/distributed.md): N MPI ranks share every global batch of
-- --batch samples (batch / N each); only the main rank prints and writes files.
local dist, nranks, is_main = opt.distributed and selut.dist or nil, 1, true
if dist then
  local _
  _, nranks = dist.init()
  is_main = dist.is_main()
  if opt.batch % nranks ~= 0 then
    if is_main then io.stderr:write("train.lua: --batch ", opt.batch, " must be a multiple of the ", nranks, " ranks\n") end
    dist.finalize()
    os.exit(2)
  end
end

-- Fashion-MNIST's classes in label order (label 1 is T-shirt/top), for the confusion matrix
local fashion_classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"}

local function log(fmt, ...)
  if not is_main then return end
  io.stdout:write(string.format(fmt, ...), "\n") io.stdout:flush()
end

local function build_net()
  local layers, fan_in = {}, 784
  local Act = ({selu = nn.SELU, elu = nn.ELU, relu = nn.ReLU})[opt.act]
  for _ = 1, opt.depth do
    layers[#layers + 1] = nn.Linear(fan_in, opt.width)
    layers[#layers + 1] = Act()
    if opt.dropout > 0 then
      layers[#layers + 1] = opt.act == "selu" and nn.AlphaDropout(opt.dropout) or nn.Dropout(opt.dropout)
    end
    fan_in = opt.width
  end
  layers[#layers + 1] = nn.Linear(fan_in, 10)
  local net = nn.Sequential(layers)
  local init = opt.init
  if init == "auto" then init = opt.act == "relu" and "he" or "lecun" end
  local fn = ({lecun = nn.init.lecun_normal, he = nn.init.he_normal, xavier = nn.init.xavier_uniform})[init]
  fn(net)
  return net, init
end

local function make_optimizer(params)
  if opt.optim == "sgd" then
    return optim.SGD(params, {lr = opt.lr, momentum = opt.momentum, weight_decay = opt.weight_decay})
  elseif opt.optim == "adam" then
    return optim.Adam(params, {lr = opt.lr, weight_decay = opt.weight_decay})
  end
  return optim.AdamW(params, {lr = opt.lr, weight_decay = opt.weight_decay})
end

-- Stepped once per epoch (selut.optim.lr_scheduler, PyTorch's sequences).
local function make_scheduler(o)
  if opt.schedule == "cosine" then return S.CosineAnnealingLR(o, {T_max = opt.epochs}) end
  if opt.schedule == "step" then return S.StepLR(o, {step_size = math.max(1, opt.epochs // 3), gamma = 0.1}) end
end

-- Evaluation: mean loss, accuracy, the predicted and the true labels over a
-- dataset (this rank's share of it), in evaluation mode.
local function evaluate(net, crit, data)
  net:evaluate()
  local total, correct, n, preds, labels = 0, 0, 0, {}, {}
  for xb, yb in data:batches(1000, {shard = true}) do -- this rank's part (all of it in one process)
    local out = net:forward(xb)
    local b = #yb
    total = total + crit:forward(out, yb) * b
    local pred = out:argmax(2)
    for i = 1, b do
      preds[n + i], labels[n + i] = pred[i], yb[i]
      if pred[i] == yb[i] then correct = correct + 1 end
    end
    n = n + b
  end
  if dist then total, correct, n = table.unpack(dist.allreduce(selut.tensor.new{total, correct, n}):totable()) end
  net:train()
  return total / n, correct / n, preds, labels
end

local function csv_line(r)
  return string.format("%d,%.6f,%.6f,%.6f,%.3f,%.6g", r.epoch, r.train_loss, r.test_loss,
                       r.test_acc, r.seconds, r.lr)
end

local function write_metrics(out, history)
  if not is_main then return end -- the main rank writes metrics, checkpoints and pictures
  local lines = {"epoch,train_loss,test_loss,test_acc,seconds,lr"}
  local json = {}
  for _, r in ipairs(history) do
    lines[#lines + 1] = csv_line(r)
    json[#json + 1] = string.format(
      '{"epoch":%d,"train_loss":%.6f,"test_loss":%.6f,"test_acc":%.6f,"seconds":%.3f,"lr":%.6g}',
      r.epoch, r.train_loss, r.test_loss, r.test_acc, r.seconds, r.lr)
  end
  selut.sys.write_file(out .. "/metrics.csv", table.concat(lines, "\n") .. "\n")
  selut.sys.write_file(out .. "/metrics.json", "[\n" .. table.concat(json, ",\n") .. "\n]\n")
end

-- On --resume into the same folder, the earlier epochs' rows are kept.
local function read_metrics(out, before_epoch)
  local history, f = {}, io.open(out .. "/metrics.csv")
  if not f then return history end
  for line in f:lines() do
    local e, tl, vl, va, s, lr = line:match("^(%d+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$")
    e = math.tointeger(tonumber(e))
    if e and e < before_epoch then
      history[#history + 1] = {epoch = e, train_loss = tonumber(tl), test_loss = tonumber(vl),
                               test_acc = tonumber(va), seconds = tonumber(s), lr = tonumber(lr)}
    end
  end
  f:close()
  return history
end

local function main()
  if opt.threads > 0 then selut.set_num_threads(opt.threads) end
  selut.manual_seed(opt.seed)
  local out = opt.out
  if out == "" then out = "runs/" .. os.date("%Y%m%d-%H%M%S") end
  if is_main then selut.sys.mkdir(out) end

  local train, test = selut.data.fashion_mnist(opt.data)
  if opt.limit > 0 then
    train = train:subset(math.min(opt.limit, train:size()))
    test = test:subset(math.min(opt.limit, test:size()))
  end
  local mean, std = train:standardize()
  test:standardize(mean, std)

  -- the model and its loss
  local net, init = build_net()
  local crit = nn.CrossEntropyLoss()

  local opt_obj = make_optimizer(net:parameters())
  local sched = make_scheduler(opt_obj)
  local recipe = string.format("784 -> %d x %d %s%s -> 10, %s init, %s lr %g, batch %d", opt.depth, opt.width,
                               opt.act, opt.dropout > 0 and string.format(" + dropout %g", opt.dropout) or "",
                               init, opt.optim, opt.lr, opt.batch)
  log("selut %s | %s | train %d, test %d | out %s", selut.version, recipe, train:size(), test:size(), out)

  local dp -- DataParallel: one flat gradient buffer, one allreduce per step (made after a resume)
  local nbatches = (train:size() + opt.batch - 1) // opt.batch
  local viz = is_main and opt.plots and selut.viz and selut.viz.histograms and selut.viz
  local probe = viz and test:subset(math.min(1000, test:size())) or nil
  local best_acc, best_epoch, last_acc, last_preds, last_labels = -1, 0, 0, nil, nil
  local bar, sum, count, t0 = nil, 0, 0, selut.clock()

  local progress_cb = { -- the progress bar and the sample-weighted training loss
    on_step_end = function(_, tr, info)
      if info.batch == 1 then
        bar = progress.new{total = nbatches, label = string.format("epoch %d/%d", tr.epoch, opt.epochs),
                           tty = not is_main and false or nil}
      end
      sum, count = sum + info.loss * info.n, count + info.n
      bar:update(info.batch, {samples = count, loss = sum / count})
    end,
  }
  local report_cb = { -- log line, best/last checkpoints, metrics files, histograms
    on_epoch_end = function(_, tr, m)
      log("epoch %2d/%d  train loss %.4f  test loss %.4f  test acc %.2f%%  %.1f s  (%.0f samples/s)", m.epoch,
          opt.epochs, m.train_loss, m.test_loss, 100 * m.test_acc, m.seconds, m.samples / m.seconds)
      last_acc = m.test_acc
      if m.test_acc > best_acc then best_acc, best_epoch = m.test_acc, m.epoch end
      if is_main then
        local meta = {test_acc = tostring(m.test_acc), recipe = recipe}
        tr.checkpoint_state = {best_acc = best_acc, best_epoch = best_epoch}
        if best_epoch == m.epoch then tr:save_checkpoint(out .. "/best.safetensors", meta) end
        tr:save_checkpoint(out .. "/last.safetensors", meta)
      end
      tr.history_rows[#tr.history_rows + 1] = {epoch = m.epoch, train_loss = m.train_loss, test_loss = m.test_loss,
                                               test_acc = m.test_acc, seconds = m.seconds, lr = m.lr}
      write_metrics(out, tr.history_rows)
      if viz then
        viz.histograms(net, probe.x, string.format("%s/act_epoch%02d.png", out, m.epoch),
                       {title = string.format("%s activations after epoch %d (%d test images)", opt.act:upper(),
                                              m.epoch, probe:size()),
                        layers = {({selu = "SELU", elu = "ELU", relu = "ReLU"})[opt.act]}})
      end
      sum, count, t0 = 0, 0, selut.clock()
    end,
  }
  local tr = selut.Trainer{
    net = net, loss = opt.grad == "autograd" and nn.F.cross_entropy or crit, optim = opt_obj, epochs = opt.epochs, scheduler = sched, stop_on_nonfinite = true,
    data = {batches = function() -- this rank's share of every shuffled global batch
      if dp then return dp:batches(train, opt.batch // nranks, {shuffle = true}) end
      return train:batches(opt.batch, {shuffle = true})
    end},
    eval = function()
      bar:finish()
      local s, c = sum, count
      if dist then s, c = table.unpack(dist.allreduce(selut.tensor.new{s, c}):totable()) end
      local test_loss, test_acc, preds, labels = evaluate(net, crit, test)
      last_preds, last_labels = preds, labels
      return {train_loss = s / c, test_loss = test_loss, test_acc = test_acc, seconds = selut.clock() - t0,
              samples = c, lr = opt_obj.lr}
    end,
    callbacks = {progress_cb, report_cb},
  }
  tr.history_rows = {}

  local first_epoch = 1
  if opt.resume ~= "" then
    local info = tr:resume(opt.resume)
    local st = info.format_version >= 2 and info.state.user or info.state_meta -- version 1: plain metadata
    best_acc, best_epoch = tonumber(st and st.best_acc) or 0, math.tointeger(tonumber(st and st.best_epoch)) or 0
    first_epoch = info.epoch + 1
    -- the command line's hyperparameters win over the checkpoint's (a schedule keeps its own lr)
    local g = opt_obj.param_groups[1]
    if not sched then opt_obj.lr = opt.lr end
    g.weight_decay = opt.weight_decay
    if opt.optim == "sgd" then g.momentum = opt.momentum end
    log("resumed from %s after epoch %d", opt.resume, info.epoch)
    tr.history_rows = read_metrics(out, first_epoch)
  end

  if dist then
    dp = dist.DataParallel(net)
    dp:broadcast_parameters() -- every rank starts from the main rank's weights
    -- weights n / sum(n) so the allreduce only sums; the global batch's mean gradient, then the
    -- step (on one machine each rank steps its slice of parameters shared by all ranks)
    tr.grad_scale = function(n) return dp:loss_scale(n) end
    tr.optimizer_step = function(o, n) dp:step(o, n) end
  end
  local t_start = selut.clock()
  local ok, e = pcall(tr.fit, tr)
  if not ok then
    if bar then bar:finish() end
    if type(e) == "string" and e:find("^non%-finite training loss") then
      e = string.format("%s: stopping; the last good checkpoint is %s/last.safetensors (try a smaller --lr)", e, out)
    end
    error(e, 0)
  end
  if dp and os.getenv("SELUT_DIST_STATS") then -- communication share, for docs/performance.md
    local st = dp:stats()
    log("dist: %d ranks, %d steps, %s, comm %.3f s (%.2f ms/step), %s %.3f s, total %.1f s", nranks, st.steps,
        st.shared and "shared-memory step" or string.format("%d bytes per allreduce (%s)", st.bytes,
                                                            st.shared_off or "allreduce"),
        st.comm_seconds, 1000 * st.comm_seconds / math.max(st.steps, 1), st.shared and "sum+step" or "pack",
        st.pack_seconds, selut.clock() - t_start)
  end
  local history = tr.history_rows
  if viz and #history > 0 then
    local losses, tests, accs = {}, {}, {}
    for i, r in ipairs(history) do losses[i], tests[i], accs[i] = r.train_loss, r.test_loss, 100 * r.test_acc end
    viz.plot({["train loss"] = losses, ["test loss"] = tests}, out .. "/curves.png",
             {title = "loss per epoch", xlabel = "epoch"})
    viz.plot({["test accuracy %"] = accs}, out .. "/accuracy.png", {title = "test accuracy per epoch", xlabel = "epoch"})
  end
  if viz and last_preds and #last_preds > 0 then -- the last evaluation (this rank's share under mpirun)
    viz.confusion(last_preds, last_labels, out .. "/confusion.png",
                  {classes = fashion_classes, title = string.format("test set after epoch %d%s", opt.epochs,
                                                                    dist and " (rank 0's share)" or "")})
  end
  log("done: %d epochs in %.1f s, test acc %.2f%% (best %.2f%% at epoch %d), checkpoints in %s",
      opt.epochs - first_epoch + 1, selut.clock() - t_start, 100 * last_acc, 100 * best_acc, best_epoch, out)
end

local ok, e = xpcall(main, function(m)
  if os.getenv("SELUT_TRACEBACK") then return debug.traceback(m, 2) end
  return m
end)
if not ok then
  io.stderr:write("train.lua: ", dist and string.format("rank %d: ", dist.rank()) or "", tostring(e), "\n")
  if dist then dist.abort(1) end -- brings every rank down instead of leaving them in a collective
  os.exit(1)
end
if dist then dist.finalize() end
