#!/usr/bin/env bash
# Run the whole benchmark suite on a GPU and write benchmarks/gpu/results.{md,json}.
#
# Usage (from anywhere; run it only on a machine with a CUDA GPU and a CUDA build of jax):
#     bash benchmarks/gpu.sh [extra arguments for benchmarks.run, e.g. --suites bptt]
#
# - JAX_PLATFORMS is unset, so JAX picks the GPU; the full suite runs (no --quick).
# - ssjax is used from this checkout (PYTHONPATH), so it need not be installed; its
#   dependencies (jax, optax, flax, numpy, ...) must be. Peers (spyx, snntorch, norse) are
#   optional: missing ones are listed as "not installed" in results.md; the torch peers use
#   CUDA when torch sees a GPU.
# - XLA_PYTHON_CLIENT_PREALLOCATE=false: JAX allocates on demand, so a torch peer run in a
#   subprocess finds the GPU memory free.
# - The run is cut at 8 minutes (timeout 480 s). Results are rewritten after every suite, so
#   an interrupted run still leaves the suites it finished in benchmarks/gpu/.
# PYTHON selects the interpreter (default: python3).
set -uo pipefail
cd "$(dirname "$0")/.."
unset JAX_PLATFORMS
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p benchmarks/gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
timeout 480 "${PYTHON:-python3}" -m benchmarks.run --out benchmarks/gpu "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "gpu.sh: stopped after 8 minutes; partial results in benchmarks/gpu/"
exit "$rc"
