"""Chapter 8's exercise on what came after GPT-2: RMSNorm from its formula.

RMSNorm divides each position's vector by its root mean square, eps inside the square root, and multiplies by a
gain; there is no mean subtracted and no bias. The mistakes listed are the ones whose numbers look right at a
glance: LayerNorm's centring, eps outside the root, the gain left out, the mean of |x| in place of x^2, the
statistics taken over the wrong dimension. The answer key is written here rather than imported from
:mod:`gpt2lib.variants`, which this package may not import; tests/test_exercises.py checks the two agree.
"""
from __future__ import annotations

import random

import torch
from torch import Tensor

from ._core import Case, Exercise, Mistake, register


def _rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-5) -> Tensor:
    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps) * weight


def _rms_centred(x, weight, eps=1e-5):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt((centred ** 2).mean(dim=-1, keepdim=True) + eps) * weight


def _rms_eps_outside(x, weight, eps=1e-5):
    return x / (torch.sqrt((x ** 2).mean(dim=-1, keepdim=True)) + eps) * weight


def _rms_no_weight(x, weight, eps=1e-5):
    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)


def _rms_mean_abs(x, weight, eps=1e-5):
    return x / (x.abs().mean(dim=-1, keepdim=True) + eps) * weight


def _rms_wrong_dim(x, weight, eps=1e-5):
    return x / torch.sqrt((x ** 2).mean(dim=0, keepdim=True) + eps) * weight


def _rms_cases(rng: random.Random) -> list[Case]:
    def case(name: str, shape: tuple[int, ...], scale: float, eps: float, shift: float = 0.0) -> Case:
        x = torch.randn(*shape) * scale + shift
        return Case(name, (x, 1.0 + 0.5 * torch.randn(shape[-1])), dict(eps=eps))

    B, T = rng.randint(2, 4), rng.randint(3, 7)
    return [
        # an offset makes the mean matter (LayerNorm's centring) and the rows differ from the columns
        case(f"({B}, {T}, 8) activations around 2", (B, T, 8), 1.0 + rng.random(), 1e-5, shift=2.0),
        case("(3, 5) with C = 5 channels", (3, 5), 2.0, 1e-5),
        # tiny activations: eps is no longer negligible, so inside or outside the root shows
        case("tiny activations (std 1e-3)", (2, rng.randint(4, 9), 16), 1e-3, 1e-5),
        case("a large eps = 0.1", (B, 6), 0.5, 0.1),
        case(f"({B}, {T}, 64), an offset of -3", (B, T, 64), 1.0, 1e-5, shift=-3.0),
    ]


check_rms_norm = register(Exercise(
    "rms_norm", number="8.5", chapter=8, title="RMSNorm from its formula", level="easy", minutes=8,
    reference=_rms_norm, cases=_rms_cases,
    mistakes=[
        Mistake("your numbers match LayerNorm without its bias: RMSNorm subtracts no mean, it divides x itself "
                "by sqrt(mean(x^2) + eps)", _rms_centred),
        Mistake("your numbers match eps added outside the square root: divide by sqrt(mean(x^2) + eps)",
                _rms_eps_outside),
        Mistake("your numbers match an RMSNorm without its gain: multiply by weight at the end", _rms_no_weight),
        Mistake("your numbers match the mean of |x| in place of the root of the mean of x^2: square, average, "
                "then take the root", _rms_mean_abs),
        Mistake("your numbers match statistics over the wrong dimension: each position's vector (dim=-1) is "
                "normalised on its own", _rms_wrong_dim),
    ],
))
