#!/usr/bin/env bash
# Build the HTML book into $BOOK_OUT/_build/html (BOOK_OUT: book) from the chapters as committed: they are
# executed and validated by nbval (make test), so the build renders their stored outputs and glued values
# without running a kernel (_config.yml: execute_notebooks: "off"); it takes seconds. Sphinx warnings fail it.
#   BOOK_TOC=FILE   build only the pages of another table of contents
#   BOOK_EXECUTE=1  execute the chapters first, in place, with tools/run_notebook.sh (the publishing
#                   workflow does this online, so the published book shows OpenAI's GPT-2 where it can)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
OUT=${BOOK_OUT:-book}
"$PY" -c "import jupyter_book" 2>/dev/null || { echo "no jupyter-book in $VENV: run 'make setup-book'" >&2; exit 1; }
[ -f book/_vendor/mathjax/tex-chtml.js ] || { echo "book/_vendor is missing: run 'make setup-book' (it needs npm once)" >&2; exit 1; }
mkdir -p "$OUT/_build"
start=$(date +%s)
if [ "${BOOK_EXECUTE:-0}" = 1 ]; then
  bash tools/run_notebook.sh chapters/*.ipynb
fi
toc=()
[ -z "${BOOK_TOC:-}" ] || toc=(--toc "$BOOK_TOC")
# jupyter-book through the venv's interpreter (not a bin/ script, which a venv that reuses system
# packages may lack).
status=0
"$PY" -c 'import sys; from jupyter_book.cli.main import main; sys.argv[0] = "jupyter-book"; sys.exit(main())' \
  build . --all -W -n --keep-going --path-output "$OUT" ${toc[@]+"${toc[@]}"} > "$OUT/_build/build.log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
  tail -n 60 "$OUT/_build/build.log"
  echo "book build FAILED (full log: $OUT/_build/build.log)" >&2
  exit 1
fi
tail -n 2 "$OUT/_build/build.log"
echo "book built in $(( $(date +%s) - start )) s"
