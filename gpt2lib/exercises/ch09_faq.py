"""Chapter 9's exercises: the FAQ's answers as small formulas a reader writes and the checker verifies.

How much text a token is (bytes, not characters), which links WebText kept (at least 3 karma, no
Wikipedia page), and how much memory inference needs once the KV cache is counted. The classic mistakes:
counting characters instead of UTF-8 bytes, a filter that is off by one karma or tests "wikipedia" as a
substring, and forgetting that the cache holds both keys *and* values for every layer. (Training time from
6·N·D is chapter 8's exercise, so it is not repeated here.)
"""
from __future__ import annotations

import random
from typing import Callable
from urllib.parse import urlsplit

import regex

from ..evaluation import inference_memory_bytes
from ._core import Case, Exercise, Mistake, register

# --- 9.1 bytes per token ---------------------------------------------------------------------------

_GPT2_SPLIT = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def pretokenize(text: str) -> list[str]:
    """GPT-2's pre-tokenization chunks: a stand-in tokenizer (one token per chunk) for the checker."""
    return _GPT2_SPLIT.findall(text)


def three_byte_chunks(text: str) -> list[bytes]:
    """A toy tokenizer: one token per three UTF-8 bytes."""
    data = text.encode("utf-8")
    return [data[i : i + 3] for i in range(0, len(data), 3)]


def _bytes_per_token(text: str, encode: Callable[[str], list]) -> float:
    return len(text.encode("utf-8")) / len(encode(text))


def _bytes_per_token_chars(text, encode):
    return len(text) / len(encode(text))


def _tokens_per_byte(text, encode):
    return len(encode(text)) / len(text.encode("utf-8"))


def _bytes_per_token_cases(rng: random.Random) -> list[Case]:
    words = ["token", "model", "attention", "the", "of", "GPT-2", "1024", "layer", "bytes", "语言", "模型", "注意力"]
    mixed = " ".join(rng.choice(words) for _ in range(rng.randint(20, 40)))
    return [
        Case("English text, GPT-2's chunks", ("The model predicts the next token, one token at a time.", pretokenize)),
        Case("Chinese text, GPT-2's chunks", ("语言模型预测下一个词元。", pretokenize)),
        Case("mixed text, GPT-2's chunks", (mixed, pretokenize)),
        Case("mixed text, three-byte tokens", (mixed, three_byte_chunks)),
    ]


check_bytes_per_token = register(Exercise(
    "bytes_per_token", number="9.1", chapter=9, title="How many bytes of text one token covers", level="easy", minutes=5,
    reference=_bytes_per_token, cases=_bytes_per_token_cases,
    mistakes=[
        Mistake("you counted characters; count UTF-8 bytes (text.encode('utf-8')): a Chinese character is 3 "
                "bytes", _bytes_per_token_chars),
        Mistake("you divided tokens by bytes; bytes per token is bytes divided by tokens", _tokens_per_byte),
    ],
))

# --- 9.2 WebText's link filter, in miniature -------------------------------------------------------
# WebText kept the pages that Reddit posts with at least 3 karma linked to, and removed every Wikipedia
# page (GPT-2 paper, section 2.1). The plausible slips: "more than 3" for "at least 3", a substring test
# that also drops pages merely mentioning Wikipedia (or a host such as notwikipedia.org), English
# Wikipedia only, host names compared with their case and port, repeated links, and deduplicating
# before filtering, so that a link's first, low-karma post hides a later one that qualifies.

MIN_KARMA = 3


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _is_wikipedia(host: str) -> bool:
    return host == "wikipedia.org" or host.endswith(".wikipedia.org")


def _webtext_links(posts: list[tuple[str, int]]) -> list[str]:
    kept: dict[str, None] = {}
    for url, karma in posts:
        if karma >= MIN_KARMA and not _is_wikipedia(_host(url)):
            kept.setdefault(url, None)
    return list(kept)


def _links_karma_above(posts):
    return list(dict.fromkeys(u for u, k in posts if k > MIN_KARMA and not _is_wikipedia(_host(u))))


def _links_substring(posts):
    return list(dict.fromkeys(u for u, k in posts if k >= MIN_KARMA and "wikipedia" not in u.lower()))


def _links_suffix_without_dot(posts):
    return list(dict.fromkeys(u for u, k in posts if k >= MIN_KARMA and not _host(u).endswith("wikipedia.org")))


def _links_english_only(posts):
    return list(dict.fromkeys(u for u, k in posts if k >= MIN_KARMA and _host(u) != "en.wikipedia.org"))


def _links_netloc(posts):
    return list(dict.fromkeys(u for u, k in posts if k >= MIN_KARMA and not _is_wikipedia(urlsplit(u).netloc)))


def _links_repeated(posts):
    return [u for u, k in posts if k >= MIN_KARMA and not _is_wikipedia(_host(u))]


def _links_sorted(posts):
    return sorted(set(_webtext_links(posts)))


def _links_dedupe_first(posts):
    first: dict[str, int] = {}
    for url, karma in posts:
        first.setdefault(url, karma)
    return [u for u, k in first.items() if k >= MIN_KARMA and not _is_wikipedia(_host(u))]


