#!/bin/bash
# Same bits on every machine (docs/portability.md): selut's own results
# (generator, SELU/ELU/AlphaDropout/Dropout, ReLU/Tanh/Sigmoid, exp/log/sqrt,
# softmax, cross entropy; forward and backward) must have exactly the bits
# recorded in tests/cross/own_bits.txt, at 1 and at 2 threads. Run by
# `make test` natively and under qemu for ARCH=aarch64, so a kernel change
# that moves a bit, or an architecture that computes another one, fails here.
# OpenBLAS's results (blas.*) and libm's (libm.*) are computed but not pinned.
#   tests/cross/run.sh LAUNCHER            (regenerate: --write LAUNCHER)
set -u
cd "$(dirname "$0")/../.." || exit 1
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
L=${1:?usage: tests/cross/run.sh [--write] LAUNCHER}
if ! command -v python3 >/dev/null; then echo "tests/cross: SKIPPED -- missing: python3 (make deps installs it)"; exit 0; fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for th in 1 2; do
  if ! "$L" tests/cross/bits.lua "$tmp/bits$th.safetensors" "$th" >"$tmp/log" 2>&1; then
    echo "tests/cross: FAILED -- bits.lua at $th threads:"; cat "$tmp/log"; exit 1
  fi
  python3 tests/cross/compare.py --hashes "$tmp/bits$th.safetensors" own. >"$tmp/own$th.txt" || exit 1
done
if [ $write = 1 ]; then cp "$tmp/own1.txt" tests/cross/own_bits.txt; fi
n=$(wc -l <tests/cross/own_bits.txt)
for th in 1 2; do
  if ! diff -u tests/cross/own_bits.txt "$tmp/own$th.txt" >"$tmp/diff"; then
    echo "tests/cross: FAILED -- at $th threads these of selut's own results do not have the recorded bits:"
    grep '^[-+]own' "$tmp/diff"; exit 1
  fi
done
echo "tests/cross: all $n of selut's own results have the recorded bits at 1 and 2 threads"
