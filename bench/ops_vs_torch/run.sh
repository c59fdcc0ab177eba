#!/bin/bash
# bench/ops_vs_torch: selut's tensor ops against PyTorch in one run, each at
# its best thread count (1 or 2), for 10^6 and 10^7 elements. Per op: both
# times, the ratio selut/PyTorch, and the fraction of memcpy bandwidth
# (bytes read + written per second over memcpy's, memcpy measured by the
# same library in the same run). cat and permute are compared with a memcpy
# of the same bytes (x memcpy: goal <= 2). Needs /usr/bin/python3 with torch.
#   bash bench/ops_vs_torch/run.sh [build] [sizes...]
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
echo "bench/ops_vs_torch on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $sizes; do
  "$root/$BUILD/selut" "$here/ops.lua" "$n" >"$tmp/selut"
  /usr/bin/python3 "$here/torch_ops.py" "$n" >"$tmp/torch"
  echo
  echo "n = $n floats (best of rounds; best thread count per library)"
  awk -v cases="$here/cases.txt" '
    BEGIN { while ((getline l < cases) > 0) if (l !~ /^#/ && split(l, f) >= 3) { fam[f[2]] = f[1]; tr[f[2]] = f[3]; ord[++k] = f[2] } }
    FNR == 1 { file++ }
    { t = $3 + 0; key = $1; if (file == 1) { if (!(key in s) || t < s[key]) { s[key] = t; st[key] = $2 } }
      else { if (!(key in p) || t < p[key]) { p[key] = t; pt[key] = $2 } } }
    END {
      printf "%-8s %-16s %11s %11s %7s %10s %10s\n", "family", "op", "selut ms", "torch ms", "ratio", "selut bw", "torch bw"
      for (i = 1; i <= k; i++) {
        o = ord[i]
        sbw = (tr[o] / 2) * s["memcpy"] / s[o]; pbw = (tr[o] / 2) * p["memcpy"] / p[o]
        extra = (fam[o] == "shape") ? sprintf("   (%.2fx memcpy)", s[o] / s["memcpy"]) : ""
        printf "%-8s %-16s %8.3f(%d) %8.3f(%d) %7.2f %9.0f%% %9.0f%%%s\n", fam[o], o, s[o] * 1e3, st[o], p[o] * 1e3, pt[o], s[o] / p[o], 100 * sbw, 100 * pbw, extra
      }
    }' "$tmp/selut" "$tmp/torch"
done
echo
echo "(n) after a time = the thread count that gave it; bw = fraction of that library's own memcpy rate"
