"""Chapter 6.1's exercises (6.7 the last real token's state, 6.8 a LoRA layer).

ALTERNATIVES (right, written other ways) and WRONG (plausible mistakes beyond the listed ones) are run by
tests/test_exercises.py over its 50 seeds with every other exercise's; this file checks what is special
here: the answer keys agree with gpt2lib.finetune's functions, the LoRA checker explains a layer it
cannot read, and the reader's layer drops into add_lora.
"""
from __future__ import annotations

import math

import pytest
from conftest import check_quietly
import torch
import torch.nn.functional as F
from torch import nn

from gpt2lib import GPT, GPTConfig
from gpt2lib.exercises import all_exercises
from gpt2lib.exercises._core import REGISTRY
from gpt2lib.exercises.ch06_finetune import BookLoRALinear
from gpt2lib.finetune import LoRALinear, add_lora, count_parameters, last_token_states

all_exercises()


pytestmark = pytest.mark.usefixtures("private_progress")  # conftest.py


_check = check_quietly  # conftest.py


# --- 6.7 -------------------------------------------------------------------------------------------------

def _gathered(hidden, lengths):
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden.size(-1))
    return hidden.gather(1, index).squeeze(1)


def _looped(hidden, lengths):
    return torch.stack([hidden[b, int(n) - 1] for b, n in enumerate(lengths)])


def _one_hot_weights(hidden, lengths):
    pick = F.one_hot(lengths - 1, hidden.size(1)).to(hidden.dtype)  # (B, T), a 1 at each last token
    return torch.einsum("bt,btc->bc", pick, hidden)


def _mean_of_real_tokens(hidden, lengths):  # mean pooling: a head could read it, but not what is asked
    mask = torch.arange(hidden.size(1))[None, :] < lengths[:, None]
    return (hidden * mask[..., None]).sum(1) / lengths[:, None]


def _counted_from_the_end(hidden, lengths):
    return hidden[torch.arange(hidden.size(0)), -lengths]


def _last_real_of_the_first_row(hidden, lengths):
    return hidden[:, int(lengths[0]) - 1]


# --- 6.8 -------------------------------------------------------------------------------------------------

class LoRAMerged(BookLoRALinear):
    """One matmul with the merged weight W + s B A: the same numbers."""

    def forward(self, x):
        return F.linear(x, self.base.weight + self.scaling * self.B @ self.A, self.base.bias)


class LoRANormalA(nn.Module):
    """A drawn from a normal distribution (as some libraries do), the scaling computed in forward."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base, self.rank, self.alpha = base, rank, alpha
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(rank, base.in_features) / rank)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (x @ self.A.T) @ self.B.T * (self.alpha / self.rank)


class LoRAFlippedInit(BookLoRALinear):
    """A zero and B random: it starts as the base too, but B's gradient is zero and A's alone moves first."""

    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        nn.init.zeros_(self.A)
        nn.init.normal_(self.B)


class LoRABiasLeftTrainable(BookLoRALinear):
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        if base.bias is not None:
            base.bias.requires_grad_(True)


class LoRANoBias(BookLoRALinear):
    def forward(self, x):
        return F.linear(x, self.base.weight) + self.scaling * (x @ self.A.T @ self.B.T)


class LoRAScaledBase(BookLoRALinear):
    def forward(self, x):
        return self.scaling * (self.base(x) + x @ self.A.T @ self.B.T)


class LoRASqrtScaling(BookLoRALinear):  # rsLoRA's alpha / sqrt(rank): another method, not the one asked
    def forward(self, x):
        rank = self.A.size(0)
        return self.base(x) + self.scaling * rank / math.sqrt(rank) * (x @ self.A.T @ self.B.T)


ALTERNATIVES = {
    "last_token_states": [_gathered, _looped, _one_hot_weights, last_token_states],
    "lora_linear": [LoRAMerged, LoRANormalA, LoRALinear],
}
WRONG = {
    "last_token_states": [_mean_of_real_tokens, _counted_from_the_end, _last_real_of_the_first_row],
    "lora_linear": [LoRAFlippedInit, LoRABiasLeftTrainable, LoRANoBias, LoRAScaledBase, LoRASqrtScaling],
}


@pytest.mark.parametrize("seed", range(5))
def test_the_last_token_key_agrees_with_the_package(seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(4, 9, 6, generator=g)
    lengths = torch.randint(1, 10, (4,), generator=g)
    torch.testing.assert_close(REGISTRY["last_token_states"].reference(hidden, lengths),
                               last_token_states(hidden, lengths))


def test_the_lora_key_agrees_with_the_package():
    torch.manual_seed(0)
    base = nn.Linear(10, 14)
    key, package = BookLoRALinear(base, 4, 12.0), LoRALinear(base, 4, 12.0)
    with torch.no_grad():
        for p in (key.A, key.B):
            p.normal_()
        package.A.copy_(key.A)
        package.B.copy_(key.B)
    x = torch.randn(3, 10)
    torch.testing.assert_close(key(x), package(x))
    assert count_parameters(key) == count_parameters(package) == 4 * (10 + 14)


class LoRAStoredTransposed(BookLoRALinear):
    """A stored (in, rank) and B (rank, out): the same map, but not the package's shapes."""

    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        self.A = nn.Parameter(self.A.detach().T.clone())
        self.B = nn.Parameter(self.B.detach().T.clone())

    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.A @ self.B)


class LoRAOtherNames(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features))

    def forward(self, x):
        return self.base(x)


@pytest.mark.parametrize("answer, words", [
    (LoRAStoredTransposed, "self.A is (8, 2), expected (2, 8)"),
    (LoRAOtherNames, "needs self.A as an nn.Parameter"),
])
def test_a_layer_the_checker_cannot_read_is_told_why(answer, words):
    ok, out = _check("lora_linear", answer)
    assert not ok and words in out, out


def test_an_instance_is_told_to_pass_the_class():
    ok, out = _check("lora_linear", BookLoRALinear(nn.Linear(4, 4), 2, 4.0))
    assert not ok and "pass the class itself" in out, out


def test_the_readers_layer_goes_into_add_lora_and_trains_only_a_and_b():
    cfg = GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, 32, (2, 8))
    before, _ = model(idx)
    wrapped = add_lora(model, rank=2, alpha=4.0, keep_training=(), layer=BookLoRALinear)
    assert wrapped == [f"blocks.{i}.attn.{n}" for i in range(2) for n in ("w_qkv", "w_o")]
    after, loss = model(idx, idx)
    torch.testing.assert_close(after, before)  # B = 0: the same model
    loss.backward()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {f"blocks.{i}.attn.{n}.{ab}" for i in range(2) for n in ("w_qkv", "w_o") for ab in "AB"}
    assert count_parameters(model) == 2 * (2 * (16 + 48) + 2 * (16 + 16))
