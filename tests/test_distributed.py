"""DDP on CPU: two gloo processes under torchrun train exactly what one process trains.

Run as a script (``torchrun --nproc_per_node=2 tests/test_distributed.py OUT``), this file is the
worker: it trains the same tiny model as the test below and writes its losses to OUT from rank 0.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TEXT = "".join(f"for i in range({i % 9}):\n    total += i * {i % 5}\n" for i in range(500))
STEPS = 6


def _run(out: Path | None = None) -> dict[int, float]:
    from conftest import byte_token_data  # importable here too: torchrun puts tests/ first on sys.path
    from gpt2lib.model import GPT, GPTConfig
    from gpt2lib.training import TrainConfig, train

    data = byte_token_data(TEXT, "loops")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=2, n_head=2, n_embd=32))
    # the global batch is 8 sequences: one process takes all 8, each of two processes takes 4
    config = TrainConfig(max_steps=STEPS, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_interval=0,
                         eval_batches=1, log_interval=1, device="cpu")
    result = train(model, data, config, folder=out, progress=False)
    return {r["step"]: r["train_loss"] for r in result.history}


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    single = _run()
    out = tmp_path / "losses.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPT2LIB_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).resolve()), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = {int(k): v for k, v in json.loads(out.read_text()).items()}
    assert sorted(ddp) == list(range(1, STEPS + 1))
    for step, loss in single.items():
        assert abs(ddp[step] - loss) < 1e-5, (step, ddp[step], loss)
    assert ddp[STEPS] < ddp[1]  # and it trained


if __name__ == "__main__":  # the worker, started by torchrun
    from gpt2lib.training.distributed import setup, teardown

    info = setup("cpu")
    assert info.world_size == 2, "run under torchrun --nproc_per_node=2"
    run_dir = Path(sys.argv[1]).parent / f"ckpt-rank{info.rank}"
    losses = _run(run_dir if info.is_main else None)
    if info.is_main:
        Path(sys.argv[1]).write_text(json.dumps(losses))
    teardown()
