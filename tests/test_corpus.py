"""The book's corpus is a shipped, hash-checked snapshot: the same bytes on every Python version."""
from __future__ import annotations

import gzip
import hashlib
import sys

import pytest

from gpt2lib import data
from gpt2lib.data import PYTHON_DOCS_SHA256, CorpusError, python_docs_text


def test_snapshot_has_its_hash_and_size():
    text = python_docs_text()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == PYTHON_DOCS_SHA256
    assert len(text) == 465_048
    assert "The \"if\" statement" in text or "if_stmt" in text or "if" in text.split()


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the snapshot was taken from Python 3.11's pydoc_data")
def test_snapshot_equals_python_311_pydoc_topics():
    from pydoc_data.topics import topics

    assert python_docs_text() == "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"


def test_a_damaged_snapshot_is_refused(monkeypatch, tmp_path):
    folder = tmp_path / "gpt2lib" / "corpora"
    folder.mkdir(parents=True)
    (folder / "python-docs.txt.gz").write_bytes(gzip.compress(b"not the corpus"))
    monkeypatch.setattr(data.resources, "files", lambda package: tmp_path / "gpt2lib")
    with pytest.raises(CorpusError, match="reinstall"):
        python_docs_text()


def test_the_licence_ships_beside_it():
    from importlib import resources

    licence = (resources.files("gpt2lib") / "corpora" / "LICENSE-python-docs.txt").read_text("utf-8")
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in licence
