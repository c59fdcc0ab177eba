#!/usr/bin/env bash
# The multi-host path on one machine: two ranks in two network namespaces
# joined by a veth pair, Open MPI's TCP transport restricted to that link (no
# shared memory), so every byte of the allreduce crosses a network interface;
# the interface's byte counter proves it. Needs root (ip netns); elsewhere it
# says so and skips. usage: tests/mpi/netns.sh build/selut [floats [reps]]
set -euo pipefail
LAUNCHER=$(realpath "${1:?usage: tests/mpi/netns.sh path/to/selut [floats [reps]]}")
cd "$(dirname "$0")/../.."
A=slA$$ B=slB$$ VA=sla$$ VB=slb$$
if ! ip netns add "$A" 2>/dev/null; then
  echo "tests/mpi: netns test SKIPPED (ip netns is not permitted here: needs root / CAP_SYS_ADMIN)"
  exit 0
fi
hostfile=$(mktemp)
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -f "$hostfile"; }
trap cleanup EXIT
ip netns add "$B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$A"
ip link set "$VB" netns "$B"
ip -n "$A" addr add 10.77.0.1/24 dev "$VA"
ip -n "$B" addr add 10.77.0.2/24 dev "$VB"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "$VA" up
ip -n "$B" link set "$VB" up
rx() { ip netns exec "$B" cat "/sys/class/net/$VB/statistics/rx_bytes"; }
before=$(rx)
floats=${2:-2246154}
env=(-x OPENBLAS_NUM_THREADS=1)
if [ -n "${LSAN_OPTIONS:-}" ]; then # SAN=1: see tests/mpi/run.sh
  export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
  env+=(-x LSAN_OPTIONS -x ASAN_OPTIONS -x UBSAN_OPTIONS)
fi
# mpirun runs in namespace A (host 10.77.0.1, local); the rank on host
# 10.77.0.2 is started through tests/mpi/netns-rsh.sh inside namespace B, so the
# daemons' control traffic and the MPI data both use the veth link.
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$hostfile"
SELUT_NETNS_A=$A SELUT_NETNS_B=$B timeout 120 ip netns exec "$A" mpirun --allow-run-as-root "${env[@]}" \
  --hostfile "$hostfile" --map-by node -np 2 --mca plm_rsh_agent "$PWD/tests/mpi/netns-rsh.sh" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  "$LAUNCHER" "$PWD/tests/mpi/netns.lua" "$floats" "${3:-5}"
got=$(( $(rx) - before ))
# the warm-up + reps allreduces move at least half the buffer each way
want=$(( floats * 4 / 2 ))
[ "$got" -ge "$want" ] || { echo "tests/mpi: FAIL: only $got bytes crossed the veth link (expected >= $want)"; exit 1; }
echo "tests/mpi: netns: $got bytes crossed the veth link between the two namespaces"
