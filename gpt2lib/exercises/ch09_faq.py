"""Chapter 9's exercises: the FAQ's answers as small formulas a reader writes and the checker verifies.

How much text a token is (bytes, not characters), how long training takes from 6·N·D FLOPs on stated
hardware, and how much memory inference needs once the KV cache is counted. The classic mistakes:
counting characters instead of UTF-8 bytes, forgetting the backward pass (2·N·D instead of 6·N·D) or the
utilisation, and forgetting that the cache holds both keys *and* values for every layer.
"""
from __future__ import annotations

import random
from typing import Callable

import regex

from ..evaluation import gpu_hours, inference_memory_bytes
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

# --- 9.2 training time from FLOPs ------------------------------------------------------------------

SECONDS_PER_DAY = 86_400


def _training_days(n_params: float, n_tokens: float, n_gpus: int, peak_flops: float, utilisation: float) -> float:
    # the package's GPU-hours (6 N D at the utilisation), shared by the GPUs, in days
    return gpu_hours(n_params, n_tokens, peak_flops=peak_flops, mfu=utilisation) / n_gpus / 24


def _training_days_forward_only(n_params, n_tokens, n_gpus, peak_flops, utilisation):
    return 2 * n_params * n_tokens / (n_gpus * peak_flops * utilisation) / SECONDS_PER_DAY


def _training_days_peak(n_params, n_tokens, n_gpus, peak_flops, utilisation):
    return 6 * n_params * n_tokens / (n_gpus * peak_flops) / SECONDS_PER_DAY


def _training_hours(n_params, n_tokens, n_gpus, peak_flops, utilisation):
    return 6 * n_params * n_tokens / (n_gpus * peak_flops * utilisation) / 3600


def _training_days_one_gpu(n_params, n_tokens, n_gpus, peak_flops, utilisation):
    return 6 * n_params * n_tokens / (peak_flops * utilisation) / SECONDS_PER_DAY


def _training_cases(rng: random.Random) -> list[Case]:
    return [
        Case("124M parameters, 10B tokens, 8 GPUs at 312 TFLOP/s, 40%", (124_439_808, 10e9, 8, 312e12, 0.4)),
        Case("a random run", (rng.uniform(1e8, 2e9), rng.uniform(1e9, 4e11), rng.choice([2, 16, 64, 256]),
                              rng.choice([125e12, 312e12, 989e12]), rng.uniform(0.2, 0.6))),
    ]


check_training_days = register(Exercise(
    "training_days", number="9.2", chapter=9, title="Training time from 6·N·D FLOPs", level="medium", minutes=10,
    reference=_training_days, cases=_training_cases,
    mistakes=[
        Mistake("you counted 2·N·D (the forward pass only); training costs 6·N·D, the backward pass twice the "
                "forward", _training_days_forward_only),
        Mistake("the GPUs ran at their peak; no GPU does: multiply the peak by the utilisation",
                _training_days_peak),
        Mistake("you stopped at hours; the answer is in days (86,400 seconds each)", _training_hours),
        Mistake("one GPU did all the work; the GPUs share it, so divide by their number", _training_days_one_gpu),
    ],
))

# --- 9.3 memory for inference, the KV cache included ------------------------------------------------


def _inference_bytes(n_params: int, n_layer: int, n_embd: int, context: int, batch: int, bytes_per_value: int) -> int:
    # weights plus a key and a value per layer, position and sequence: the package's own function
    return inference_memory_bytes(n_params, n_layer=n_layer, n_embd=n_embd, seq_len=context, batch=batch,
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
