"""The exercise record: where it lives (and says it lives), and how it moves between runtimes."""
from __future__ import annotations

import json
import sys
import types

import pytest

from gpt2lib.exercises import export_progress, import_progress, progress, show_progress


@pytest.fixture
def home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setenv("GPT2LIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    return tmp_path


def test_local_record_says_where_it_is(home_cache, capsys):
    progress.record("softmax", True)
    assert progress.progress_file() == home_cache / "cache" / "progress.json"
    show_progress(chapter=4)
    out = capsys.readouterr().out
    assert f"kept in {home_cache / 'cache' / 'progress.json'}" in out and "erased" not in out


def test_colab_without_drive_warns_and_with_drive_keeps_it_there(home_cache, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(progress, "DRIVE", home_cache / "no-drive")
    assert "erased when the runtime ends" in progress.where() and "drive.mount" in progress.where()
    drive = home_cache / "MyDrive"
    drive.mkdir()
    monkeypatch.setattr(progress, "DRIVE", drive)
    progress.record("softmax", True)
    assert (drive / "gpt2lib" / "progress.json").exists()
    assert "erased" not in progress.where()


def test_an_explicit_place_prints_nothing_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    assert progress.where() == ""


def test_export_then_import_merges_without_losing_a_pass(home_cache, monkeypatch):
    progress.record("softmax", True)
    progress.record("softmax", False)
    progress.record("merge", False)
    exported = export_progress(home_cache / "out.json")
    # another runtime: a fresh cache that passed 'merge' and never saw 'softmax'
    monkeypatch.setenv("GPT2LIB_CACHE", str(home_cache / "other"))
    progress.record("merge", True)
    assert import_progress(exported) == 2
    data = progress.load()
    assert data["softmax"]["passed"] and data["softmax"]["attempts"] == 2
    assert data["merge"]["passed"] and data["merge"]["attempts"] == 1
    assert import_progress(exported) == 2 and progress.load()["softmax"]["attempts"] == 2  # idempotent


def test_import_refuses_what_is_not_a_record(home_cache):
    bad = home_cache / "bad.json"
    bad.write_text(json.dumps(["softmax"]))
    with pytest.raises(ValueError, match="export_progress"):
        import_progress(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="export_progress"):
        import_progress(bad)
