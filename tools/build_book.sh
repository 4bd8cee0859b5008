#!/usr/bin/env bash
# Execute every chapter once and build the HTML book into $BOOK_OUT/_build/html (BOOK_OUT: book).
# The executed chapters stay under $BOOK_OUT/_build/jupyter_execute/chapters/, where
# tools/compare_outputs.py (make test-notebooks) checks them against the committed ones.
# Cell errors and Sphinx warnings fail the build; a failing cell is reported with its notebook.
#   BOOK_FRESH=1   execute every chapter again (make test, make test-notebooks, make test-book).
#                  Otherwise jupyter-cache reuses the execution of a chapter whose code is unchanged,
#                  and the whole cache is dropped when gpt2lib, pyproject.toml or the venv change.
#   BOOK_TOC=FILE  build only the pages of another table of contents (e.g. one chapter, to time it).
#   BOOK_ONLINE=1  let the chapters use the network (.github/workflows/book.yml publishes that build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PY="$VENV/bin/python"
OUT=${BOOK_OUT:-book}
CACHE=book/_build/.jupyter_cache   # as _config.yml's execute.cache
# A fresh progress record, so that the published outputs never show the builder's own progress.
export GPT2LIB_PROGRESS="$(mktemp -d)/progress.json"
export PYDEVD_DISABLE_FILE_VALIDATION=1
# Offline unless BOOK_ONLINE=1 (the publishing workflow): then the chapters take their online branches.
if [ "${BOOK_ONLINE:-0}" = 1 ]; then
  export GPT2LIB_OFFLINE=0 HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0
fi
# The checkout-local cache, as `make` uses (the book model is trained there once).
export GPT2LIB_CACHE=${GPT2LIB_CACHE:-$PWD/.gpt2lib_cache}
if [ "${BOOK_ONLINE:-0}" != 1 ]; then
  export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  # An empty Hugging Face cache of the checkout's own: offline, the book is the book model's, even on a
  # machine whose own cache holds OpenAI's GPT-2 (the online build uses it).
  export HF_HUB_CACHE="$GPT2LIB_CACHE/huggingface-hub"
fi
export PATH="$VENV/bin:$PATH"
"$PY" -c "import jupyter_book" 2>/dev/null || { echo "no jupyter-book in $VENV: run 'make setup-book'" >&2; exit 1; }
[ -f book/_vendor/mathjax/tex-chtml.js ] || { echo "book/_vendor is missing: run 'make setup-book' (it needs npm once)" >&2; exit 1; }
mkdir -p "$OUT/_build" book/_build
start=$(date +%s)

# The book's small model is trained here, before any kernel starts, so that no cell spends minutes
# training it in silence (a cell has `execute.timeout` seconds); afterwards it loads from the cache.
"$PY" -c "from gpt2lib.book import book_model; book_model()"

# What the chapters' outputs depend on besides their own code: when it changes, nothing cached is
# reused; nor across offline and online builds. (Hashed in Python: sha256sum is not on macOS.)
key=$("$PY" - "$VENV" "online=${BOOK_ONLINE:-0}" <<'EOF'
import hashlib, pathlib, sys
h = hashlib.sha256(sys.argv[2].encode())
files = sorted(pathlib.Path("gpt2lib").rglob("*")) + [pathlib.Path("pyproject.toml"), pathlib.Path(sys.argv[1], ".gpt2lib-setup")]
for f in files:
    if f.is_file() and "__pycache__" not in f.parts:
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
print(h.hexdigest())
EOF
)
if [ "${BOOK_FRESH:-0}" = 1 ] || [ "$(cat "$CACHE.key" 2>/dev/null)" != "$key" ]; then
  rm -rf "$CACHE"
fi
echo "$key" > "$CACHE.key"

toc=()
[ -z "${BOOK_TOC:-}" ] || toc=(--toc "$BOOK_TOC")
# jupyter-book through the venv's interpreter (not a bin/ script, which a venv that reuses system
# packages may lack), so that the kernels run that interpreter too.
jupyter_book() { "$PY" -c 'import sys; from jupyter_book.cli.main import main; sys.argv[0] = "jupyter-book"; sys.exit(main())' "$@"; }
build() { jupyter_book build . --all -W -n --keep-going --path-output "$OUT" ${toc[@]+"${toc[@]}"} 2>&1 | tee "$OUT/_build/build.log"; }
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
  for report in "$OUT"/_build/html/reports/*.err.log "$OUT"/_build/html/reports/*/*.err.log; do
    [ -e "$report" ] && { echo "--- $report"; tail -n 40 "$report"; }
  done
  exit 1
fi
echo "book built in $(( $(date +%s) - start )) s"
