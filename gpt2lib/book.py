"""The book's default model: small enough to train on a laptop CPU in about a minute, real enough to
beat the bigram baseline clearly and to write text that reads like its corpus.

Chapters 4 to 9 each open in a fresh runtime and need a trained model. :func:`book_model` gets it
once and caches the checkpoint under ``cache_dir("book-model", <key>)``; later calls load it in a
second. The key hashes the corpus text, both configurations and the kind of device that trains it
(a CPU run is seeded and deterministic; a GPU run is fast but its numbers differ), so a change to any
of them gets a new model instead of loading a stale one.

Where to get it, in order: the cache; when online, the published release asset for this exact key
(:data:`BOOK_ASSETS_URL`, checked against its sha256 in :data:`BOOK_ASSET_SHA256`), so that a Colab
reader opening chapter 6 does not retrain; otherwise it trains now, on the GPU when there is one
(seconds) or on the CPU (about two minutes on two cores). ``make release-assets`` rebuilds the asset
from the same seeded CPU run (:func:`pack_book_model`).

The tokenizer is a byte-level BPE with 2,048 ids trained on the corpus's training split. GPT-2's
50,257-id vocabulary would make a model this small mostly embedding table (50,257 x 128 = 6.4M of its
parameters) and leave each id too few examples in a 0.4 MB corpus to learn from.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from .data import TokenData, load_text, prepare, split_text
from .evaluation import evaluate
from .model import PRESETS, GPTConfig
from .atomic import write_bytes_atomic, write_text_atomic
from .runtime import cache_dir, get_device, is_online, seed_everything
from .training.checkpoint import has_checkpoint, load_checkpoint, read_checkpoint_info, save_checkpoint
from .training.loop import TrainConfig, train

__all__ = ["BOOK_CORPUS", "BOOK_VOCAB_SIZE", "BOOK_MODEL", "BOOK_TRAIN", "book_tokenizer", "book_data",
           "book_model", "book_model_info", "book_model_config", "pack_book_model", "REPOSITORY_URL",
           "BOOK_ASSETS_URL", "BOOK_ASSET_SHA256", "chapter_model", "ChapterModel", "OPENAI_NAME", "BOOK_NAME"]

BOOK_CORPUS = "python-docs"
BOOK_VOCAB_SIZE = 2048
# The shape of the book's model is the "small" preset (vocab_size comes from the tokenizer).
BOOK_MODEL: dict[str, Any] = dict(PRESETS["small"], dropout=0.0)
BOOK_TRAIN = TrainConfig(max_steps=600, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=30,
                         weight_decay=0.1, grad_clip=1.0, eval_interval=100, log_interval=10, seed=1337,
                         device=None)  # None: gpt2lib.runtime.get_device() (cuda, then mps, then cpu)

# The repository (the same URL as _config.yml's repository.url; a test keeps them equal) and, next to
# it, where its release assets are published. GPT2LIB_BOOK_ASSETS_URL overrides the latter (the tests
# point it at a local server).
REPOSITORY_URL = "https://github.com/gpt2-from-scratch/gpt2-from-scratch"
BOOK_ASSETS_URL = f"{REPOSITORY_URL}/releases/download/book-model-v1"
ASSETS_URL_ENV = "GPT2LIB_BOOK_ASSETS_URL"
# sha256 of each published asset, by cache key. A key that is not here (a changed config, a GPU run)
# is never downloaded: it trains. `make release-assets` prints the line to add after a change.
BOOK_ASSET_SHA256: dict[str, str] = {
    "0a61585d930f": "0cac88076eb41a072ef5fe219e2ab75d5765862f9c505a8fa66f9061753b12f6",
}


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def book_tokenizer(corpus: str | None = None, vocab_size: int | None = None, *, progress: bool = False):
    """The book's BPE tokenizer, trained on ``corpus``'s training split (cached after the first call).
    ``None`` means the book's own corpus and vocabulary size."""
    corpus = BOOK_CORPUS if corpus is None else corpus
    vocab_size = BOOK_VOCAB_SIZE if vocab_size is None else vocab_size
    from .tokenizer import BPETokenizer

    train_text, _ = split_text(load_text(corpus))
    folder = cache_dir("book-model", "tokenizers")
    path = folder / f"{corpus}-{vocab_size}-{_key(train_text, vocab_size)}.json"
    if path.exists():
        return BPETokenizer.load(path)
    tok = BPETokenizer.train(train_text, vocab_size, progress=progress, name=f"{corpus}-{vocab_size}")
    tok.save(path)  # BPETokenizer.save writes to a temporary file and renames it
    return tok


def book_data(tokenizer: Any = None, corpus: str | None = None) -> TokenData:
    """The corpus tokenized with the book's tokenizer, as memory-mapped train and validation ids."""
    corpus = BOOK_CORPUS if corpus is None else corpus
    return prepare(corpus, tokenizer if tokenizer is not None else book_tokenizer(corpus))


def book_model_config(vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, **BOOK_MODEL)


