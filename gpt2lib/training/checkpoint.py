"""Checkpoints that survive a crash: weights and optimizer state in safetensors, the rest in JSON.

A checkpoint folder holds ``checkpoint.json`` and the files it names: ``model-<step>.safetensors``,
``optim-<step>.safetensors`` (Adam's moments and the random-number states, so that a resumed run
draws the same batches) and ``tokenizer.json``. Every file is written to a temporary name and then
renamed, and ``checkpoint.json`` is renamed last: until that rename, the folder still describes the
previous checkpoint, whose files are deleted only afterwards. A run killed at any moment therefore
leaves a complete checkpoint behind, the old one or the new one; what it left half-written is swept
at the next save.

The folder itself (its layout, its lock, what is swept from it) is :mod:`.folder`'s. Weights that are
not finite are never written, so a diverged run cannot replace its last good checkpoint. safetensors holds tensors only, without
pickled Python objects, so loading a checkpoint from someone else cannot run their code.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from ..atomic import write_atomic
from ..runtime import unwrap_model
# The folder's names are re-exported: callers and tests import them from here.
from .folder import (FORMAT, INFO, LOCK, REQUIRED, TOKENIZER, VERSION, WEIGHT_FILE,  # noqa: F401
                     CheckpointError, FolderBusyError, _member, clean_folder, has_checkpoint, hold_folder,
                     model_config_of, read_checkpoint_info)

if TYPE_CHECKING:
    from ..model import GPT
    from ..tokenizer import BPETokenizer

__all__ = ["FORMAT", "CheckpointError", "FolderBusyError", "NonFiniteWeightsError", "save_checkpoint",
           "read_checkpoint_info", "load_checkpoint", "has_checkpoint", "load_training_state", "hold_folder",
           "clean_folder", "model_config_of", "load_saved_tokenizer", "add_checkpoint_info"]


class NonFiniteWeightsError(CheckpointError):
    """Weights with NaN or infinity: never written over a good checkpoint, never loaded."""


# ------------------------------------------------------------------------------------ writing
def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def all_finite(model: nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (one read-back from the device)."""
    flags = [torch.isfinite(p).all() for p in model.parameters() if p.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


def save_checkpoint(model: nn.Module, folder: str | os.PathLike, *, optimizer: torch.optim.Optimizer | None = None,
                    step: int, train_config: Any = None, rng: dict[str, torch.Tensor] | None = None,
                    tokenizer: Any = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint of ``model`` (and ``optimizer``, the random-number states ``rng``, and the
    tokenizer) at ``step`` into ``folder``, atomically; return the path of ``checkpoint.json``.

    Weights with NaN or infinity raise :class:`NonFiniteWeightsError` before anything is written."""
    folder = Path(folder)
    raw = unwrap_model(model)
    if not all_finite(raw):
        raise NonFiniteWeightsError(f"the weights at step {step} hold NaN or infinity; not saving them over "
                                    f"the checkpoint in {folder}")
    with hold_folder(folder):
        weights, optim = f"model-{step:07d}.safetensors", f"optim-{step:07d}.safetensors"
        # save_model stores a tied weight once (the head shares the embedding) and restores the tie on load.
        write_atomic(folder / weights, lambda tmp: save_model(raw, tmp, metadata={"format": FORMAT}))
        tensors, groups = _optimizer_tensors(optimizer) if optimizer is not None else ({}, [])
        for name, t in (rng or {}).items():
            tensors[f"rng.{name}"] = t.detach().cpu().contiguous()
        write_atomic(folder / optim, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
        if tokenizer is not None and not (folder / TOKENIZER).is_file():
            write_atomic(folder / TOKENIZER, lambda tmp: tokenizer.save(tmp))
        tc = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else train_config
        info = {"format": FORMAT, "version": VERSION, "step": int(step),
                "model_config": dataclasses.asdict(raw.config), "train_config": tc,
                "weights": weights, "optimizer": optim, "param_groups": groups,
                "tokenizer": TOKENIZER if (folder / TOKENIZER).is_file() else None,
                **(extra or {})}
        write_atomic(folder / INFO, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1), encoding="utf-8"))
        # Only now is the new checkpoint the folder's checkpoint; the old files, and any a killed save
        # left behind, may go. Only names this folder's own pattern matches are ever deleted.
        clean_folder(folder)
    return folder / INFO


def add_checkpoint_info(folder: str | os.PathLike, step: int, values: dict[str, Any]) -> bool:
    """Add ``values`` (what was measured on the checkpoint, say its test scores) to the ``checkpoint.json``
    of ``folder``, atomically, if that checkpoint is still of ``step``; return whether it was. The keys a
    checkpoint needs cannot be replaced this way."""
    folder = Path(folder)
    clash = sorted(set(values) & (set(REQUIRED) | {"format", "version"}))
    if clash:
        raise ValueError(f"add_checkpoint_info cannot replace {clash}; save a new checkpoint instead")
    with hold_folder(folder):
        info = read_checkpoint_info(folder)
        if info["step"] != step:
            return False
        info.update(values)
        write_atomic(folder / INFO, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1), encoding="utf-8"))
    return True


# ------------------------------------------------------------------------------------ reading
def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is damaged and cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                              f"restore it from a copy, or train again into a new folder") from None


def _load_weights(model: nn.Module, path: Path) -> None:
    """Load ``path`` into ``model`` after checking names, shapes and finiteness; on any mismatch raise
    :class:`CheckpointError` and leave ``model`` unchanged."""
    tensors = _read_tensors(path)
    expected = model.state_dict()
    # A tied pair (the head and the embedding) is stored under one of its names.
    by_storage: dict[int, set[str]] = {}
    for name, t in expected.items():
        by_storage.setdefault(t.data_ptr(), set()).add(name)
    missing = sorted(n for n in expected if n not in tensors
                     and not any(other in tensors for other in by_storage[expected[n].data_ptr()]))
    unexpected = sorted(n for n in tensors if n not in expected)
    wrong = sorted(f"{n} {tuple(tensors[n].shape)} (expected {tuple(expected[n].shape)})"
                   for n in tensors if n in expected and tensors[n].shape != expected[n].shape)
    if missing or unexpected or wrong:
        parts = [f"{label} {items[:3]}{' ...' if len(items) > 3 else ''}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("other shapes", wrong)) if items]
        raise CheckpointError(f"{path} does not match the model its checkpoint.json describes: {'; '.join(parts)}")
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point()):
        raise NonFiniteWeightsError(f"{path} holds NaN or infinite weights; it cannot be used")
    model.load_state_dict(tensors, strict=False)


def load_checkpoint(folder: str | os.PathLike, *,
                    device: torch.device | str = "cpu") -> tuple[GPT, BPETokenizer | None, dict[str, Any]]:
    """``(model, tokenizer, info)`` from a checkpoint folder: a :class:`~gpt2lib.model.GPT` with the
    saved weights in eval mode, the saved tokenizer (None if the run saved none) and ``checkpoint.json``."""
    from ..model import GPT

    folder = Path(folder)
    info = read_checkpoint_info(folder)
    model = GPT(model_config_of(info, folder / INFO))
    _load_weights(model, folder / info["weights"])
    return model.to(device).eval(), load_saved_tokenizer(folder, info), info


def load_saved_tokenizer(folder: str | os.PathLike, info: dict[str, Any]) -> BPETokenizer | None:
    """The tokenizer a checkpoint saved (None if it saved none)."""
    if not info.get("tokenizer"):
        return None
    from ..tokenizer import BPETokenizer

    path = _member(Path(folder), info["tokenizer"], "tokenizer")
    try:
        return BPETokenizer.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} cannot be loaded ({exc}); the checkpoint's tokenizer is damaged") from None


def load_training_state(folder: str | os.PathLike, model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and optimizer state into ``model`` and ``optimizer`` (in place) for a resumed run;
    return ``(info, rng_states)``. A checkpoint of another shape, or a damaged one, is an error, and
    nothing is changed."""
    folder = Path(folder)
    info = read_checkpoint_info(folder)
    raw = unwrap_model(model)
    saved, ours = info["model_config"], dataclasses.asdict(raw.config)
    if saved != ours:
        diff = {k: (saved.get(k), ours.get(k)) for k in sorted(set(saved) | set(ours)) if saved.get(k) != ours.get(k)}
        raise CheckpointError(f"{folder} holds a checkpoint of another model shape (saved vs asked: {diff}); "
                              f"use another output folder, or the same preset to resume it")
    tensors = _read_tensors(folder / info["optimizer"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    rng = {}
    for name, t in tensors.items():
        if name.startswith("rng."):
            rng[name[4:]] = t
            continue
        parts = name.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise CheckpointError(f"{folder / info['optimizer']} holds an unknown entry {name!r}; it is damaged")
        state.setdefault(int(parts[1]), {})[parts[2]] = t
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, s in state.items():
        if i >= len(params) or any(v.shape != params[i].shape for k, v in s.items() if k != "step"):
            raise CheckpointError(f"{folder / info['optimizer']} holds optimizer state that does not fit this "
                                  f"model's parameters; the checkpoint is damaged")
    device = next(raw.parameters()).device
    sd = {"state": {i: {k: (v if k == "step" else v.to(device)) for k, v in s.items()} for i, s in state.items()},
          "param_groups": info["param_groups"]}
    before = optimizer.state_dict()
    if sd["param_groups"]:
        try:
            optimizer.load_state_dict(sd)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{folder / info['optimizer']} does not fit this model's optimizer ({exc}); "
                                  f"the checkpoint is damaged") from None
    try:
        _load_weights(raw, folder / info["weights"])
    except CheckpointError:
        optimizer.load_state_dict(before)
        raise
    return info, rng
