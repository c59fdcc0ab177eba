#!/usr/bin/env bash
# Packaging checks for embedding, run by `make test`:
#  1. build/selut.so loads in Debian's stock lua5.4 (require "selut") and trains
#     with selut.Trainer; it links no liblua (one Lua core per process).
#  2. libselut.so carries its soname.
#  3. no object of the library calls exit/abort/signal, assert or the stdout
#     printers (undefined symbols of libselut.a).
#  4. the example host (examples/embed/host.c) survives its deliberate script
#     error and runaway loop and exits 0 (leak-checked when built with SAN=1).
#  5. `make install PREFIX=tmp` then a program outside the tree compiles with
#     `cc host.c $(pkg-config --cflags --libs selut)` and runs; uninstall
#     removes everything.
# Usage: tests/embed/run.sh BUILD_DIR   (SANFLAGS in the environment under SAN=1;
# LUA, NM and PKG_CONFIG name the target's tools in a cross build, docs/portability.md)
set -u
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
pass=0 fail=0
LUA=${LUA:-lua5.4} NM=${NM:-nm} PKG_CONFIG=${PKG_CONFIG:-pkg-config}
ok() { pass=$((pass + 1)); }
# ldd, but also for a cross-built binary: ask its own ELF interpreter
loaded_libs() { "$(readelf -l "$1" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')" --list "$1"; }
bad() { fail=$((fail + 1)); echo "embed FAIL: $*"; }

PRELOAD=
if [ -n "${SANFLAGS:-}" ]; then # an ASan-built module inside a plain interpreter
  PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
fi

# 1. stock interpreter
if ! command -v "$LUA" >/dev/null; then bad "lua5.4 not installed (make deps)"; else
  out=$(LD_PRELOAD=$PRELOAD "$LUA" -e "package.cpath='$B/?.so;'..package.cpath; require 'selut'" \
        -e 'local selut = require "selut"; io.write("version ", selut.version, "\n")' 2>&1)
  if [ $? -eq 0 ] && [[ $out == version* ]]; then ok; else bad "require 'selut' from lua5.4: $out"; fi
  out=$(LD_PRELOAD=$PRELOAD "$LUA" - 2>&1 <<LUA
package.cpath = "$B/?.so;" .. package.cpath
local selut = require "selut"
assert(selut == package.loaded.selut and _G.selut == nil, "require returns the module, no global")
local nn, T = selut.nn, selut.tensor
selut.manual_seed(3)
local x = T.randn(64, 2)
local y = T.zeros(64)
for i = 1, 64 do y[i] = x:get(i, 1) > 0 and 2 or 1 end
local net = nn.Sequential{nn.Linear(2, 8), nn.SELU(), nn.Linear(8, 2)}
local tr = selut.Trainer{net = net, loss = nn.CrossEntropyLoss(), data = selut.data.Dataset(x, y),
  optim = selut.optim.SGD(net:parameters(), {lr = 0.2}), batch_size = 16, epochs = 30}
local first = tr:step(4).mean_loss
while not tr:step(50).done do end
local last = tr:progress().epoch_loss
assert(last < first * 0.5, string.format("loss %g -> %g", first, last))
local ok, err = pcall(function() return T.zeros(2, 3) + T.zeros(4) end)
assert(not ok and err:find("[2 x 3]", 1, true), err)
io.write("trained ", tr:progress().steps, " steps\n")
LUA
)
  if [ $? -eq 0 ] && [[ $out == "trained 120 steps" ]]; then ok; else bad "training from lua5.4: $out"; fi
fi
if readelf -d "$B/selut.so" | grep NEEDED | grep -qi 'liblua'; then bad "$B/selut.so links liblua"; else ok; fi

# 2. soname
if readelf -d "$B/libselut.so" | grep -q 'SONAME.*\[libselut\.so\.0\]'; then ok; else bad "libselut.so has no soname libselut.so.0"; fi

# 3. forbidden calls: exact symbol names among the library's undefined symbols
forbidden=$($NM -u "$B/libselut.a" 2>/dev/null | awk '{print $NF}' |
  grep -xE 'exit|_exit|_Exit|quick_exit|abort|signal|sigaction|raise|printf|puts|putchar|vprintf|__assert_fail' | sort -u)
