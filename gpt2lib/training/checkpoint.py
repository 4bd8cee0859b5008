"""Checkpoints that survive a crash: weights and optimizer state in safetensors, the rest in JSON.

A checkpoint folder holds ``checkpoint.json`` and the files it names: ``model-<step>.safetensors``,
``optim-<step>.safetensors`` (Adam's moments and the random-number states, so that a resumed run
draws the same batches) and ``tokenizer.json``. Every file is written to a temporary name and then
renamed, and ``checkpoint.json`` is renamed last: until that rename, the folder still describes the
previous checkpoint, whose files are deleted only afterwards. A run killed at any moment therefore
leaves a complete checkpoint behind, the old one or the new one; what it left half-written is swept
at the next save.

One run writes into a folder at a time: :func:`hold_folder` takes an exclusive lock on its ``.lock``
file, and a second run is refused instead of mixing its files with the first's. Weights that are not
finite are never written, so a diverged run cannot replace its last good checkpoint.

Every name ``checkpoint.json`` gives must be a plain file name inside its folder, so a doctored file
cannot make a run read, or delete, anything elsewhere. safetensors holds tensors only, without
pickled Python objects, so loading a checkpoint from someone else cannot run their code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from ..atomic import remove_stale_temporaries, write_atomic
from ..runtime import UserError, unwrap_model

if TYPE_CHECKING:
    from ..model import GPT, GPTConfig
    from ..tokenizer import BPETokenizer

__all__ = ["FORMAT", "CheckpointError", "FolderBusyError", "NonFiniteWeightsError", "save_checkpoint",
           "read_checkpoint_info", "load_checkpoint", "has_checkpoint", "load_training_state", "hold_folder",
           "clean_folder", "model_config_of", "load_saved_tokenizer"]

FORMAT = "gpt2lib-checkpoint"
VERSION = 1
INFO = "checkpoint.json"
LOCK = ".lock"
TOKENIZER = "tokenizer.json"
WEIGHT_FILE = re.compile(r"^(model|optim)-\d+\.safetensors$")
# key -> (accepted types, what to say when it is wrong)
REQUIRED = {"step": (int, "a step number"), "model_config": (dict, "the model's shape"),
            "train_config": ((dict, type(None)), "the run's settings"), "weights": (str, "a file name"),
            "optimizer": (str, "a file name"), "param_groups": (list, "the optimizer's groups"),
            "tokenizer": ((str, type(None)), "a file name or null")}


class CheckpointError(UserError, ValueError):
    """A checkpoint folder that cannot be used as asked (missing, corrupt, or of another shape)."""


class FolderBusyError(CheckpointError):
    """Another run holds the folder's lock."""


class NonFiniteWeightsError(CheckpointError):
    """Weights with NaN or infinity: never written over a good checkpoint, never loaded."""


def has_checkpoint(folder: str | os.PathLike) -> bool:
    return (Path(folder) / INFO).is_file()


# ------------------------------------------------------------------------------------ one run at a time
@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for the duration: an exclusive, non-blocking lock on its
    ``.lock`` file (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows), released when the block
    ends or the process dies. Re-entrant within a process (one lock object per path), so
    ``save_checkpoint`` inside ``train`` takes it again; a second holder, in another process, gets
    :class:`FolderBusyError` at once. The lock file stays after release."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder.resolve() / LOCK, is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FolderBusyError(f"another run is writing into {folder} (it holds {folder / LOCK}); wait for it "
                              f"to finish, or choose another output folder") from None
    try:
        yield folder
    finally:
        lock.release()


# ------------------------------------------------------------------------------------ checkpoint.json
def _member(folder: Path, name: Any, key: str) -> Path:
    """``folder / name`` for a plain file name that stays inside ``folder`` (symlinks included)."""
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise CheckpointError(f"{folder / INFO} names {key} {name!r}; a checkpoint may name only files in "
                              f"its own folder")
    path = folder / name
    if path.resolve().parent != folder.resolve():
        raise CheckpointError(f"{folder / INFO} names {key} {name!r}, a link to {path.resolve()} outside the "
                              f"folder; a checkpoint may name only files in its own folder")
    return path


def read_checkpoint_info(folder: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``checkpoint.json`` of ``folder``, checked for format, keys, and the files it names."""
    folder = Path(folder)
    path = folder / INFO
    if not path.is_file():
        raise CheckpointError(f"{folder} holds no checkpoint ({INFO} is missing); train one with "
                              f"'python -m gpt2lib train --out {folder}'")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the checkpoint is corrupt") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gpt2lib checkpoint (no \"format\": \"{FORMAT}\")")
    if info.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {info.get('version')}; this gpt2lib reads {VERSION}")
    for key, (kinds, what) in REQUIRED.items():
        value = info.get(key)
        if key not in info or not isinstance(value, kinds) or isinstance(value, bool):
            raise CheckpointError(f"{path} needs \"{key}\" ({what}), found {value!r}; the checkpoint is damaged")
    if info["step"] < 0:
        raise CheckpointError(f"{path} has step {info['step']}; the checkpoint is damaged")
    for key in ("weights", "optimizer", "tokenizer"):
        if info[key] is not None and not _member(folder, info[key], key).is_file():
            raise CheckpointError(f"{folder / info[key]} named by {INFO} is missing; the checkpoint is incomplete")
    return info


def model_config_of(info: dict[str, Any], where: str | os.PathLike = INFO) -> GPTConfig:
    """The :class:`~gpt2lib.model.GPTConfig` a checkpoint's ``model_config`` describes."""
    from ..model import GPTConfig

    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    given = info.get("model_config")
    if not isinstance(given, dict):
        raise CheckpointError(f"{where}: \"model_config\" must be an object, found {given!r}")
    unknown = sorted(set(given) - fields)
    if unknown:
        raise CheckpointError(f"{where}: \"model_config\" has unknown key(s) {unknown}; the fields are "
                              f"{sorted(fields)}")
    try:
        return GPTConfig(**given)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: \"model_config\" is not a valid model shape: {exc}") from None


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


def clean_folder(folder: str | os.PathLike) -> list[Path]:
    """Delete what interrupted saves left in ``folder``: temporary files, and weight or optimizer files
    that ``checkpoint.json`` does not name (all of them when the folder holds no checkpoint). Call it
    only while holding the folder. Return the deleted paths."""
    folder = Path(folder)
    removed = remove_stale_temporaries(folder)
    named: set[str] = set()
    if has_checkpoint(folder):
        try:
            info = read_checkpoint_info(folder)
        except CheckpointError:
            return removed  # a damaged checkpoint.json: keep every file for whoever repairs it
        named = {info["weights"], info["optimizer"]}
    for path in folder.iterdir():
        if WEIGHT_FILE.match(path.name) and path.name not in named and not path.is_dir():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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
