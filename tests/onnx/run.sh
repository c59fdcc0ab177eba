#!/usr/bin/env bash
# ONNX interoperability (docs/onnx.md): selut's exports through Debian's
# python3-onnx checker and ONNX Runtime (npm onnxruntime-node). `make deps`
# installs both; where either is missing this says so loudly and skips.
set -euo pipefail
launcher=${1:?usage: tests/onnx/run.sh build/selut}
here=$(cd "$(dirname "$0")" && pwd)
missing=""
/usr/bin/python3 -c "import onnx" 2>/dev/null || missing="$missing python3-onnx"
{ command -v node >/dev/null && [ -d "$here/node_modules/onnxruntime-node" ]; } || missing="$missing onnxruntime-node(npm)"
if [ -n "$missing" ]; then
  echo "tests/onnx: SKIPPED -- missing:$missing (make deps installs them)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$launcher" "$here/roundtrip.lua" "$tmp"