if [ -z "$forbidden" ]; then ok; else bad "libselut.a references: $(echo $forbidden)"; fi
# the MPI glue too (dlopened by selut.dist.init; MPI_Abort is its documented way out)
if [ -e "$B/selut_mpi.so" ]; then
  forbidden=$($NM -D -u "$B/selut_mpi.so" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//' |
    grep -xE 'exit|_exit|_Exit|quick_exit|abort|signal|sigaction|raise|printf|puts|putchar|vprintf|__assert_fail' | sort -u)
  # a coverage build links gcov's runtime (which calls abort/exit) into the
  # shared object itself: the glue's own code is checked by the normal build
  if $NM "$B/selut_mpi.so" 2>/dev/null | grep -q '__gcov_'; then forbidden=""; fi
  if [ -z "$forbidden" ]; then ok; else bad "selut_mpi.so references: $(echo $forbidden)"; fi
  # and start-up does not load Open MPI: only the glue links libmpi
  if readelf -d "$B/selut" "$B/libselut.so" "$B/selut.so" | grep NEEDED | grep -q 'libmpi'; then
    bad "selut, libselut.so or selut.so links libmpi (only selut_mpi.so may)"; else ok; fi
fi

# 4. the example host
if [ -x "$B/examples/embed/host" ]; then
  out=$("$B/examples/embed/host" 2>&1)
  if [ $? -eq 0 ] && grep -q 'script errors survived 2/2  buffers released 2/2' <<<"$out"; then ok; else
    bad "examples/embed/host:"; echo "$out" | tail -15; fi
else bad "$B/examples/embed/host not built"; fi

# 5. install, out-of-tree build, uninstall
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ${MAKE:-make} --no-print-directory -s install BUILD="$B" PREFIX="$tmp/prefix" >"$tmp/install.log" 2>&1; then
  mkdir "$tmp/outside" && cp examples/embed/host.c examples/xor.c "$tmp/outside/"
  # the README's ten-line program, exactly as printed there
  awk '/^## Embedding in C/{f=1} f&&/^```c/{g=1;next} g&&/^```/{exit} g' README.md > "$tmp/outside/demo.c"
  export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
  if (cd "$tmp/outside" && ${CC:-cc} ${SANFLAGS:-} -o host host.c $($PKG_CONFIG --cflags --libs selut) &&
      ${CC:-cc} ${SANFLAGS:-} -o xor xor.c $($PKG_CONFIG --cflags --libs selut) &&
      ${CC:-cc} ${SANFLAGS:-} -o demo demo.c $($PKG_CONFIG --cflags --libs selut)) >"$tmp/cc.log" 2>&1; then
    export LD_LIBRARY_PATH="$tmp/prefix/lib"
    out=$(cd "$tmp/outside" && ./host 100 1 2>&1 && ./xor 2>&1 && ./demo 2>&1)
    if [ $? -eq 0 ] && [[ $out == *$'\n4.0' ]] && loaded_libs "$tmp/outside/host" | grep -q "$tmp/prefix/lib/libselut.so.0"; then ok; else
      bad "out-of-tree host did not run against the installed library:"; echo "$out" | tail -5; fi
  else bad "out-of-tree compile failed:"; cat "$tmp/cc.log"; fi
  lua_mod=$(find "$tmp/prefix" -name selut.so -path '*lua/5.4*')
  if [ -n "$lua_mod" ] && LD_PRELOAD=$PRELOAD "$LUA" -e "package.cpath='$(dirname "$lua_mod")/?.so'" \
       -e 'assert(require("selut").Trainer)' 2>/dev/null; then ok; else bad "installed Lua module not loadable"; fi
  unset LD_LIBRARY_PATH
  ${MAKE:-make} --no-print-directory -s uninstall BUILD="$B" PREFIX="$tmp/prefix" >>"$tmp/install.log" 2>&1
  left=$(find "$tmp/prefix" -type f | head -5)
  if [ -z "$left" ]; then ok; else bad "uninstall left: $left"; fi
else bad "make install failed:"; tail -20 "$tmp/install.log"; fi

echo "embed: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
