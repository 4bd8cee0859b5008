#!/usr/bin/env bash
# `make lock`: regenerate requirements.txt, the lock that tools/setup.sh installs, from pyproject.toml.
#   tools/lock.sh             keep every pin that requirements.txt already has and is still allowed
#                             (only a changed pyproject.toml moves anything)
#   UPGRADE=1 tools/lock.sh   every package to the newest release pyproject.toml allows (torch stays at
#                             TORCH_SPEC)
# Without a requirements.txt the pins of $VENV (pip freeze) are preferred: the committed chapter outputs
# were produced with them. Needs PyPI (uv's default index, or what the developer's uv config names).
set -euo pipefail
cd "$(dirname "$0")/.."

# One uv version, so that everyone's `make lock` writes the same file from the same inputs.
UV_VERSION=0.13.9
# The one place torch's version is chosen; tools/setup.sh reads it back from requirements.txt.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# pyproject.toml's requires-python; the lock is resolved for it and every newer Python.
OLDEST_PYTHON=3.10
# macOS and Linux only: nobody runs the book on Windows, and its lines would be noise.
ENVIRONMENTS="\"sys_platform == 'linux'\", \"sys_platform == 'darwin'\""
EXTRAS=$(sed -n 's/^EXTRAS=//p' tools/setup.sh)  # what the set-up installs, and nothing else
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
UPGRADE=${UPGRADE:-}
TOOLS=${LOCK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt2lib/lock-uv-$UV_VERSION}

say() { printf '[lock] %s\n' "$*"; }
die() { printf '[lock] FAILED: %s\n' "$*" >&2; exit 1; }

[ -n "$EXTRAS" ] || die "no EXTRAS= line in tools/setup.sh"
grep -q '^\[tool\.uv\]' pyproject.toml && die "pyproject.toml has a [tool.uv] table; tools/lock.sh adds its own (environments) to a copy"

# uv and packaging in a venv of their own: the project's venv stays exactly what requirements.txt says.
uv_ok() { case "$("$TOOLS/bin/uv" --version 2>/dev/null)" in "uv $UV_VERSION "*|"uv $UV_VERSION") return 0 ;; esac; return 1; }
if ! uv_ok || ! "$TOOLS/bin/python" -c "import packaging" 2>/dev/null; then
  say "installing uv $UV_VERSION into $TOOLS"
  rm -rf "$TOOLS"
  "$PYTHON" -m venv "$TOOLS" || die "$PYTHON -m venv $TOOLS"
  # (The warnings filtered out are about local indexes that some pip configurations name.)
  { "$TOOLS/bin/python" -m pip install --disable-pip-version-check -q "uv==$UV_VERSION" "packaging>=24" 2>&1 \
      || echo "[lock] FAILED: pip install uv==$UV_VERSION packaging"; } | grep -v -E '^WARNING: Location .* is ignored' || true
  uv_ok || die "uv $UV_VERSION could not be installed into $TOOLS (lines above)"
fi
UV="$TOOLS/bin/uv"

# uv reads `environments` only from a pyproject.toml, so it resolves a copy that has them; working in a
# folder of its own also keeps absolute paths out of the annotations.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp pyproject.toml "$work/pyproject.toml"
printf '\n[tool.uv]\nenvironments = [%s]\n' "$ENVIRONMENTS" >> "$work/pyproject.toml"
echo "$TORCH_SPEC" > "$work/torch-pin.txt"

# uv prefers the pins it finds in its output file.
if [ -z "$UPGRADE" ] && [ -f requirements.txt ]; then
  cp requirements.txt "$work/requirements.txt"
elif [ -z "$UPGRADE" ] && [ -x "$VENV/bin/python" ]; then
  say "no requirements.txt yet: preferring the versions installed in $VENV"
  # A local version label (torch's +cpu) names a build, not a release on PyPI.
  "$VENV/bin/python" -m pip freeze --all --disable-pip-version-check --exclude-editable 2>/dev/null \
    | sed -n -E 's/^([A-Za-z0-9._-]+==[^+ ]+).*/\1/p' > "$work/requirements.txt"
fi

