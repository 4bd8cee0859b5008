"""GPT-2: token and position embeddings, a stack of pre-LayerNorm Transformer blocks, a final LayerNorm
and a language-model head that shares its weights with the token embedding.

Radford et al. (2019), section 2.3, changed the GPT-1 block in three ways, all visible below: LayerNorm
moved to the *input* of each sub-block (``x + attn(ln_1(x))``), one more LayerNorm after the last block,
and residual projections initialised with std scaled by ``1/sqrt(2 * n_layer)`` (two residual additions
per block), so that the residual stream's variance does not grow with depth.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._compat import renamed
from .attention import CausalSelfAttention, KVCache

__all__ = ["GPTConfig", "GPT", "Block", "MLP", "PRESETS"]

# (n_layer, n_head, n_embd, block_size) of OpenAI's four released sizes and two sizes for teaching on a CPU.
PRESETS: dict[str, dict[str, int]] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, block_size=1024),
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),
}


@dataclass
class GPTConfig:
    """The shape of a GPT-2 model; the defaults are the 124M model OpenAI released."""

    vocab_size: int = 50257  # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
    block_size: int = 1024  # the context: the most positions the model has embeddings for
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms, as in GPT-2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): every head gets "
                f"n_embd / n_head dimensions; change one of them"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"GPTConfig.dropout must be a number in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"GPTConfig.bias must be True or False, got {self.bias!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GPTConfig":
        """A named size ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny", "small"), with any
        field overridden, e.g. ``GPTConfig.preset("tiny", vocab_size=512)``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"GPTConfig has no field(s) {unknown}; the fields are {sorted(fields)}")
        return cls(**{**PRESETS[name], **overrides})


