-- LuaRocks: builds build/selut.so (the Lua C module, all Lua parts embedded)
-- with the project's Makefile and installs it into the rocks tree.
--   luarocks --lua-version 5.4 make selut-scm-1.rockspec
rockspec_format = "3.0"
package = "selut"
version = "scm-1"
source = {
  url = "git+file://.", -- a local checkout; `luarocks make` builds the current directory
}
description = {
  summary = "Self-normalizing neural networks: a C11 core (float32 tensors, SELU, AlphaDropout) scripted from Lua 5.4",
  detailed = [[
selut is a small neural-network toolkit: tensors, layers, losses, optimizers,
datasets, safetensors checkpoints and PNG plots in C, driven from Lua
(require "selut"). Matrix products go through OpenBLAS.
]],
  license = "MIT",
  labels = { "neural-networks", "machine-learning", "selu" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  PNG = { header = "png.h", library = "png16" },
  ZLIB = { header = "zlib.h", library = "z" },
}
build = {
  type = "make",
  -- The Makefile finds Lua, OpenBLAS, libpng and zlib through pkg-config and
  -- sets its own flags (-std=c11, no fast-math); only the build dir is passed.
  build_target = "rock",
  build_variables = { BUILD = "build-rock" },
  install_target = "install-rock",
  install_variables = { BUILD = "build-rock", INST_LIBDIR = "$(LIBDIR)" },
  copy_directories = { "docs" },
}
