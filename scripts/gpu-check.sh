#!/usr/bin/env bash
# The GPU path on a CUDA machine in one bounded run (bench/gpu_check.py): fp16 agreement with int8 and fp32,
# throughput at batch 1/64/256/1024, GPU memory, training steps/s, and the service with the torch runtime.
# Writes one JSON file ($OUT/gpu-check.json where OUT is set). `--cpu` is the dry run the tests use.
#   scripts/gpu-check.sh [--cpu] [--export artifacts/export/vN] [--data data/corpus] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" -m bench.gpu_check "$@"
