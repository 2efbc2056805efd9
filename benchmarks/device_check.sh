#!/usr/bin/env bash
# Every domain's training step and sampling on one device (benchmarks/device_check.py).
#
#   bash benchmarks/device_check.sh                  # DEVICE=cuda, realistic sizes, <= 5 min on a GPU
#   DEVICE=cpu bash benchmarks/device_check.sh --quick   # tiny sizes on the CPU (tests, CI)
#   bash benchmarks/device_check.sh --domains toy transition_states --out /tmp/device.md
#
# Writes benchmarks/results/device.md (or --out); exits 1 when a domain failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
export DEVICE="${DEVICE:-cuda}"
export SCIFLOW_PROGRESS="${SCIFLOW_PROGRESS:-0}"
if [ "$DEVICE" = "cpu" ]; then
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
exec timeout "${DEVICE_CHECK_TIMEOUT:-900}" "$PYTHON" benchmarks/device_check.py "$@"
