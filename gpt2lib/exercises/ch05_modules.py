"""Chapter 5's module exercises, 5.3 the MLP and 5.4 the block (5.5 and 5.6 are in ch05_gpt): checked by
loading known weights into the reader's class and comparing what it computes.

Parameter names are the package's (``fc``, ``proj``, ``ln_1``, ``attn.w_qkv``, ``wte``, ``lm_head``, ...), so a
state dict moves unchanged between the reader's modules, the book's (:class:`BookBlock` here, the fallback
of later chapters) and ``gpt2lib.GPT``. A name or shape that differs fails the strict ``load_state_dict``,
and the checker says which names it expected. Each checker knows the mistakes that give plausible numbers:
the erf GELU or no activation in the MLP, a post-LN block, a missing residual, one LayerNorm used twice.
The book's modules here (:class:`BookBlock`, :class:`BookGPT`, :func:`book_init_weights`) create and draw
their weights in the package's order, so one seed gives ``gpt2lib.GPT``'s initial weights.
"""
from __future__ import annotations

import math
import types
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import CausalSelfAttention
from ..model import MLP, GPTConfig
from ._core import Case, Exercise, Mistake, compare, register
from .ch04_attention_module import BookCausalSelfAttention
from .ch05_model import _gelu

__all__ = ["BookBlock", "BookGPT", "book_init_weights", "check_mlp_module", "check_block_module"]


# --- the book's modules: the references, and what later chapters fall back on --------------------------


class _BookMLP(nn.Module):
    """``proj(gelu(fc(x)))`` with the tanh GELU of exercise 5.2."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(_gelu(self.fc(x)))


class BookBlock(nn.Module):
    """GPT-2's pre-LayerNorm block, ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``, returning a tensor.

    Its state dict is ``gpt2lib.model.Block``'s; unlike the package's block it takes no KV cache and returns
    the output alone, as the reader's ``MyBlock`` does."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = BookCausalSelfAttention(config.n_embd, config.n_head)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def book_init_weights(model: nn.Module) -> None:
    """GPT-2's initialisation, in the package's order, so that the same seed gives ``gpt2lib.GPT``'s weights.

    Every linear and embedding weight N(0, 0.02), biases 0; then the two projections per block that write
    into the residual stream (``attn.w_o``, ``mlp.proj``) again, with std 0.02 / sqrt(2 n_layer)."""
    for m in model.modules():  # the leaves in the order GPT.apply visits them (lm_head, tied to wte, last)
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    residual_std = 0.02 / math.sqrt(2 * len(model.blocks))
    for block in model.blocks:
        nn.init.normal_(block.attn.w_o.weight, mean=0.0, std=residual_std)
        nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=residual_std)


