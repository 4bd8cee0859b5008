"""GPT-2's two preprocessing conventions: the byte-to-unicode map and the pre-tokenization pattern.

Byte-level BPE works on raw UTF-8 bytes, so any text can be encoded and nothing is ever "unknown".
GPT-2's files, however, store tokens as *strings*. To write a byte as a visible character, GPT-2 maps
each of the 256 byte values to one printable unicode character: printable Latin-1 bytes map to
themselves, and the 68 others (control bytes, space, a few Latin-1 oddities) are shifted to code points
256 and up. So the space byte 0x20 shows up as "Ġ" (U+0120) and the newline 0x0A as "Ċ" (U+010A).

The map also fixes the id order of the 256 single-byte tokens: GPT-2's id ``i`` < 256 is the byte
``BYTE_ORDER[i]`` (printable ones first), which is why "!" is id 0, not the NUL byte.
"""
from __future__ import annotations

from functools import lru_cache

import regex

# GPT-2's pre-tokenization pattern: English contractions, runs of letters, runs of digits, runs of
# other symbols (each optionally led by one space), then whitespace. The negative look-ahead
# `\s+(?!\S)` leaves the last space of a run attached to the following word, so " world" stays one
# piece. Note the contractions are matched case-sensitively, exactly as GPT-2 did ("'S" is not one).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

GPT2_SPLIT = regex.compile(GPT2_PATTERN)


@lru_cache(maxsize=1)
def _build() -> tuple[dict[int, str], tuple[int, ...]]:
    # The bytes that already print as themselves keep their own code point ...
    order = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
             + list(range(ord("®"), ord("ÿ") + 1)))
    chars = list(order)
    # ... and the rest are moved, in byte order, to 256, 257, ...
    shift = 0
    for b in range(256):
        if b not in order:
            order.append(b)
            chars.append(256 + shift)
            shift += 1
    return {b: chr(c) for b, c in zip(order, chars)}, tuple(order)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte value (0-255) to the printable character that stands for it."""
    return dict(_build()[0])


def unicode_to_bytes() -> dict[str, int]:
    """The inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in _build()[0].items()}


BYTE_ORDER: tuple[int, ...] = _build()[1]
"""``BYTE_ORDER[i]`` is the byte value of GPT-2's token id ``i`` for ``i < 256``."""

_B2U = _build()[0]
_U2B = {c: b for b, c in _B2U.items()}


def bytes_to_str(data: bytes) -> str:
    """Bytes written in GPT-2's visible alphabet (b" hi" -> "Ġhi")."""
    return "".join(_B2U[b] for b in data)


def str_to_bytes(text: str) -> bytes:
    """The inverse of :func:`bytes_to_str`; a character outside the alphabet is a ValueError."""
    try:
        return bytes(_U2B[c] for c in text)
    except KeyError as exc:
        raise ValueError(f"{text!r} contains {exc.args[0]!r}, which is not in GPT-2's byte alphabet: "
                         "is this really a byte-level BPE vocabulary file?") from None


# Text a split pattern must cut into pieces that join back to it exactly: letters of several scripts,
# digits, every kind of whitespace (newlines included), punctuation, apostrophes, emoji with joiners,
# combining marks and control characters.
_PATTERN_PROBE = ("Hello, world! It's 3.14 -- don't\n\n\tTabs\r\nand  spaces   \u00a0nbsp 中文数据 日本語 "
                  "Ελληνικά русский עברית العربية ١٢٣ ½ e\u0301 👍🏽 👨\u200d👩\u200d👧 <|endoftext|> "
                  "'quoted' \"double\" `tick` ~!@#$%^&*()_+{}|:<>?[]\\;',./ \x00\x1b[0m\x7f "
                  "\u2028\u2029\x0b\x0c end  \n ")


def check_split_pattern(pattern: str) -> regex.Pattern:
    """Compile a pre-tokenization pattern, refusing one that would make encoding lose text.

    The rule: BPE encodes the pieces ``findall`` returns and nothing else, so the pieces must be the
    text itself, cut and nothing more. A pattern is accepted when it is a str that the ``regex`` module
    compiles, has no capturing group (``findall`` would then return the groups, not the pieces: write
    ``(?:...)``), and cuts a probe text (letters of several scripts, digits, every kind of whitespace,
    punctuation, emoji, control characters) into non-empty pieces that join back to the probe exactly.
    ``.`` fails (it skips newlines), as do ``\\w+`` (punctuation) and ``\\S+`` (spaces): each would make
    ``decode(encode(text)) != text`` without a word. A probe cannot prove a pattern lossless on every
    text, but it catches the patterns that drop a whole class of characters.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"the split pattern must be a regular expression as a str, got {type(pattern).__name__}")
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"the split pattern {pattern!r} is not a valid regular expression ({exc})") from None
    if compiled.groups:
        raise ValueError(f"the split pattern {pattern!r} has a capturing group, so findall() would return the "
                         "group instead of the whole piece: write (?:...) for grouping")
    pieces = compiled.findall(_PATTERN_PROBE)
    if "" in pieces:
        raise ValueError(f"the split pattern {pattern!r} matches the empty string; every piece must hold at least "
                         "one character (use + rather than *)")
    joined = "".join(pieces)
    if joined != _PATTERN_PROBE:
        k = next((i for i, (x, y) in enumerate(zip(joined, _PATTERN_PROBE)) if x != y), len(joined))
        raise ValueError(f"the split pattern {pattern!r} loses text: its pieces do not join back to the text "
                         f"(the first character left out is {_PATTERN_PROBE[k]!r}), so encoding would silently drop "
                         "characters. A byte-level BPE pattern must match every character, e.g. end it with "
                         r"an alternative such as |\s+|[^\s]")
    return compiled


def split(text: str, pattern: regex.Pattern | None = None) -> list[str]:
    """Pre-tokenize ``text`` into the pieces BPE works on independently (GPT-2's pattern by default)."""
    return (pattern or GPT2_SPLIT).findall(text)
