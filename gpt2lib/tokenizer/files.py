"""Tokenizer files: GPT-2's own (encoder.json + vocab.bpe), Hugging Face's (vocab.json + merges.txt), and
the book's one-file format; plus the real GPT-2 vocabulary, offline and hash-checked.

The real files ship with gpt2lib (``tokenizer/gpt2/``: OpenAI's two GPT-2 files unchanged, under OpenAI's
licence, beside it); their sha256 hashes are the ones tiktoken checks, so a corrupted or substituted file is
caught before it can silently change every id.

Each function takes the tokenizer class (``cls``) from :class:`~.bpe.BPETokenizer`'s methods, so this module
never imports ``bpe`` at run time: the arrow goes one way, ``bpe -> files``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import file_sha256, write_text_atomic
from ..runtime import MissingFileError, UserError
from .bytes_map import GPT2_PATTERN, bytes_to_str, str_to_bytes

if TYPE_CHECKING:
    from .bpe import BPETokenizer

GPT2_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}
FORMAT = "gpt2lib.BPETokenizer"
FORMAT_VERSION = 1


class TokenizerFileError(UserError, ValueError):
    """A tokenizer file that cannot be used as it is: corrupt, hand-edited into an invalid state, or of
    another format. The message names the file and the fix."""


def gpt2_files_dir() -> Path:
    """The folder holding GPT-2's encoder.json and vocab.bpe, shipped with gpt2lib (``tokenizer/gpt2/``)."""
    return Path(__file__).resolve().parent / "gpt2"


def sha256(path: str | Path) -> str:
    """A file's sha256: chapter 7 checks GPT-2's files with it (:func:`gpt2lib.atomic.file_sha256`)."""
    return file_sha256(path)


def read_merges(path: Path) -> list[tuple[bytes, bytes]]:
    """Merges from a vocab.bpe / merges.txt file: an optional '#version' line, then 'left right' lines."""
    merges = []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip() or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise TokenizerFileError(f"{path}, line {n}: expected two tokens separated by one space, got {line!r}; "
                                     "the merges file is corrupt")
        merges.append((_token_bytes(parts[0], path, f"line {n}"), _token_bytes(parts[1], path, f"line {n}")))
    if not merges:
        raise TokenizerFileError(f"{path} holds no merges: is it the right file?")
    return merges


def _token_bytes(text: str, path: Path, where: str) -> bytes:
    try:
        return str_to_bytes(text)
    except ValueError as exc:
        raise TokenizerFileError(f"{path}, {where}: {exc}") from None


def _build(cls, path: Path, merges, specials, pattern: str, name: str) -> "BPETokenizer":
    """The constructor, with its complaints about the merges, special tokens or pattern naming the file."""
    try:
        return cls(merges, specials, pattern, name=name)
    except (TypeError, ValueError) as exc:
        raise TokenizerFileError(f"{path}: {exc}") from None


def _check_ids(encoder: object, where: Path) -> dict[str, int]:
    """An encoder.json / vocab.json must map each token to its own int id in 0..len - 1."""
    if not isinstance(encoder, dict):
        raise TokenizerFileError(f"{where} should hold a JSON object mapping tokens to ids, "
                                 f"not a JSON {type(encoder).__name__}")
    n = len(encoder)
    seen: dict[int, str] = {}
    for token, i in encoder.items():
        if isinstance(i, bool) or not isinstance(i, int):
            raise TokenizerFileError(f"{where}: token {token!r} has the id {i!r}; ids must be integers")
        if not 0 <= i < n:
            raise TokenizerFileError(f"{where}: token {token!r} has the id {i}, out of range for {n} tokens "
                                     f"(ids run from 0 to {n - 1}); the file is corrupt")
        if i in seen:
            raise TokenizerFileError(f"{where}: tokens {seen[i]!r} and {token!r} share the id {i}; the file is corrupt")
        seen[i] = token
    return encoder


def _check_encoder(tok: "BPETokenizer", encoder: dict[str, int], where: Path) -> None:
    """Every entry of an encoder.json / vocab.json must agree with the ids the merges imply."""
    expected = {bytes_to_str(tok.token_bytes(i)): i for i in range(tok.vocab_size) if i not in tok._special_by_id}
    expected.update(tok.special_tokens)
    if encoder != expected:
        extra = sorted(set(encoder) - set(expected))[:3]
        missing = sorted(set(expected) - set(encoder))[:3]
        moved = [k for k in expected if k in encoder and encoder[k] != expected[k]][:3]
        raise TokenizerFileError(f"{where} does not match its merges file (sizes {len(encoder)} vs {len(expected)}; "
                         f"unexpected {extra}, missing {missing}, different ids for {moved}): the two files "
                                 "belong to different tokenizers or one is corrupt")


