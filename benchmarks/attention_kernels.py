"""Hand-written attention (the formula, gpt2lib.attention.attention) against PyTorch's fused kernel
(torch.nn.functional.scaled_dot_product_attention: flash attention on a recent NVIDIA GPU) as the
sequence grows: milliseconds per forward pass, the ratio, the largest difference of the outputs, and
the memory the hand-written version spends on its (T, T) score matrix.

    python benchmarks/attention_kernels.py                  # this machine's device (cuda, mps, cpu)
    python benchmarks/attention_kernels.py --device cpu --lengths 128 256 512

Each length is timed in interleaved rounds (hand-written, fused, hand-written, ...) and the median
is reported, so a busy moment hurts both sides alike. GPT-2 124M's shapes: 12 heads of 64.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt2lib.attention import attention  # noqa: E402
from gpt2lib.runtime import get_device  # noqa: E402


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    device = get_device(args.device)
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    lengths = args.lengths or ([256, 512, 1024, 2048, 4096, 8192] if gpu else [64, 128, 256, 512, 1024])
    batch = args.batch or (8 if gpu else 1)
    heads, d = 12, 64
    name = torch.cuda.get_device_name(device) if gpu else str(device)
    print(f"device {name}, {str(dtype).replace('torch.', '')}, batch {batch}, {heads} heads of {d}, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'T':>6} {'formula ms':>11} {'fused ms':>9} {'ratio':>6} {'max diff':>9} {'scores MB':>10}")
    for T in lengths:
        g = torch.Generator(device="cpu").manual_seed(T)
        q, k, v = (torch.randn(batch, heads, T, d, generator=g).to(device, dtype) for _ in range(3))
        with torch.no_grad():
            ours = attention(q, k, v)
            fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            diff = (ours.float() - fused.float()).abs().max().item()
            slow, fast = [], []
            for _ in range(2):  # warm-up: kernels chosen, memory allocated
                attention(q, k, v), F.scaled_dot_product_attention(q, k, v, is_causal=True)
            for _ in range(args.rounds):
                slow.append(timed(lambda q=q, k=k, v=v: attention(q, k, v), device))
                fast.append(timed(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True), device))
        a, b = statistics.median(slow), statistics.median(fast)
        scores_mb = batch * heads * T * T * torch.finfo(dtype).bits / 8 / 1e6
        print(f"{T:>6} {a:>11.3f} {b:>9.3f} {a / b:>5.1f}x {diff:>9.1e} {scores_mb:>10.1f}")
        del q, k, v, ours, fused
        if gpu:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
