#!/bin/bash
# bench/startup.sh BUILD: start-up time of `selut -e ''` next to `lua5.4 -e ''`
# (hyperfine when installed, else a 50-run loop). Target: <= 10 ms.
BUILD=${1:-build}
sel="$BUILD/selut"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs 50 --export-json /tmp/selut-startup.$$.json "$sel -e ''" "lua5.4 -e ''" >/dev/null 2>&1
  /usr/bin/python3 - /tmp/selut-startup.$$.json <<'PY' 2>/dev/null || lua5.4 -e 'print("startup: hyperfine ran, install python3 to summarise")'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print("startup: %-22s mean %.2f ms  (min %.2f, sd %.2f, %d runs)" % (x["command"], x["mean"] * 1e3, x["min"] * 1e3,
                                                                        x["stddev"] * 1e3, len(x["times"])))
PY
  rm -f /tmp/selut-startup.$$.json
else
  for cmd in "$sel -e ''" "lua5.4 -e ''"; do
    t0=$(date +%s%N); for _ in $(seq 50); do eval "$cmd"; done; t1=$(date +%s%N)
    echo "startup: $cmd  mean $(( (t1 - t0) / 50000 )) us (50-run loop)"
  done
fi