class MLP(nn.Module):
    """Position-wise feed-forward network: expand to 4 * n_embd, GELU (tanh approximation, as in
    GPT-2's code), project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(self.gelu(self.fc(x))))


class Block(nn.Module):
    """One Transformer block, pre-LayerNorm: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout, config.bias)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        a, weights = self.attn(self.ln_1(x), cache=cache, layer=layer, need_weights=need_weights)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class GPT(nn.Module):
    """The GPT-2 language model. ``model(idx)`` maps token ids ``(B, T)`` to next-token logits
    ``(B, T, vocab_size)``; ``model(idx, targets)`` also returns the mean cross-entropy loss."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}; e.g. GPT(GPTConfig.preset('tiny'))")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned position embeddings
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Tied embeddings: reading a token in and writing it out use the same vectors (Press & Wolf 2017),
        # which saves vocab_size * n_embd parameters (38.6M at 124M size).
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.w_o.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameters counted once each (the tied head is not counted twice). ``non_embedding=True``
        leaves out the position embeddings (Kaplan et al. 2020 count N this way) and token embeddings."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.weight.numel() + self.wte.weight.numel()
        return n

    # -- the forward pass ------------------------------------------------------------------------------
    def _check_ids(self, idx: Any, past: int = 0, name: str = "idx", check_range: bool = True) -> Tensor:
        if not isinstance(idx, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}; "
                            f"use torch.tensor([ids]) for a batch of one")
        if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer token ids, got dtype {idx.dtype}; "
                            f"pass the tokenizer's ids (torch.long), not embeddings or probabilities")
        if idx.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, time), got {tuple(idx.shape)}; "
                             f"for a single sequence use {name}[None] (or .unsqueeze(0))")
        T = idx.size(1)
        if T == 0:
            raise ValueError(f"{name} is empty: give at least one token (e.g. <|endoftext|>, id 50256)")
        if past + T > self.config.block_size:
            raise ValueError(
                f"sequence of {past + T} tokens is longer than the context (block_size="
                f"{self.config.block_size}); keep the last {self.config.block_size}: {name}[:, -block_size:]"
            )
        # the range check reads two numbers back from the device (a host sync on a GPU): the training loop,
        # which checked its data once at its edge, turns it off; torch.compile traces without it
        if check_range and idx.device.type != "meta" and not torch.compiler.is_compiling():
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.config.vocab_size:
                raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), found {lo if lo < 0 else hi}; "
                                 f"was it encoded with a tokenizer of a different vocabulary?")
        return idx

    def hidden_states(self, idx: Tensor, cache: KVCache | None = None,
                      attn_sink: list[Tensor] | None = None, *, check_ids: bool = True) -> Tensor:
        """The final-LayerNorm output ``(B, T, n_embd)``, before the language-model head.

        With ``cache``, ``idx`` holds only the new tokens; their positions continue after the cached ones.
        With ``attn_sink`` (a list), every layer's attention weights are appended to it.
        """
        past = cache.length if cache is not None else 0
        idx = self._check_ids(idx, past, check_range=check_ids)
        T = idx.size(1)
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x, weights = block(x, cache=cache, layer=i, need_weights=attn_sink is not None)
            if attn_sink is not None:
                attn_sink.append(weights)
        if cache is not None:
            cache.advance(T)
        return self.ln_f(x)

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                cache: KVCache | None = None, *, check_ids: bool = True) -> tuple[Tensor, Tensor | None]:
        """``(logits, loss)``: logits ``(B, T, vocab_size)``; loss is None without ``targets``.
        Target positions equal to -100 are ignored (padding, or a prompt not to be learned).
        ``check_ids=False`` skips the checks that read values back from the device (ids and targets in
        range): for callers that checked their data once at their edge, as :func:`gpt2lib.train` does."""
        logits = self.lm_head(self.hidden_states(idx, cache, check_ids=check_ids))
        if targets is None:
            return logits, None
        if not isinstance(targets, Tensor) or targets.is_floating_point():
            raise TypeError("targets must be an integer tensor of token ids (or -100 to ignore a position)")
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}; "
                             f"targets are idx shifted left by one")
        if check_ids and targets.device.type != "meta" and not torch.compiler.is_compiling():
            # one read-back for three checks: a position to learn exists, and every id is in range
            kept = targets != -100
            lo, hi, n = (int(v) for v in torch.stack([targets.masked_fill(~kept, 0).min(),
                                                      targets.masked_fill(~kept, 0).max(), kept.sum()]))
            if n == 0:
                raise ValueError("every target is -100 (ignored): there is no position to compute a loss on; "
                                 "leave at least one target unmasked")
            if lo < 0 or hi >= self.config.vocab_size:
                raise ValueError(f"targets must be token ids in [0, {self.config.vocab_size}) or -100, found "
                                 f"{lo if lo < 0 else hi}")
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    @renamed(batch="batch_size")
    def make_cache(self, batch_size: int, block_size: int | None = None) -> KVCache:
        """An empty KV cache for ``batch`` sequences of up to ``block_size`` positions (at most, and by
        default, the model's own context)."""
        c = self.config
        block_size = min(block_size or c.block_size, c.block_size)
        p = self.wte.weight
        return KVCache(c.n_layer, batch_size, c.n_head, block_size, c.head_dim, device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def attention_maps(self, idx: Tensor) -> Tensor:
        """Attention weights of every layer and head for one sequence: ``(n_layer, n_head, T, T)``.

        Accepts ``(T,)`` or ``(1, T)`` ids; runs in eval mode (no dropout) and restores the mode after.
        """
        if isinstance(idx, Tensor) and idx.dim() == 1:
            idx = idx[None]
        if isinstance(idx, Tensor) and idx.dim() == 2 and idx.size(0) != 1:
            raise ValueError(f"attention_maps takes one sequence, got a batch of {idx.size(0)}; pass idx[i]")
        was_training = self.training
        self.eval()
        try:
            sink: list[Tensor] = []
            self.hidden_states(idx, attn_sink=sink)
        finally:
            self.train(was_training)
        return torch.stack([w[0] for w in sink])

    # -- generation and interop (their own modules; imported here lazily so the arrows point one way) ----
    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, eos_token_id: int | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None, do_sample: bool = True,
                 callback: Callable[[Tensor], None] | None = None) -> Tensor:
        """Continue ``idx`` by ``max_new_tokens`` tokens; see :func:`gpt2lib.generation.generate`."""
        from .generation import generate

        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                        eos_token_id=eos_token_id, use_cache=use_cache, generator=generator,
                        do_sample=do_sample, callback=callback)

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path, **kwargs: Any) -> "GPT":
        """Load Hugging Face GPT-2 weights (a folder, or a hub name such as ``"gpt2"``), under the name
        Hugging Face and nanoGPT use; see :func:`gpt2lib.hf.load_hf`."""
        from .hf import load_hf

        return load_hf(path_or_name, **kwargs)

    @classmethod
    def from_hf(cls, path_or_name: str | Path, **kwargs: Any) -> "GPT":
        """The same as :meth:`from_pretrained` (the name the chapters use)."""
        return cls.from_pretrained(path_or_name, **kwargs)

    @renamed(directory="folder")
    def to_hf(self, folder: str | Path, **kwargs: Any) -> Path:
        """Write this model so that ``GPT2LMHeadModel.from_pretrained(folder)`` loads it."""
        from .hf import save_hf

        return save_hf(self, folder, **kwargs)
