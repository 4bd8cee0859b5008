#!/usr/bin/env bash
# Execute chapter notebooks in place, as they are committed: offline (unless BOOK_ONLINE=1), in the
# project's venv, from the chapters/ folder, with the time each took. Usage: tools/run_notebook.sh chapters/03_*.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
# A fresh progress record, so that the committed outputs never show the author's own progress.
export GPT2LIB_PROGRESS="$(mktemp -d)/progress.json"
for nb in "$@"; do
  start=$(date +%s)
  "$PY" tools/sync_notebooks.py "$nb"
  "$PY" -m nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$nb"
  "$PY" tools/clean_notebook.py "$nb"
  echo "executed $nb in $(( $(date +%s) - start )) s"
done
