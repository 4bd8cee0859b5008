"""How fast is gpt2lib's pure-Python tokenizer? Prints ratios; asserts nothing (speed is not a test).

    .venv/bin/python benchmarks/bench_tokenizer.py            # everything, the naive trainer in full
    .venv/bin/python benchmarks/bench_tokenizer.py --quick    # the naive trainer on its first 200 merges
    .venv/bin/python benchmarks/bench_tokenizer.py --long-words-only

Corpus: Python's own documentation (``pydoc_data.topics``, in every Python install) followed by the
standard library's source files in sorted order until about 1 MB, so anyone can rerun it offline.

1. Encoding with the real GPT-2 vocabulary, document by document: ours (cold cache, then warm) against
   Hugging Face's ``GPT2Tokenizer`` called text by text and tiktoken (both Rust inside). Ids are checked
   identical before anything is timed.
2. Training a 4,096-id vocabulary: the incremental trainer against the naive one (recount every pair at
   every merge), which must learn the same merges.
3. Long words, where a per-merge rescan is quadratic: encoding one 100,000-letter word, a run of
   100,000 "a"s and a 200,000-digit number against tiktoken (ids checked identical), the reference
   encoder on a shorter word for scale, and training 2,000 merges on one 20,000-letter word against
   Hugging Face's Rust trainer (``tokenizers``) and the naive trainer.
"""
from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from pathlib import Path

