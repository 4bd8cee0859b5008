"""Loss scaling for fp16 training, the one precision that needs it.

:func:`gpt2lib.runtime.autocast` computes in fp16 on CUDA GPUs older than compute capability 8.0 (a T4),
bf16 on newer ones, fp32 elsewhere. fp16's smallest normal number is about 6e-5, so many small gradients
would round to zero; the remedy (Micikevicius et al. 2018, "Mixed Precision Training") multiplies the loss
by a large scale before the backward pass and divides the gradients by it before clipping and the update.
A step whose scaled gradients overflow is skipped and the scale halved; after a run of good steps it
doubles. In bf16 and fp32 (the range of fp32) :class:`Precision` does nothing at all.
"""
from __future__ import annotations

from typing import Any

import torch

from ..runtime import autocast_dtype

__all__ = ["Precision"]


class Precision:
    """The loss scaler of one run: ``backward(loss)``, ``unscale(optimizer)`` before clipping,
    ``step(optimizer)`` (returns False when fp16 overflowed and the step was skipped), and its state,
    which a checkpoint keeps so that a resumed run scales as the uninterrupted one would."""

    def __init__(self, device: torch.device | str, *, enabled: bool | None = None) -> None:
        device = torch.device(device)
        self.enabled = autocast_dtype(device) == torch.float16 if enabled is None else enabled
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.enabled)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale (once per step, before the norm is measured and clipped)."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Apply the update unless fp16's gradients overflowed; adjust the scale. True if applied."""
        if not self.enabled:
            optimizer.step()
            return True
        before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= before  # the scale drops exactly when the step was skipped

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.enabled else {}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.enabled and state:
            self.scaler.load_state_dict(state)
