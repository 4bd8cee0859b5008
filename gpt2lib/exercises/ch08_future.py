"""Chapter 8 exercises: what training costs (FLOPs, memory, GPU-hours) and how loss scales with size."""
from __future__ import annotations

import math
import random

import torch

from ..evaluation import gpu_hours, training_flops, training_memory_bytes
from ._core import Case, Exercise, Mistake, register

# The answer keys are the package's own functions, so the two cannot drift apart.

# ------------------------------------------------------------------------------------------ 8.1
def _train_flops(n_params: int, n_tokens: int) -> float:
    return training_flops(n_params, n_tokens)


def _flops_cases(rng: random.Random) -> list[Case]:
    return [Case("GPT-2 small on 10B tokens", (124_439_808, 10_000_000_000)),
            Case("random size", (rng.randrange(10**6, 10**9), rng.randrange(10**8, 10**11))),
            Case("one parameter, one token", (1, 1)),
            Case("a tiny model on a few tokens", (rng.randrange(2, 1000), rng.randrange(2, 1000)))]


check_training_flops_6nd = register(Exercise(
    "training_flops_6nd", number="8.1", chapter=8, title="Training FLOPs: 6 N D", level="easy", minutes=5,
    reference=_train_flops, cases=_flops_cases,
    mistakes=[Mistake("you counted the forward pass only (2 FLOPs per parameter per token); the backward "
                      "pass costs twice the forward", lambda n, d: 2.0 * n * d),
              Mistake("you counted a multiply-add as 1 FLOP; it is 2: forward 2 N, backward 4 N per token",
                      lambda n, d: 3.0 * n * d),
              Mistake("the backward pass cost as much as the forward; it computes gradients for activations "
                      "*and* weights: 4 N, not 2 N", lambda n, d: 4.0 * n * d)],
))


# ------------------------------------------------------------------------------------------ 8.2
def _adam_bytes(n_params: int) -> int:
    return training_memory_bytes(n_params)


def _memory_cases(rng: random.Random) -> list[Case]:
    return [Case("GPT-2 XL", (1_557_611_200,)), Case("random size", (rng.randrange(10**5, 10**10),)),
            Case("one parameter", (1,))]


check_adam_memory_bytes = register(Exercise(
    "adam_memory_bytes", number="8.2", chapter=8, title="Bytes to train N parameters with Adam (fp32)", level="easy",
    minutes=5, reference=_adam_bytes, cases=_memory_cases,
    int_required=True,  # the text asks for an int
    mistakes=[Mistake("you counted the weights only; training also holds a gradient and Adam's two moments "
                      "per parameter", lambda n: 4 * n),
              Mistake("you left out the gradient (4 bytes per parameter)", lambda n: 12 * n),
              Mistake("you counted weights and gradients only; Adam also keeps two moments (m and v), 4 bytes "
                      "each", lambda n: 8 * n)],
))


# ------------------------------------------------------------------------------------------ 8.3
def _gpu_hours(n_params: int, n_tokens: int, peak_flops: float, mfu: float) -> float:
    return gpu_hours(n_params, n_tokens, peak_flops=peak_flops, mfu=mfu)


def _hours_cases(rng: random.Random) -> list[Case]:
    return [Case("124M, 10B tokens, A100 bf16 at 40%", (124_439_808, 10_000_000_000, 312e12, 0.4)),
            Case("1.5B, 30B tokens, H100 at 50%", (1_557_611_200, 30_000_000_000, 989e12, 0.5)),
            Case("random", (rng.randrange(10**7, 10**10), rng.randrange(10**9, 10**12),
                            rng.choice([125e12, 312e12, 989e12]), rng.choice([0.25, 0.35, 0.55])))]


check_gpu_hours = register(Exercise(
    "gpu_hours", number="8.3", chapter=8, title="GPU-hours from 6 N D, peak FLOP/s and MFU", level="medium", minutes=8,
    reference=_gpu_hours, cases=_hours_cases,
    mistakes=[Mistake("the GPU ran at its peak; it never does: divide by peak_flops * mfu",
                      lambda n, d, peak, mfu: 6.0 * n * d / peak / 3600.0),
              Mistake("you stopped at GPU-seconds; divide by 3600",
                      lambda n, d, peak, mfu: 6.0 * n * d / (peak * mfu)),
              Mistake("the achieved rate were peak / mfu; MFU is a fraction of the peak, so it is peak * mfu",
                      lambda n, d, peak, mfu: 6.0 * n * d * mfu / peak / 3600.0)],
))


# ------------------------------------------------------------------------------------------ 8.4
def _fit_power_law(n_params: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    x, y = torch.log(n_params.double()), torch.log(losses.double())
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    intercept = y.mean() - slope * x.mean()
    return float(torch.exp(intercept)), float(-slope)


def _law_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name, k in (("exact law, 4 sizes", 4), ("noisy law, 6 sizes", 6)):
        a, b = rng.uniform(5.0, 20.0), rng.uniform(0.05, 0.3)
        n = torch.tensor(sorted(rng.uniform(1e5, 1e8) for _ in range(k)), dtype=torch.float64)
        noise = 0.0 if k == 4 else 0.02
        loss = a * n ** (-b) * torch.exp(noise * torch.randn(k, dtype=torch.float64))
        cases.append(Case(name, (n, loss)))
    return cases


def _fit_linear_space(n_params: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    x, y = n_params.double(), losses.double()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return float(y.mean() - slope * x.mean()), float(-slope)


def _fit_sign(n_params: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    a, b = _fit_power_law(n_params, losses)
    return a, -b


def _fit_log_a(n_params: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    a, b = _fit_power_law(n_params, losses)
    return math.log(a), b


check_fit_power_law = register(Exercise(
    "fit_power_law", number="8.4", chapter=8, title="Fit a scaling law L = a * N^(-b)", level="medium", minutes=12,
    reference=_fit_power_law, cases=_law_cases,
    mistakes=[Mistake("you fitted L against N directly; a power law is a straight line in log-log space, "
                      "so fit log L against log N", _fit_linear_space),
              Mistake("you returned the slope as b; L = a * N^(-b) falls with N, so b is minus the slope (b > 0)",
                      _fit_sign),
              Mistake("you returned the intercept itself; it is log a, so return exp(intercept)", _fit_log_a)],
))
