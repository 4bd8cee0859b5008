"""Is the package what the chapters' set-up cells install? Each set-up cell installs gpt2lib from the tag
``v<version>`` (tools/sync_notebooks.py), while Colab opens the notebooks from ``main``: a change to the
package under an existing tag would give Colab's readers new notebooks with the old package. So a change to
``gpt2lib/`` or ``pyproject.toml`` after the tag of the current version must come with a version bump.

    python tools/release_check.py          # exit 1, with what to do, when the package moved under its tag

``make test`` runs it (tests/test_release.py) and the publishing workflow runs it before making the tag.
A version not tagged yet passes: its first publish makes the tag from the commit it publishes.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from sync_notebooks import release_ref  # noqa: E402  (the tag the set-up cells install)

PACKAGE_PATHS = ("gpt2lib", "pyproject.toml")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def check(root: Path = ROOT, tag: str | None = None) -> str | None:
    """None when the package is what ``tag`` (default: the current version's) holds, or the tag does not
    exist yet; otherwise one line saying what changed and what to do."""
    tag = tag or release_ref()
    if _git(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}").returncode != 0:
        return None
    changed = _git(root, "diff", "--name-only", tag, "--", *PACKAGE_PATHS).stdout.split()
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", *PACKAGE_PATHS).stdout.split()
    moved = sorted(set(changed) | set(untracked))
    if not moved:
        return None
    shown = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
    return (f"gpt2lib changed since its release tag {tag} ({shown}), which the chapters' set-up cells install on "
            f"Colab: raise the version in gpt2lib/_version.py and run 'python tools/sync_notebooks.py' "
            f"(CONTRIBUTING.md, 'Releasing')")


if __name__ == "__main__":
    problem = check()
    print(problem or f"gpt2lib is what {release_ref()} holds, or {release_ref()} is not tagged yet")
    sys.exit(1 if problem else 0)
