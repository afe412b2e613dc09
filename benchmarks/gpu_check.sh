#!/usr/bin/env bash
# The one device command of issue 27: configs/gpu.yaml's GPU path measured in under 8
# minutes on one GPU and 16 cores (benchmarks/gpu_check.py says what it records).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]            # on the GPU machine, in the checkout
#   bash benchmarks/gpu_check.sh OUT_DIR --cpu-smoke  # the same plumbing, tiny, on a CPU
#
# Needs only the checkout with what ../shared/docs/gpu.md puts in it: .whl/ (rdkit,
# pydantic and their dependencies, installed here into /tmp/site when present) and
# .gpu-data/ (corpora/ and moleculenet/). Writes OUT_DIR/gpu_check.json and
# OUT_DIR/gpu_check.md (rows for docs/benchmarks.md), and OUT_DIR/e2e.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check_out}}
shift || true
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec timeout 470 python3 benchmarks/gpu_check.py --out "$out" "$@"
