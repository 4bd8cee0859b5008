"""gpt2lib.book: the chapters' shared model, its cache key, and the release asset that spares a Colab
reader the training (packed, served from a local server standing in for the release URL, fetched,
hash-checked; a tampered or unreachable asset falls back to training)."""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
import torch

import gpt2lib.book as book
from gpt2lib.training import TrainConfig

from conftest import serve_folder

ROOT = Path(__file__).resolve().parents[1]


SMALL_TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}  # step {i}\n\n" for i in range(900))


def tiny_book(monkeypatch, cache: Path) -> None:
    """A book model small enough to train in seconds, on a small corpus, in a private cache."""
    import gpt2lib.data

    monkeypatch.setenv("GPT2LIB_CACHE", str(cache))
    monkeypatch.setattr(book, "load_text", lambda corpus: SMALL_TEXT)
    monkeypatch.setattr(gpt2lib.data, "load_text", lambda corpus: SMALL_TEXT)
    monkeypatch.setattr(book, "BOOK_VOCAB_SIZE", 300)
    monkeypatch.setattr(book, "BOOK_MODEL", dict(n_layer=1, n_head=2, n_embd=32, block_size=32, dropout=0.0))
    monkeypatch.setattr(book, "BOOK_TRAIN", TrainConfig(max_steps=12, batch_size=4, lr=3e-3, min_lr=3e-4,
                                                        warmup_steps=2, eval_interval=0, log_interval=4,
                                                        eval_batches=2, seed=7, device=None))


@pytest.fixture
def serve():
    """Serve a folder on 127.0.0.1 (the stand-in for the release URL); yields a function folder -> URL."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(serve_folder(folder))


def go_online(monkeypatch) -> None:
    for name in ("GPT2LIB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def test_repository_url_matches_the_book_config():
    config = (ROOT / "_config.yml").read_text("utf-8")
    assert re.search(r"^\s+url:\s*(\S+)", config, re.M).group(1) == book.REPOSITORY_URL
    assert book.BOOK_ASSETS_URL.startswith(book.REPOSITORY_URL + "/releases/download/")


def test_the_cpu_key_is_the_one_the_book_always_had():
    # 0a61585d930f: the key of the CPU run the committed chapters were executed with
    """Adding the device to the key must not change the CPU model's cache folder (the committed
    chapters' numbers come from that run), and a GPU run must get a folder of its own."""
    assert book.book_key("cpu") in book.BOOK_ASSET_SHA256
    assert book.book_key("cuda") != book.book_key("cpu")


@pytest.mark.slow
def test_release_asset_round_trip(monkeypatch, tmp_path, serve, capsys):
    tiny_book(monkeypatch, tmp_path / "publisher")
    model, tok = book.book_model(progress=False)
    assert "trained now" in capsys.readouterr().out
    path, digest = book.pack_book_model(tmp_path / "assets")
    again, digest2 = book.pack_book_model(tmp_path / "assets2")
    assert digest2 == digest and again.read_bytes() == path.read_bytes(), "the asset is not reproducible"
    monkeypatch.setattr(book, "BOOK_ASSET_SHA256", {book.book_key("cpu"): digest})
    monkeypatch.setenv(book.ASSETS_URL_ENV, serve(tmp_path / "assets"))
    go_online(monkeypatch)

    tiny_book(monkeypatch, tmp_path / "reader")  # a fresh VM: nothing cached
    fetched, tok2 = book.book_model(progress=False)
    out = capsys.readouterr().out
    assert "downloaded the published one" in out and "trained now" not in out, out
    x = torch.tensor([tok.encode("def f(x):\n    return x")])
    torch.testing.assert_close(fetched(x)[0], model(x)[0], rtol=0, atol=0)
    assert fetched.lm_head.weight.data_ptr() == fetched.wte.weight.data_ptr()
    assert book.book_model_info()["final"]["source"] == "release asset"
    book.book_model(progress=False)
    assert "loaded from the cache" in capsys.readouterr().out


@pytest.mark.slow
def test_tampered_or_unreachable_asset_trains_instead(monkeypatch, tmp_path, serve, capsys):
    tiny_book(monkeypatch, tmp_path / "publisher")
    book.book_model(progress=False)
    path, digest = book.pack_book_model(tmp_path / "assets")
    data = bytearray(path.read_bytes())
    data[-600] ^= 1  # one flipped bit inside the weights
    path.write_bytes(bytes(data))
    monkeypatch.setattr(book, "BOOK_ASSET_SHA256", {book.book_key("cpu"): digest})
    monkeypatch.setenv(book.ASSETS_URL_ENV, serve(tmp_path / "assets"))
    go_online(monkeypatch)
    capsys.readouterr()

    tiny_book(monkeypatch, tmp_path / "reader")
    book.book_model(progress=False)
    out = capsys.readouterr().out
    assert "expected" in out and "training it here instead" in out and "trained now" in out, out

    monkeypatch.setenv(book.ASSETS_URL_ENV, "http://127.0.0.1:9")  # nothing listens there
    tiny_book(monkeypatch, tmp_path / "reader2")
    book.book_model(progress=False)
    out = capsys.readouterr().out
    assert "training it here instead" in out and "trained now" in out, out


def test_offline_never_fetches(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GPT2LIB_OFFLINE", "1")
    final = tmp_path / f"{book.BOOK_CORPUS}-{book.book_key('cpu')}"
    assert book._fetch_release(final, tmp_path, tok=None) is None
    assert "offline" in capsys.readouterr().out
    assert not final.exists()
