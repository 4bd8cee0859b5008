"""Chapter 5's last module exercises: 5.5 GPT-2's initialisation and 5.6 the whole model.

The initialisation is judged by statistics: the checker hands the reader's function a model holding
PyTorch's default weights and measures each tensor's mean and std afterwards, on tensors of at least 4,096
numbers, so that sampling noise (about 1% of the std) stays far inside the 10% tolerance for every seed.
The model is judged as the other modules are (ch05_modules): known weights loaded, logits and loss
compared; then ``wte`` is edited and the model run again, since an untied head holds ``wte``'s numbers right
after loading and differs only once ``wte`` changes.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model import GPT, GPTConfig
from ._core import Case, CheckFailed, Exercise, Mistake, compare, register
from .ch05_modules import BookGPT, _build, _class_runner, _readers, _variant, book_init_weights

__all__ = ["check_gpt_init", "check_gpt_model"]


# --- 5.5 GPT-2's initialisation --------------------------------------------------------------------------

_INIT_SEED = 1234  # every answer draws from the same stream, so the same code gives the same numbers


def _init_stats(model: nn.Module) -> dict[str, tuple[float, float]]:
    return {name: (p.double().mean().item(), p.double().std().item()) for name, p in model.named_parameters()}


def _run_init(fn: Callable[[nn.Module], Any]) -> Callable[[GPTConfig, dict[str, Tensor]], Any]:
    """What a case calls: a GPT holding PyTorch's default weights, ``fn(model)``, then each tensor's mean and std."""

    def run(config: GPTConfig, state: dict[str, Tensor]) -> dict[str, tuple[float, float]]:
        with torch.random.fork_rng(devices=[]):
            model = GPT(config)
            model.load_state_dict(state)
            torch.manual_seed(_INIT_SEED)
            with torch.no_grad():
                fn(model)
        return _init_stats(model)

    run.__name__ = getattr(fn, "__name__", "run")
    return run


def _adapt_init(obj: Any) -> Callable[..., Any]:
    if isinstance(obj, type) or isinstance(obj, nn.Module):
        def not_a_function(*args: Any) -> Any:
            raise TypeError("this exercise asks for a function, my_init_weights(model), that changes the "
                            "model's weights in place")
        return not_a_function
    return _run_init(obj) if _readers(obj) else obj


def _default_state(config: GPTConfig) -> dict[str, Tensor]:
    """The weights a model has before GPT-2's initialisation: PyTorch's defaults (an embedding is N(0, 1))."""
    model = GPT(config)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.reset_parameters()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _init_cases(rng):
    def case(name, n_layer, C, V):
        config = GPTConfig(vocab_size=V, block_size=64, n_layer=n_layer, n_head=4, n_embd=C)
        return Case(f"{name} (n_layer={n_layer}, n_embd={C}, vocab_size={V})", (config, _default_state(config)))

    # n_embd >= 64: every weight has >= 4,096 numbers, so a measured std is within ~1% of the true one and a
    # 10% tolerance holds for every seed
    return [case("four layers", 4, 64, 512),
            case("another depth", rng.choice([2, 3, 6]), rng.choice([64, 80]), rng.randint(300, 700))]


def _compare_init(expected: Any, got: Any) -> None:
    if not isinstance(got, dict) or list(got) != list(expected):
        compare(expected, got)  # its message names what differs
        return
    for name, (mean, std) in expected.items():
        got_mean, got_std = (float(v) for v in got[name])
        tol = 0.1 * std + 1e-6  # sampling error of >= 4,096 draws is ~1% of std
        if abs(got_mean - mean) > tol or abs(got_std - std) > tol:
            raise CheckFailed(f"after your function, {name} has mean {got_mean:.4g} and std {got_std:.4g}; "
                              f"GPT-2's initialisation gives mean {mean:.4g} and std {std:.4g}")


def _init_every_linear_scaled(model):
    book_init_weights(model)
    std = 0.02 / math.sqrt(2 * len(model.blocks))
    for m in model.blocks.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)


def _init_unscaled(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def _init_scaled_by(scale: Callable[[int], float]) -> Callable[[nn.Module], None]:
    def init(model):
        _init_unscaled(model)
        for block in model.blocks:
            for proj in (block.attn.w_o, block.mlp.proj):
                nn.init.normal_(proj.weight, std=0.02 * scale(len(model.blocks)))
    return init


def _init_biases_kept(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(model.blocks)))


def _init_linear_only(model):
    book_init_weights(model)
    for emb in (model.wte, model.wpe):  # what nn.Embedding starts with
        nn.init.normal_(emb.weight)


def _init_std_0_2(model):
    _init_unscaled(model)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.2)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, std=0.2 / math.sqrt(2 * len(model.blocks)))


def _init_every_parameter(model):
    for p in model.parameters():  # LayerNorm gains and biases too
        nn.init.normal_(p, std=0.02)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(model.blocks)))


check_gpt_init = register(Exercise(
    "gpt_init", number="5.5", chapter=5, title="GPT-2's initialisation", level="medium", minutes=10,
    reference=_run_init(book_init_weights), cases=_init_cases, adapt=_adapt_init, compare=_compare_init,
    mistakes=[
        Mistake(f, _run_init(fn)) for f, fn in [
            ("you scaled every linear layer of the blocks by 1/sqrt(2 n_layer): only the two that write into the "
             "residual stream, attn.w_o and mlp.proj, are scaled", _init_every_linear_scaled),
            ("you drew attn.w_o and mlp.proj with std 0.02 like the rest: GPT-2 draws them again with std "
             "0.02 / sqrt(2 * n_layer)", _init_unscaled),
            ("you scaled the residual projections by 1/sqrt(n_layer): each block adds to the stream twice "
             "(attention and MLP), so it is 0.02 / sqrt(2 * n_layer)", _init_scaled_by(lambda n: 1 / math.sqrt(n))),
            ("you left the biases as PyTorch drew them: GPT-2 starts every bias at 0", _init_biases_kept),
            ("you left the embeddings as nn.Embedding draws them, N(0, 1): wte and wpe start N(0, 0.02) like "
             "the linear layers", _init_linear_only),
            ("you used std 0.2: GPT-2's is 0.02", _init_std_0_2),
            ("you drew every parameter, the LayerNorms' too: a LayerNorm starts with gain 1 and bias 0; "
             "initialise only nn.Linear and nn.Embedding", _init_every_parameter),
        ]
    ],
))


# --- 5.6 the whole model ---------------------------------------------------------------------------------

_EDIT_SEED = 7


def _run_gpt(cls: type, config: GPTConfig, state: dict[str, Tensor], idx: Tensor, targets: Tensor | None) -> Any:
    model = _build(cls, config, state)
    with torch.no_grad():
        out = model(idx) if targets is None else model(idx, targets)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"forward returned a {type(out).__name__}; it must return a pair (logits, loss), "
                            "loss None when no targets are given, as gpt2lib.GPT does")
        logits, loss = out
        # a head that is its own matrix holds wte's numbers right after loading; an edit to wte tells them apart
        g = torch.Generator().manual_seed(_EDIT_SEED)
        model.wte.weight.add_(0.5 * torch.randn(model.wte.weight.shape, generator=g))
        edited = model(idx)
        edited = edited[0] if isinstance(edited, (tuple, list)) else edited
    return {"logits": logits, "loss": loss, "logits after an edit to wte (is lm_head tied to it?)": edited}


class _GPTVariant(BookGPT):
    tied, positions, final_ln, loss_kind = True, "from_zero", "after", "mean"

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        if not self.tied:
            self.lm_head.weight = nn.Parameter(self.wte.weight.detach().clone())

    def forward(self, idx, targets=None):
        T = idx.size(1)
        x = self.wte(idx)
        if self.positions != "none":
            x = x + self.wpe(torch.arange(T) + (1 if self.positions == "from_one" else 0))
        if self.final_ln == "before":
            x = self.ln_f(x)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x) if self.final_ln == "after" else x)
        if targets is None:
            return logits, None
        V = logits.size(-1)
        if self.loss_kind == "shifted":
            return logits, F.cross_entropy(logits[:, :-1].reshape(-1, V), targets[:, 1:].reshape(-1))
        return logits, F.cross_entropy(logits.view(-1, V), targets.view(-1), reduction=self.loss_kind)


_GPTUntied = _variant(_GPTVariant, "_GPTUntied", tied=False)
_GPTNoPositions = _variant(_GPTVariant, "_GPTNoPositions", positions="none")
_GPTPositionsFromOne = _variant(_GPTVariant, "_GPTPositionsFromOne", positions="from_one")
_GPTNoFinalLN = _variant(_GPTVariant, "_GPTNoFinalLN", final_ln="none")
_GPTFinalLNFirst = _variant(_GPTVariant, "_GPTFinalLNFirst", final_ln="before")
_GPTShiftedAgain = _variant(_GPTVariant, "_GPTShiftedAgain", loss_kind="shifted")
_GPTSummedLoss = _variant(_GPTVariant, "_GPTSummedLoss", loss_kind="sum")


def _gpt_state(config: GPTConfig) -> dict[str, Tensor]:
    """Weights of a trained model's scale (unit-size activations and logits of a few units), LayerNorms
    with their own gains and biases: every mistake moves the logits by far more than rounding."""
    model = GPT(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn_like(p) / math.sqrt(p.size(1)))
            elif ".ln_" in name or name.startswith("ln_"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _gpt_cases(rng):
    def case(name, B, T, *, V, block_size, n_layer, n_head, C, targets=True):
        config = GPTConfig(vocab_size=V, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=C)
        idx = torch.randint(0, V, (B, T))
        y = torch.randint(0, V, (B, T)) if targets else None
        return Case(f"{name} (B={B}, T={T}, n_layer={n_layer}, n_head={n_head}, n_embd={C}, vocab_size={V})",
                    (config, _gpt_state(config), idx, y))

    return [
        case("two layers, with targets", 3, 5, V=37, block_size=8, n_layer=2, n_head=2, C=16),
        case("a full context (T = block_size)", 2, 8, V=29, block_size=8, n_layer=2, n_head=4, C=16),
        case("a single token", 2, 1, V=23, block_size=8, n_layer=1, n_head=2, C=8),
        case("three layers, no targets", 2, 6, V=41, block_size=12, n_layer=3, n_head=4, C=32, targets=False),
        case("random sizes", rng.randint(1, 3), rng.randint(1, 10), V=rng.randint(10, 60), block_size=10,
             n_layer=rng.randint(1, 3), n_head=2, C=rng.choice([8, 16]), targets=rng.random() < 0.5),
    ]


check_gpt_model = register(Exercise(
    "gpt_model", number="5.6", chapter=5, title="The whole GPT-2 as a module", level="hard", minutes=20,
    reference=BookGPT, cases=_gpt_cases,
    adapt=_class_runner("gpt_model", "MyGPT", "__init__(self, config) and forward(self, idx, targets=None)",
                        _run_gpt),
    mistakes=[
        Mistake("your numbers match a head that is its own matrix: right after loading it holds wte's numbers, "
                "but a change to wte (every training step) does not reach it. Tie them: "
                "self.lm_head.weight = self.wte.weight", _GPTUntied),
        Mistake("your numbers match a model without position embeddings: add self.wpe(positions) to the token "
                "embeddings", _GPTNoPositions),
        Mistake("your numbers match positions counted from 1: the first token's position is 0, "
                "torch.arange(T)", _GPTPositionsFromOne),
        Mistake("your numbers match a model without the final LayerNorm: the head reads ln_f(x)", _GPTNoFinalLN),
        Mistake("your numbers match ln_f applied to the embeddings, before the blocks: it normalises the "
                "stream after the last block", _GPTFinalLNFirst),
        Mistake("your numbers match targets shifted once more: the targets you are given are already the next "
                "tokens (y[t] = x[t + 1]); compare logits[:, t] with targets[:, t]", _GPTShiftedAgain),
        Mistake("your numbers match the summed cross-entropy: the loss is the mean over every position of "
                "every row (F.cross_entropy's default)", _GPTSummedLoss),
    ],
))
