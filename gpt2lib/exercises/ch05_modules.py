"""Chapter 5's module exercises: the reader's MLP, block, initialisation and whole GPT, checked by loading
known weights into the reader's class and comparing what it computes.

Parameter names are the package's (``fc``, ``proj``, ``ln_1``, ``attn.w_qkv``, ``wte``, ``lm_head``, ...), so a
state dict moves unchanged between the reader's modules, the book's (:class:`BookBlock` here, the fallback
of later chapters) and ``gpt2lib.GPT``. A name or shape that differs fails the strict ``load_state_dict``,
and the checker says which names it expected. Each checker knows the mistakes that give plausible numbers:
the erf GELU, a post-LN block, a head that is not tied (it holds the same numbers as ``wte`` right after
loading, so the check edits ``wte`` and runs the model again), positions that do not start at 0, the residual
projections not scaled down.
"""
from __future__ import annotations

import math
import types
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import CausalSelfAttention
from ..model import GPT, MLP, GPTConfig
from ._core import Case, CheckFailed, Exercise, Mistake, compare, register
from .ch04_attention_module import BookCausalSelfAttention
from .ch05_model import _gelu

__all__ = ["BookBlock", "BookGPT", "book_init_weights", "check_mlp_module", "check_block_module",
           "check_gpt_init", "check_gpt_model"]


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