compile() {  # output file, more uv arguments...
  local out=$1; shift
  local args=(pip compile pyproject.toml --universal --python-version "$OLDEST_PYTHON" -c torch-pin.txt
              --no-header --quiet -o "$out")
  local extra
  for extra in ${EXTRAS//,/ }; do args+=(--extra "$extra"); done
  (cd "$work" && "$UV" "${args[@]}" "$@") || die "uv could not resolve pyproject.toml (lines above)"
}

say "resolving pyproject.toml [$EXTRAS] for Python $OLDEST_PYTHON+ on Linux and macOS"
compile requirements.txt ${UPGRADE:+--upgrade}

# The rule that keeps torch's CUDA build out: a package that the resolution needs on Linux only, and
# only through torch (directly or through another such package), is left out. PyPI's Linux torch
# requires them; the CPU build the set-up installs on a machine without a GPU does not.
"$TOOLS/bin/python" - "$work/requirements.txt" > "$work/excluded.txt" <<'EOF'
import re, sys
from packaging.markers import Marker

lines = open(sys.argv[1]).read().splitlines()
markers, parents, name = {}, {}, None
for line in lines:
    m = re.match(r"^([A-Za-z0-9._-]+)==\S+(?:\s*;\s*(.*))?$", line)
    if m:
        name = m.group(1).lower()
        markers.setdefault(name, []).append(Marker(m.group(2)) if m.group(2) else None)
        parents.setdefault(name, set())
        continue
    m = re.match(r"^\s+#\s+(?:via\s+)?(\S.*)$", line)
    if m and name and m.group(1) != "via":
        parents[name].add(m.group(1).split()[0].lower())

def on_macos(marker):
    return marker is None or any(
        marker.evaluate({"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": machine,
                         "python_version": f"3.{minor}", "python_full_version": f"3.{minor}.0"})
        for minor in range(10, 16) for machine in ("arm64", "x86_64"))

linux_only = {n for n, ms in markers.items() if not any(on_macos(m) for m in ms)}
excluded = set()
while True:
    more = {n for n in linux_only - excluded if parents[n] and parents[n] <= excluded | {"torch"}}
    if not more:
        break
    excluded |= more
for n in sorted(excluded):
    print(n)
EOF
# (No mapfile and no empty "${array[@]}" under set -u: macOS has bash 3.2.)
no_emit=()
while read -r pkg; do no_emit+=(--no-emit-package "$pkg"); done < "$work/excluded.txt"
n_excluded=$(wc -l < "$work/excluded.txt" | tr -d ' ')

# The same resolution again (the first one's pins are its preferences), written without them.
cp "$work/requirements.txt" "$work/lock.txt"
compile lock.txt ${no_emit[@]+"${no_emit[@]}"}

{
  cat <<EOF
# The lock: generated by \`make lock\` (tools/lock.sh) from pyproject.toml. Never edit it by hand: change
# pyproject.toml (or TORCH_SPEC in tools/lock.sh) and run \`make lock\`; \`make lock UPGRADE=1\` moves every
# pin to the newest release allowed.
# \`make setup\` (tools/setup.sh) installs it: gpt2lib's requirements with the extras it installs
# [$EXTRAS], every package pinned for Python $OLDEST_PYTHON and newer on Linux and macOS
# (uv $UV_VERSION, pip compile --universal; markers give a Python version or platform its own pin
# where one release does not fit all).
# torch is pinned ($TORCH_SPEC); on Linux without a GPU the set-up installs its CPU build first,
# which satisfies the pin, and a torch the machine already has is kept.
# Left out by rule: every package that the resolution needs on Linux only, and only through torch or
# another such package (PyPI's Linux torch is its CUDA build; the CPU build needs none of them). A GPU
# machine that installs torch from PyPI gets them at the versions torch pins itself. Left out now:
EOF
  if [ "$n_excluded" = 0 ]; then echo "#   (none)"; else
    paste -sd, "$work/excluded.txt" | sed 's/,/, /g' | fold -s -w 96 | sed 's/ *$//; s/^/#   /'
  fi
  cat "$work/lock.txt"
} > "$work/final.txt"
mv "$work/final.txt" requirements.txt
say "requirements.txt: $(grep -c -E '^[A-Za-z0-9]' requirements.txt) pins, $n_excluded CUDA packages of torch's left out"