def book_model(progress: bool = True):
    """``(model, tokenizer)``: the book's trained default model (eval mode, on the CPU; move it with
    ``.to(device)``) and its tokenizer.

    Loaded from the cache when an earlier call got it; otherwise fetched from the release (online, hash
    checked) or trained now, and cached atomically: built in a temporary folder that is renamed into
    place only when complete, so an interrupted run never leaves a half-written model to load.
    Its measured metrics (validation loss, bits per byte against the bigram's) are printed either way and
    returned by :func:`book_model_info`.
    """
    tok = book_tokenizer(progress=progress)
    final, root = _book_folder()
    with _exclusive(root / f"{final.name}.lock"):
        return _load_or_train(final, root, tok, progress)


OPENAI_NAME = "OpenAI's GPT-2 124M"
BOOK_NAME = "the book's small model"


class ChapterModel(NamedTuple):
    """What :func:`chapter_model` returns; unpacks as ``model, tok, name, openai = chapter_model()``."""

    model: Any
    tokenizer: Any
    name: str       # OPENAI_NAME or BOOK_NAME, for the prose
    openai: bool    # True when the model is OpenAI's GPT-2


def chapter_model(progress: bool = True, download: bool = True) -> ChapterModel:
    """OpenAI's GPT-2 124M where it can be had (Hugging Face's local cache, or the hub when online and
    ``download``), with GPT-2's own tokenizer; otherwise the book's model (:func:`book_model`). Either way
    on the CPU, in eval mode, with one line saying which it is and why."""
    from .hf import find_gpt2, load_hf

    folder = find_gpt2(download=download)
    if folder is not None:
        from .tokenizer import BPETokenizer

        print(f"{OPENAI_NAME}, from Hugging Face's cache (OpenAI's weights; GPT-2's tokenizer from gpt2lib)")
        return ChapterModel(load_hf(folder), BPETokenizer.gpt2(), OPENAI_NAME, True)
    print("OpenAI's GPT-2 is not in Hugging Face's local cache and the hub cannot be reached: "
          "the book's small model stands in")
    model, tok = book_model(progress=progress)
    return ChapterModel(model.eval(), tok, BOOK_NAME, False)


def book_model_info(progress: bool = True) -> dict[str, Any]:
    """The book model's ``checkpoint.json``: its configs, step and, under ``"final"``, the metrics measured
    when it was trained (``val_loss``, ``perplexity``, ``bits_per_byte``, ``bigram_bits_per_byte``, ...)."""
    final, _ = _book_folder()
    if not has_checkpoint(final):
        book_model(progress=progress)
    return read_checkpoint_info(final)


def book_key(device: str | None = None) -> str:
    """The cache key of the book model that ``device`` (default: this machine's) would train."""
    kind = (device or get_device().type).split(":")[0]
    # The device enters the key as the config's field, so a CPU key equals the one the book always had.
    return _key(load_text(BOOK_CORPUS), BOOK_VOCAB_SIZE, BOOK_MODEL,
                dict(dataclasses.asdict(BOOK_TRAIN), device=kind))