_PAGES = [
    "https://www.bbc.co.uk/news/technology-47249163", "https://openai.com/blog/better-language-models/",
    "https://arxiv.org/abs/1706.03762", "https://github.com/openai/gpt-2", "https://example.com/why-wikipedia-works",
    "https://notwikipedia.org/about", "https://www.wikipedia.org.mirror.example/page",
    "http://blog.example.net/2017/12/31/year-in-review", "https://docs.python.org/3/tutorial/",
]
_WIKI = [
    "https://en.wikipedia.org/wiki/Language_model", "https://de.wikipedia.org/wiki/Sprachmodell",
    "https://en.m.wikipedia.org/wiki/Reddit", "https://EN.Wikipedia.org/wiki/Transformer",
    "https://en.wikipedia.org:443/wiki/Byte_pair_encoding", "https://wikipedia.org/", "http://www.wikipedia.org/",
]


def _webtext_cases(rng: random.Random) -> list[Case]:
    a, b, c, d, e, f, g, h, i = _PAGES
    hand = [  # every slip above changes this answer
        (a, 3), (_WIKI[0], 12), (b, 2), (e, 5), (c, 4), (a, 7), (f, 3), (_WIKI[1], 40), (d, 1), (g, 9),
        (_WIKI[2], 3), (_WIKI[3], 6), (h, 0), (d, 3), (_WIKI[4], 8), (i, 3), (_WIKI[5], 3), (_WIKI[6], 5), (b, 2),
    ]
    pool = _PAGES + _WIKI
    drawn = [(rng.choice(pool), rng.randint(0, 6)) for _ in range(rng.randint(15, 30))]
    return [
        Case("hand-picked posts: karma of exactly 3, repeats, every kind of Wikipedia address", (hand,)),
        Case(f"{len(drawn)} random posts", (drawn,)),
        Case("no posts at all", ([],)),
        Case("only Wikipedia pages and low karma", ([(_WIKI[0], 50), (a, 2), (_WIKI[6], 3)],)),
    ]


check_webtext_links = register(Exercise(
    "webtext_links", number="9.2", chapter=9, title="WebText's link filter, in miniature", level="medium", minutes=10,
    reference=_webtext_links, cases=_webtext_cases,
    mistakes=[
        Mistake("you kept posts with more than 3 karma; WebText kept those with at least 3", _links_karma_above),
        Mistake("you dropped every address that contains 'wikipedia'; only pages on Wikipedia's own hosts go "
                "(example.com/why-wikipedia-works stays)", _links_substring),
        Mistake("you tested host.endswith('wikipedia.org'), which also drops notwikipedia.org: test the host "
                "itself and '.wikipedia.org'", _links_suffix_without_dot),
        Mistake("you removed English Wikipedia only; every language and the mobile site (de., en.m.) go too",
                _links_english_only),
        Mistake("you compared the netloc, which keeps the case and the port ('EN.Wikipedia.org', "
                "'en.wikipedia.org:443'); urlsplit(url).hostname gives the host in lower case", _links_netloc),
        Mistake("you kept a link once per post; each link appears once, at its first qualifying post",
                _links_repeated),
        Mistake("you sorted the links; keep them in the order their first qualifying post appears", _links_sorted),
        Mistake("you deduplicated before filtering, so a link's first, low-karma post hid a later post that "
                "qualifies", _links_dedupe_first),
    ],
))

# --- 9.3 memory for inference, the KV cache included ------------------------------------------------


def _inference_bytes(n_params: int, n_layer: int, n_embd: int, context: int, batch: int, bytes_per_value: int) -> int:
    # weights plus a key and a value per layer, position and sequence: the package's own function
    return inference_memory_bytes(n_params, n_layer=n_layer, n_embd=n_embd, seq_len=context, batch_size=batch,
                                  bytes_per_value=bytes_per_value)


def _inference_no_values(n_params, n_layer, n_embd, context, batch, bytes_per_value):
    return n_params * bytes_per_value + n_layer * batch * context * n_embd * bytes_per_value


def _inference_one_layer(n_params, n_layer, n_embd, context, batch, bytes_per_value):
    return n_params * bytes_per_value + 2 * batch * context * n_embd * bytes_per_value


def _inference_weights_only(n_params, n_layer, n_embd, context, batch, bytes_per_value):
    return n_params * bytes_per_value


def _inference_one_sequence(n_params, n_layer, n_embd, context, batch, bytes_per_value):
    return n_params * bytes_per_value + 2 * n_layer * context * n_embd * bytes_per_value


def _inference_cases(rng: random.Random) -> list[Case]:
    return [
        Case("GPT-2 124M, fp32, one sequence of 1024", (124_439_808, 12, 768, 1024, 1, 4)),
        Case("GPT-2 XL, bf16, a batch of 8", (1_557_611_200, 48, 1600, 1024, 8, 2)),
        Case("a random model", (rng.randint(10**6, 10**8), rng.randint(2, 24), 64 * rng.randint(2, 16),
                                rng.choice([128, 256, 512]), rng.randint(2, 16), rng.choice([2, 4]))),
    ]


check_inference_bytes = register(Exercise(
    "inference_bytes", number="9.3", chapter=9, title="Memory for inference: weights plus the KV cache", level="medium", minutes=10,
    reference=_inference_bytes, cases=_inference_cases,
    int_required=True,  # the text asks for an int
    mistakes=[
        Mistake("the cache held keys only; it holds keys and values, two tensors per layer", _inference_no_values),
        Mistake("you counted one layer's cache; every layer keeps its own keys and values", _inference_one_layer),
        Mistake("you counted the weights only; add the KV cache for the whole context", _inference_weights_only),
        Mistake("you counted one sequence's cache; each sequence in the batch has its own",
                _inference_one_sequence),
    ],
))
