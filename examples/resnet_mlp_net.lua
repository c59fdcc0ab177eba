-- The residual SELU MLP of examples/resnet_mlp.lua, written with nn.class:
-- a stem Linear(784, width), `blocks` residual blocks of two Linear(width,
-- width) with SELU and AlphaDropout(p), the sum rescaled by 1/sqrt(2), and a
-- head Linear(width, 10). Returns the ResMLP class: ResMLP(blocks, width, p).
-- Used by resnet_mlp.lua and tests/onnx/roundtrip.lua.
local selut = require "selut"
local nn = selut.nn
local F = nn.F

local Block = nn.class("Block")
function Block:init(width, p)
  self.fc1 = nn.Linear(width, width)
  self.fc2 = nn.Linear(width, width)
  self.drop = nn.AlphaDropout(p)
  self.rescale = 1 / math.sqrt(2) -- a plain number: not registered
end
function Block:forward(x)
  local h = self.fc2(self.drop(F.selu(self.fc1(x))))
  return (x + F.selu(h)) * self.rescale
end

local ResMLP = nn.class("ResMLP")
function ResMLP:init(blocks, width, p)
  self.stem = nn.Linear(784, width)
  local list = {}
  for i = 1, blocks do list[i] = Block(width, p) end
  self.blocks = nn.ModuleList(list)
  self.head = nn.Linear(width, 10)
end
function ResMLP:forward(x)
  local h = F.selu(self.stem(x))
  for _, b in ipairs(self.blocks) do h = b(h) end
  return self.head(h)
end

return ResMLP
