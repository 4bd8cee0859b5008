"""gpt2lib.evaluation: losses, bits per byte, the bigram baseline, FLOP and memory arithmetic."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2lib.bigram import BigramModel
from gpt2lib.data import TokenData
from gpt2lib.evaluation import (bigram_bits_per_byte, bits_per_byte, evaluate, evaluate_loss, flops_per_token,
                              gpu_hours, inference_memory_bytes, kv_cache_bytes, mfu, perplexity,
                              training_flops, training_memory_bytes)
from gpt2lib.model import GPT, GPTConfig


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()


def test_uniform_bytes_cost_eight_bits_per_byte():
    # a model guessing uniformly among 256 byte values spends exactly 8 bits on every byte
    assert bits_per_byte(math.log(256), 1000, 1000) == pytest.approx(8.0)
    # the same total information over half as many (longer) tokens: the same bits per byte
    assert bits_per_byte(2 * math.log(256), 500, 1000) == pytest.approx(8.0)


def test_bits_per_byte_rejects_nonsense():
    with pytest.raises(ValueError):
        bits_per_byte(1.0, 0, 10)
    with pytest.raises(ValueError):
        bits_per_byte(float("nan"), 10, 10)


def test_perplexity_is_exp_loss():
    assert perplexity(math.log(50)) == pytest.approx(50)
    with pytest.raises(ValueError):
        perplexity(-1.0)


def test_evaluate_loss_matches_cross_entropy_by_hand(tiny):
    ids = np.random.default_rng(0).integers(0, 50, 8 * 5 + 3).astype(np.uint16)
    loss, n = evaluate_loss(tiny, ids, batch_size=2)
    windows = torch.from_numpy(ids[: 8 * 5 + 1].astype(np.int64))
    x = torch.stack([windows[i * 8: i * 8 + 8] for i in range(5)])
    y = torch.stack([windows[i * 8 + 1: i * 8 + 9] for i in range(5)])
    with torch.no_grad():
        expected = F.cross_entropy(tiny(x)[0].reshape(-1, 50), y.reshape(-1)).item()
    assert n == 40
    assert loss == pytest.approx(expected, rel=1e-5)


def test_bigram_baseline_is_the_bigram_model_in_bits_per_byte():
    rng = np.random.default_rng(1)
    train, val = rng.integers(0, 30, 2000), rng.integers(0, 30, 300)
    nll = BigramModel.fit(torch.from_numpy(train), 30).nll(torch.from_numpy(val))
    got = bigram_bits_per_byte(train, val, 30, val_bytes=600)
    # 299 predictions covering 299/300 of the 600 bytes
    assert got == pytest.approx(nll * 299 / (600 * 299 / 300 * math.log(2)))


def test_evaluate_report_has_the_four_figures(tiny):
    rng = np.random.default_rng(2)
    data = TokenData("random", rng.integers(0, 50, 500).astype(np.uint16),
                     rng.integers(0, 50, 100).astype(np.uint16), 1000, 200, 50)
    report = evaluate(tiny, data)
    assert set(report) >= {"val_loss", "perplexity", "bits_per_byte", "bigram_bits_per_byte"}
    assert report["perplexity"] == pytest.approx(math.exp(report["val_loss"]))
    # an untrained model is close to uniform over 50 ids: ln 50 nats per token
    assert abs(report["val_loss"] - math.log(50)) < 0.3


def test_six_n_d():
    n, d = 124_439_808, 10e9
    assert flops_per_token(n) == 6 * n
    assert training_flops(n, d) == pytest.approx(6 * n * d)
    # attention's extra term for GPT-2 small at full context
    assert flops_per_token(n, n_layer=12, seq_len=1024, n_embd=768) == 6 * n + 12 * 12 * 1024 * 768
    with pytest.raises(ValueError):
        training_flops(n, 0)


def test_gpu_hours_and_mfu_are_inverse():
    n, d, peak = 124_439_808, 10e9, 989e12
    hours = gpu_hours(n, d, peak_flops=peak, mfu=0.5)
    tokens_per_s = d / (hours * 3600)
    assert mfu(tokens_per_s, n, peak) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="mfu"):
        gpu_hours(n, d, peak_flops=peak, mfu=1.5)


def test_memory_arithmetic():
    assert training_memory_bytes(1_000_000) == 16_000_000
    # GPT-2 small's KV cache for one 1024-token sequence in bf16: 2 x 12 layers x 768 x 1024 x 2 bytes
    kv = kv_cache_bytes(n_layer=12, n_embd=768, seq_len=1024)
    assert kv == 37_748_736
    assert inference_memory_bytes(124_439_808, n_layer=12, n_embd=768, seq_len=1024) == 2 * 124_439_808 + kv
