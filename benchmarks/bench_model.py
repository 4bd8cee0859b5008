"""Our GPT against Hugging Face's GPT2LMHeadModel: same random 124M weights, CPU, float32, one run.

    .venv/bin/python benchmarks/bench_model.py [--quick]

Prints times and ratios (never asserts them; speed depends on the machine). Targets from issue 4:
forward no slower than HF, greedy generation at least 1.5x HF's tokens/s, KV cache at least 5x faster
than recomputing at 256 new tokens. Also our forward's achieved GFLOP/s next to a plain large matmul.
``--quick`` shortens everything (a smoke run, not figures to quote).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable

os.environ.setdefault("GPT2LIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from gpt2lib import GPT, GPTConfig
from gpt2lib.hf import hf_to_ours


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls after one warm-up call (the minimum is the least disturbed by other
    processes on a shared machine)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def timed_pair(theirs: Callable[[], object], ours: Callable[[], object], repeat: int,
               warm_up: bool = True) -> tuple[float, float]:
    """Fastest of ``repeat`` calls each, alternating the two so that a busy spell hits both alike."""
    if warm_up:
        theirs(), ours()
    t: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeat):
        for k, fn in enumerate((theirs, ours)):
            t0 = time.perf_counter()
            fn()
            t[k].append(time.perf_counter() - t0)
    return min(t[0]), min(t[1])


def forward_flops(c: GPTConfig, B: int, T: int) -> float:
    """Matmul FLOPs of one forward pass with all T logits: 2 per multiply-add, attention counted in full."""
    per_token = 2 * (c.n_layer * 12 * c.n_embd**2 + c.n_embd * c.vocab_size)
    attn = 2 * 2 * c.n_layer * T * T * c.n_embd  # Q K^T and (weights) V
    return B * (T * per_token + attn)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    hf_logging.set_verbosity_error()
    repeat = 1 if args.quick else 3
    gen_new, kv_new = (16, 32) if args.quick else (128, 256)

    torch.manual_seed(0)
    config = GPTConfig.preset("gpt2")
    hf = GPT2LMHeadModel(GPT2Config()).eval()
    with torch.device("meta"):
        ours = GPT(config)
    ours.load_state_dict(hf_to_ours(hf.state_dict(), config), assign=True)
    ours.lm_head.weight = ours.wte.weight
    ours.eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32, "
          f"{ours.num_parameters():,} parameters (HF: {hf.num_parameters():,})")

    print(f"\n{'':22}{'HF (s)':>10}{'ours (s)':>10}{'speed-up':>10}", flush=True)

    def row(name: str, t_hf: float, t_ours: float, note: str) -> None:
        # printed as soon as measured: the whole run takes minutes on a laptop
        print(f"{name:22}{t_hf:10.3f}{t_ours:10.3f}{t_hf / t_ours:9.2f}x   {note}", flush=True)

    with torch.inference_mode():
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        mm_gflops = 2 * n**3 / timed(lambda: a @ b, repeat) / 1e9
        for B, T in ((1, 256), (8, 128)):
            idx = torch.randint(0, config.vocab_size, (B, T))
            diff = (ours(idx)[0] - hf(idx).logits).abs().max().item()
            t_hf, t_ours = timed_pair(lambda idx=idx: hf(idx), lambda idx=idx: ours(idx), repeat)
            gflops = forward_flops(config, B, T) / t_ours / 1e9
            row(f"forward {B}x{T}", t_hf, t_ours, f"max |dlogits| {diff:.1e}; ours {gflops:.0f} GFLOP/s = "
                f"{gflops / mm_gflops:.0%} of a plain {n}x{n} matmul ({mm_gflops:.0f} GFLOP/s)")

    prompt = torch.randint(0, config.vocab_size, (1, 32))
    mask = torch.ones_like(prompt)

    def hf_gen() -> torch.Tensor:
        return hf.generate(prompt, attention_mask=mask, max_new_tokens=gen_new, min_new_tokens=gen_new,
                           do_sample=False, pad_token_id=0)

    def ours_gen() -> torch.Tensor:
        return ours.generate(prompt, gen_new, do_sample=False)

    same = torch.equal(hf_gen(), ours_gen())
    t_hf, t_ours = timed_pair(hf_gen, ours_gen, 1 if args.quick else 2, warm_up=False)  # warmed above
    row(f"greedy {gen_new} tokens", t_hf, t_ours,
        f"HF {gen_new / t_hf:.1f} tok/s, ours {gen_new / t_ours:.1f} tok/s, same tokens: {same}")

    t0 = time.perf_counter()
    cached = ours.generate(prompt, kv_new, do_sample=False, use_cache=True)
    t_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    recomputed = ours.generate(prompt, kv_new, do_sample=False, use_cache=False)
    t_recompute = time.perf_counter() - t0
    print(f"\nKV cache vs recompute, {kv_new} new tokens after 32: {t_recompute:.1f} s / {t_cache:.1f} s = "
          f"{t_recompute / t_cache:.1f}x (same tokens: {torch.equal(cached, recomputed)})")

if __name__ == "__main__":
    main()
