#!/bin/bash
# bench/ops_vs_torch: selut's tensor ops against PyTorch in one run, each at
# its best thread count (1 or 2), for 10^6 and 10^7 elements. Per op: both
# times, the ratio selut/PyTorch, and the fraction of memcpy bandwidth
# (bytes read + written per second over memcpy's, memcpy measured by the
# same library in the same run). cat and permute are compared with a memcpy
# of the same bytes (x memcpy: goal <= 2). Each library runs REPEAT times
# (default 3), alternating with the other, and the report gives medians of
# the per-run bests and the range of the per-run ratios: on a shared machine
# single runs of either library move by 1.5-2x. OPS=op,op,... times a subset
# of cases.txt. Needs /usr/bin/python3 with torch.
#   [REPEAT=3] [OPS=...] bash bench/ops_vs_torch/run.sh [build] [sizes...]
set -e
BUILD=${1:-build}
shift || true
sizes=${*:-1000000 10000000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench/ops_vs_torch: SKIPPED -- /usr/bin/python3 has no torch (apt-get install python3-torch)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repeat=${REPEAT:-3}
echo "bench/ops_vs_torch on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $repeat alternating runs per library"
for n in $sizes; do
  for r in $(seq "$repeat"); do # alternate which library goes first
    if [ $((r % 2)) = 1 ]; then
      "$root/$BUILD/selut" "$here/ops.lua" "$n" 0 $OPS >"$tmp/selut.$r"
      /usr/bin/python3 "$here/torch_ops.py" "$n" 0 $OPS >"$tmp/torch.$r"
    else
      /usr/bin/python3 "$here/torch_ops.py" "$n" 0 $OPS >"$tmp/torch.$r"
      "$root/$BUILD/selut" "$here/ops.lua" "$n" 0 $OPS >"$tmp/selut.$r"
    fi
  done
  echo
  echo "n = $n floats: median over $repeat runs of each run's best (best of rounds, best of 1 and 2 threads); load now $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/python3 "$here/report.py" "$tmp" "$here/cases.txt" "$repeat"
done
echo
echo "(n) after a time = the thread count that gave it most often; ratio = selut/PyTorch of the medians;"
echo "ratio range = lowest and highest per-run ratio; bw = fraction of that library's own memcpy rate"
