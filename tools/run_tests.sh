#!/usr/bin/env bash
# Everything `make test` runs, in order: the package's tests and every chapter under nbval, the book
# build (errors and warnings fail it), then the built pages in headless Chromium.
set -uo pipefail
cd "$(dirname "$0")/.."
export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYDEVD_DISABLE_FILE_VALIDATION=1
export PATH="$PWD/.venv/bin:$PATH"
PY=.venv/bin/python
failed=()
t0=$(date +%s)
section() { printf '\n===== %s (%s s elapsed)\n' "$1" "$(( $(date +%s) - t0 ))"; }

section "the book's small model (trained once, then cached; chapters 4 to 9 load it)"
$PY -c "from gpt2lib.book import book_model; book_model()" || failed+=("book model")

section "gpt2lib tests and every chapter under nbval"
$PY -m pytest tests chapters -m "not browser" --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
  --nbval-cell-timeout=900 -p no:cacheprovider -q || failed+=("pytest + nbval")

section "the book build"
bash tools/build_book.sh > book-build.log 2>&1 && tail -n 3 book-build.log || { tail -n 80 book-build.log; failed+=("book build"); }

section "the built pages in headless Chromium"
$PY -m pytest tests -m browser -p no:cacheprovider -q || failed+=("browser checks")

section "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all checks passed in $(( $(date +%s) - t0 )) s"
