"""Check that an environment really holds what gpt2lib and the chosen extras need, before the set-up
calls it ready: every requirement (from the installed gpt2lib's metadata, i.e. pyproject.toml) is
installed at a version it accepts, and every module of those distributions and of gpt2lib imports.

Usage: python tools/check_env.py [EXTRA ...]      e.g. python tools/check_env.py interop book lab test
Exit status 1 with one line per problem; 0 with a one-line summary.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import pkgutil
import sys

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare venv: pip carries a copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

PROJECT = "gpt2lib"


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirements(extras: list[str]) -> list[Requirement]:
    """The requirements of gpt2lib itself and of ``extras``, self-references (gpt2lib[x]) expanded."""
    wanted, todo, seen = [], list(extras), set()
    base = [Requirement(r) for r in md.requires(PROJECT) or []]
    for req in base:
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            wanted.append(req)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in base:
            if req.marker is not None and req.marker.evaluate({"extra": extra}) \
                    and not req.marker.evaluate({"extra": ""}):
                if _norm(req.name) == PROJECT:
                    todo.extend(req.extras)
                else:
                    wanted.append(req)
    return wanted


def problems(extras: list[str]) -> tuple[list[str], int]:
    """Return (problems, number of modules imported)."""
    try:
        md.version(PROJECT)
    except md.PackageNotFoundError:
        return [f"{PROJECT} is not installed in {sys.prefix}"], 0
    known = set(md.metadata(PROJECT).get_all("Provides-Extra") or [])
    found: list[str] = [f"unknown extra '{e}' (pyproject.toml declares {sorted(known)})" for e in extras if e not in known]
    dists = []
    for req in requirements(extras):
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            found.append(f"{req.name} is not installed (needed: {req})")
            continue
        if not req.specifier.contains(version, prereleases=True):
            found.append(f"{req.name} {version} is installed, but {req} is needed")
            continue
        dists.append(_norm(req.name))
    # The modules each distribution provides, from the installed files.
    modules = sorted({m for m, owners in md.packages_distributions().items()
                      if not m.startswith("_") and any(_norm(o) in dists for o in owners)})
    pkg = importlib.import_module(PROJECT)
    # __main__ modules run a program when imported, so they are left out.
    modules += [PROJECT] + [m.name for m in pkgutil.walk_packages(pkg.__path__, PROJECT + ".")
                            if not m.name.endswith("__main__")]
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure to import is a broken environment, whatever its type
            found.append(f"import {name} failed: {type(exc).__name__}: {exc}")
    return found, len(modules)


def main(argv: list[str]) -> int:
    found, count = problems(argv)
    for line in found:
        print(f"[check_env] {line}", file=sys.stderr)
    if found:
        return 1
    print(f"[check_env] gpt2lib[{','.join(argv)}]: every requirement installed, {count} modules import")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
