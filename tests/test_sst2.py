"""SST-2, the online classification task: read from a cached archive in GLUE's layout; offline without it,
or with a damaged copy, one line and no network."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from gpt2lib.finetune import sst2 as sst2_module
from gpt2lib.finetune.sst2 import DatasetError, read_sst2_archive, sst2
from gpt2lib.runtime import OfflineError


def _write_archive(path: Path, n_train: int = 40, dev_rows: list[str] | None = None) -> str:
    """An archive in GLUE's layout (``SST-2/train.tsv``, ``SST-2/dev.tsv``); returns its MD5."""
    train = "sentence\tlabel\n" + "".join(f"a {'fine' if i % 2 else 'dull'} film number {i} \t{i % 2}\n"
                                          for i in range(n_train))
    dev = "sentence\tlabel\n" + "".join(dev_rows or ["a fine film number 1\t1\n", "a dull ending\t0\n"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("SST-2/train.tsv", train)
        archive.writestr("SST-2/dev.tsv", dev)
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_the_archive_is_read_as_labelled_sentences(tmp_path):
    _write_archive(tmp_path / "SST-2.zip", n_train=4)
    data = read_sst2_archive(tmp_path / "SST-2.zip")
    assert [ex.label for ex in data["train"]] == [0, 1, 0, 1]
    assert data["train"][1].text == "a fine film number 1"  # stripped
    assert [(ex.text, ex.label) for ex in data["dev"]] == [("a fine film number 1", 1), ("a dull ending", 0)]


def test_a_cached_archive_is_used_offline_and_the_test_never_leaks_into_training(private_cache, monkeypatch):
    md5 = _write_archive(private_cache / "datasets" / "SST-2.zip")
    monkeypatch.setattr(sst2_module, "SST2_MD5", md5)
    splits = sst2(n_train=20, n_val=5, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 5, 2)
    test_texts = {ex.text.lower() for ex in splits.test}
    # "a fine film number 1" is in both of GLUE's splits here: it is kept out of training and validation
    assert not test_texts & {ex.text.lower() for ex in splits.train + splits.val}
    assert sst2(n_train=20, n_val=5, seed=0) == splits          # seeded: the same draw every time
    assert sst2(n_train=20, n_val=5, seed=1).train != splits.train


def test_offline_without_a_cached_copy_is_one_clear_error(private_cache):
    with pytest.raises(OfflineError, match="not cached and this machine is offline"):
        sst2()


def test_a_damaged_cached_copy_is_never_read(private_cache):
    _write_archive(private_cache / "datasets" / "SST-2.zip")   # its MD5 is not the real archive's
    with pytest.raises(OfflineError, match="damaged in the cache"):
        sst2()


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_a_file_that_is_not_the_archive_says_so(tmp_path, content):
    path = tmp_path / "SST-2.zip"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("SST-2/train.tsv", "text\tlabel\n")
            archive.writestr("SST-2/dev.tsv", "sentence\tlabel\n")
    else:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match="SST-2"):
        read_sst2_archive(path)


def test_asking_for_more_than_there_is_is_refused(private_cache, monkeypatch):
    monkeypatch.setattr(sst2_module, "SST2_MD5", _write_archive(private_cache / "datasets" / "SST-2.zip"))
    with pytest.raises(ValueError, match="n_train \\+ n_val <="):
        sst2(n_train=100, n_val=10)
