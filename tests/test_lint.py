"""ruff, configured in pyproject.toml ([tool.ruff]), over the package, its tests, tools and benchmarks:
`make test` runs it through this file, so a lint error fails the build like any other test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff is in the [test] extra; make setup installs it")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ruff check . found:\n{proc.stdout}{proc.stderr}"
