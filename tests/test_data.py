"""gpt2lib.data: corpora, the fixed split, token memmaps and batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2lib.data import (get_batch, load_text, prepare, python_docs_text, sequential_batches, split_text,
                          tokenizer_fingerprint)
from gpt2lib.tokenizer import BPETokenizer

TEXT = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog {i % 7}.\n" for i in range(400))


pytestmark = pytest.mark.usefixtures("private_cache")  # the shared fixture of conftest.py


@pytest.fixture
def byte_tok():
    return BPETokenizer([], name="bytes")  # 256 byte ids + <|endoftext|>: fast and exact


def test_python_docs_is_embedded_and_stable():
    text = python_docs_text()
    assert len(text) > 100_000
    assert "The \"if\" statement" in text
    assert python_docs_text() == text  # sorted topics: the same text every call


def test_split_is_a_partition_at_a_line_boundary():
    train, val = split_text(TEXT, 0.1)
    assert train + val == TEXT
    assert train.endswith("\n") and val.startswith("Line ")
    assert 0.08 < len(val) / len(TEXT) < 0.12


@pytest.mark.parametrize("fraction", [0, 1, -0.5, 1.5])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        split_text(TEXT, fraction)


def test_split_rejects_too_short_text():
    with pytest.raises(ValueError, match="too short"):
        split_text("a\n", 0.1)


def test_load_text_paths_and_errors(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "b.txt").write_text("second", encoding="utf-8")
    (folder / "a.md").write_text("first", encoding="utf-8")
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    assert load_text(folder) == "first\n\nsecond"
    assert load_text(folder / "b.txt") == "second"
    with pytest.raises(FileNotFoundError, match="neither a known name"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text(tmp_path / "latin1.txt")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no text files"):
        load_text(tmp_path / "nothing")


def test_tiny_shakespeare_offline_says_what_to_do():
    with pytest.raises(RuntimeError, match="offline"):
        load_text("tiny-shakespeare")


@pytest.fixture
def shakespeare_server(monkeypatch, tmp_path):
    """A loopback server standing in for the corpus' URL, and a cache folder of the test's own."""
    import functools
    import hashlib
    import http.server
    import threading

    from gpt2lib import data as data_mod

    served = tmp_path / "served"
    served.mkdir()
    body = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    (served / "input.txt").write_text(body, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(data_mod, "TINY_SHAKESPEARE_URL", f"http://127.0.0.1:{server.server_port}/input.txt")
    monkeypatch.setattr(data_mod, "TINY_SHAKESPEARE_SHA256", hashlib.sha256(body.encode()).hexdigest())
    monkeypatch.setattr(data_mod, "is_online", lambda: True)
    monkeypatch.setenv("GPT2LIB_CACHE", str(tmp_path / "cache"))
    yield served, body
    server.shutdown()


def test_tiny_shakespeare_is_downloaded_once_checked_and_cached(shakespeare_server, monkeypatch):
    from gpt2lib import data as data_mod

    served, body = shakespeare_server
    assert load_text("tiny-shakespeare") == body
    (served / "input.txt").unlink()  # the second load must not need the server
    monkeypatch.setattr(data_mod, "is_online", lambda: False)
    assert load_text("tiny-shakespeare") == body


def test_a_damaged_cached_copy_is_downloaded_again(shakespeare_server):
    from gpt2lib.runtime import cache_dir

    _, body = shakespeare_server
    load_text("tiny-shakespeare")
    (cache_dir("corpora") / "tiny-shakespeare.txt").write_text("half a fi", encoding="utf-8")
    assert load_text("tiny-shakespeare") == body


def test_a_download_that_does_not_match_its_hash_is_refused_and_not_kept(shakespeare_server):
    from gpt2lib.data import CorpusError
    from gpt2lib.runtime import cache_dir

    served, _ = shakespeare_server
    (served / "input.txt").write_text("Something else entirely\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="sha256"):
        load_text("tiny-shakespeare")
    assert not (cache_dir("corpora") / "tiny-shakespeare.txt").exists()


def test_prepare_writes_uint16_memmaps_that_decode_back(tmp_path, byte_tok):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    data = prepare(path, byte_tok)
    assert isinstance(data.train, np.memmap) and data.train.dtype == np.uint16
    train, val = split_text(TEXT)
    assert byte_tok.decode(data.train.tolist()) == train
    assert byte_tok.decode(data.val.tolist()) == val
    assert (data.train_bytes, data.val_bytes) == (len(train.encode()), len(val.encode()))
    again = prepare(path, byte_tok)
    assert again.folder == data.folder and np.array_equal(again.train, data.train)
    # another tokenizer gets its own arrays, never the stale ones
    other = BPETokenizer.train(TEXT, 300, progress=False)
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(byte_tok)
    assert prepare(path, other).folder != data.folder


def test_prepare_keeps_special_token_text_as_text(tmp_path, byte_tok):
    path = tmp_path / "t.txt"
    path.write_text(TEXT + "quoted <|endoftext|> here\n" * 50, encoding="utf-8")
    data = prepare(path, byte_tok, cache=False)
    assert byte_tok.eos_token_id not in set(np.concatenate([data.train, data.val]).tolist())


def test_get_batch_targets_are_inputs_shifted():
    data = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    torch.testing.assert_close(y[:, :-1], x[:, 1:])
    torch.testing.assert_close(y[:, 0], x[:, 0] + 1)  # consecutive ids: windows come from the data
    x2, _ = get_batch(data, 4, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, x2)


def test_batches_reject_bad_shapes():
    data = np.arange(10, dtype=np.uint16)
    with pytest.raises(ValueError, match="block_size"):
        get_batch(data, 2, 10)
    with pytest.raises(ValueError, match="batch_size"):
        get_batch(data, 0, 4)


def test_sequential_batches_predict_each_token_once():
    data = np.arange(103, dtype=np.uint16)
    seen = torch.cat([y.reshape(-1) for _, y in sequential_batches(data, 3, 10)])
    # windows of 10 starting at 0, 10, ..., 90: targets 1..100, each once, in order
    assert seen.tolist() == list(range(1, 101))
    assert len(list(sequential_batches(data, 3, 10, max_batches=2))) == 2


# ------------------------------------------------------------------------- issue 12: a damaged cache is rebuilt
@pytest.mark.parametrize("damage", ["truncate", "flip-a-byte", "delete", "meta-garbage"])
def test_a_damaged_token_cache_is_rebuilt(tmp_path, byte_tok, damage):
    import json

    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    first = prepare(path, byte_tok)
    folder = first.folder
    expected_train, expected_val = np.array(first.train), np.array(first.val)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["files"]["val.bin"]["size"] == 2 * len(expected_val)  # size and hash recorded when written
    assert len(meta["files"]["val.bin"]["sha256"]) == 64
    del first
    if damage == "truncate":
        (folder / "val.bin").write_bytes((folder / "val.bin").read_bytes()[:-3])
    elif damage == "flip-a-byte":
        raw = bytearray((folder / "train.bin").read_bytes())
        raw[10] ^= 0xFF
        (folder / "train.bin").write_bytes(bytes(raw))
    elif damage == "delete":
        (folder / "train.bin").unlink()
    else:
        (folder / "meta.json").write_text("{not json")
    again = prepare(path, byte_tok)
    assert again.folder == folder
    assert np.array_equal(again.train, expected_train) and np.array_equal(again.val, expected_val)


def test_get_batch_refuses_starts_out_of_range():
    data = np.arange(100, dtype=np.uint16)
    x, _ = get_batch(data, 2, 10, starts=torch.tensor([0, 89]))  # the first and the last window that fit
    assert x[1, -1] == 98
    for bad in ([0, 90], [-1, 3]):
        with pytest.raises(ValueError, match=r"starts must lie in \[0, 89\]"):
            get_batch(data, 2, 10, starts=torch.tensor(bad))
    with pytest.raises(ValueError, match="integer positions"):
        get_batch(data, 2, 10, starts=torch.tensor([0.5, 1.0]))
