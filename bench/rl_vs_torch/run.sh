#!/usr/bin/env bash
# selut vs PyTorch: PPO on CartPole-v1 (RL Zoo hyperparameters, SB3's
# algorithm) until the deterministic policy's mean return over 100
# evaluation episodes (every 10k steps) reaches 475, on the same machine in
# the same run, one thread each. Prints the environment steps and the wall
# time each side needed, and the ratio.
#   bench/rl_vs_torch/run.sh [BUILD_DIR] [seeds...]   (default: build, seed 1)
# GRADS=autograd runs selut's PPO with {autograd = true} (the losses through
# the tape) instead of the fused loss kernels; ACTIVATIONS="tanh relu".
set -u
B=${1:-build}
shift || true
seeds=${*:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc --all) cores (a shared machine: compare the two sides of one run)"
for act in ${ACTIVATIONS:-tanh}; do
  for s in $seeds; do
    sel=$("$B/selut" -e 'selut.set_num_threads(1)' examples/rl/ppo_cartpole.lua "$s" 100000 10000 stop "$act" "${GRADS:-fused}" | tail -1)
    tor=$(/usr/bin/python3 bench/rl_vs_torch/torch_ppo.py "$s" 100000 10000 "$act" | tail -1)
    echo "[$act] selut (${GRADS:-fused}): $sel"
    echo "[$act] torch: $tor"
    ws=$(sed -n 's/.*wall \([0-9.]*\) s.*/\1/p' <<<"$sel")
    wt=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' <<<"$tor")
    if [ -n "$ws" ] && [ -n "$wt" ]; then
      awk -v a="$ws" -v b="$wt" -v act="$act" -v s="$s" 'BEGIN { printf "[%s] seed %s: selut %.1f s, torch %.1f s: %.2fx\n", act, s, a, b, b / a }'
    fi
  done
done
