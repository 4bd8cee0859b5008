#!/usr/bin/env bash
# Execute chapter notebooks in place, as they are committed: offline, in the project's venv,
# from the chapters/ folder, with the time each took. Usage: tools/run_notebook.sh chapters/03_*.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
# A fresh progress record, so that the published outputs never show the builder's own progress.
export GPT2LIB_PROGRESS="$(mktemp -d)/progress.json"
export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYDEVD_DISABLE_FILE_VALIDATION=1
# The checkout-local cache, as `make` uses (the book model is trained there once).
export GPT2LIB_CACHE=${GPT2LIB_CACHE:-$PWD/.gpt2lib_cache}
# An empty Hugging Face cache of the checkout's own: the committed outputs are the offline path's, even
# on a machine whose own cache holds OpenAI's GPT-2.
export HF_HUB_CACHE="$GPT2LIB_CACHE/huggingface-hub"
export PATH="$VENV/bin:$PATH"
for nb in "$@"; do
  start=$(date +%s)
  "$VENV/bin/python" tools/sync_notebooks.py "$nb"
  "$VENV/bin/python" -m nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$nb"
  "$VENV/bin/python" tools/clean_notebook.py "$nb"
  echo "executed $nb in $(( $(date +%s) - start )) s"
done
