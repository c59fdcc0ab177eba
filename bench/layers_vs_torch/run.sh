#!/bin/bash
# bench/layers_vs_torch: the CNN and GRU training epochs of examples/cnn.lua
# and examples/sequence.lua against their PyTorch twins, interleaved in one
# run (selut, PyTorch, selut, PyTorch ... per net) so both see the same load
# on a shared machine. Each side at THREADS (default 1; PyTorch's best here).
# Reports wall and process CPU seconds per epoch, best of ROUNDS, and the
# ratios selut / PyTorch. Needs /usr/bin/python3 with torch.
#   [LIMIT=10000] [ROUNDS=2] [THREADS=1] [NETS="cnn gru"] bash bench/layers_vs_torch/run.sh [build]
set -e
BUILD=${1:-build}
case $BUILD in /*) sel=$BUILD/selut ;; *) sel=$(pwd)/$BUILD/selut ;; esac
LIMIT=${LIMIT:-10000}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-1}
NETS=${NETS:-cnn gru}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench/layers_vs_torch: SKIPPED -- /usr/bin/python3 has no torch"
  exit 0
fi
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
echo "bench/layers_vs_torch: limit $LIMIT, $ROUNDS rounds, $THREADS thread(s), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for net in $NETS; do
  sw=(); sc=(); tw=(); tc=()
  for r in $(seq "$ROUNDS"); do
    o=$("$sel" "$here/selut_epoch.lua" "$net" "$LIMIT" "$THREADS"); echo "  $o"
    sw+=("$(echo "$o" | get wall)"); sc+=("$(echo "$o" | get cpu)")
    o=$(/usr/bin/python3 "$here/torch_epoch.py" "$net" "$LIMIT" "$THREADS"); echo "  $o"
    tw+=("$(echo "$o" | get wall)"); tc+=("$(echo "$o" | get cpu)")
  done
  best() { printf '%s\n' "$@" | sort -g | head -1; }
  a=$(best "${sw[@]}"); b=$(best "${tw[@]}"); c=$(best "${sc[@]}"); d=$(best "${tc[@]}")
  printf '%s epoch (best of %d): selut %.2f s wall / %.2f s CPU, PyTorch %.2f s wall / %.2f s CPU: selut / PyTorch = %.2fx wall, %.2fx CPU\n' \
    "$net" "$ROUNDS" "$a" "$c" "$b" "$d" "$(echo "$a / $b" | bc -l)" "$(echo "$c / $d" | bc -l)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