class BookGPT(nn.Module):
    """GPT-2 from :class:`BookBlock`: ``model(idx, targets=None) -> (logits, loss or None)``, the call of
    ``gpt2lib.GPT``, with the same state dict and, under one seed, the same initial weights."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(BookBlock(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        book_init_weights(self)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


# --- how a case runs the reader's class ------------------------------------------------------------------


def _readers(obj: Any) -> bool:
    """Written by the reader: in the notebook, or saved into their my_gpt2lib.py."""
    return getattr(obj, "__module__", None) in ("__main__", "my_gpt2lib")


def _class_runner(exercise: str, learner: str, signature: str,
                  run: Callable[..., Any]) -> Callable[[Any], Callable[..., Any]]:
    """``adapt`` for a class exercise: a class is built, loaded and run by ``run(cls, *case_args)``."""

    def adapt(obj: Any) -> Callable[..., Any]:
        if isinstance(obj, nn.Module):
            def instance(*args: Any) -> Any:
                raise TypeError(f"you passed a module (an instance); pass the class itself: "
                                f"check_{exercise}({learner}), without parentheses")
            return instance
        if isinstance(obj, type):
            return lambda *args: run(obj, *args)
        if _readers(obj):
            def function(*args: Any) -> Any:
                raise TypeError(f"{getattr(obj, '__name__', 'that')} is a function; this exercise asks for a "
                                f"class: `class {learner}(nn.Module)` with {signature}")
            return function
        return obj  # already takes a case's arguments (the checker's own reference and mistakes, tests)

    return adapt


def _build(cls: type, config: GPTConfig, state: dict[str, Tensor]) -> nn.Module:
    module = cls(config)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{cls.__name__}(config) made a {type(module).__name__}, not an nn.Module: write "
                        f"`class {cls.__name__}(nn.Module)` and call super().__init__() first")
    names, expected = list(module.state_dict()), list(state)
    if sorted(names) != sorted(expected):
        missing = [k for k in expected if k not in names]
        extra = [k for k in names if k not in expected]
        raise ValueError(
            "your module's parameters do not have the book's names, so trained weights cannot load into it"
            + (f"; missing: {missing}" if missing else "") + (f"; not expected: {extra}" if extra else "")
            + f". Expected exactly {expected}")
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    wrong = [f"{k} is {shapes[k]}, expected {tuple(v.shape)}" for k, v in state.items() if shapes[k] != tuple(v.shape)]
    if wrong:
        raise ValueError("your module's parameters have the wrong shapes: " + "; ".join(wrong))
    module.load_state_dict(state)
    return module.eval()


# --- 5.3 the MLP -------------------------------------------------------------------------------------------


def _run_mlp(cls: type, config: GPTConfig, state: dict[str, Tensor], x: Tensor) -> Any:
    module = _build(cls, config, state)
    with torch.no_grad():
        return module(x)


class _MLPVariant(_BookMLP):
    act: Callable[[Tensor], Tensor] = staticmethod(_gelu)
    where = "between"

    def forward(self, x: Tensor) -> Tensor:
        if self.where == "after":
            return self.act(self.proj(self.fc(x)))
        if self.where == "before":
            return self.proj(self.fc(self.act(x)))
        return self.proj(self.act(self.fc(x)))


def _variant(base: type, name: str, **switches: Any) -> type:
    return types.new_class(name, (base,), exec_body=lambda ns: ns.update(switches, __module__=__name__))


_MLPErf = _variant(_MLPVariant, "_MLPErf", act=staticmethod(lambda h: F.gelu(h)))
_MLPReLU = _variant(_MLPVariant, "_MLPReLU", act=staticmethod(torch.relu))
_MLPLinear = _variant(_MLPVariant, "_MLPLinear", act=staticmethod(lambda h: h))
_MLPSigmoid = _variant(_MLPVariant, "_MLPSigmoid", act=staticmethod(lambda h: h * torch.sigmoid(1.702 * h)))
_MLPGeluAfter = _variant(_MLPVariant, "_MLPGeluAfter", where="after")
_MLPGeluBefore = _variant(_MLPVariant, "_MLPGeluBefore", where="before")


def _config(C: int, n_head: int = 1, **kw: Any) -> GPTConfig:
    return GPTConfig(**{"vocab_size": 8, "block_size": 8, "n_layer": 1, "n_head": n_head, "n_embd": C, **kw})


def _mlp_state(C: int, near_two: bool = False) -> dict[str, Tensor]:
    """Pre-activations of a few units, where the GELUs differ; ``near_two`` puts them all around 2, where
    the tanh and erf forms differ most, and sums them with positive weights so the differences add up."""
    if near_two:
        return {"fc.weight": 0.05 * torch.randn(4 * C, C) / math.sqrt(C), "fc.bias": 2.0 + 0.5 * torch.rand(4 * C),
                "proj.weight": torch.rand(C, 4 * C) / math.sqrt(C), "proj.bias": 0.1 * torch.randn(C)}
    return {"fc.weight": 1.5 * torch.randn(4 * C, C) / math.sqrt(C), "fc.bias": 0.3 * torch.randn(4 * C),
            "proj.weight": torch.randn(C, 4 * C) / math.sqrt(4 * C), "proj.bias": 0.1 * torch.randn(C)}


def _mlp_cases(rng):
    def case(name, B, T, C, near_two=False):
        x = torch.randn(B, T, C) * rng.uniform(1.0, 2.0)
        return Case(f"{name} (B={B}, T={T}, n_embd={C})", (_config(C), _mlp_state(C, near_two), x))

    return [
        case("random weights", 2, 5, 16),
        case("pre-activations around 2, where the GELU forms differ most", 1, 3, 32, near_two=True),
        case("a single position", 1, 1, 8),
        case("random sizes", rng.randint(1, 3), rng.randint(1, 6), rng.choice([8, 16, 24])),
    ]


check_mlp_module = register(Exercise(
    "mlp_module", number="5.3", chapter=5, title="The MLP as a module", level="easy", minutes=5,
    reference=_BookMLP, cases=_mlp_cases,
    adapt=_class_runner("mlp_module", "MyMLP", "__init__(self, config) and forward(self, x)", _run_mlp),
    # the erf GELU moves an output by ~1e-3 on the case built for it: the tolerance stays well below
    compare=lambda expected, got: compare(expected, got, atol=1e-5, rtol=1e-5),
    mistakes=[
        Mistake("your numbers match the exact (erf) GELU, nn.GELU() or F.gelu(x) without approximate='tanh': "
                "GPT-2 uses the tanh form, your gelu from exercise 5.2", _MLPErf),
        Mistake("your numbers match ReLU between the two layers: GPT-2 uses GELU (your gelu from exercise 5.2)",
                _MLPReLU),
        Mistake("your numbers match no activation at all: two linear maps in a row are one linear map; put "
                "gelu between fc and proj", _MLPLinear),
        Mistake("your numbers match the sigmoid approximation x * sigmoid(1.702 x): use the tanh form", _MLPSigmoid),
        Mistake("your numbers match GELU applied after proj: the activation sits between fc and proj, "
                "proj(gelu(fc(x)))", _MLPGeluAfter),
        Mistake("your numbers match GELU applied to the input, before fc: proj(gelu(fc(x)))", _MLPGeluBefore),
    ],
))


# --- 5.4 the block -----------------------------------------------------------------------------------------


def _run_block(cls: type, config: GPTConfig, state: dict[str, Tensor], x: Tensor) -> Any:
    module = _build(cls, config, state)
    with torch.no_grad():
        try:
            return module(x)
        except Exception as exc:
            # the package's layer has the same weights as the reader's but returns (y, weights)
            if any(isinstance(sub, CausalSelfAttention) for sub in module.modules()):
                raise TypeError(f"{exc} — your block uses gpt2lib.attention.CausalSelfAttention, which returns "
                                "a pair (y, weights): take its [0], or use your attention from chapter 4, "
                                "which returns y alone") from exc
            raise


class _BlockVariant(BookBlock):
    def forward(self, x: Tensor) -> Tensor:
        return self.steps(x, self.ln_1, self.attn, self.ln_2, self.mlp)

    @staticmethod
    def steps(x, ln_1, attn, ln_2, mlp):  # noqa: ANN001, ANN205 - each mistake overrides it
        raise NotImplementedError


def _block_variant(name: str, steps: Callable[..., Tensor]) -> type:
    return _variant(_BlockVariant, name, steps=staticmethod(steps))


def _post_ln(x, ln_1, attn, ln_2, mlp):
    x = ln_1(x + attn(x))
    return ln_2(x + mlp(x))


def _no_attn_residual(x, ln_1, attn, ln_2, mlp):
    x = attn(ln_1(x))
    return x + mlp(ln_2(x))


def _no_mlp_residual(x, ln_1, attn, ln_2, mlp):
    x = x + attn(ln_1(x))
    return mlp(ln_2(x))


def _normed_residual(x, ln_1, attn, ln_2, mlp):
    h = ln_1(x)
    x = h + attn(h)
    h = ln_2(x)
    return h + mlp(h)


def _parallel(x, ln_1, attn, ln_2, mlp):
    return x + attn(ln_1(x)) + mlp(ln_2(x))


def _one_ln(x, ln_1, attn, ln_2, mlp):
    x = x + attn(ln_1(x))
    return x + mlp(ln_1(x))


_BlockPostLN = _block_variant("_BlockPostLN", _post_ln)
_BlockNoAttnResidual = _block_variant("_BlockNoAttnResidual", _no_attn_residual)
_BlockNoMLPResidual = _block_variant("_BlockNoMLPResidual", _no_mlp_residual)
_BlockNormedResidual = _block_variant("_BlockNormedResidual", _normed_residual)
_BlockParallel = _block_variant("_BlockParallel", _parallel)
_BlockOneLN = _block_variant("_BlockOneLN", _one_ln)


def _block_state(config: GPTConfig) -> dict[str, Tensor]:
    block = BookBlock(config)
    with torch.no_grad():  # distinct gains and biases, so that mixing up ln_1 and ln_2 shows
        for ln in (block.ln_1, block.ln_2):
            ln.weight.copy_(1.0 + 0.5 * torch.randn(config.n_embd))
            ln.bias.copy_(0.3 * torch.randn(config.n_embd))
    return {k: v.detach().clone() for k, v in block.state_dict().items()}


def _block_cases(rng):
    def case(name, B, T, C, n_head):
        config = _config(C, n_head, block_size=max(T, 1))
        x = torch.randn(B, T, C) * rng.uniform(0.5, 3.0) + rng.uniform(-1.0, 1.0)
        return Case(f"{name} (B={B}, T={T}, n_embd={C}, n_head={n_head})", (config, _block_state(config), x))

    return [
        case("several heads and rows", 2, 5, 16, 2),
        case("four heads", 1, rng.randint(6, 10), 32, 4),
        case("a single token", 3, 1, 8, 1),
    ]


check_block_module = register(Exercise(
    "block_module", number="5.4", chapter=5, title="The pre-LayerNorm block as a module", level="medium",
    minutes=10, reference=BookBlock, cases=_block_cases,
    adapt=_class_runner("block_module", "MyBlock", "__init__(self, config) and forward(self, x)", _run_block),
    mistakes=[
        Mistake("your numbers match post-LN (the original Transformer): GPT-2 normalises the *input* of "
                "each sub-layer, x + attn(ln_1(x)), and leaves the residual stream itself un-normalised",
                _BlockPostLN),
        Mistake("your numbers match a block without the attention's residual: add attn's output to x",
                _BlockNoAttnResidual),
        Mistake("your numbers match a block without the MLP's residual: return x + mlp(ln_2(x))",
                _BlockNoMLPResidual),
        Mistake("your numbers match adding the sub-layer's output to the *normalised* vector: the residual "
                "adds it to x itself", _BlockNormedResidual),
        Mistake("your numbers match attention and MLP in parallel on the same input: the MLP reads the "
                "stream *after* attention's output was added", _BlockParallel),
        Mistake("your numbers match ln_1 used twice: the MLP's input goes through ln_2", _BlockOneLN),
    ],
))
