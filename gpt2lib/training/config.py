"""What a training run is told (:class:`TrainConfig`, checked where it is made) and what it leaves
(:class:`TrainResult`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime import InputError

__all__ = ["TrainConfig", "TrainResult", "MAX_LR"]


MAX_LR = 1e30


@dataclass
class TrainConfig:
    """Everything a run needs besides the model and the data. ``batch_size`` is the *global* batch in
    sequences per optimizer step: processes x micro-batch x ``grad_accum``."""

    max_steps: int = 600
    batch_size: int = 16
    grad_accum: int = 1
    block_size: int | None = None  # None: the model's context
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0 turns clipping off
    eval_interval: int = 100  # 0: only at the end
    eval_batches: int | None = None  # None: the whole validation split
    log_interval: int = 10
    ckpt_interval: int = 0  # 0: only at the end
    seed: int = 1337
    compile: bool = False
    device: str | None = None

    def __post_init__(self) -> None:
        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("max_steps", "batch_size", "grad_accum", "log_interval"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise InputError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("warmup_steps", "eval_interval", "ckpt_interval"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                raise InputError(f"TrainConfig.{name} must be an int >= 0, got {value!r}")
        for name in ("block_size", "eval_batches"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise InputError(f"TrainConfig.{name} must be None or a positive int, got {value!r}")
        for name in ("lr", "min_lr", "grad_clip", "weight_decay"):
            if not is_number(getattr(self, name)):
                raise InputError(f"TrainConfig.{name} must be a finite number, got {getattr(self, name)!r}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise InputError(f"need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.lr > MAX_LR:
            # Adam's step is lr / (1 - beta1**t) in float32: far larger rates overflow inside torch
            raise InputError(f"TrainConfig.lr must be at most {MAX_LR:g}, got {self.lr:g}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise InputError(f"grad_clip and weight_decay must be >= 0, got {self.grad_clip} and {self.weight_decay}")
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()  # JSON gives lists back
        if len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
            raise InputError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas
        if not is_int(self.seed) or not 0 <= self.seed < 2**64:
            raise InputError(f"TrainConfig.seed must be an int in [0, 2**64), got {self.seed!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from its ``dataclasses.asdict`` form (as ``checkpoint.json`` stores it); unknown keys
        are an error, not silently dropped."""
        if not isinstance(values, dict):
            raise InputError(f"a TrainConfig needs an object of settings, got {values!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise InputError(f"unknown TrainConfig key(s) {unknown}; the fields are {sorted(fields)}")
        return cls(**values)


@dataclass
class TrainResult:
    """What a run leaves: one row per logged step (the rows of ``metrics.jsonl``) and its timing."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    tokens: int = 0
    folder: Path | None = None

    @property
    def out_dir(self) -> Path | None:
        """Deprecated name of :attr:`folder`."""
        import warnings

        warnings.warn("TrainResult.out_dir is now TrainResult.folder", DeprecationWarning, stacklevel=2)
        return self.folder

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def final_val_loss(self) -> float | None:
        vals = [r["val_loss"] for r in self.history if r.get("val_loss") is not None]
        return vals[-1] if vals else None
