#!/usr/bin/env bash
# Multi-rank tests of selut.dist (docs/distributed.md), run by `make test` when
# selut is built with MPI. Each mpirun is bounded by a timeout so a hang fails.
#   1. collectives on 2 ranks                          tests/mpi/collectives.lua
#   2. 2 ranks x batch b == 1 rank x batch 2b          tests/mpi/equivalence.lua
#      ... with BatchNorm1d, sync_batchnorm             tests/mpi/syncbn.lua
#   3. examples/train.lua --distributed on 2 ranks == one process (metrics.csv and
#      the weights; default recipe with AlphaDropout)
#   4. a failing rank brings the job down with its message
#   5. two ranks in two network namespaces over a veth link, TCP only
#      (tests/mpi/netns.sh; skipped with a message where ip netns is not allowed)
set -euo pipefail
LAUNCHER=${1:?usage: tests/mpi/run.sh path/to/selut}
cd "$(dirname "$0")/../.."
MPIRUN=(timeout 120 mpirun --allow-run-as-root --oversubscribe -x OPENBLAS_NUM_THREADS=1)
# SAN=1: ASan and UBSan stay on in the ranks, but leak checking is off there:
# Open MPI's plugins leave thousands of allocations at exit (from dlclosed
# modules, so no suppression can name them). Our own code's leaks are checked
# in-process by tests/lua/dist.lua (DataParallel, shard) under LeakSanitizer.
if [ -n "${LSAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
  MPIRUN+=(-x LSAN_OPTIONS -x ASAN_OPTIONS -x UBSAN_OPTIONS)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "tests/mpi: FAIL: $*"; exit 1; }

"${MPIRUN[@]}" -np 2 "$LAUNCHER" tests/mpi/collectives.lua || fail "collectives"
# Debian's stock lua5.4 with selut.so and the glue side by side (what `make
# install-rock` installs): selut.dist finds the glue beside the module
B=$(cd "$(dirname "$LAUNCHER")" && pwd)
if [ -n "${LSAN_OPTIONS:-}" ]; then
  echo "tests/mpi: stock lua5.4 under mpirun skipped in the SAN build (an ASan module in a plain interpreter)"
elif command -v lua5.4 > /dev/null && [ -e "$B/selut.so" ] && [ -e "$B/selut_mpi.so" ]; then
  out=$("${MPIRUN[@]}" -np 2 lua5.4 -e "package.cpath = '$B/?.so;' .. package.cpath
    local s = require 'selut'; local r, n = s.dist.init(); local t = s.tensor.new { r }
    s.dist.allreduce(t); io.write(r, ' ', n, ' ', t[1], '\n'); s.dist.finalize()" 2>&1) || { echo "$out"; fail "stock lua5.4 + selut.dist"; }
  [ "$(echo "$out" | sort | tr '\n' ' ')" = "1 2 3 2 2 3 " ] || { echo "$out"; fail "stock lua5.4 + selut.dist: $out"; }
  echo "tests/mpi: stock lua5.4 finds the MPI glue beside selut.so (allreduce on 2 ranks)"
fi
"${MPIRUN[@]}" -np 2 "$LAUNCHER" tests/mpi/equivalence.lua || fail "equivalence"
"${MPIRUN[@]}" -np 2 "$LAUNCHER" tests/mpi/syncbn.lua || fail "syncbn"

# train.lua: same recipe, default AlphaDropout 0.05 included, one process vs 2 ranks sharing each global
# batch of 64 (2999 samples: the last global batch of 55 is split 27 + 28)
args=(examples/train.lua --epochs 2 --limit 2999 --depth 2 --width 64 --batch 64 --no-plots)
OPENBLAS_NUM_THREADS=1 "$LAUNCHER" "${args[@]}" --out "$tmp/one" > "$tmp/one.log" || { cat "$tmp/one.log"; fail "train.lua, one process"; }
SELUT_DIST_STATS=1 "${MPIRUN[@]}" -x SELUT_DIST_STATS -np 2 "$LAUNCHER" "${args[@]}" --out "$tmp/two" --distributed > "$tmp/two.log" 2>&1 \
  || { cat "$tmp/two.log"; fail "train.lua --distributed"; }
# (where /dev/shm is writable: elsewhere the allreduce path is the right outcome)
if [ -w /dev/shm ]; then
  grep -q "shared-memory step" "$tmp/two.log" || { cat "$tmp/two.log"; fail "2 ranks on one machine did not use the shared-memory step"; }
fi
[ "$(grep -c '^epoch' "$tmp/two.log")" = 2 ] || { cat "$tmp/two.log"; fail "only the main rank prints"; }
[ ! -e "$tmp/two/best.safetensors" ] && fail "the main rank writes checkpoints"
# train loss, test loss, test accuracy per epoch agree to 2e-6 (metrics are written with 6 decimals)
paste -d, "$tmp/one/metrics.csv" "$tmp/two/metrics.csv" | awk -F, 'NR > 1 {
  for (c = 2; c <= 4; c++) { d = $c - $(c + 6); if (d < 0) d = -d; if (d > 2e-6) { print "epoch " $1 " column " c ": " $c " vs " $(c + 6); bad = 1 } } }
  END { exit bad }' || fail "train.lua --distributed metrics differ from one process"