def _book_folder() -> tuple[Path, Path]:
    root = cache_dir("book-model")
    return root / f"{BOOK_CORPUS}-{book_key()}", root


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One trainer at a time: chapters started together wait for the first one's model instead of
    each training their own copy on the same cores."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the atomic rename still keeps the cache whole
        yield
        return
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print("book model: another process is training it; waiting for that one to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _summary(metrics: dict[str, Any]) -> str:
    return (f"val loss {metrics.get('val_loss', float('nan')):.3f}, "
            f"{metrics.get('bits_per_byte', float('nan')):.3f} bits per byte "
            f"(a bigram over the same tokens: {metrics.get('bigram_bits_per_byte', float('nan')):.3f})")


def _load_or_train(final: Path, root: Path, tok: Any, progress: bool):
    if has_checkpoint(final):
        model, saved_tok, info = load_checkpoint(final)
        print(f"book model: loaded from the cache, step {info['step']}, {_summary(info.get('final', {}))}")
    else:
        print(_fetch_release(final, root, tok) or _train(final, root, tok, progress))
        model, saved_tok, _ = load_checkpoint(final)
    return model, saved_tok or tok


def _train(final: Path, root: Path, tok: Any, progress: bool) -> str:
    from .model import GPT

    device = get_device()
    data = book_data(tok)
    seed_everything(BOOK_TRAIN.seed)
    model = GPT(book_model_config(tok.vocab_size))
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".training-"))
    try:
        config = dataclasses.replace(BOOK_TRAIN, device=str(device))
        result = train(model, data, config, out_dir=tmp, tokenizer=tok, progress=progress)
        # Measured once here, so that chapters can quote them without re-evaluating.
        final_metrics = {**evaluate(model, data), "seconds": result.seconds, "tokens_per_s": result.tokens_per_s,
                         "device": device.type}
        _add_final_metrics(tmp, final_metrics)
        _move_into_place(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return (f"book model: trained now on the {device.type} in {result.seconds:.0f} s "
            f"({result.tokens_per_s:,.0f} tokens/s), {_summary(final_metrics)}; cached")


def _add_final_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    info_path = folder / "checkpoint.json"
    info = json.loads(info_path.read_text("utf-8"))
    info["final"] = metrics
    write_text_atomic(info_path, json.dumps(info, indent=1))


def _move_into_place(tmp: Path, final: Path) -> None:
    try:
        os.replace(tmp, final)  # atomic; fails if another process finished first
    except OSError:
        if not has_checkpoint(final):
            raise


# --------------------------------------------------------------------------------- release assets
ASSET_MEMBERS = ("model.safetensors", "tokenizer.json", "metrics.json")


def asset_name(key: str) -> str:
    return f"book-model-{BOOK_CORPUS}-{key}.tar"


def pack_book_model(out_dir: str | os.PathLike) -> tuple[Path, str]:
    """Write the release asset of the CPU-trained book model into ``out_dir``; return ``(path, sha256)``.

    The asset is a tar of the weights, the tokenizer and the measured metrics (timings left out), with
    fixed names, order, owners and times, so the same seeded CPU run gives the same bytes."""
    from safetensors.torch import save

    key = book_key("cpu")
    final = cache_dir("book-model") / f"{BOOK_CORPUS}-{key}"
    if get_device().type != "cpu":
        raise RuntimeError("the release asset is the CPU run's model: run with GPT2LIB_DEVICE=cpu")
    model, tok = book_model(progress=False)
    info = read_checkpoint_info(final)
    metrics = {k: v for k, v in info.get("final", {}).items() if k not in ("seconds", "tokens_per_s", "device")}
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied
    with tempfile.TemporaryDirectory() as tmp:
        tok.save(Path(tmp) / "tokenizer.json")
        files = {"model.safetensors": save(state, metadata={"key": key}),
                 "tokenizer.json": (Path(tmp) / "tokenizer.json").read_bytes(),
                 "metrics.json": json.dumps({"key": key, "step": info["step"], "final": metrics},
                                            indent=1, sort_keys=True).encode()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ASSET_MEMBERS:
            member = tarfile.TarInfo(name)
            member.size, member.mtime, member.mode = len(files[name]), 0, 0o644
            tar.addfile(member, io.BytesIO(files[name]))
    raw = buffer.getvalue()
    path = write_bytes_atomic(Path(out_dir) / asset_name(key), raw)
    return path, hashlib.sha256(raw).hexdigest()


def _fetch_release(final: Path, root: Path, tok: Any) -> str | None:
    """Download, check and unpack the release asset for this key into ``final``; ``None`` (with one line
    saying why) when it cannot be had, so the caller trains instead."""
    key = final.name.rsplit("-", 1)[-1]
    base = os.environ.get(ASSETS_URL_ENV) or BOOK_ASSETS_URL
    expected = BOOK_ASSET_SHA256.get(key)
    if expected is None:
        return None  # no published asset for this configuration or device: train, as always
    host = urllib.request.urlparse(base).hostname or ""
    if not is_online(host, urllib.request.urlparse(base).port or (443 if base.startswith("https") else 80)):
        print("book model: offline, so not fetching the published one; training it here instead")
        return None
    url = f"{base}/{asset_name(key)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            raw = response.read()
    except OSError as exc:
        print(f"book model: could not fetch {url} ({exc}); training it here instead")
        return None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected:
        print(f"book model: the published asset has sha256 {digest[:12]}..., expected {expected[:12]}...; "
              "not using it, training it here instead")
        return None
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".fetching-"))
    try:
        _unpack(raw, tmp, tok, key)
        _move_into_place(tmp, final)
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        print(f"book model: the published asset could not be unpacked ({exc}); training it here instead")
        return None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return f"book model: downloaded the published one ({len(raw) / 1e6:.1f} MB, sha256 checked); cached"


def _unpack(raw: bytes, folder: Path, tok: Any, key: str) -> None:
    """Rebuild a checkpoint folder from the asset's three members, through the package's own writers."""
    from safetensors.torch import load

    from .model import GPT
    from .tokenizer import BPETokenizer

    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
        names = tar.getnames()
        if sorted(names) != sorted(ASSET_MEMBERS):
            raise ValueError(f"unexpected members {names}")
        files = {name: tar.extractfile(name).read() for name in ASSET_MEMBERS}  # type: ignore[union-attr]
    meta = json.loads(files["metrics.json"])
    if meta.get("key") != key:
        raise ValueError(f"the asset is for key {meta.get('key')!r}, not {key!r}")
    (folder / "tokenizer.json").write_bytes(files["tokenizer.json"])
    saved_tok = BPETokenizer.load(folder / "tokenizer.json")
    if saved_tok.merges != tok.merges:
        raise ValueError("its tokenizer differs from this machine's book tokenizer")
    (folder / "tokenizer.json").unlink()
    model = GPT(book_model_config(saved_tok.vocab_size))
    state = load(files["model.safetensors"])
    state["lm_head.weight"] = state["wte.weight"]  # tied: saved once
    model.load_state_dict(state)
    save_checkpoint(model, folder, optimizer=None, step=int(meta["step"]),
                    train_config=dataclasses.replace(BOOK_TRAIN, device="cpu"), tokenizer=saved_tok)
    _add_final_metrics(folder, {**meta["final"], "device": "cpu", "source": "release asset"})
