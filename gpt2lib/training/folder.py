"""A checkpoint folder: what it holds, who may write into it, and what is swept from it.

``checkpoint.json`` names the other files: ``model-<step>.safetensors``, ``optim-<step>.safetensors`` and
``tokenizer.json``; beside them, ``metrics.jsonl`` logs the run. Every name it gives must be a plain file name inside its folder, so a doctored file
cannot make a run read, or delete, anything elsewhere. One run writes into a folder at a time
(:func:`hold_folder`); what interrupted saves left is swept by :func:`clean_folder`; a new run starts
only in a folder that is new, empty, or holds nothing but an abandoned start of ours
(:func:`check_new_run_folder`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from filelock import FileLock, Timeout

from ..atomic import remove_stale_temporaries, write_text_atomic
from ..runtime import UserError

if TYPE_CHECKING:
    from ..model import GPTConfig

__all__ = ["FORMAT", "VERSION", "INFO", "LOCK", "TOKENIZER", "WEIGHT_FILE", "CheckpointError", "FolderBusyError",
           "has_checkpoint", "hold_folder", "read_checkpoint_info", "model_config_of", "clean_folder",
           "check_new_run_folder", "remove_abandoned_start", "METRICS", "open_metrics", "logged_val_loss"]

FORMAT = "gpt2lib-checkpoint"
VERSION = 1
INFO = "checkpoint.json"
LOCK = ".lock"
TOKENIZER = "tokenizer.json"
METRICS = "metrics.jsonl"
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


# Files a run of ours leaves before its first checkpoint: a folder holding only these was an abandoned
# start, and a new run may reuse it.
_LEFTOVERS = (METRICS, TOKENIZER, LOCK)


def _ours(path: Path) -> bool:
    return (path.name in _LEFTOVERS or bool(WEIGHT_FILE.match(path.name))
            or (path.name.startswith(".") and path.name.endswith(".tmp")))


def check_new_run_folder(folder: str | os.PathLike, resume: bool) -> None:
    """Refuse, with what to do, a folder a run cannot start in (``resume=False``) or continue (``True``):
    a file, a folder with a checkpoint when not resuming, one without when resuming, or a folder holding
    anything a run of ours does not leave."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; give a folder")
    if resume and not has_checkpoint(folder):
        raise CheckpointError(f"{folder} holds no checkpoint to resume (no {INFO} there); check the folder's "
                              f"name, or drop --resume to start a new run in it")
    if has_checkpoint(folder) and not resume:
        raise CheckpointError(f"{folder} already holds a checkpoint; add --resume to continue it, or choose "
                              f"another --out")
    if not resume and folder.is_dir() and not all(_ours(p) for p in folder.iterdir()):
        raise CheckpointError(f"{folder} is not empty and holds no checkpoint; choose an empty or new folder")


def remove_abandoned_start(folder: str | os.PathLike) -> bool:
    """Remove ``folder`` if it holds no checkpoint and nothing but what a run of ours leaves before its first
    one (a start stopped by Ctrl-C); return whether it went. Anything else in it keeps it."""
    folder = Path(folder)
    if not folder.is_dir() or has_checkpoint(folder) or not all(_ours(p) and p.is_file() for p in folder.iterdir()):
        return False
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return not folder.exists()


# ------------------------------------------------------------------------------------ metrics.jsonl
def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(line, row)`` for each readable row of a ``metrics.jsonl`` (a line cut short by a kill is skipped)."""
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            yield line, row


def open_metrics(folder: Path, resumed_step: int) -> Any:
    """Open ``metrics.jsonl`` for appending; on resume, drop rows a killed run wrote after its last
    checkpoint, since the resumed run logs those steps again."""
    path = folder / METRICS
    if path.exists():
        keep = [line for line, row in _rows(path) if row.get("step", 0) <= resumed_step]
        write_text_atomic(path, "".join(k + "\n" for k in keep))
    return path.open("a", encoding="utf-8")


def logged_val_loss(folder: str | os.PathLike, step: int) -> float | None:
    """The validation loss ``metrics.jsonl`` logged at ``step`` (None if it logged none there)."""
    found = [row["val_loss"] for _, row in _rows(Path(folder) / METRICS)
             if row.get("step") == step and isinstance(row.get("val_loss"), (int, float))]
    return float(found[-1]) if found else None