os.environ.setdefault("GPT2LIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus(target_bytes: int = 1_000_000) -> list[str]:
    from pydoc_data.topics import topics

    docs = [topics[k] for k in sorted(topics)]
    size = sum(len(d.encode()) for d in docs)
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        if size >= target_bytes:
            break
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.append(text)
        size += len(text.encode())
    return docs


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_encode(docs: list[str]) -> None:
    import transformers

    from gpt2lib.tokenizer import BPETokenizer
    from gpt2lib.tokenizer.files import gpt2_files_dir

    folder = gpt2_files_dir()
    tk = _tiktoken_gpt2()
    hf = transformers.GPT2Tokenizer(vocab=str(folder / "encoder.json"), merges=str(folder / "vocab.bpe"))
    n_bytes = sum(len(d.encode()) for d in docs)

    ours = BPETokenizer.gpt2()
    t_cold, ids = timed(lambda: [ours.encode(d) for d in docs])
    t_warm, _ = timed(lambda: [ours.encode(d) for d in docs], repeat=3)
    t_hf, hf_ids = timed(lambda: [hf.encode(d) for d in docs], repeat=2)
    t_tk, tk_ids = timed(lambda: [tk.encode_ordinary(d) for d in docs], repeat=3)
    assert ids == tk_ids == hf_ids, "ids differ: fix correctness before timing"
    n_tokens = sum(map(len, ids))
    print(f"encode: {len(docs)} documents, {n_bytes / 1e6:.2f} MB, {n_tokens:,} tokens, ids identical in all three")
    for name, t in [("ours, cold cache", t_cold), ("ours, warm cache", t_warm),
                    ("HF GPT2Tokenizer, text by text", t_hf), ("tiktoken", t_tk)]:
        print(f"  {name:<32} {t:7.3f} s  {n_bytes / t / 1e6:6.2f} MB/s")
    print(f"  ratio HF / ours (cold): {t_hf / t_cold:.2f}x   (>= 1 means ours is at least as fast)")
    print(f"  ratio ours (cold) / tiktoken: {t_cold / t_tk:.2f}x; ours (warm) / tiktoken: {t_warm / t_tk:.2f}x"
          "   (target: within 4x)")


def bench_train(docs: list[str], vocab_size: int, naive_merges: int | None) -> None:
    from gpt2lib.tokenizer import BPETokenizer
    from gpt2lib.tokenizer.bytes_map import split
    from gpt2lib.tokenizer.merges import count_words, train_merges, train_merges_naive

    text = "\n".join(docs)
    n_merges = vocab_size - 256 - 1
    t_api, tok = timed(lambda: BPETokenizer.train(text, vocab_size, progress=False))
    t_count, words = timed(lambda: count_words([text], split, ["<|endoftext|>"]))
    t_fast, fast = timed(lambda: train_merges(words, n_merges, progress=False))
    print(f"train: {len(text.encode()) / 1e6:.2f} MB, {len(words):,} distinct words, vocabulary {vocab_size}")
    print(f"  BPETokenizer.train, end to end     {t_api:7.2f} s")
    print(f"  of which word counting             {t_count:7.2f} s")
    print(f"  fast merges ({n_merges})            {t_fast:7.2f} s")
    k = n_merges if naive_merges is None else min(naive_merges, n_merges)
    t_fast_k, fast_k = timed(lambda: train_merges(words, k, progress=False))
    t_naive, naive = timed(lambda: train_merges_naive(words, k))
    assert naive == fast[:k] == fast_k, "the two trainers disagree"
    print(f"  naive merges ({k})            {t_naive:7.2f} s  (identical merges)")
    print(f"  ratio naive / fast on the same {k} merges: {t_naive / t_fast_k:.0f}x   (target: >= 20x at {n_merges})")
    if k < n_merges:
        print(f"  (naive timed on its first {k} merges only; its later steps are a little cheaper since words shrink)")


def _tiktoken_gpt2():
    import tiktoken
    import tiktoken.load

    from gpt2lib.tokenizer import GPT2_PATTERN
    from gpt2lib.tokenizer.files import gpt2_files_dir

    folder = gpt2_files_dir()
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def _random_text(alphabet: str, n: int, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def bench_long_words(quick: bool) -> None:
    from collections import Counter

    from gpt2lib.tokenizer import BPETokenizer
    from gpt2lib.tokenizer.merges import train_merges, train_merges_naive

    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    tk = _tiktoken_gpt2()
    print("long words: one word each (the split pattern keeps it whole), fresh tokenizer, no cache")
    for name, word in [("100,000 random letters", _random_text(letters, 100_000)),
                       ("100,000 letters 'a'", "a" * 100_000),
                       ("200,000-digit number", _random_text("0123456789", 200_000, seed=1))]:
        ours = BPETokenizer.gpt2()
        assert len(ours.split(word)) == 1
        t_ours, ids = timed(lambda ours=ours, word=word: ours.encode(word))
        t_tk, tk_ids = timed(lambda word=word: tk.encode_ordinary(word), repeat=3)
        assert ids == tk_ids, f"{name}: ids differ from tiktoken"
        print(f"  encode {name:<24} ours {t_ours:7.3f} s   tiktoken {t_tk:7.4f} s   ratio {t_ours / t_tk:5.1f}x"
              f"   ({len(ids):,} ids, identical)")
    ours = BPETokenizer.gpt2()
    n_ref = 2_000 if quick else 5_000
    short = _random_text(letters, n_ref, seed=2).encode()
    t_ref, ref = timed(lambda: ours.bpe_reference(short))
    t_fast, fast = timed(lambda: ours.bpe(short), repeat=3)
    assert ref == fast
    print(f"  reference encoder (rescans per merge) on {n_ref:,} letters: {t_ref:.2f} s, fast {t_fast * 1e3:.1f} ms, "
          f"same tokens, ratio {t_ref / t_fast:.0f}x")

    n_letters, n_merges = 20_000, 2_000
    word = _random_text("abcdefghijklmnopqrstuvwxyz", n_letters, seed=3)
    words = Counter({word.encode(): 1})
    t_fast, merges = timed(lambda: train_merges(words, n_merges, progress=False))
    print(f"  train {n_merges:,} merges on one {n_letters:,}-letter word: ours {t_fast:.2f} s", end="")
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        def hf_train() -> int:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            trainer = trainers.BpeTrainer(vocab_size=256 + 1 + n_merges, special_tokens=["<|endoftext|>"],
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
            tok.train_from_iterator([word], trainer)
            return tok.get_vocab_size()

        t_hf, size = timed(hf_train, repeat=3)
        print(f", Hugging Face tokenizers (Rust) {t_hf:.3f} s ({size:,} ids), ratio {t_fast / t_hf:.1f}x")
    except ImportError:
        print(" (Hugging Face tokenizers not installed: no Rust trainer to compare with)")
    k = 50 if quick else 200
    t_naive, naive = timed(lambda: train_merges_naive(words, k))
    t_fast_k, fast_k = timed(lambda: train_merges(words, k, progress=False))
    assert naive == fast_k == merges[:k], "the two trainers disagree"
    print(f"  naive trainer on the same word, first {k} merges: {t_naive:.2f} s against {t_fast_k:.3f} s, "
          f"identical merges, ratio {t_naive / t_fast_k:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="time the naive trainer on its first 200 merges only")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--long-words-only", action="store_true", help="only part 3, the long words")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if not args.long_words_only:
        docs = corpus()
        bench_encode(docs)
        bench_train(docs, args.vocab_size, 200 if args.quick else None)
    bench_long_words(args.quick)


if __name__ == "__main__":
    main()
