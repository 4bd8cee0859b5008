"""How good is a model, and what does training one cost?

Quality: the validation loss (mean negative log-likelihood, in nats per token), its perplexity, and
bits per byte. Loss per token cannot compare two tokenizers (a tokenizer with longer tokens predicts
fewer, harder tokens), but the total information a model needs to encode a text can: divide the
total loss by the text's bytes and convert nats to bits. The bigram baseline of chapter 1 gets the
same treatment, on the same split, so that "the model beats counting pairs" is a measured statement.

Cost: training takes about 6 FLOPs per parameter per token (2 for the forward pass's multiply-adds,
4 for the backward pass, which computes gradients for both activations and weights); Adam holds
16 bytes per parameter (weights, gradients and two moments, all in fp32); inference holds the weights
plus a KV cache that grows with the context.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._compat import renamed
from .runtime import InputError

__all__ = [
    "evaluate_loss", "perplexity", "bits_per_byte", "bigram_bits_per_byte", "evaluate",
    "flops_per_token", "training_flops", "training_bytes_per_parameter", "training_memory_bytes",
    "kv_cache_bytes", "inference_memory_bytes", "gpu_hours", "mfu",
]

LN2 = math.log(2.0)


# ----------------------------------------------------------------------------------------- quality
@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, ids: np.ndarray | torch.Tensor, *, block_size: int | None = None,
                  batch_size: int = 16, max_batches: int | None = None,
                  device: torch.device | str | None = None) -> tuple[float, int]:
    """``(mean_nll_nats, n_tokens)`` of ``model`` over ``ids``, in non-overlapping windows of
    ``block_size`` (default: the model's context), every predicted token counted once.

    The mean is over tokens, not over batches, so a short last batch does not weigh more than it should.
    """
    from .batches import sequential_batches
    from .runtime import autocast, unwrap_model

    raw = unwrap_model(model)
    block_size = int(block_size or raw.config.block_size)
    device = torch.device(device) if device is not None else next(raw.parameters()).device
    was_training = raw.training
    raw.eval()
    total, count = 0.0, 0
    try:
        for x, y in sequential_batches(ids, batch_size, block_size, device=device, max_batches=max_batches):
            with autocast(device):
                _, loss = raw(x, y)
            total += float(loss) * y.numel()
            count += y.numel()
    finally:
        raw.train(was_training)
    return total / count, count


def perplexity(mean_nll_nats: float) -> float:
    """exp(loss): the number of equally likely tokens the model is, on average, choosing among."""
    if not math.isfinite(mean_nll_nats) or mean_nll_nats < 0:
        raise InputError(f"mean_nll_nats must be a finite loss >= 0, got {mean_nll_nats}")
    return math.exp(mean_nll_nats)


def bits_per_byte(mean_nll_nats: float, n_tokens: int, n_bytes: int) -> float:
    """Total loss in bits divided by the bytes of text it encodes: ``nll * n_tokens / (n_bytes * ln 2)``.

    Comparable across tokenizers, since every tokenizer encodes the same bytes.
    """
    if n_tokens <= 0 or n_bytes <= 0:
        raise InputError(f"n_tokens and n_bytes must be positive, got {n_tokens} and {n_bytes}")
    if not math.isfinite(mean_nll_nats) or mean_nll_nats < 0:
        raise InputError(f"mean_nll_nats must be a finite loss >= 0, got {mean_nll_nats}")
    return mean_nll_nats * n_tokens / (n_bytes * LN2)


def _bytes_covered(n_tokens_scored: int, n_tokens_total: int, n_bytes_total: int) -> float:
    # An evaluation scores almost every token of the split (all but the tail that does not fill a
    # window); the bytes it covers are taken in proportion.
    return n_bytes_total * n_tokens_scored / max(1, n_tokens_total)


def bigram_bits_per_byte(train_ids: Any, val_ids: Any, vocab_size: int, val_bytes: int,
                         smoothing: float = 1.0) -> float:
    """Bits per byte of the section-1 bigram baseline, fitted on ``train_ids``, scored on ``val_ids``."""
    from .bigram import BigramModel

    bigram = BigramModel.fit(torch.from_numpy(np.asarray(train_ids, dtype=np.int64)), vocab_size, smoothing)
    val = torch.from_numpy(np.asarray(val_ids, dtype=np.int64))
    nll = bigram.nll(val)
    return bits_per_byte(nll, len(val) - 1, _bytes_covered(len(val) - 1, len(val), val_bytes))


def evaluate(model: torch.nn.Module, data: Any, *, batch_size: int = 16, max_batches: int | None = None,
             device: torch.device | str | None = None) -> dict[str, float]:
    """The report of the ``eval`` command: ``val_loss``, ``perplexity``, ``bits_per_byte`` and
    ``bigram_bits_per_byte`` (baseline on the same split) for a :class:`~gpt2lib.data.TokenData`."""
    loss, n = evaluate_loss(model, data.val, batch_size=batch_size, max_batches=max_batches, device=device)
    bpb = bits_per_byte(loss, n, round(_bytes_covered(n, len(data.val), data.val_bytes)))
    return {"val_loss": loss, "perplexity": perplexity(loss), "bits_per_byte": bpb,
            "bigram_bits_per_byte": bigram_bits_per_byte(data.train, data.val, data.vocab_size, data.val_bytes),
            "val_tokens": n}


# -------------------------------------------------------------------------------------------- cost
def flops_per_token(n_params: int, *, n_layer: int = 0, seq_len: int = 0, n_embd: int = 0) -> float:
    """Training FLOPs per token: 6 N, plus attention's 6 * 2 * n_layer * seq_len * n_embd when the shape
    is given (the QK^T and AV products, which have no parameters; Kaplan et al. 2020, table 1)."""
    if n_params <= 0:
        raise InputError(f"n_params must be positive, got {n_params}")
    return 6.0 * n_params + 12.0 * n_layer * seq_len * n_embd


def training_flops(n_params: int, n_tokens: float) -> float:
    """C = 6 N D: the FLOPs of training ``n_params`` parameters on ``n_tokens`` tokens."""
    if n_tokens <= 0:
        raise InputError(f"n_tokens must be positive, got {n_tokens}")
    return flops_per_token(n_params) * n_tokens


def training_bytes_per_parameter() -> int:
    """Bytes each parameter costs while training with Adam, before activations: 16.

    fp32 training: weight 4 + gradient 4 + Adam's two moments 4 + 4. Mixed precision as in the ZeRO
    paper (Rajbhandari et al. 2020) lands on the same 16: a 16-bit weight (2) and gradient (2) plus an
    fp32 master weight and two fp32 moments (12). ``torch.autocast`` keeps fp32 weights and gradients
    and casts on the fly, so it is 16 too. Activations come on top and grow with batch and context.
    """
    return 16


def training_memory_bytes(n_params: int) -> int:
    """Weights + gradients + Adam state for ``n_params`` parameters (activations not included)."""
    if n_params <= 0:
        raise InputError(f"n_params must be positive, got {n_params}")
    return n_params * training_bytes_per_parameter()


@renamed(batch="batch_size")
def kv_cache_bytes(*, n_layer: int, n_embd: int, seq_len: int, batch_size: int = 1, bytes_per_value: int = 2) -> int:
    """The KV cache: a key and a value vector of ``n_embd`` numbers per layer, per position, per sequence."""
    return 2 * n_layer * n_embd * seq_len * batch_size * bytes_per_value


@renamed(batch="batch_size")
def inference_memory_bytes(n_params: int, *, n_layer: int, n_embd: int, seq_len: int, batch_size: int = 1,
                           bytes_per_value: int = 2) -> int:
    """Weights plus KV cache, both at ``bytes_per_value`` (2 for bf16/fp16, 4 for fp32)."""
    return n_params * bytes_per_value + kv_cache_bytes(n_layer=n_layer, n_embd=n_embd, seq_len=seq_len,
                                                       batch_size=batch_size, bytes_per_value=bytes_per_value)


def gpu_hours(n_params: int, n_tokens: float, *, peak_flops: float, mfu: float = 0.4) -> float:
    """GPU-hours to train: 6 N D FLOPs at ``mfu`` of a GPU's ``peak_flops`` per second."""
    if not 0 < mfu <= 1:
        raise InputError(f"mfu must be in (0, 1], got {mfu}")
    if peak_flops <= 0:
        raise InputError(f"peak_flops must be positive, got {peak_flops}")
    return training_flops(n_params, n_tokens) / (peak_flops * mfu) / 3600.0


def mfu(tokens_per_s: float, n_params: int, peak_flops: float, *, n_layer: int = 0, seq_len: int = 0,
        n_embd: int = 0) -> float:
    """Model FLOPs utilisation: the FLOPs the model needs per second at this speed, over the peak."""
    return tokens_per_s * flops_per_token(n_params, n_layer=n_layer, seq_len=seq_len, n_embd=n_embd) / peak_flops
