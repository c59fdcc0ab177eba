#!/bin/bash
# Run by `make bench` after the bench/*.c programs: the PyTorch comparison
# (bench/vs_torch.sh: a full epoch at 1 and 2 threads, both libraries, and the
# tiny net) and the start-up time. Results and how to read them:
# docs/performance.md. The machine may be shared: compare ratios measured in
# the same run, not absolute times across runs.
set -e
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/vs_torch.sh" "$BUILD"
bash "$here/startup.sh" "$BUILD"