# and the trained weights (main rank's checkpoint) agree to 2e-6
"$LAUNCHER" tests/mpi/weights_diff.lua "$tmp/one/last.safetensors" "$tmp/two/last.safetensors" 2e-6 > "$tmp/w.log" \
  || { cat "$tmp/w.log"; fail "train.lua --distributed weights differ from one process"; }
echo "tests/mpi: train.lua --distributed (AlphaDropout) on 2 ranks matches one process ($(sed -n 3p "$tmp/two/metrics.csv"); weights: $(cat "$tmp/w.log"))"
# the same with the allreduce path instead of the shared-memory step (what ranks on
# several machines use); the default run above must have used the shared step
SELUT_DIST_STATS=1 SELUT_DIST_SHARED=0 "${MPIRUN[@]}" -x SELUT_DIST_STATS -x SELUT_DIST_SHARED -np 2 "$LAUNCHER" \
  "${args[@]}" --out "$tmp/three" --distributed > "$tmp/three.log" 2>&1 || { cat "$tmp/three.log"; fail "train.lua --distributed, allreduce path"; }
grep -q "allreduce (SELUT_DIST_SHARED=0)" "$tmp/three.log" || { cat "$tmp/three.log"; fail "SELUT_DIST_SHARED=0 did not select the allreduce path"; }
"$LAUNCHER" tests/mpi/weights_diff.lua "$tmp/one/last.safetensors" "$tmp/three/last.safetensors" 2e-6 > "$tmp/w3.log" \
  || { cat "$tmp/w3.log"; fail "train.lua --distributed (allreduce path) weights differ from one process"; }
cmp -s "$tmp/two/metrics.csv" "$tmp/three/metrics.csv" || paste -d, "$tmp/two/metrics.csv" "$tmp/three/metrics.csv" | awk -F, 'NR > 1 {
  for (c = 2; c <= 4; c++) { d = $c - $(c + 6); if (d < 0) d = -d; if (d > 2e-6) { print "epoch " $1 " column " c ": " $c " vs " $(c + 6); bad = 1 } } }
  END { exit bad }' || fail "shared-memory step and allreduce path disagree"
echo "tests/mpi: the allreduce path (SELUT_DIST_SHARED=0) matches too (weights: $(cat "$tmp/w3.log"))"

# a script that never calls finalize ends the job normally (exit 0)
"${MPIRUN[@]}" -np 2 "$LAUNCHER" tests/mpi/nofinalize.lua > "$tmp/nofin.log" 2>&1 \
  || { cat "$tmp/nofin.log"; fail "a script without finalize must exit 0"; }
[ "$(grep -c "ends without finalize" "$tmp/nofin.log")" -eq 2 ] && ! grep -q "aborting the MPI job" "$tmp/nofin.log" \
  || { cat "$tmp/nofin.log"; fail "a script without finalize: both ranks end, no abort"; }
echo "tests/mpi: a script that never calls finalize exits 0 on 2 ranks"

# a failing rank ends the job (no hang) with its message and a non-zero status
start=$(date +%s)
set +e
"${MPIRUN[@]}" -np 2 "$LAUNCHER" tests/mpi/fail.lua > "$tmp/fail.log" 2>&1
status=$?
set -e
[ $status -ne 0 ] && [ $status -ne 124 ] || { cat "$tmp/fail.log"; fail "failing rank: status $status"; }
grep -q "rank 2 fails on purpose" "$tmp/fail.log" || { cat "$tmp/fail.log"; fail "failing rank: message missing"; }
# our own notice (Open MPI's "MPI_ABORT was invoked" banner is not checked:
# its help printer can itself fail under load, "ORTE_ERROR_LOG: Out of resource")
grep -q "aborting the MPI job" "$tmp/fail.log" || { cat "$tmp/fail.log"; fail "failing rank: no MPI_Abort"; }
echo "tests/mpi: a failing rank ends the job in $(( $(date +%s) - start )) s with its message (status $status)"

bash tests/mpi/netns.sh "$LAUNCHER"
echo "tests/mpi: all passed"
