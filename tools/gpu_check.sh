#!/usr/bin/env bash
# The one GPU check: run it on a machine with an NVIDIA GPU (a lent one, Colab, a workstation), from the
# repository root, with the Python that has torch (and, ideally, the book's packages: `make setup`).
#   1. the package's tests on the GPU (GPT2LIB_DEVICE=cuda)          needs pytest
#   2. every chapter executed under nbval on the GPU                  needs nbval + a Jupyter kernel
#   3. the 124M training benchmark: bf16, torch.compile, flash attention: tokens/s and MFU
#   4. the hand-written attention formula against the fused kernel as T grows
# Each part that cannot run here says why; the last lines are one table of what ran, its status and time.
# Offline: nothing here uses the network. PYTHON overrides the interpreter; STEPS the training length.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh  # the one environment block: offline, the checkout's caches, the venv's PATH
# the venv's Python where `make setup` made one, else the machine's (a lent GPU box has torch system-wide)
PY=${PYTHON:-$( [ -x "$PY" ] && echo "$PY" || command -v python3 )}
export GPT2LIB_DEVICE=cuda
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-$(mktemp -d)}
rows=()
step() {  # name, command...
  local name=$1; shift
  local t0=$(date +%s) status
  printf '\n===== %s\n' "$name"
  "$@" 2>&1 | tee "$OUT/${name// /_}.log"
  status=${PIPESTATUS[0]}
  rows+=("$(printf '%-28s %-8s %5s s' "$name" "$([ "$status" = 0 ] && echo ok || echo "rc=$status")" "$(( $(date +%s) - t0 ))")")
}
skip() { rows+=("$(printf '%-28s %-8s %s' "$1" skipped "$2")"); printf '\n===== %s: skipped (%s)\n' "$1" "$2"; }

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" || { echo "gpu_check: no GPU here"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

if "$PY" -c "import pytest" 2>/dev/null; then
  step "package tests on cuda" "$PY" -m pytest tests -q -p no:cacheprovider -m "not browser and not colab" -x
else
  skip "package tests on cuda" "pytest is not installed for $PY"
fi
if "$PY" -c "import nbval, ipykernel" 2>/dev/null; then
  step "chapters under nbval (cuda)" "$PY" -m pytest chapters -q -p no:cacheprovider --nbval-lax --nbval-current-env \
    --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900
else
  skip "chapters under nbval (cuda)" "nbval/ipykernel are not installed for $PY"
fi
step "124M training (bf16, compile)" "$PY" benchmarks/gpu_train.py --steps "${STEPS:-300}"
step "attention: formula vs fused" "$PY" benchmarks/attention_kernels.py --device cuda

printf '\n===== summary (logs in %s)\n' "$OUT"
printf '%s\n' "${rows[@]}"
grep -hE "tokens/s|MFU" "$OUT"/124M*.log 2>/dev/null | tail -n 3