def _from_pair(cls, encoder_path: Path, merges_path: Path, name: str) -> "BPETokenizer":
    merges = read_merges(merges_path)
    try:
        encoder = json.loads(Path(encoder_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TokenizerFileError(f"{encoder_path} is not valid JSON ({exc}): the file is corrupt") from None
    encoder = _check_ids(encoder, Path(encoder_path))
    specials = [k for k in encoder if k.startswith("<|") and k.endswith("|>")]
    specials.sort(key=lambda k: encoder[k])
    tok = _build(cls, Path(merges_path), merges, specials, GPT2_PATTERN, name)
    _check_encoder(tok, encoder, Path(encoder_path))
    return tok


@lru_cache(maxsize=1)
def _gpt2_merges(cls: type[BPETokenizer]) -> tuple[tuple[bytes, bytes], ...]:
    folder = gpt2_files_dir()
    for fname, digest in GPT2_SHA256.items():
        path = folder / fname
        if not path.exists():
            raise MissingFileError(f"{path} is missing: the installed gpt2lib is incomplete; reinstall it")
        got = file_sha256(path)
        if got != digest:
            raise TokenizerFileError(f"{path} has sha256 {got}, not GPT-2's {digest}: the file was modified; "
                                     "reinstall gpt2lib")
    tok = _from_pair(cls, folder / "encoder.json", folder / "vocab.bpe", "gpt2")
    return tuple(tok.merges)


def load_gpt2(cls) -> "BPETokenizer":
    """GPT-2's tokenizer: 50,000 merges + <|endoftext|> = 50257 ids."""
    return cls(_gpt2_merges(cls), ("<|endoftext|>",), GPT2_PATTERN, name="gpt2")


def from_pretrained(cls, dir_or_name) -> "BPETokenizer":
    path = Path(dir_or_name)
    if path.is_dir():
        if (path / "encoder.json").exists() and (path / "vocab.bpe").exists():
            return _from_pair(cls, path / "encoder.json", path / "vocab.bpe", path.name)
        if (path / "vocab.json").exists() and (path / "merges.txt").exists():
            return _from_pair(cls, path / "vocab.json", path / "merges.txt", path.name)
        if (path / "tokenizer.gpt2lib.json").exists():
            return load(cls, path / "tokenizer.gpt2lib.json")
        raise MissingFileError(f"{path} holds no tokenizer: expected encoder.json + vocab.bpe, vocab.json + "
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
    """Read a file written by :func:`save`, checking every field (a hand-edited file gets a clear
    :class:`TokenizerFileError` naming the field, never a tokenizer that silently encodes differently)."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.gpt2lib.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TokenizerFileError(f"{path} is not valid JSON ({exc}): the file is corrupt") from None
    except UnicodeDecodeError:
        raise TokenizerFileError(f"{path} is not UTF-8 text: the file is corrupt") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TokenizerFileError(f"{path} is not a gpt2lib tokenizer file (no \"format\": \"{FORMAT}\"); for "
                                 "GPT-2 or Hugging Face files use BPETokenizer.from_pretrained(folder)")
    if data.get("version") != FORMAT_VERSION:
        raise TokenizerFileError(f"{path} has format version {data.get('version')!r}, this gpt2lib reads "
                                 f"{FORMAT_VERSION}")
    if "merges" not in data:
        raise TokenizerFileError(f"{path} has no \"merges\" list: the file is truncated or was edited by hand; "
                                 "save the tokenizer again with BPETokenizer.save(path)")
    lines = data["merges"]
    if not isinstance(lines, list):
        raise TokenizerFileError(f"{path}: \"merges\" must be a list of \"left right\" strings, got a JSON "
                                 f"{type(lines).__name__}")
    merges = []
    for n, line in enumerate(lines):
        parts = line.split(" ") if isinstance(line, str) else []
        if len(parts) != 2 or not all(parts):
            raise TokenizerFileError(f"{path}: merge {n} is {line!r}, expected one string 'left right' (two tokens "
                                     "and one space): the file is corrupt")
        merges.append((_token_bytes(parts[0], path, f"merge {n}"), _token_bytes(parts[1], path, f"merge {n}")))
    specials = data.get("special_tokens", [])
    if not isinstance(specials, list) or not all(isinstance(t, str) and t for t in specials):
        raise TokenizerFileError(f"{path}: \"special_tokens\" must be a list of non-empty strings (their ids follow "
                                 f"the merges, in order), got {specials!r}; e.g. [\"<|endoftext|>\"]")
    if len(set(specials)) != len(specials):
        raise TokenizerFileError(f"{path}: \"special_tokens\" lists a token twice ({specials!r}): the ids after it "
                                 "would be ambiguous")
    pattern = data.get("pattern", GPT2_PATTERN)
    name = data.get("name", "bpe")
    if not isinstance(name, str):
        raise TokenizerFileError(f"{path}: \"name\" must be a string, got {name!r}")
    return _build(cls, path, merges, specials, pattern, name)


def save_gpt2_files(tok: "BPETokenizer", folder) -> None:
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    encoder = {bytes_to_str(tok.token_bytes(i)): i for i in range(tok.vocab_size) if i not in tok._special_by_id}
    encoder.update(tok.special_tokens)
    merges = "#version: 0.2\n" + "".join(f"{bytes_to_str(a)} {bytes_to_str(b)}\n" for a, b in tok.merges)
    text = json.dumps(encoder, ensure_ascii=False)
    for enc_name, merges_name in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
        write_text_atomic(directory / enc_name, text)
        write_text_atomic(directory / merges_name, merges)
