#!/usr/bin/env bash
# examples/train.lua end to end on the committed 3-image Fashion-MNIST copy
# (tests/data/fashion-mini) with a tiny net: usage errors, determinism,
# --resume equal to an uninterrupted run, clear errors on a missing dataset
# and a corrupt checkpoint (one line, no traceback), and a failed resume that
# leaves the checkpoint intact. Usage: tests/train/test_train.sh path/to/selut
set -u
SELUT=${1:-build/selut}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "train FAIL: $*"; }
train() { "$SELUT" "$ROOT/examples/train.lua" --data "$ROOT/tests/data/fashion-mini" --depth 2 --width 16 \
  --batch 2 --no-plots "$@"; }
metrics() { cut -d, -f1-4 "$1/metrics.csv"; } # without the seconds column

# usage
"$SELUT" "$ROOT/examples/train.lua" --help > "$TMP/help" 2>&1 && grep -q -- "--resume" "$TMP/help" \
  && ok || bad "--help prints the options and exits 0"
"$SELUT" "$ROOT/examples/train.lua" --epocs 3 > "$TMP/usage" 2>&1; st=$?
[ $st -eq 2 ] && grep -q "usage:" "$TMP/usage" && ok || bad "a wrong flag exits 2 with usage (got $st)"
"$SELUT" "$ROOT/examples/train.lua" --act tanh > "$TMP/usage" 2>&1; st=$?
[ $st -eq 2 ] && grep -q "selu|elu|relu" "$TMP/usage" && ok || bad "a wrong choice exits 2 naming the choices"

# determinism: same seed, same run
train --epochs 4 --out "$TMP/a" > "$TMP/a.log" 2>&1 || bad "uninterrupted run: $(cat "$TMP/a.log")"
train --epochs 4 --out "$TMP/b" > /dev/null 2>&1
[ "$(metrics "$TMP/a")" = "$(metrics "$TMP/b")" ] && cmp -s "$TMP/a/last.safetensors" "$TMP/b/last.safetensors" \
  && ok || bad "same seed gives the same run"
[ "$(wc -l < "$TMP/a/metrics.csv")" -eq 5 ] && ok || bad "metrics.csv has a header and 4 epochs"
grep -q '"epoch":4' "$TMP/a/metrics.json" && ok || bad "metrics.json has epoch 4"

# resume: 2 epochs, then --resume to 4 == 4 uninterrupted epochs, bit for bit
train --epochs 2 --out "$TMP/r" > /dev/null 2>&1
train --epochs 4 --out "$TMP/r" --resume "$TMP/r/last.safetensors" > "$TMP/r.log" 2>&1 || bad "resume: $(cat "$TMP/r.log")"
grep -q "resumed from" "$TMP/r.log" && ok || bad "resume says so"
[ "$(metrics "$TMP/a")" = "$(metrics "$TMP/r")" ] && ok || bad "resumed metrics equal the uninterrupted run's:
$(metrics "$TMP/a")
vs
$(metrics "$TMP/r")"
cmp -s "$TMP/a/last.safetensors" "$TMP/r/last.safetensors" && ok || bad "resumed weights equal the uninterrupted run's"

# a checkpoint of the format before versions (tests/data/ckpt-v1: 2 epochs written by the train.lua of
# that time) resumes, and epoch 3 equals an uninterrupted 3-epoch run
train --epochs 3 --out "$TMP/v3" > /dev/null 2>&1
mkdir -p "$TMP/v1"
train --epochs 3 --out "$TMP/v1" --resume "$ROOT/tests/data/ckpt-v1/last.safetensors" > "$TMP/v1.log" 2>&1 \
  || bad "resume from a version-1 checkpoint: $(cat "$TMP/v1.log")"
[ "$(metrics "$TMP/v1" | tail -1)" = "$(metrics "$TMP/v3" | tail -1)" ] && [ "$(metrics "$TMP/v1" | tail -1)" = "3,2.129898,9.026749,0.000000" ] \
  && ok || bad "epoch 3 after a version-1 resume: $(metrics "$TMP/v1" | tail -1) vs $(metrics "$TMP/v3" | tail -1)"
# a newer checkpoint format is refused with a clear line
"$SELUT" -e "local t, m = selut.load('$TMP/v3/last.safetensors'); m.format_version = '9'; selut.save('$TMP/v3/new.safetensors', t, m)
  local s, sm = selut.load('$TMP/v3/last.state.safetensors'); selut.save('$TMP/v3/new.state.safetensors', s, sm)"
train --epochs 4 --out "$TMP/v3" --resume "$TMP/v3/new.safetensors" > "$TMP/n.log" 2>&1; st=$?
[ $st -ne 0 ] && grep -q "has format version 9, newer than the 2 this selut" "$TMP/n.log" && ! grep -q "traceback" "$TMP/n.log" \
  && ok || bad "a newer format is refused (status $st): $(cat "$TMP/n.log")"

# --plots (the default) writes the curves and a 10-class confusion matrix of the last evaluation
"$SELUT" "$ROOT/examples/train.lua" --data "$ROOT/tests/data/fashion-mini" --depth 2 --width 16 --batch 2 \
  --epochs 1 --out "$TMP/p" > "$TMP/p.log" 2>&1 || bad "run with plots: $(cat "$TMP/p.log")"
[ "$(head -c 8 "$TMP/p/confusion.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
  && [ "$(od -An -tu1 -j 16 -N 8 "$TMP/p/confusion.png" | tr -s ' ')" = " 0 0 3 68 0 0 3 134" ] \
  && [ -s "$TMP/p/curves.png" ] && ok || bad "--plots writes curves.png and an 836 x 902 confusion.png"

# errors: one clear line, non-zero exit, no traceback
train --epochs 1 --data /nonexistent --out "$TMP/e" > "$TMP/e.log" 2>&1; st=$?
[ $st -ne 0 ] && [ "$(wc -l < "$TMP/e.log")" -le 2 ] && grep -q "dataset-fashion-mnist" "$TMP/e.log" \
  && ! grep -q "traceback" "$TMP/e.log" && ok || bad "missing dataset: one line naming the package (status $st): $(cat "$TMP/e.log")"
cp "$TMP/a/last.safetensors" "$TMP/keep.safetensors"
head -c 100 "$TMP/a/last.safetensors" > "$TMP/a/cut.safetensors"
train --epochs 5 --out "$TMP/c" --resume "$TMP/a/cut.safetensors" > "$TMP/c.log" 2>&1; st=$?
[ $st -ne 0 ] && grep -q "cut.safetensors" "$TMP/c.log" && ! grep -q "traceback" "$TMP/c.log" \
  && ok || bad "corrupt checkpoint: clear error (status $st): $(cat "$TMP/c.log")"
train --epochs 5 --width 8 --out "$TMP/a" --resume "$TMP/a/last.safetensors" > "$TMP/w.log" 2>&1; st=$?
[ $st -ne 0 ] && grep -q "nothing was loaded" "$TMP/w.log" && ok || bad "resuming into a different net fails: $(cat "$TMP/w.log")"
cmp -s "$TMP/a/last.safetensors" "$TMP/keep.safetensors" && ok || bad "a failed resume leaves the checkpoint intact"

echo "train: $pass passed, $fail failed"
[ $fail -eq 0 ]
