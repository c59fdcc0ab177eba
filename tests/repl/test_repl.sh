#!/usr/bin/env bash
# Drives the selut REPL through a real pseudo-terminal (tmux), typing as a
# person would: an expression, a multi-line loop, an error, a tensor, an
# interrupted endless loop, tab completion, then Ctrl-D. Each check greps the
# screen. Usage: tests/repl/test_repl.sh path/to/selut
set -u
SELUT=${1:-build/selut}
SELUT=$(cd "$(dirname "$SELUT")" && pwd)/$(basename "$SELUT")
if ! command -v tmux >/dev/null; then echo "repl: tmux not installed (make deps installs it)"; exit 1; fi
export HOME=$(mktemp -d)
SOCK="selut-repl-$$"
T="tmux -L $SOCK"
trap '$T kill-server 2>/dev/null; rm -rf "$HOME"' EXIT
pass=0 fail=0
$T new-session -d -s r -x 160 -y 60 "$SELUT; echo EXIT-STATUS=\$?; sleep 5"
wait_for() { # pattern, timeout tenths
  for _ in $(seq "${2:-50}"); do
    $T capture-pane -p -t r -S -200 | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  return 1
}
type_line() { $T send-keys -t r -l "$1"; $T send-keys -t r Enter; }
check() { # description, pattern
  if wait_for "$2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "repl FAIL: $1 (expected '$2')"; $T capture-pane -p -t r -S -200 | tail -20; fi
}
check "banner" "Ctrl-D exits"
type_line '1 + 41';                         check "expression prints its value" $'42'
type_line 'for i = 1, 3 do';  type_line 'print(i * 111)'; type_line 'end'
check "continuation prompt" "   >> print(i * 111)";  check "multi-line loop runs" "333"
type_line 'error("boom-123")';              check "error message shown" "stdin:1: boom-123"
type_line 'x = selut.tensor.ones(2, 3) * 2'
type_line 'x';                              check "tensor summary line" "[shape 2x3  mean 2  std 0  min 2  max 2  nan 0]"
type_line 'n = 0 while true do n = n + 1 end'; sleep 0.5; $T send-keys -t r C-c
check "Ctrl-C interrupts a running statement" "interrupted!"
type_line 'x:sum() + n * 0';                check "variables survive the interrupt" "12.0"
$T send-keys -t r -l 'selut.manual_s'; $T send-keys -t r Tab; sleep 0.3; $T send-keys -t r -l '(1)'; $T send-keys -t r Enter
check "tab completion of selut fields" "selut> selut.manual_seed(1)"
$T send-keys -t r -l 'x:permu'; $T send-keys -t r Tab; sleep 0.3; $T send-keys -t r -l '(2, 1):size(1)'; $T send-keys -t r Enter
check "tab completion of tensor methods" "selut> x:permute(2, 1):size(1)"
$T send-keys -t r C-d;                      check "Ctrl-D exits cleanly" "EXIT-STATUS=0"
if grep -qF '1 + 41' "$HOME/.selut_history" 2>/dev/null; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "repl FAIL: history not written to ~/.selut_history"; fi
echo "repl: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
