"""A real public classification task, for when the machine is online: SST-2, the Stanford Sentiment
Treebank's binary split as GLUE distributes it (Socher et al. 2013; Wang et al. 2018), one sentence of a
film review per example, labelled positive (1) or negative (0).

It is fetched once with pooch (the archive's MD5 checked, then cached under gpt2lib's cache folder), so
a second run, or a run after the machine goes offline, reads the cache. GLUE keeps its test labels
private, so the test split here is GLUE's labelled development split (872 sentences); the training and
validation examples are drawn, seeded, from GLUE's training split. Nothing in the book's build or tests
downloads it: offline, :func:`sst2` raises :class:`~gpt2lib.runtime.OfflineError` in one line.
"""
from __future__ import annotations

import csv
import hashlib
import io
import random
import zipfile
from pathlib import Path

from ..runtime import InputError, OfflineError, UserError, cache_dir, is_online
from .tasks import Example, Splits

__all__ = ["SST2_URL", "SST2_MD5", "DatasetError", "sst2", "read_sst2_archive"]

SST2_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
SST2_MD5 = "9f81648d4199384278b86e315dac217c"  # the archive GLUE's download script and torchtext fetch
_MEMBERS = {"train": "SST-2/train.tsv", "dev": "SST-2/dev.tsv"}


class DatasetError(UserError, ValueError):
    """A downloaded dataset that is not what it should be (damaged, or changed upstream)."""


def read_sst2_archive(path: str | Path) -> dict[str, list[Example]]:
    """GLUE's ``SST-2.zip`` as ``{"train": [...], "dev": [...]}``: each TSV has a header
    ``sentence<TAB>label`` and one labelled sentence a row."""
    out: dict[str, list[Example]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for split, member in _MEMBERS.items():
                text = archive.read(member).decode("utf-8")
                rows = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
                header = next(rows, None)
                if header != ["sentence", "label"]:
                    raise DatasetError(f"{path}: {member} starts with {header!r}, not ['sentence', 'label']")
                out[split] = [Example(sentence.strip(), int(label)) for sentence, label in rows]
    except (KeyError, zipfile.BadZipFile, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path} is not GLUE's SST-2 archive ({exc}); delete it and run again") from None
    return out


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _archive() -> Path:
    """The cached archive, fetched first where it is missing or damaged (pooch checks its MD5)."""
    folder = cache_dir("datasets")
    path = folder / "SST-2.zip"
    if path.is_file() and _md5(path) == SST2_MD5:
        return path
    if not is_online():
        state = "damaged in the cache" if path.is_file() else "not cached"
        raise OfflineError(f"SST-2 is {state} and this machine is offline: the offline chapters use the "
                           "book's own task; run online once to fetch SST-2 (7 MB)")
    import pooch

    path.unlink(missing_ok=True)  # a damaged copy is replaced, never read
    try:
        pooch.retrieve(SST2_URL, known_hash=f"md5:{SST2_MD5}", fname=path.name, path=folder, progressbar=True)
    except ValueError as exc:  # pooch's hash mismatch; it has already removed the download
        raise DatasetError(f"SST-2's archive does not match its MD5 ({exc}); it changed upstream or the "
                           f"download was cut: run again") from None
    return path


def sst2(*, n_train: int = 1600, n_val: int = 150, n_test: int | None = None, seed: int = 0) -> Splits:
    """SST-2 as :class:`~gpt2lib.finetune.tasks.Splits`: ``n_train`` and ``n_val`` sentences drawn (seeded)
    from GLUE's training split, and GLUE's development split as the test (its first ``n_test``, or all
    872). Needs the network once; raises :class:`~gpt2lib.runtime.OfflineError` offline."""
    if n_train < 1 or n_val < 1:
        raise InputError(f"n_train and n_val must be >= 1, got {n_train} and {n_val}")
    data = read_sst2_archive(_archive())
    dev = {ex.text.lower() for ex in data["dev"]}
    # GLUE's training split holds phrases of the treebank; one equal to a test sentence would leak it
    pool = [ex for ex in data["train"] if ex.text.lower() not in dev]
    if n_train + n_val > len(pool):
        raise InputError(f"SST-2 has {len(pool)} training sentences; ask for n_train + n_val <= {len(pool)}")
    random.Random(seed).shuffle(pool)
    test = data["dev"] if n_test is None else data["dev"][:n_test]
    return Splits(pool[:n_train], pool[n_train:n_train + n_val], test)
