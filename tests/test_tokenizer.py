"""gpt2lib.tokenizer: identical ids to tiktoken and Hugging Face, training, files, and clear errors."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from gpt2lib.tokenizer import BPETokenizer, GPT2_PATTERN, bytes_to_unicode
from gpt2lib.tokenizer import files as tok_files
from gpt2lib.tokenizer.bytes_map import BYTE_ORDER, split
from gpt2lib.tokenizer.merges import count_words, train_merges, train_merges_naive
from gpt2lib.runtime import OfflineError

# A few sentences of the source article (section 3), as a Chinese specimen.
ARTICLE_ZH = ("GPT-2的核心算法原理是使用Transformer架构来处理自然语言数据。在训练过程中，GPT-2使用了一种称为"
              "自回归的方法，即在生成每个单词时，都会考虑前面已经生成的单词。\n\n1. 预处理：将原始文本数据转换为模型"
              "可以处理的格式。\n2. 模型构建：构建一个包含多个Transformer层的模型。")

CORPUS = {
    "english prose": "The quick brown fox jumps over the lazy dog. It wasn't the fox's fault, was it?",
    "code": "def f(x: int) -> int:\n    return x ** 2  # square\n\n\tif x != 0:\n\t\tprint(f'{x=}')\n",
    "chinese article": ARTICLE_ZH,
    "emoji with joiners": "family: 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵, skin 👍🏽, keycap 1️⃣ ❤️‍🔥",
    "combining marks": "e\u0301 vs \u00e9, n\u0303, Z\u0351\u0352\u0353algo, 한국어 (decomposed: \u1112\u1161\u11ab)",
    "right to left": "שלום עולם, مرحبا بالعالم 123 ۱۲۳",
    "runs of whitespace": "a  b   c    d\t\te\n\n\nf \n \n g   \t \n  ",
    "crlf": "line one\r\nline two\r\n\r\nend\r\n",
    "contractions": "I'm you're he's we've they'll I'd don't I'M YOU'RE HE'S WE'VE THEY'LL I'D DON'T 'tis",
    "digits": "3.14159 2026-11-28 1,000,000 0x1F 12345678901234567890 ٣ ½",
    "symbols": "<html>&nbsp;</html> ~~~ ... !!! ??? @@@ $$$ ''' \"\"\" ``` ---",
    "leading spaces": "   indented   and trailing   ",
    "empty": "",
    "control bytes": "\x00\x01\x7f\x1b[31mred\x1b[0m\u200b\u00a0\u00ad",
}


@pytest.fixture(scope="module")
def hf_gpt2():
    transformers = pytest.importorskip("transformers")
    folder = tok_files.gpt2_files_dir()
    # positional: transformers 5 names them vocab=, merges= (vocab_file= silently gives an empty tokenizer),
    # 4.x names them vocab_file=, merges_file=; the order is the same in both
    tok = transformers.GPT2Tokenizer(str(folder / "encoder.json"), str(folder / "vocab.bpe"))
    assert len(tok) == 50257
    return tok


def test_gpt2_facts(gpt2):
    assert gpt2.vocab_size == 50257 and len(gpt2.merges) == 50000
    assert gpt2.eos_token_id == 50256
    assert gpt2.token_bytes(0) == b"!" and gpt2.token_bytes(198) == b"\n" and gpt2.token_bytes(220) == b" "
    assert gpt2.encode("Hello world") == [15496, 995]


def test_byte_map():
    m = bytes_to_unicode()
    assert len(m) == 256 and len(set(m.values())) == 256
    assert m[ord("A")] == "A" and m[32] == "Ġ" and m[10] == "Ċ"
    assert all(c.isprintable() and not c.isspace() for c in m.values())
    assert sorted(BYTE_ORDER) == list(range(256))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_ids_as_tiktoken_and_hf(name, gpt2, tiktoken_gpt2, hf_gpt2):
    text = CORPUS[name]
    ours = gpt2.encode(text)
    assert ours == tiktoken_gpt2.encode(text), name
    assert ours == hf_gpt2.encode(text), name
    assert gpt2.decode(ours) == text


def test_whole_corpus_in_one_text(gpt2, tiktoken_gpt2):
    text = "\n".join(CORPUS.values()) * 3
    assert gpt2.encode(text) == tiktoken_gpt2.encode(text)


def test_special_tokens(gpt2, tiktoken_gpt2, hf_gpt2):
    text = "first document<|endoftext|>second document"
    as_special = gpt2.encode(text, allowed_special="all")
    assert 50256 in as_special and as_special.count(50256) == 1
    assert as_special == tiktoken_gpt2.encode(text, allowed_special="all") == hf_gpt2.encode(text)
    assert gpt2.encode(text, allowed_special={"<|endoftext|>"}) == as_special
    as_text = gpt2.encode(text)  # the default: ordinary text, so user input cannot inject the token
    assert 50256 not in as_text
    assert as_text == tiktoken_gpt2.encode(text, disallowed_special=())
    assert gpt2.decode(as_text) == gpt2.decode(as_special) == text
    with pytest.raises(ValueError, match="allowed_special"):
        gpt2.encode(text, disallowed_special="all")
    with pytest.raises(ValueError, match="not special tokens"):
        gpt2.encode(text, allowed_special={"<|im_start|>"})
    with pytest.raises(TypeError):
        gpt2.encode(text, allowed_special="<|endoftext|>")


def test_encode_batch_and_cache(gpt2):
    texts = list(CORPUS.values())
    assert gpt2.encode_batch(texts) == [gpt2.encode(t) for t in texts]
    fresh = BPETokenizer.gpt2()  # an empty cache gives the same ids as a warm one
    assert [fresh.encode(t) for t in reversed(texts)][::-1] == [gpt2.encode(t) for t in texts]


def test_bad_input_is_a_clear_error(gpt2):
    with pytest.raises(TypeError, match="takes a str"):
        gpt2.encode(b"bytes")
    with pytest.raises(TypeError, match="encode_batch"):
        gpt2.encode(["a", "b"])
    with pytest.raises(TypeError):
        gpt2.encode_batch("a single string")
    with pytest.raises(ValueError, match="out of range"):
        gpt2.decode([1, -1])
    with pytest.raises(ValueError, match="out of range"):
        gpt2.decode([50257])
    with pytest.raises(TypeError, match="ints"):
        gpt2.decode([1.0])
    with pytest.raises(TypeError, match="single int"):
        gpt2.decode(5)
    with pytest.raises(ValueError, match="lone surrogate"):
        gpt2.encode("ok \ud800 not ok")  # UTF-8 cannot encode it; say so rather than crash inside


def test_invalid_utf8_replaced_or_strict(gpt2):
    ids = gpt2.encode("é")  # 2 bytes; in GPT-2 one token per byte here
    half = [gpt2.token_id(bytes([0xC3]))]
    assert gpt2.decode(half) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        gpt2.decode(half, errors="strict")
    assert gpt2.decode(ids, errors="strict") == "é"


def test_decode_accepts_tensors(gpt2):
    torch = pytest.importorskip("torch")
    ids = gpt2.encode("tensors too")
    assert gpt2.decode(torch.tensor(ids)) == "tensors too"


# ------------------------------------------------------------------------------------------ training
SMALL_TEXT = (CORPUS["english prose"] * 3 + CORPUS["code"] * 2 + ARTICLE_ZH * 2 + CORPUS["contractions"]
              + CORPUS["runs of whitespace"] + CORPUS["digits"])


def test_fast_trainer_matches_naive_reference():
    words = count_words([SMALL_TEXT], split)
    fast = train_merges(words, 400, progress=False)
    naive = train_merges_naive(words, 400)
    assert len(fast) > 100  # the text is long enough for many merges
    assert fast == naive


def test_trainer_tie_break_is_stated_rule():
    # every pair occurs once: the first merge must be the pair with the smallest (left, right) bytes
    words = Counter({b"zyx": 1, b"bca": 1})
    merges = train_merges(words, 1, progress=False)
    assert merges == [(b"b", b"c")]
    assert train_merges_naive(words, 1) == merges


def test_train_is_deterministic_and_round_trips():
    a = BPETokenizer.train(SMALL_TEXT, 256 + 1 + 150, progress=False)
    b = BPETokenizer.train(SMALL_TEXT, 256 + 1 + 150, progress=False)
    assert a.merges == b.merges and a.vocab_size == 407
    assert a.eos_token_id == 406
    for text in CORPUS.values():
        assert a.decode(a.encode(text)) == text
    # training compresses the text it saw
    assert len(a.encode(SMALL_TEXT)) < 0.6 * len(SMALL_TEXT.encode("utf-8"))


def test_train_without_special_tokens_and_early_stop():
    with pytest.warns(UserWarning, match="ran out of pairs"):
        tok = BPETokenizer.train("ab ab ab", 300, special_tokens=(), progress=False)
    assert tok.eos_token_id is None and tok.vocab_size < 300
    assert tok.encode(" ab ab") == [tok.token_id(b" ab")] * 2


def test_training_ignores_special_token_text():
    with pytest.warns(UserWarning):  # "hello" alone has only 4 merges to offer
        tok = BPETokenizer.train("hello<|endoftext|>" * 50, 300, progress=False)
    assert len(tok.merges) == 4
    assert all(b"|" not in a + b for a, b in tok.merges)


def test_train_bad_input():
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("some text", 200)
    with pytest.raises(ValueError, match="empty"):
        BPETokenizer.train("", 300)
    with pytest.raises(TypeError):
        BPETokenizer.train(b"bytes", 300)
    with pytest.raises(TypeError):
        BPETokenizer.train("text", 300.0)


# --------------------------------------------------------------------------------------------- files
@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer.train(SMALL_TEXT * 2 + CORPUS["emoji with joiners"], 600, progress=False)


HELD_OUT = "A held-out sentence, with 42 numbers; 中文也可以。 Emoji 🦊 and \r\n whitespace   !"


def test_own_format_round_trip(trained, tmp_path):
    trained.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(tmp_path / "tok.json")
    assert loaded.merges == trained.merges and loaded.special_tokens == trained.special_tokens
    assert loaded.encode(HELD_OUT) == trained.encode(HELD_OUT)
    trained.save(tmp_path)  # a folder gets tokenizer.gpt2lib.json
    assert BPETokenizer.from_pretrained(tmp_path).merges == trained.merges


def test_trained_tokenizer_loads_in_tiktoken_and_hf(trained, tmp_path):
    import tiktoken
    import tiktoken.load
    import transformers

    trained.save_gpt2_files(tmp_path)
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(tmp_path / "vocab.bpe"), str(tmp_path / "encoder.json"))
    enc = tiktoken.Encoding("book", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": trained.eos_token_id})
    hf = transformers.GPT2Tokenizer.from_pretrained(tmp_path)   # vocab.json + merges.txt, in 4.x and 5
    for text in [HELD_OUT, *CORPUS.values()]:
        ours = trained.encode(text)
        assert ours == enc.encode(text) == hf.encode(text), text
    again = BPETokenizer.from_pretrained(tmp_path)
    assert again.merges == trained.merges and again.eos_token_id == trained.eos_token_id


def test_fingerprint_tracks_what_decides_the_ids(gpt2, trained, tmp_path):
    assert gpt2.fingerprint == BPETokenizer.gpt2().fingerprint
    assert trained.fingerprint != gpt2.fingerprint
    trained.save(tmp_path / "t.json")
    assert BPETokenizer.load(tmp_path / "t.json").fingerprint == trained.fingerprint
    fewer = BPETokenizer(trained.merges[:-1])
    no_special = BPETokenizer(trained.merges, special_tokens=())
    assert len({trained.fingerprint, fewer.fingerprint, no_special.fingerprint}) == 3


def test_gpt2_files_written_are_gpt2s(gpt2, tmp_path):
    gpt2.save_gpt2_files(tmp_path)
    folder = tok_files.gpt2_files_dir()
    assert json.loads((tmp_path / "encoder.json").read_text("utf-8")) == json.loads(
        (folder / "encoder.json").read_text("utf-8"))
    assert BPETokenizer.from_pretrained(tmp_path).merges == gpt2.merges
    assert BPETokenizer.from_pretrained("gpt2").merges == gpt2.merges


def test_hash_mismatch_is_a_clear_error(monkeypatch):
    tok_files._gpt2_merges.cache_clear()
    monkeypatch.setitem(tok_files.GPT2_SHA256, "vocab.bpe", "0" * 64)
    try:
        with pytest.raises(ValueError, match="sha256"):
            BPETokenizer.gpt2()
    finally:
        tok_files._gpt2_merges.cache_clear()


def test_corrupt_and_mismatched_files(trained, gpt2, tmp_path):
    folder = tmp_path / "bad"
    trained.save_gpt2_files(folder)
    # an encoder from another tokenizer
    shutil.copy(tok_files.gpt2_files_dir() / "encoder.json", folder / "encoder.json")
    with pytest.raises(ValueError, match="does not match"):
        BPETokenizer.from_pretrained(folder)
    # a truncated merges line
    trained.save_gpt2_files(folder)
    lines = (folder / "vocab.bpe").read_text("utf-8").split("\n")
    lines[5] = lines[5].split(" ")[0]
    (folder / "vocab.bpe").write_text("\n".join(lines), "utf-8")
    with pytest.raises(ValueError, match="corrupt"):
        BPETokenizer.from_pretrained(folder)
    # merges out of order
    trained.save_gpt2_files(folder)
    lines = (folder / "vocab.bpe").read_text("utf-8").split("\n")
    lines[1], lines[-2] = lines[-2], lines[1]
    (folder / "vocab.bpe").write_text("\n".join(lines), "utf-8")
    with pytest.raises(ValueError, match="corrupt or out of order"):
        BPETokenizer.from_pretrained(folder)
    # not JSON, and not our format
    (tmp_path / "broken.json").write_text("{not json", "utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        BPETokenizer.load(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"model": "x"}', "utf-8")
    with pytest.raises(ValueError, match="not a gpt2lib tokenizer"):
        BPETokenizer.load(tmp_path / "other.json")
    with pytest.raises(OfflineError, match="offline|folder"):
        BPETokenizer.from_pretrained("someone/unknown-model")


def test_split_pattern_examples(gpt2):
    assert split("Hello world's  3.14  \n\n x") == ["Hello", " world", "'s", " ", " 3", ".", "14", "  \n\n", " x"]
    assert gpt2.split("I'M") == ["I", "'", "M"]  # contractions are case-sensitive in GPT-2


# ------------------------------------------------------------------ long words: fast == reference
def _adversarial_words(seed: int, max_len: int) -> list[str]:
    """Words that stress BPE: runs of one character, repeated patterns, base64 blobs, digits, DNA,
    mixed scripts and emoji, each up to ``max_len`` characters."""
    import base64
    import random

    rng = random.Random(seed)
    words = []
    for _ in range(25):
        n = rng.randint(1, max_len)
        words += [
            rng.choice("aZé中 0!\n") * n,
            (rng.choice(["ab", "abc", "ing", "the", "0", "00", "12", "🙂", "é", "xyz"]) * n)[:n],
            base64.b64encode(rng.randbytes(n)).decode()[:n],
            "".join(rng.choice("0123456789") for _ in range(n)),
            "".join(rng.choice("ACGT") for _ in range(n)),
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n)),
            "".join(chr(rng.choice([rng.randrange(33, 127), rng.randrange(0x4E00, 0x4F00), 0x301, 0x200D,
                                    rng.randrange(0x1F600, 0x1F650), rng.randrange(0x400, 0x450)])) for _ in range(n)),
        ]
    return words


def test_fast_encoder_equals_reference_and_tiktoken(gpt2, tiktoken_gpt2):
    for word in _adversarial_words(seed=0, max_len=400):
        data = word.encode("utf-8")
        assert gpt2.bpe(data) == gpt2.bpe_reference(data), word[:40]
        assert gpt2.encode(word) == tiktoken_gpt2.encode_ordinary(word), word[:40]


def test_fast_encoder_equals_reference_on_a_trained_vocabulary(trained):
    # a small vocabulary leaves long chains of short merges: a different shape of merge tree from GPT-2's
    for word in _adversarial_words(seed=1, max_len=300):
        data = word.encode("utf-8")
        assert trained.bpe(data) == trained.bpe_reference(data), word[:40]


@pytest.mark.parametrize("word", ["a" * 50_000, "7" * 30_001, "ab" * 20_000,
                                  "".join(__import__("random").Random(3).choice("0123456789") for _ in range(50_000))],
                         ids=["50k letters a", "30k sevens", "abab...", "50k random digits"])
def test_long_words_match_tiktoken(gpt2, tiktoken_gpt2, word):
    assert gpt2.encode(word) == tiktoken_gpt2.encode_ordinary(word)


def _count_lines(fn, *args) -> int:
    """How many lines of gpt2lib.tokenizer's Python code ``fn(*args)`` executes: a measure of work that,
    unlike a timer, does not depend on the machine or its load."""
    import sys

    folder = str(Path(tok_files.__file__).parent)
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if not frame.f_code.co_filename.startswith(folder):
            return None
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args)
    finally:
        sys.settrace(old)
    return count


def _letters(n: int, seed: int = 0) -> bytes:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n)).encode()


def test_encoding_work_grows_like_n_log_n(gpt2):
    # 4x the letters: an n log n encoder does about 4-5x the work, a quadratic one about 16x
    small, big = _letters(2_000), _letters(8_000)
    fast = _count_lines(gpt2.bpe, big) / _count_lines(gpt2.bpe, small)
    assert fast < 6, f"the fast encoder did {fast:.1f}x the work on 4x the letters"
    # the measure can fail: the reference rescans the word per merge (shorter words, it is slow)
    reference = _count_lines(gpt2.bpe_reference, _letters(1_200)) / _count_lines(gpt2.bpe_reference, _letters(300))
    assert reference > 10, f"the count should tell a quadratic encoder apart, got {reference:.1f}x"


def test_training_work_grows_like_n_log_n():
    # one long word, a merge per 10 letters: the old trainer rewrote the whole word at every merge
    def train(n: int, fn=train_merges):
        words = Counter({_letters(n, seed=1): 1})
        return lambda: fn(words, n // 10, progress=False) if fn is train_merges else fn(words, n // 10)

    fast = _count_lines(train(8_000)) / _count_lines(train(2_000))
    assert fast < 6, f"the fast trainer did {fast:.1f}x the work on 4x the letters"
    naive = _count_lines(train(1_600, train_merges_naive)) / _count_lines(train(400, train_merges_naive))
    assert naive > 10, "the count should tell a quadratic trainer apart"


def test_fast_trainer_matches_naive_on_long_words():
    words = Counter({_letters(3_000, seed=2): 1, b"a" * 2_500: 3, b"ab" * 700: 2, b"0123456789" * 150: 1,
                     "中文".encode() * 200: 1})
    assert train_merges(words, 300, progress=False) == train_merges_naive(words, 300)


# ---------------------------------------------------------------------------- validation on load
def _write_own(path: Path, trained: BPETokenizer, **changes) -> Path:
    trained.save(path)
    data = json.loads(path.read_text("utf-8"))
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return path


_DROP = object()


def test_special_tokens_as_a_string_is_refused(trained, tmp_path):
    # before: "<|endoftext|>" loaded as 13 one-character special tokens
    path = _write_own(tmp_path / "t.json", trained, special_tokens="<|endoftext|>")
    with pytest.raises(tok_files.TokenizerFileError, match=r"special_tokens.*list of non-empty strings"):
        BPETokenizer.load(path)
    for bad in ([""], [5], {"<|endoftext|>": 600}, ["<|a|>", "<|a|>"]):
        with pytest.raises(tok_files.TokenizerFileError, match="special_tokens"):
            BPETokenizer.load(_write_own(tmp_path / "t.json", trained, special_tokens=bad))
    with pytest.raises(TypeError, match=r"list of strings.*write \['<\|endoftext\|>'\]"):
        BPETokenizer(trained.merges, special_tokens="<|endoftext|>")
    with pytest.raises(TypeError, match="list of strings"):
        BPETokenizer.train("some text here", 300, special_tokens="<|endoftext|>", progress=False)


@pytest.mark.parametrize("pattern, message", [
    (".", "loses text.*'\\\\n'"),  # skips newlines: encode would drop them
    (r"\w+", "loses text"),
    (r" ?\p{L}+| ?\p{N}+", "loses text"),
    ("(", "not a valid regular expression"),
    (r"(\p{L}+)|\s+|.", "capturing group"),
    (r"\p{L}*|\s|.", "empty string"),
    (5, "str"),
])
def test_a_pattern_that_does_not_split_losslessly_is_refused(trained, tmp_path, pattern, message):
    with pytest.raises(tok_files.TokenizerFileError, match=message):
        BPETokenizer.load(_write_own(tmp_path / "t.json", trained, pattern=pattern))
    with pytest.raises((TypeError, ValueError), match=message):
        BPETokenizer(trained.merges, pattern=pattern)
    if isinstance(pattern, str):
        with pytest.raises(ValueError, match=message):
            BPETokenizer.train("some text here", 300, pattern=pattern, progress=False)


def test_lossless_patterns_are_accepted():
    # GPT-4's pattern (case-insensitive contractions, digits in threes) and a whitespace splitter
    gpt4 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
            r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
    for pattern in (GPT2_PATTERN, gpt4, r"\s+|\S+", r"(?s)."):
        tok = BPETokenizer.train(SMALL_TEXT, 300, pattern=pattern, progress=False)
        for text in CORPUS.values():
            assert tok.decode(tok.encode(text)) == text


def test_a_file_without_valid_merges_is_refused(trained, tmp_path):
    cases = [
        (dict(merges=_DROP), 'no "merges" list'),
        (dict(merges="Ġ t"), "must be a list"),
        (dict(merges=[["Ġ", "t"]]), "merge 0 is .*expected one string 'left right'"),
        (dict(merges=["Ġ t h"]), "merge 0 is 'Ġ t h'"),
        (dict(merges=["Ġt"]), "merge 0 is 'Ġt'"),
        (dict(merges=["a \u4e2d"]), "merge 0.*byte alphabet"),
        (dict(merges=["Ġ t", "Ġt h", "Ġ t"]), "merge 2.*already exists"),
        (dict(merges=["Ġt h", "Ġ t"]), "merge 0.*out of order"),
        (dict(name=["x"]), '"name" must be a string'),
    ]
    for changes, message in cases:
        with pytest.raises(tok_files.TokenizerFileError, match=message):
            BPETokenizer.load(_write_own(tmp_path / "t.json", trained, **changes))
    with pytest.raises(ValueError, match="each merge must be a pair"):
        BPETokenizer([(b"a", b"b", b"c")])
    with pytest.raises(ValueError, match="each merge must be a pair"):
        BPETokenizer([(b"a", "b")])


def test_gpt2_files_with_bad_ids_are_refused(trained, tmp_path):
    trained.save_gpt2_files(tmp_path)
    good = json.loads((tmp_path / "encoder.json").read_text("utf-8"))
    cases = [
        ({**good, "<|endoftext|>": 99_999}, "out of range"),
        ({**good, "Ġ": -1}, "out of range"),
        ({**good, "<|endoftext|>": "599"}, "must be integers"),
        ({**good, "<|endoftext|>": 0}, "share the id 0"),
        (list(good), "JSON object"),
    ]
    for encoder, message in cases:
        (tmp_path / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), "utf-8")
        with pytest.raises(tok_files.TokenizerFileError, match=message):
            BPETokenizer.from_pretrained(tmp_path)
    trained.save_gpt2_files(tmp_path)
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nĠ \u4e2d\n", "utf-8")
    with pytest.raises(tok_files.TokenizerFileError, match="line 2.*byte alphabet"):
        BPETokenizer.from_pretrained(tmp_path)


def test_the_old_module_name_still_works_and_says_where_to_import_from():
    import importlib

    import gpt2lib.tokenizer.merges as merges

    with pytest.warns(DeprecationWarning, match="gpt2lib.tokenizer.merges"):
        old = importlib.reload(importlib.import_module("gpt2lib.tokenizer.training"))
    assert old.merge_pair is merges.merge_pair and old.train_merges is merges.train_merges
