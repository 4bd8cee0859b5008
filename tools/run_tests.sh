#!/usr/bin/env bash
# Everything `make test` runs: the book build (it renders the committed, executed chapters; warnings fail
# it), then ONE pytest run over the package's tests and the chapters. nbval executes each chapter once and
# compares the cells marked `# NBVAL_CHECK_OUTPUT` with their committed outputs; the built pages are checked
# in headless Chromium. What runs a chapter a second time has a target of its own: the simulated Colab
# (make test-colab), the reader's path (make test-reader), other CPU kernels and the book model's rebuild
# (make test-portable).
#   NBVAL_ONLY=1   just the chapters under nbval (make test-chapters; make test-portable runs it twice,
#                  with PyTorch's kernels forced to other instruction sets)
#   READER_PATH=1  the chapters that run the reader's code, each exercise solved in the learner's cell
#                  (tools/reader_path.py), under nbval in book order with one progress record, so a later
#                  chapter imports what an earlier one saved (make test-reader)
#   TEST_ARGS    more pytest arguments (e.g. -x, or -k 05_1)
#   TEST_WORKERS how many pytest-xdist workers run the tests side by side (default: one a CPU, at most 4;
#                1: one process, no xdist, for debugging or timing one test). --dist loadscope keeps each
#                chapter's cells in one worker, in order, in one kernel, and each test module (or class)
#                in one worker. Each worker, and each kernel it starts, gets CPUs // workers threads. The reader's
#                path always runs in one process: each of its chapters imports what the one before saved.
set -uo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
t0=$(date +%s)
section() { printf '\n===== %s (%s s elapsed)\n' "$1" "$(( $(date +%s) - t0 ))"; }
failed=()

# The chapters, as nbval runs them: in their own folder, in this venv's kernel, with the sanitizer.
NBVAL=(chapters --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
       --nbval-cell-timeout=600 --nbval-kernel-startup-timeout=120)
# A fresh progress record: the exercises' checkers write one, and a reader's own must not change outputs.
export GPT2LIB_PROGRESS="$(mktemp -d)/progress.json"

# Most of the suite is single-threaded Python (small models, many tests): a second worker uses the
# second core that one pytest process leaves idle.
cpus=$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)')
workers=${TEST_WORKERS:-$(( cpus < 4 ? cpus : 4 ))}
case "$workers" in ''|*[!0-9]*|0) echo "TEST_WORKERS must be a number of workers, 1 or more (got '$workers')" >&2; exit 2 ;; esac
if [ "$workers" -gt 1 ] && ! "$PY" -c "import xdist" 2>/dev/null; then
  echo "pytest-xdist is not installed in $VENV (make setup installs it): running the tests in one process"
  workers=1
fi
XDIST=()
xdist_on() {  # the options that spread a pytest run over the workers, and their share of the CPUs each
  [ "$workers" -gt 1 ] || return 0
  XDIST=(-n "$workers" --dist loadscope)
  # Exported here, not only in tests/conftest.py: a run over the chapters alone never loads that file,
  # and the kernels inherit the workers' environment. A value the caller set wins.
  local share=$(( cpus / workers > 0 ? cpus / workers : 1 ))
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$share} MKL_NUM_THREADS=${MKL_NUM_THREADS:-$share}
}

if [ "${READER_PATH:-0}" = 1 ]; then
  section "the reader's path: every exercise solved, the checked outputs unchanged"
  rm -rf build/reader-path
  "$PY" tools/reader_path.py --all build/reader-path || exit 1
  # shellcheck disable=SC2086
  "$PY" -m pytest build/reader-path "${NBVAL[@]:1}" -p no:cacheprovider -q ${TEST_ARGS:-}
  status=$?
  echo "the reader's module those runs wrote: $(dirname "$GPT2LIB_PROGRESS")/my_gpt2lib.py"
  exit $status
fi

if [ "${NBVAL_ONLY:-0}" = 1 ]; then
  xdist_on
  section "the chapters under nbval${ATEN_CPU_CAPABILITY:+ (ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY)}, $workers worker(s)"
  # shellcheck disable=SC2086  # TEST_ARGS is split on purpose
  "$PY" -m pytest "${NBVAL[@]}" ${XDIST[@]+"${XDIST[@]}"} -p no:cacheprovider -q ${TEST_ARGS:-}
  exit $?
fi

section "the book build (the committed chapters rendered, not executed)"
bash tools/build_book.sh || failed+=("book build")

xdist_on
section "gpt2lib's tests, every chapter under nbval, the built pages: $workers worker(s)"
# shellcheck disable=SC2086
"$PY" -m pytest tests "${NBVAL[@]}" -m "not colab" --deselect tests/test_book.py::test_a_rebuild_reaches_the_shipped_loss \
  ${XDIST[@]+"${XDIST[@]}"} -p no:cacheprovider -q --durations=25 ${TEST_ARGS:-} || failed+=("pytest")

section "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all checks passed in $(( $(date +%s) - t0 )) s"
