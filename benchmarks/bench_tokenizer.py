"""How fast is gpt2lib's pure-Python tokenizer? Prints ratios; asserts nothing (speed is not a test).

    .venv/bin/python benchmarks/bench_tokenizer.py            # everything, the naive trainer in full
    .venv/bin/python benchmarks/bench_tokenizer.py --quick    # the naive trainer on its first 200 merges

Corpus: Python's own documentation (``pydoc_data.topics``, in every Python install) followed by the
standard library's source files in sorted order until about 1 MB, so anyone can rerun it offline.

1. Encoding with the real GPT-2 vocabulary, document by document: ours (cold cache, then warm) against
   Hugging Face's ``GPT2Tokenizer`` called text by text and tiktoken (both Rust inside). Ids are checked
   identical before anything is timed.
2. Training a 4,096-id vocabulary: the incremental trainer against the naive one (recount every pair at
   every merge), which must learn the same merges.
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
    import tiktoken
    import tiktoken.load
    import transformers

    from gpt2lib.tokenizer import GPT2_PATTERN, BPETokenizer
    from gpt2lib.tokenizer.files import gpt2_files_dir

    folder = gpt2_files_dir()
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    tk = tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
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
    from gpt2lib.tokenizer.training import count_words, train_merges, train_merges_naive

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="time the naive trainer on its first 200 merges only")
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    docs = corpus()
    bench_encode(docs)
    bench_train(docs, args.vocab_size, 200 if args.quick else None)


if __name__ == "__main__":
    main()
