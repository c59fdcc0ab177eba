#!/usr/bin/env bash
# The game host (examples/game/host.c), run by `make test`:
#  1. each bad input of issue "learning inside a running game" comes back as a
#     clear error through the host's protected call and the loop goes on:
#     an action out of range, observations of the wrong shape, a NaN reward,
#     a buffer sampled before it holds a batch, an error inside act, an error
#     inside train_for, a script over the memory cap;
#  2. a run is bit-reproducible from its seed (--train-steps: a clock-free
#     training budget), and another seed gives another run;
#  3. a short run learns (mean episode return rises) and writes its PNGs.
# Usage: tests/embed/game.sh BUILD_DIR
set -u
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
H="$B/examples/game/host"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "game FAIL: $*"; }
[ -x "$H" ] || { echo "game FAIL: $H not built"; exit 1; }

expect() { # case, message fragment, frame, survived line, [host options]
  local out
  out=$("$H" --agents 4 --frames 40 --bad "$1" ${5:-} 2>&1)
  local st=$?
  if [ $st -eq 0 ] && grep -qF -- "frame $3: $2" <<<"$out" && grep -qF "errors survived: $4" <<<"$out" &&
     grep -q "agent frame" <<<"$out"; then ok; else
    bad "--bad $1: expected one error containing '$2' and a finished run (status $st):"; echo "$out" | tail -8; fi
}
S1="1 script, 0 environment"
expect action "environment step refused: cartpole.step: action 3 at index 1 is out of range (expected 1 or 2)" 11 \
  "0 script, 1 environment"
expect obs "act_frame failed: bad argument #1 to 'act' (observations have shape [5 x 4], expected [4 x 4])" 10 "$S1"
expect nan "act_frame failed: bad argument #2 to 'observe' (reward nan at position 1 is not finite)" 10 "$S1"
expect sample "act_frame failed: ReplayBuffer.sample: the buffer holds 0 transitions, fewer than the batch of 32" \
  10 "$S1"
expect act "act_frame failed: bad_cases:9: the agent script failed inside act" 10 "$S1"
expect train "train_frame failed: bad_cases:15: the agent script failed inside train_for" 10 "$S1"
expect memory "act_frame failed: bad_cases:10: memory limit exceeded: 4194304 bytes requested" 10 "$S1" "--max-memory 67108864"

# 2. reproducible from a seed (the host's error count is kept with the hash:
# a run that lost a transition to a spurious error says so when it differs)
run_hash() { "$H" --agents 8 --frames 400 --train-steps 4 --seed "$1" --out /tmp 2>&1 | grep -E '^(run hash|errors survived)' | tr '\n' ' '; }
h1=$(run_hash 3)
h2=$(run_hash 3)
h3=$(run_hash 4)
if [[ $h1 == *"run hash"* ]] && [ "$h1" = "$h2" ] && [ "$h1" != "$h3" ]; then ok; else bad "hashes: '$h1' '$h2' '$h3'"; fi

# 3. learns and writes its pictures
tmp=$(mktemp -d)
out=$("$H" --agents 16 --frames 2500 --train-steps 8 --seed 1 --out "$tmp" 2>&1)
first=$(grep -m1 '^frame .*mean return' <<<"$out" | sed 's/.*mean return *\([0-9.]*\).*/\1/')
last=$(grep '^frame .*mean return' <<<"$out" | tail -1 | sed 's/.*mean return *\([0-9.]*\).*/\1/')
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > 2 * a && b > 100) }' && [ -s "$tmp/game_curve.png" ] &&
   [ -s "$tmp/game_filmstrip.png" ]; then ok; else bad "learning run: mean return $first -> $last"; echo "$out" | tail -12; fi
rm -rf "$tmp"
echo "game: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
