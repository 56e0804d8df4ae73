#!/usr/bin/env bash
# The GPU session in one command, from the repository root of a machine with a CUDA
# device: the gpu-marked tests, then scripts/gpu_check.py (extra arguments go to it),
# each under a timeout, their logs and results in $OUT. Exits non-zero if either fails.
#   OUT=DIR bash scripts/gpu_session.sh [--n-reps 1000]
# Timeouts in seconds: TEST_TIMEOUT (default 240), CHECK_TIMEOUT (default 330).
set -u -o pipefail
: "${OUT:?set OUT to the folder for the logs and results}"
mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -m gpu \
    tests/train/test_gpu.py tests/train/test_engine.py 2>&1 | tee "$OUT/gpu_tests.log"
tests=$?
timeout "${CHECK_TIMEOUT:-330}" python3 scripts/gpu_check.py --out "$OUT" "$@" 2>&1 \
    | tee "$OUT/gpu_check.log"
check=$?
echo "gpu tests: exit $tests; gpu_check: exit $check (124: timed out)" | tee "$OUT/session.log"
[ "$tests" -eq 0 ] && [ "$check" -eq 0 ]
