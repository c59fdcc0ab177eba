#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/distributed.md, docs/performance.md):
# examples/train.lua's default recipe (784 -> 8 x 512 SELU + AlphaDropout -> 10,
# SGD, global batch 128), one epoch each:
#   1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread (--distributed:
#   the shared-memory step, then the allreduce path with SELUT_DIST_SHARED=0)
# then the compute of one rank per phase, alone and two at once
# (bench/dist_compute.lua), a sharded (ZeRO-1) optimizer step against
# allreduce + full step (bench/mpi/zero1.c), and allreduce times of the
# model's gradient (2246155 floats) over shared memory, TCP loopback and
# (as root) a veth link between two namespaces.
# usage: bench/dist_scaling.sh [build/selut] [--limit N]
set -euo pipefail
LAUNCHER=${1:-build/selut}
shift || true
cd "$(dirname "$0")/.."
common=(examples/train.lua --epochs 1 --no-plots "$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
epoch() { grep -o "[0-9.]* s  ([0-9]* samples/s)" "$1" | head -1; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 "$LAUNCHER" "${common[@]}" --threads 1 --out "$tmp/a" > "$tmp/a.log"
echo "1 rank  x 1 thread : epoch $(epoch "$tmp/a.log") s"
OPENBLAS_NUM_THREADS=2 "$LAUNCHER" "${common[@]}" --threads 2 --out "$tmp/b" > "$tmp/b.log"
echo "1 rank  x 2 threads: epoch $(epoch "$tmp/b.log") s"
SELUT_DIST_STATS=1 mpirun --allow-run-as-root --oversubscribe -np 2 -x OPENBLAS_NUM_THREADS=1 -x SELUT_DIST_STATS \
  "$LAUNCHER" "${common[@]}" --threads 1 --distributed --out "$tmp/c" > "$tmp/c.log"
echo "2 ranks x 1 thread : epoch $(epoch "$tmp/c.log") s (shared-memory step)"
grep '^dist:' "$tmp/c.log" || true
SELUT_DIST_STATS=1 SELUT_DIST_SHARED=0 mpirun --allow-run-as-root --oversubscribe -np 2 -x OPENBLAS_NUM_THREADS=1 \
  -x SELUT_DIST_STATS -x SELUT_DIST_SHARED "$LAUNCHER" "${common[@]}" --threads 1 --distributed --out "$tmp/d" > "$tmp/d.log"
echo "2 ranks x 1 thread : epoch $(epoch "$tmp/d.log") s (allreduce + full step, SELUT_DIST_SHARED=0)"
grep '^dist:' "$tmp/d.log" || true
grep '^epoch' "$tmp/a.log" "$tmp/c.log" "$tmp/d.log"
# where a rank's compute goes: one process at batch 128 and 64, then two
# batch-64 processes at once, one per core (bench/dist_compute.lua)
OPENBLAS_NUM_THREADS=1 "$LAUNCHER" bench/dist_compute.lua 128 200 10000 | sed 's/^/compute, alone: /'
OPENBLAS_NUM_THREADS=1 "$LAUNCHER" bench/dist_compute.lua 64 200 5000 | sed 's/^/compute, alone: /'
OPENBLAS_NUM_THREADS=1 taskset -c 0 "$LAUNCHER" bench/dist_compute.lua 64 200 5000 > "$tmp/p0" &
OPENBLAS_NUM_THREADS=1 taskset -c 1 "$LAUNCHER" bench/dist_compute.lua 64 200 5000 > "$tmp/p1"
wait
sed 's/^/compute, 2 at once: /' "$tmp/p0" "$tmp/p1"
# a ZeRO-1 style sharded optimizer step against allreduce + full step (bench/mpi/zero1.c)
LIBA=$(dirname "$LAUNCHER")/libselut.a
if command -v mpicc > /dev/null && [ -f "$LIBA" ]; then
  mpicc -O2 -std=c11 -Icore bench/mpi/zero1.c "$LIBA" $(pkg-config --libs openblas libpng zlib) -lm -lpthread -o "$tmp/zero1"
  mpirun --allow-run-as-root --oversubscribe -np 2 -x OPENBLAS_NUM_THREADS=1 "$tmp/zero1" 2246155 50
fi
for btl in vader,self tcp,self; do
  mpirun --allow-run-as-root --oversubscribe -np 2 --mca btl "$btl" -x OPENBLAS_NUM_THREADS=1 \
    "$LAUNCHER" tests/mpi/netns.lua 2246155 10 | sed "s/over veth\/TCP/over btl $btl (loopback)/"
done
if [ "$(id -u)" = 0 ]; then bash tests/mpi/netns.sh "$LAUNCHER" 2246155 10; fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
