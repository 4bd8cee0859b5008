"""No notebook ahead of its package: a change to gpt2lib under the release tag its set-up cells install
must come with a version bump (tools/release_check.py), shown on a throwaway repository of the same layout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import release_check  # noqa: E402


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "gpt2lib").mkdir()
    (tmp_path / "gpt2lib" / "model.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'gpt2lib'\n")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01.ipynb").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_a_version_not_tagged_yet_passes(repo):
    assert release_check.check(repo, tag="v0.1.0") is None


def test_the_package_as_tagged_passes_and_other_files_may_change(repo):
    _git(repo, "tag", "v0.1.0")
    (repo / "chapters" / "01.ipynb").write_text("{\"changed\": 1}\n")   # notebooks and docs move freely
    assert release_check.check(repo, tag="v0.1.0") is None


@pytest.mark.parametrize("change", ["edit", "new file", "pyproject"])
def test_a_package_changed_under_its_tag_fails_and_says_what_to_do(repo, change):
    _git(repo, "tag", "v0.1.0")
    if change == "edit":
        (repo / "gpt2lib" / "model.py").write_text("x = 2\n")
        _git(repo, "commit", "-qam", "change the package")
    elif change == "new file":
        (repo / "gpt2lib" / "new.py").write_text("y = 1\n")       # not even committed yet
    else:
        (repo / "pyproject.toml").write_text("[project]\nname = 'gpt2lib'\nversion = '0.1.0'\n")
    problem = release_check.check(repo, tag="v0.1.0")
    assert problem is not None and "changed since its release tag v0.1.0" in problem
    assert "raise the version in gpt2lib/_version.py" in problem
    assert {"edit": "gpt2lib/model.py", "new file": "gpt2lib/new.py", "pyproject": "pyproject.toml"}[change] in problem


def test_this_checkout_is_not_ahead_of_its_release_tag():
    assert release_check.check() is None
