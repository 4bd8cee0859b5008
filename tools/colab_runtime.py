"""Colab's runtime, rebuilt here from Colab's own package list, for the simulated Colab (tools/colab_sim.py).

    python tools/colab_runtime.py build --out .venv/colab-runtime   # make setup-colab (needs PyPI once)
    python tools/colab_runtime.py refresh                            # make colab-packages (needs GitHub)

``build`` makes a virtual environment with the Python closest to Colab's that this machine has (Colab's
exact version if present, else the nearest newer or older one, and it says which), then installs the
packages the chapters and the notebook machinery need, each at the version of ``tools/colab/pip-freeze.txt``
(a committed copy of Colab's list): every pin of that list is a constraint, so what they pull in gets
Colab's versions too. One difference cannot be avoided: Colab's CPU runtime takes torch from PyTorch's
own index (a ``+cpu`` build), which this machine cannot reach; the same release comes from PyPI instead
(its CUDA 13.0 build; Colab's GPU runtime has the CUDA 12.8 one), and runs on the CPU. A stamp holding the list's hash
makes a second ``build`` return at once.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT / "tools" / "colab" / "pip-freeze.txt"
SOURCE = "https://raw.githubusercontent.com/googlecolab/backend-info/main"
COMMITS = "https://api.github.com/repos/googlecolab/backend-info/commits?path=pip-freeze.txt&per_page=1"
# What the chapters import, what gpt2lib requires, and what executes a notebook: installed at Colab's versions.
WANTED = ("torch", "numpy", "regex", "tqdm", "safetensors", "matplotlib", "filelock", "platformdirs", "pooch",
          "transformers", "tokenizers", "huggingface-hub", "tiktoken", "ipython", "ipykernel", "ipywidgets",
          "nbconvert", "nbclient", "nbformat", "jupyter-client", "setuptools", "wheel", "pip")
STAMP = ".colab-runtime"
CUDA_PACKAGES = ("nvidia-", "cuda-", "triton")


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = FREEZE) -> tuple[dict[str, str], str]:
    """``({name: version}, python version)`` of a committed list; a ``name @ URL`` entry gives the version
    in its wheel's file name (``torch-2.11.0%2Bcpu-...`` -> ``2.11.0``: the local ``+cpu`` part is dropped)."""
    pins, python = {}, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# python:"):
            python = line.split(":", 1)[1].strip()
        line = line.split("#", 1)[0].strip() if not line.startswith("#") else ""
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_key(name)] = version.strip()
        elif " @ " in line:
            name, url = (part.strip() for part in line.split(" @ ", 1))
            m = re.search(rf"/{re.escape(name.replace('-', '_'))}-([0-9][0-9.]*)(?:%2B[^-/]*)?-[^/]*\.whl", url, re.I)
            if m:
                pins[_key(name)] = m.group(1)
    if not python:
        raise SystemExit(f"{path} does not say Colab's Python ('# python: X.Y.Z'); run 'make colab-packages'")
    return pins, python


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30).stdout.split()
        return (int(out[0]), int(out[1])) if len(out) == 2 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def find_python(wanted: str) -> tuple[str, tuple[int, int]]:
    """The interpreter closest to ``wanted`` (X.Y.Z) among PATH's python3.N and pyenv's: the same minor
    version first, then the nearest (a newer one before an older one at equal distance); 3.10 at least."""
    want = tuple(int(p) for p in wanted.split(".")[:2])
    candidates = {shutil.which(f"python3.{n}") for n in range(10, 20)} | {shutil.which("python3")}
    candidates |= set(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    found = {}
    for path in sorted(c for c in candidates if c):
        version = _version_of(path)
        if version and version >= (3, 10):
            found.setdefault(version, path)
    if not found:
        raise SystemExit("no Python 3.10 or newer found for the Colab runtime")
    best = min(found, key=lambda v: (abs(v[1] - want[1]) if v[0] == want[0] else 99, v < want))
    return found[best], best


def build(out: Path) -> None:
    pins, colab_python = read_pins()
    digest = hashlib.sha256(FREEZE.read_bytes() + " ".join(WANTED).encode()).hexdigest()
    stamp = out / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("freeze") == digest:
        print(f"[colab] {out}: Colab's runtime is ready ({json.loads(stamp.read_text())['python']})")
        return
    python, version = find_python(colab_python)
    said = "Colab's own" if version == tuple(int(p) for p in colab_python.split(".")[:2]) else "the closest here"
    print(f"[colab] Colab runs Python {colab_python}; using {python} (Python {version[0]}.{version[1]}, {said})")
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(out)], check=True)
    missing = [name for name in WANTED if _key(name) not in pins]
    if missing:
        raise SystemExit(f"Colab's list has no {', '.join(missing)}: the chapters need them; check {FREEZE}")
    constraints = out / "colab-constraints.txt"
    # CUDA's own packages are PyPI torch's business (its build differs from Colab's CPU one): not constrained.
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())
                                   if not name.startswith(CUDA_PACKAGES)))
    requirements = [f"{name}=={pins[_key(name)]}" for name in WANTED]
    print(f"[colab] installing at Colab's versions: {' '.join(requirements)}")
    pip = [str(out / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", f"pip=={pins['pip']}"], check=True)
    subprocess.run([*pip, "-c", str(constraints), *requirements], check=True)
    subprocess.run([str(out / "bin" / "python"), "-m", "pip", "check"], check=True)
    versions = subprocess.run([str(out / "bin" / "python"), "-c", "import sys, torch, transformers, numpy; "
                               "print(sys.version.split()[0], torch.__version__, transformers.__version__, numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    stamp.write_text(json.dumps({"freeze": digest, "python": f"Python {versions[0]}", "torch": versions[1],
                                 "transformers": versions[2], "numpy": versions[3]}))
    print(f"[colab] ready: Python {versions[0]}, torch {versions[1]}, transformers {versions[2]}, numpy {versions[3]}")


def refresh() -> None:
    """Replace tools/colab/pip-freeze.txt with Colab's current list, headed by where and when it came from."""
    def get(url: str) -> str:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read().decode("utf-8")

    try:
        commit = json.loads(get(COMMITS))[0]
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise SystemExit(f"[colab] cannot read Colab's list from GitHub ({exc}); this needs github.com and "
                         f"raw.githubusercontent.com: run it online. {FREEZE.relative_to(ROOT)} is unchanged") from None
    sha, date, subject = commit["sha"], commit["commit"]["committer"]["date"][:10], commit["commit"]["message"]
    python = re.search(r"^Python (\S+)", get(f"{SOURCE}/os-info.txt"), re.M)
    if python is None:
        raise SystemExit("Colab's os-info.txt no longer names its Python; read it and update this script")
    header = (f"# Colab's runtime (CPU), as Colab publishes it: github.com/googlecolab/backend-info, file pip-freeze.txt\n"
              f"# at commit {sha} ({date}, \"{subject.splitlines()[0]}\"); os-info.txt: Python {python.group(1)}.\n"
              "# Refreshed by 'make colab-packages' (tools/colab_runtime.py refresh); read by tools/colab_runtime.py build.\n"
              f"# python: {python.group(1)}\n")
    FREEZE.write_text(header + get(f"{SOURCE}/pip-freeze.txt"), encoding="utf-8")
    print(f"[colab] {FREEZE.relative_to(ROOT)}: Colab's list of {date} (Python {python.group(1)})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build").add_argument("--out", type=Path, required=True)
    sub.add_parser("refresh")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.out.resolve())
    else:
        refresh()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
