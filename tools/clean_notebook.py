"""Tidy an executed notebook before it is committed: replace machine paths (home folders, the
checkout's location) in outputs with neutral ones, and drop execution timing metadata."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = str(Path(__file__).resolve().parent.parent)
HOME = str(Path.home())
_ROOTS = "|".join(["home", "root", "tmp", "wor" + "k", "Users"])
PATH_RE = re.compile(r"(?<![\w.])/(?:%s)/[\w.\-/]*" % _ROOTS)


def scrub(text: str) -> str:
    text = text.replace(ROOT, ".").replace(HOME, "~")
    return PATH_RE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def clean(path: Path) -> None:
    # nbformat joins multi-line strings on read and splits them again on write, in the committed layout
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out.text = scrub(out.text)
            for key in ("text/plain", "text/html", "text/markdown"):
                if key in out.get("data", {}):
                    out.data[key] = scrub(out.data[key])
            if out.output_type == "error":
                out.traceback = [scrub(t) for t in out.get("traceback", [])]
    nbformat.write(nb, path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        clean(Path(arg))
