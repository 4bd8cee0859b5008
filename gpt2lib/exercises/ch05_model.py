"""Chapter 5's function exercises: LayerNorm and GELU, written from their formulas.

LayerNorm normalises each position's vector with its own mean and *biased* variance, with eps inside
the square root, then applies a gain and a bias. GELU in GPT-2 is the tanh approximation. Each checker
knows the mistakes that give numbers close enough to look right at a glance: the unbiased variance, eps
outside the root, the exact erf GELU. The modules built from them (MLP, block, GPT) are in ch05_modules.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._core import Case, Exercise, Mistake, compare, register

# --- 5.1 LayerNorm -----------------------------------------------------------------------------------


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_unbiased(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True)  # divides by C - 1
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_eps_outside(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    std = ((x - mean) ** 2).mean(dim=-1, keepdim=True).sqrt()
    return (x - mean) / (std + eps) * weight + bias


def _ln_wrong_dim(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=0, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=0, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_no_affine(x, weight, bias, eps=1e-5):
    return _layer_norm(x, torch.ones_like(weight), torch.zeros_like(bias), eps)


def _ln_no_centering(x, weight, bias, eps=1e-5):
    var = (x ** 2).mean(dim=-1, keepdim=True)  # RMSNorm: no mean subtracted
    return x / torch.sqrt(var + eps) * weight + bias


def _ln_cases(rng):
    def case(name, shape, scale, eps, shift=0.0):
        C = shape[-1]
        x = torch.randn(*shape) * scale + shift
        return Case(name, (x, 1.0 + 0.5 * torch.randn(C), 0.3 * torch.randn(C)), dict(eps=eps))

    B, T = rng.randint(2, 4), rng.randint(3, 7)
    return [
        case(f"({B}, {T}, 8) activations", (B, T, 8), 1.0 + 3 * rng.random(), 1e-5, shift=rng.uniform(-2, 2)),
        case("(3, 5) with C = 5 channels", (3, 5), 2.0, 1e-5),
        case(f"tiny activations (std 1e-3), eps = {1e-5:g}", (2, rng.randint(4, 9), 16), 1e-3, 1e-5),
        case("a large eps = 0.1", (B, 6), 0.5, 0.1),
        case(f"({B}, {T}, 64), an offset of 5", (B, T, 64), 1.0, 1e-5, shift=5.0),
    ]


check_layer_norm = register(Exercise(
    "layer_norm", number="5.1", chapter=5, title="LayerNorm from its formula", level="easy", minutes=10,
    reference=_layer_norm, cases=_ln_cases,
    mistakes=[
        Mistake("your numbers match the unbiased variance (dividing by C - 1, as torch.var does by default): "
                "LayerNorm divides by C, e.g. x.var(dim=-1, unbiased=False)", _ln_unbiased),
        Mistake("your numbers match eps added outside the square root: LayerNorm divides by sqrt(var + eps)",
                _ln_eps_outside),
        Mistake("your numbers match statistics over the wrong dimension: each position's vector (dim=-1) is "
                "normalised on its own", _ln_wrong_dim),
        Mistake("your numbers match a LayerNorm without its gain and bias: multiply by weight, then add bias",
                _ln_no_affine),
        Mistake("your numbers match RMSNorm: subtract the mean first", _ln_no_centering),
    ],
))

# --- 5.2 GELU, the tanh approximation ----------------------------------------------------------------


def _gelu(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _gelu_no_cube(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * x))


def _gelu_sqrt_2pi(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 * math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_sigmoid(x):
    return x * torch.sigmoid(1.702 * x)


def _gelu_no_half(x):
    return x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_cases(rng):
    lo = -rng.uniform(4, 6)
    return [
        Case(f"a grid from {lo:.2f} to {-lo:.2f}", (torch.linspace(lo, -lo, 101),)),
        Case("random activations, shape (2, 3, 16)", (torch.randn(2, 3, 16) * rng.uniform(1.5, 3),)),
        Case("large values (tanh saturates)", (torch.tensor([-30.0, -12.0, 0.0, 9.0, 25.0]),)),
        Case("around 2 (where tanh and erf forms differ most)", (torch.linspace(1.5, 2.5, 11) * rng.choice([-1, 1]),)),
    ]


check_gelu = register(Exercise(
    "gelu", number="5.2", chapter=5, title="GELU, the tanh approximation GPT-2 uses", level="easy", minutes=5,
    reference=_gelu, cases=_gelu_cases,
    # the erf form differs from the tanh form by at most ~5e-4: the tolerance must be tighter than that
    compare=lambda expected, got: compare(expected, got, atol=2e-6, rtol=1e-5),
    mistakes=[
        Mistake("your numbers match the exact GELU, 0.5 x (1 + erf(x / sqrt 2)): GPT-2 uses the tanh "
                "approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", _gelu_erf),
        Mistake("your numbers match the formula without its cubic term: tanh(sqrt(2/pi) * (x + 0.044715 * x**3))",
                _gelu_no_cube),
        Mistake("your numbers match sqrt(2 * pi) where the formula has sqrt(2 / pi)", _gelu_sqrt_2pi),
        Mistake("your numbers match the sigmoid approximation x * sigmoid(1.702 x): write the tanh form",
                _gelu_sigmoid),
        Mistake("your numbers match the formula without the leading 0.5", _gelu_no_half),
    ],
))
