"""Checkpoints that survive a crash: weights and optimizer state in safetensors, the rest in JSON.

A checkpoint folder holds ``checkpoint.json`` and the files it names: ``model-<step>.safetensors``,
``optim-<step>.safetensors`` (Adam's moments and the random-number states, so that a resumed run
draws the same batches) and ``tokenizer.json``. Every file is written to a temporary name and then
renamed, and ``checkpoint.json`` is renamed last: until that rename, the folder still describes the
previous checkpoint, whose files are deleted only afterwards. A run killed at any moment therefore
leaves a complete checkpoint behind, the old one or the new one.

safetensors holds tensors only, without pickled Python objects, so loading a checkpoint from someone
else cannot run their code.
"""
from __future__ import annotations

import dataclasses
import json
import os

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from ..atomic import write_atomic

__all__ = ["FORMAT", "CheckpointError", "save_checkpoint", "read_checkpoint_info", "load_checkpoint",
           "has_checkpoint", "load_training_state"]

FORMAT = "gpt2lib-checkpoint"
VERSION = 1
INFO = "checkpoint.json"

class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used as asked (missing, corrupt, or of another shape)."""

def has_checkpoint(folder: str | os.PathLike) -> bool:
    return (Path(folder) / INFO).is_file()

def read_checkpoint_info(folder: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``checkpoint.json`` of ``folder``, checked for format and for the files it names."""
    folder = Path(folder)
    path = folder / INFO
    if not path.is_file():
        raise CheckpointError(f"{folder} holds no checkpoint ({INFO} is missing); train one with "
                              f"'python -m gpt2lib train --out {folder}'")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the checkpoint is corrupt") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gpt2lib checkpoint (no \"format\": \"{FORMAT}\")")
    if info.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {info.get('version')}; this gpt2lib reads {VERSION}")
    for key in ("weights", "optimizer"):
        if not (folder / info[key]).is_file():
            raise CheckpointError(f"{folder / info[key]} named by {INFO} is missing; the checkpoint is incomplete")
    return info

def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups

def save_checkpoint(folder: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    step: int, train_config: Any = None, rng: dict[str, torch.Tensor] | None = None,
                    tokenizer: Any = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint of ``model`` (and ``optimizer``, the random-number states ``rng``, and the
    tokenizer) at ``step`` into ``folder``, atomically; return the path of ``checkpoint.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    raw = getattr(raw, "module", raw)  # unwrap DistributedDataParallel
    previous = json.loads((folder / INFO).read_text()) if (folder / INFO).is_file() else None
    weights, optim = f"model-{step:07d}.safetensors", f"optim-{step:07d}.safetensors"
    # save_model stores a tied weight once (the head shares the embedding) and restores the tie on load.
    write_atomic(folder / weights, lambda tmp: save_model(raw, tmp, metadata={"format": FORMAT}))
    tensors, groups = _optimizer_tensors(optimizer) if optimizer is not None else ({}, [])
    for name, t in (rng or {}).items():
        tensors[f"rng.{name}"] = t.detach().cpu().contiguous()
    write_atomic(folder / optim, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    if tokenizer is not None and not (folder / "tokenizer.json").is_file():
        write_atomic(folder / "tokenizer.json", lambda tmp: tokenizer.save(tmp))
    tc = dataclasses.asdict(train_config) if dataclasses.is_dataclass(train_config) else train_config
    info = {"format": FORMAT, "version": VERSION, "step": int(step),
            "model_config": dataclasses.asdict(raw.config), "train_config": tc,
            "weights": weights, "optimizer": optim, "param_groups": groups,
            "tokenizer": "tokenizer.json" if (folder / "tokenizer.json").is_file() else None,
            **(extra or {})}
    write_atomic(folder / INFO, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1), encoding="utf-8"))
    # Only now is the new checkpoint the folder's checkpoint; the old files may go.
    if previous is not None:
        for key in ("weights", "optimizer"):
            old = previous.get(key)
            if old and old not in (weights, optim):
                (folder / old).unlink(missing_ok=True)
    return folder / INFO

def load_checkpoint(folder: str | os.PathLike, *, device: torch.device | str = "cpu"):
    """``(model, tokenizer, info)`` from a checkpoint folder: a :class:`~gpt2lib.model.GPT` with the
    saved weights in eval mode, the saved tokenizer (None if the run saved none) and ``checkpoint.json``."""
    from ..model import GPT, GPTConfig

    folder = Path(folder)
    info = read_checkpoint_info(folder)
    model = GPT(GPTConfig(**info["model_config"]))
    missing, unexpected = load_model(model, folder / info["weights"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{folder / info['weights']} does not match its config: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    tokenizer = None
    if info.get("tokenizer"):
        from ..tokenizer import BPETokenizer

        tokenizer = BPETokenizer.load(folder / info["tokenizer"])
    return model.to(device).eval(), tokenizer, info

def load_training_state(folder: str | os.PathLike, model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and optimizer state into ``model`` and ``optimizer`` (in place) for a resumed run;
    return ``(info, rng_states)``. A checkpoint of another shape is an error, and nothing is changed."""
    folder = Path(folder)
    info = read_checkpoint_info(folder)
    raw = getattr(getattr(model, "_orig_mod", model), "module", getattr(model, "_orig_mod", model))
    saved, ours = info["model_config"], dataclasses.asdict(raw.config)
    if saved != ours:
        diff = {k: (saved.get(k), ours.get(k)) for k in set(saved) | set(ours) if saved.get(k) != ours.get(k)}
        raise CheckpointError(f"{folder} holds a checkpoint of another model shape (saved vs asked: {diff}); "
                              f"use another output folder, or the same preset to resume it")
    tensors = load_file(folder / info["optimizer"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    rng = {}
    for name, t in tensors.items():
        if name.startswith("rng."):
            rng[name[4:]] = t
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    load_model(raw, folder / info["weights"])
    device = next(raw.parameters()).device
    sd = {"state": {i: {k: (v if k == "step" else v.to(device)) for k, v in s.items()} for i, s in state.items()},
          "param_groups": info["param_groups"]}
    if sd["param_groups"]:
        optimizer.load_state_dict(sd)
    return info, rng
