#!/bin/sh
# Open MPI's remote-shell agent for tests/mpi/netns.sh: "ssh HOST COMMAND..."
# becomes COMMAND run inside HOST's network namespace on this machine.
host=$1
shift
case $host in
  10.77.0.1) ns=$SELUT_NETNS_A ;;
  10.77.0.2) ns=$SELUT_NETNS_B ;;
  *) echo "netns-rsh: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
