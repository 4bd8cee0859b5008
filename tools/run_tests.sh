#!/usr/bin/env bash
# Everything `make test` runs, in order: the package's tests, the book build (it executes every chapter;
# errors and warnings fail it), the executed chapters against their committed outputs, every chapter
# alone on a simulated Colab, then the built pages in headless Chromium. Every part runs even when one
# before it failed, and the summary names each part that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
export VENV
export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYDEVD_DISABLE_FILE_VALIDATION=1
export GPT2LIB_CACHE=${GPT2LIB_CACHE:-$PWD/.gpt2lib_cache}
# An empty Hugging Face cache of the checkout's own: a GPT-2 the machine has cached elsewhere must not
# switch the chapters to their OpenAI path, whose outputs differ from the committed ones.
export HF_HUB_CACHE="$GPT2LIB_CACHE/huggingface-hub"
export PATH="$VENV/bin:$PATH"
PY="$VENV/bin/python"
OUT=${BOOK_OUT:-book}
failed=()
t0=$(date +%s)
section() { printf '\n===== %s (%s s elapsed)\n' "$1" "$(( $(date +%s) - t0 ))"; }

section "gpt2lib tests and the committed chapters"
$PY -m pytest tests -m "not browser and not book and not colab" -p no:cacheprovider -q || failed+=("gpt2lib tests")

section "the book build: trains the book's model if it is not cached, then executes every chapter once"
mkdir -p "$OUT/_build"
BOOK_FRESH=1 bash tools/build_book.sh > "$OUT/_build/book-build.log" 2>&1 && tail -n 3 "$OUT/_build/book-build.log" \
  || { tail -n 80 "$OUT/_build/book-build.log"; failed+=("book build"); }

section "the executed chapters against their committed outputs (cells marked NBVAL_CHECK_OUTPUT)"
$PY -m pytest tests -m book -p no:cacheprovider -q || failed+=("chapter outputs")

section "every chapter alone on a simulated Colab (a fresh VM each, the release asset and GPT-2 on loopback)"
$PY -m pytest tests -m colab -p no:cacheprovider -q || failed+=("simulated Colab")

section "the built pages in headless Chromium"
$PY -m pytest tests -m browser -p no:cacheprovider -q || failed+=("browser checks")

section "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all checks passed in $(( $(date +%s) - t0 )) s"
