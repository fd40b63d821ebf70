#!/usr/bin/env bash
# The GPU check of vradam.torch in one command, stopped after 9 minutes:
# conformance on CUDA (float32, bfloat16) through both paths with and without
# capturable=True, the host-sync check under torch.cuda.set_sync_debug_mode("error"),
# the CUDA-graph check (capture and replay against eager steps), and the
# step-time comparison against torch.optim.AdamW (foreach, fused and graphed).
#
# Outputs go to $OUT when it is set, else to ./gpu_check_out. Extra arguments
# are passed on, e.g. `--device cpu --repeats 3` for a dry run without a GPU.
# $PYTHON names the interpreter; without it, ./.venv is activated if it exists
# and `python` is taken from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
exec timeout 540 "${PYTHON:-python}" benchmarks/torch_gpu_check.py --out "${OUT:-gpu_check_out}" "$@"
