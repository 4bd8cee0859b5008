#!/usr/bin/env bash
# Execute every chapter and build the HTML book into book/_build/html (BOOK_OUT overrides "book").
# Cell errors and Sphinx warnings fail the build; a failing cell is reported with its notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BOOK_OUT:-book}
# A fresh progress record, so that the published outputs never show the builder's own progress.
export GPT2LIB_PROGRESS="$(mktemp -d)/progress.json"
export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYDEVD_DISABLE_FILE_VALIDATION=1
export PATH="$PWD/.venv/bin:$PATH"
[ -f book/_vendor/mathjax/tex-chtml.js ] || { echo "book/_vendor is missing: run 'make setup'" >&2; exit 1; }
mkdir -p "$OUT/_build"
start=$(date +%s)
build() { .venv/bin/jupyter-book build . --all -W -n --keep-going --path-output "$OUT" 2>&1 | tee "$OUT/_build/build.log"; }
# A kernel that stops answering (seen rarely, inside nbclient, never as a cell error) is retried once:
# notebooks already executed come from the cache, and a real cell error fails the second build too.
status=0
build || status=$?
if [ "$status" != 0 ] && grep -q "DeadKernelError\|CellTimeoutError" "$OUT/_build/build.log"; then
  echo "book build: a kernel stopped answering; building once more" >&2
  status=0
  build || status=$?
fi
if [ "$status" != 0 ]; then
  echo "book build FAILED; the notebook and cell that failed are named above (full log: $OUT/_build/build.log)" >&2
  for report in "$OUT"/_build/html/reports/*.err.log; do
    [ -e "$report" ] && { echo "--- $report"; tail -n 40 "$report"; }
  done
  exit 1
fi
echo "book built in $(( $(date +%s) - start )) s"
