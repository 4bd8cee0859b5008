"""GPT-2 124M on one GPU with bf16, torch.compile and flash attention: tokens per second and MFU.

    python benchmarks/gpu_train.py                 # on a GPU machine: 300 steps of the 124M preset
    python benchmarks/gpu_train.py --dry-run       # anywhere: the same code path on a CPU, tiny and quick

MFU (model FLOPs utilisation) is the fraction of the GPU's arithmetic the training actually uses:
tokens per second x FLOPs per token (6 N + 12 L T d, the weights' and attention's share; Kaplan et
al. 2020) divided by a *measured* peak, the rate of a large bf16 matmul on this very GPU (more
honest than a datasheet figure the GPU may not reach under this driver and clock). The goal on an
H200 is 50%.

The run goes through the package's own loop (``gpt2lib.training.train``), so the figure is what a reader
gets from ``python -m gpt2lib train --preset gpt2 --compile``. The data is the embedded python-docs
corpus in GPT-2's tokenizer: small, so the model sees it many times, which is fine for measuring speed.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from gpt2lib.data import prepare  # noqa: E402
from gpt2lib.evaluation import flops_per_token, mfu  # noqa: E402
from gpt2lib.model import GPT, GPTConfig  # noqa: E402
from gpt2lib.runtime import autocast_dtype, seed_everything  # noqa: E402
from gpt2lib.tokenizer import BPETokenizer  # noqa: E402
from gpt2lib.training import TrainConfig, train  # noqa: E402


def measured_matmul_flops(device: torch.device, dtype: torch.dtype, n: int, iters: int) -> float:
    """FLOP/s of an n x n @ n x n matmul in ``dtype``: 2 n^3 per product, timed after a warm-up."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync()
    return 2 * n**3 * iters / (time.perf_counter() - t0)


def flash_only(device: torch.device):
    """Make scaled_dot_product_attention use the flash kernel or fail loudly (never a silent fallback
    to the slow math path, which would make the MFU figure meaningless)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64, help="global batch in sequences (default 64)")
    p.add_argument("--grad-accum", type=int, default=2, help="micro-batches per step (default 2: 32 x 1024)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (to see what it buys)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny preset, 8 steps: checks the code path")
    args = p.parse_args()

    if args.dry_run:
        device = torch.device("cpu")
        config = GPTConfig.preset("tiny", vocab_size=50304)
        args.steps, args.batch_size, args.grad_accum, compile_ = 8, 4, 2, False
        peak = measured_matmul_flops(device, torch.float32, 256, 5)
        peak_label = "fp32 256x256 matmul on this CPU"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here; run with --dry-run to check the code path on a CPU")
        device = torch.device("cuda")
        if autocast_dtype(device) is not torch.bfloat16:
            raise SystemExit("this GPU has no bf16; the benchmark measures bf16 training")
        torch.set_float32_matmul_precision("high")  # TF32 for what autocast leaves in fp32
        # 50,304 = 50,257 rounded up to a multiple of 128: the head's matmul tiles evenly (the 47 extra
        # ids are never targets, so the model learns to give them no probability).
        config = GPTConfig.preset("gpt2", vocab_size=50304)
        compile_ = not args.no_compile
        peak = measured_matmul_flops(device, torch.bfloat16, 8192, 50)
        peak_label = f"bf16 8192x8192 matmul on {torch.cuda.get_device_name(device)}"
    print(f"measured peak: {peak / 1e12:.1f} TFLOP/s ({peak_label})")

    tok = BPETokenizer.gpt2()
    data = prepare("python-docs", tok)
    seed_everything(1337)
    model = GPT(config)
    n_params = model.num_parameters() - model.wpe.weight.numel()  # position lookups do no arithmetic
    fpt = flops_per_token(n_params, n_layer=config.n_layer, seq_len=config.block_size, n_embd=config.n_embd)
    print(f"model: {model.num_parameters():,} parameters, {fpt / 1e9:.2f} GFLOP per training token; "
          f"batch {args.batch_size} x {config.block_size} tokens, accumulation {args.grad_accum}, "
          f"compile {compile_}")
    tc = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=6e-4,
                     min_lr=6e-5, warmup_steps=min(50, args.steps // 4), eval_interval=0, eval_batches=4,
                     log_interval=10 if not args.dry_run else 2, compile=compile_, device=device.type)
    t0 = time.perf_counter()
    with flash_only(device):
        result = train(model, data, tc, progress=True)
    total = time.perf_counter() - t0
    # The first logged intervals include compilation and allocator warm-up: measure the steady state.
    rows = [r for r in result.history if "tokens_per_s" in r]
    steady = rows[len(rows) // 3:] or rows
    tps = statistics.median(r["tokens_per_s"] for r in steady)
    util = mfu(tps, n_params, peak, n_layer=config.n_layer, seq_len=config.block_size, n_embd=config.n_embd)
    print(f"\n{result.steps} steps in {total:.0f} s; loss {rows[0]['train_loss']:.2f} -> {rows[-1]['train_loss']:.2f}")
    print(f"steady state: {tps:,.0f} tokens/s, MFU {util:.1%} of the measured peak "
          f"({'goal met' if util >= 0.5 else 'below the 50% goal'})")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
