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


# ------------------------------------------------------------------------------ a record that is never lost
@pytest.fixture
def record_at(tmp_path, monkeypatch):
    path = tmp_path / "drive" / "progress.json"
    monkeypatch.setenv(progress.PROGRESS_ENV, str(path))
    monkeypatch.setattr(progress, "_reported", set())
    return path


@pytest.mark.parametrize("damage", [b'{"softmax": {"passed": true, "attempts": 3, "la', b"\x00" * 64,
                                    b'["softmax"]', b"\xff\xfe{}"])
def test_a_damaged_record_is_moved_aside_and_named_never_overwritten(record_at, capsys, damage):
    record_at.parent.mkdir(parents=True)
    record_at.write_bytes(damage)  # a half-synced Drive file, cut mid-write
    progress.record("merge", True)
    out = capsys.readouterr().out
    aside = [p for p in record_at.parent.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == damage, "the damaged record must be kept as it was"
    assert str(aside[0]) in out and "import_progress" in out and len(out.strip().splitlines()) == 1, out
    assert progress.load() == {"merge": {**progress.load()["merge"], "passed": True, "attempts": 1}}
    progress.record("merge", True)  # the new record is whole: nothing more is moved aside
    assert len([p for p in record_at.parent.iterdir() if ".damaged-" in p.name]) == 1


def test_reading_a_damaged_record_moves_it_aside_too(record_at, capsys):
    record_at.parent.mkdir(parents=True)
    record_at.write_text('{"softmax": {"passed": tr')
    assert show_progress(chapter=4)["softmax"] is False
    out = capsys.readouterr().out
    (aside,) = [p for p in record_at.parent.iterdir() if ".damaged-" in p.name]
    assert aside.read_text() == '{"softmax": {"passed": tr' and str(aside) in out
    assert not record_at.exists(), "nothing was written over it"


def test_a_damaged_record_fixed_by_hand_merges_back(record_at, capsys):
    record_at.parent.mkdir(parents=True)
    whole = json.dumps({"softmax": {"passed": True, "attempts": 2, "last": "2026-01-01 10:00:00"}})
    record_at.write_text(whole[:-9])
    progress.record("merge", False)
    (aside,) = [p for p in record_at.parent.iterdir() if ".damaged-" in p.name]
    aside.write_text(whole)  # the rest of the file arrived (or the reader repaired it)
    assert import_progress(aside) == 1
    data = progress.load()
    assert data["softmax"]["passed"] and data["merge"]["attempts"] == 1


def test_an_empty_file_is_an_empty_record(record_at, capsys):
    record_at.parent.mkdir(parents=True)
    record_at.write_text("")
    progress.record("merge", True)
    assert progress.load()["merge"]["passed"] and capsys.readouterr().out == ""


def _record_many(path: str, writer: int, count: int) -> None:
    import os

    os.environ[progress.PROGRESS_ENV] = path
    for i in range(count):
        progress.record(f"exercise_{writer}_{i}", True)


def test_three_kernels_recording_at_once_lose_nothing(record_at):
    import multiprocessing

    # separate processes, as three notebook kernels are (fork where there is one: no second import of torch)
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    workers = [ctx.Process(target=_record_many, args=(str(record_at), w, 60)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    data = progress.load()
    assert len(data) == 180 and all(entry["passed"] for entry in data.values())
    assert not [p for p in record_at.parent.iterdir() if ".damaged-" in p.name or p.name.endswith(".tmp")]


def test_an_unwritable_place_is_one_line_and_the_check_goes_on(tmp_path, monkeypatch, capsys):
    from gpt2lib.exercises import Case, Exercise

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(progress.PROGRESS_ENV, str(blocker / "progress.json"))
    monkeypatch.setattr(progress, "_reported", set())
    ex = Exercise("demo_unwritable", chapter=0, title="demo", level="easy", minutes=1, reference=abs,
                  cases=lambda rng: [Case("one", (-rng.randint(1, 9),))])
    assert ex.check(abs) is True
    assert ex.check(lambda x: x) is False
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("✓") and lines[1].startswith("⚠ progress not recorded")
    assert str(blocker / "progress.json") in lines[1] and progress.PROGRESS_ENV in lines[1]
    assert sum(line.startswith("⚠") for line in lines) == 1, "said once, not after every check"
    assert progress.load() == {}


def test_a_file_system_without_flock_still_records(record_at, monkeypatch):
    # some network mounts refuse flock; older filelock versions then raise NotImplementedError
    def refuse(self, *args, **kwargs):
        raise NotImplementedError("FileSystem does not appear to support flock")

    monkeypatch.setattr(progress.FileLock, "acquire", refuse)
    progress.record("merge", True)
    assert progress.load()["merge"]["passed"]
