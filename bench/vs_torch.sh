#!/bin/bash
# bench/vs_torch.sh BUILD: selut against PyTorch on this machine, in one
# invocation so both see the same load (the machine may be shared):
#   - the default recipe, one full Fashion-MNIST epoch: selut at 1 and 2
#     threads (with its sgemm-bound limit), PyTorch at TORCH_THREADS (default
#     1, its best here: at 2 threads it took 560 s instead of 27 s on the
#     loaded machine; TORCH_THREADS="1 2" to see it), best of each compared;
#   - the tiny net (2-64-64-1 SELU, batch 32, 10000 SGD steps), per step,
#     with bench/tiny_floor's floor: the step's products and SELU kernels
#     timed alone, which bounds the ratio any binding work could reach; then
#     both again with SELU(inplace=True).
# PyTorch runs only when /usr/bin/python3 can import torch (else "skipped").
# LIMIT=10000 bench/vs_torch.sh build   runs a shorter epoch.
set -u
BUILD=${1:-build}
LIMIT=${LIMIT:-0}
STEPS=${STEPS:-10000}
TORCH_THREADS=${TORCH_THREADS:-1}
here=$(cd "$(dirname "$0")" && pwd)
get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" | head -1; }
best() { sort -g | head -1; }

torch_ok=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then torch_ok=1; else echo "vs_torch: PyTorch skipped (/usr/bin/python3 cannot import torch)"; fi

echo "== default recipe, one epoch (limit ${LIMIT:-0}; 0 = all 60000 samples)"
sel=(); tor=(); lim=()
for t in 1 2; do
  out=$(BENCH_DIR="$here" "$BUILD/bench/epoch" --threads $t --limit "$LIMIT") || { echo "$out"; exit 1; }
  echo "$out"
  sel+=("$(echo "$out" | grep '^selut_epoch' | get seconds)")
  lim+=("$(echo "$out" | grep '^sgemm_limit' | get natural_seconds)")
  if [ $torch_ok = 1 ] && [[ " $TORCH_THREADS " == *" $t "* ]]; then
    o=$(/usr/bin/python3 "$here/torch_epoch.py" --threads $t --limit "$LIMIT") && echo "$o" && tor+=("$(echo "$o" | get seconds)")
  fi
done
sb=$(printf '%s\n' "${sel[@]}" | best); lb=$(printf '%s\n' "${lim[@]}" | best)
printf 'selut best epoch %.2f s; sgemm-bound limit (best thread count) %.2f s; selut / limit = %.2f\n' "$sb" "$lb" \
  "$(echo "$sb / $lb" | bc -l)"
if [ $torch_ok = 1 ] && [ ${#tor[@]} -gt 0 ]; then
  tb=$(printf '%s\n' "${tor[@]}" | best)
  printf 'PyTorch best epoch %.2f s; selut / PyTorch = %.3f (target <= 0.6)\n' "$tb" "$(echo "$sb / $tb" | bc -l)"
fi

echo "== tiny net, $STEPS steps"
st=$("$BUILD/selut" --threads 1 "$here/tiny.lua" "$STEPS"); echo "$st"
su=$(echo "$st" | get us_per_step)
fl=$("$BUILD/bench/tiny_floor" "$STEPS") || { echo "$fl"; exit 1; }
echo "$fl"
fu=$(echo "$fl" | get floor_us)
if [ $torch_ok = 1 ]; then
  tt=$(/usr/bin/python3 "$here/torch_tiny.py" --threads 1 --steps "$STEPS"); echo "$tt"
  tu=$(echo "$tt" | get us_per_step)
  printf 'tiny net: selut %.1f us/step, PyTorch %.1f us/step: selut is %.1fx faster (target >= 20x)\n' "$su" "$tu" \
    "$(echo "$tu / $su" | bc -l)"
  printf 'tiny net floor: the products and SELU kernels alone take %.1f us, so %.1fx is the most any step with them reaches\n' \
    "$fu" "$(echo "$tu / $fu" | bc -l)"
fi
# the same with SELU(inplace=True) on both sides (backward from the result)
st=$("$BUILD/selut" --threads 1 "$here/tiny.lua" "$STEPS" inplace); echo "$st"
su=$(echo "$st" | get us_per_step)
fi_=$(echo "$fl" | get floor_inplace_us)
if [ $torch_ok = 1 ]; then
  tt=$(/usr/bin/python3 "$here/torch_tiny.py" --threads 1 --steps "$STEPS" --inplace); echo "$tt"
  tu=$(echo "$tt" | get us_per_step)
  printf 'tiny net, SELU in place: selut %.1f us/step, PyTorch %.1f us/step: %.1fx (floor %.1f us: at most %.1fx)\n' \
    "$su" "$tu" "$(echo "$tu / $su" | bc -l)" "$fi_" "$(echo "$tu / $fi_" | bc -l)"
fi
