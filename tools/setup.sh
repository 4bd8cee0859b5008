#!/usr/bin/env bash
# Set up everything the book needs, once: a virtual environment with gpt2lib and the book's tools,
# the offline assets the HTML needs (MathJax, the widget scripts), and Chromium for the page checks.
# Idempotent: a second run checks a stamp and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VENDOR=book/_vendor
VENDOR_EXTRA=book/_vendor_extra
VENDOR_TMP=book/_vendor_download
MATHJAX_VERSION=3.2.2
HTML_MANAGER_VERSION=1.0.6
REQUIREJS_VERSION=2.3.7
STAMP="$VENV/.gpt2lib-setup"

say() { printf '[setup] %s\n' "$*"; }

want_stamp=$(cat requirements.txt pyproject.toml tools/setup.sh | sha256sum | cut -c1-16)

# 1. The virtual environment. A torch that the system Python already has (a GPU box, a cloud image)
#    is reused through --system-site-packages rather than replaced.
if [ ! -x "$PY" ]; then
  if python3 -c "import torch" >/dev/null 2>&1; then
    say "reusing the system's torch $(python3 -c 'import torch; print(torch.__version__)')"
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV"
  fi
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v -E "^WARNING: (Location .* is ignored|Retrying \(Retry)" || true; }

if [ "$(cat "$STAMP" 2>/dev/null)" != "$want_stamp" ]; then
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 || [ "$(uname -s)" = "Darwin" ]; then
      say "installing $TORCH_SPEC"
      pip_install "$TORCH_SPEC"
    else
      # No GPU: the CPU build (about 200 MB), never the multi-GB CUDA one. A local CPU wheel
      # (find-links) wins; otherwise PyTorch's CPU index. An unreachable index fails fast.
      say "installing $TORCH_SPEC (CPU build)"
      pip_install --timeout 10 --retries 1 --index-url https://download.pytorch.org/whl/cpu "$TORCH_SPEC" \
        || pip_install "$TORCH_SPEC"
      "$PY" -c "import torch" >/dev/null 2>&1 || pip_install "$TORCH_SPEC"
    fi
  else
    say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
  fi
  say "installing the book's packages (requirements.txt) and gpt2lib (editable)"
  pip_install -r requirements.txt
  pip_install --no-deps -e .
  "$PY" -c "import torch, gpt2lib, myst_nb, nbval, playwright" \
    || { echo "[setup] the environment is incomplete; see the messages above" >&2; exit 1; }
  echo "$want_stamp" > "$STAMP"
else
  say "python packages up to date"
fi

# 2. Offline assets for the HTML book, from the npm registry, into an ignored folder.
fetch_npm() {  # package@version, path inside the package, destination
  local spec=$1 inner=$2 dest=$3 tmp
  [ -e "$dest" ] && return 0
  rm -rf "$dest.part"
  command -v npm >/dev/null || { echo "[setup] npm is needed to fetch $spec (install Node.js)" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest.part" && cp -r "$tmp/package/$inner" "$dest.part" && mv "$dest.part" "$dest"
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

# 3. A real browser for the page checks (Debian's chromium; never a browser download of a test tool).
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "chromium not found: the browser checks will be skipped until it is installed (apt-get install chromium)"
  fi
fi
say "ready"
