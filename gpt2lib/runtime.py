"""Where the code runs: device choice, seeding, online/Colab detection and the cache folder; and
``UserError``, the base of the errors gpt2lib raises on purpose.

It imports only ``_version`` (lazily), so every module the map allows may import it.
"""
from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
from pathlib import Path
from typing import Iterator

import platformdirs
import torch

DEVICE_ENV = "GPT2LIB_DEVICE"
CACHE_ENV = "GPT2LIB_CACHE"
OFFLINE_ENV = "GPT2LIB_OFFLINE"
ECOSYSTEM_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

_VALID_DEVICES = ("cuda", "mps", "cpu")
SEED_MAX = 2**64 - 1  # torch.manual_seed takes at most 64 bits


class UserError(Exception):
    """Base of the errors gpt2lib raises on purpose: the input or the environment is at fault, and the
    message says what to do. ``python -m gpt2lib`` prints these as one line (exit status 2); any
    other exception is a bug and keeps its traceback."""


class InputError(UserError, ValueError):
    """A bad value at a public function's edge. A ``ValueError``, so ``except ValueError`` still catches it."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the caller named (or a package must ship) is not there."""


class DeviceError(UserError, RuntimeError):
    """A device was asked for by name and this machine does not have it."""


class CacheError(UserError, ValueError):
    """The cache folder (``GPT2LIB_CACHE``) cannot be used as a folder."""


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself, out of the wrappers training puts around it: ``torch.compile``
    (``_orig_mod``) and DistributedDataParallel (``module``), in either order. Checkpoints and
    evaluation work on the unwrapped model, whose parameter names carry no wrapper prefix."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), torch.nn.Module) and hasattr(model, "no_sync"):
            model = model.module
        else:
            return model


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(prefer: str | None = None) -> torch.device:
    """The device the book computes on: cuda, then mps, then cpu.

    ``prefer`` (or the environment variable ``GPT2LIB_DEVICE``) forces one of "cuda", "mps",
    "cpu" (an index such as "cuda:1" is accepted too). Asking for a device this machine lacks is
    an error rather than a silent fallback, since a reader who asked for the GPU wants to know.
    """
    choice = prefer if prefer is not None else os.environ.get(DEVICE_ENV, "").strip()
    if choice:
        kind = choice.split(":", 1)[0].lower()
        if kind not in _VALID_DEVICES:
            raise InputError(
                f"unknown device {choice!r}: use one of {', '.join(_VALID_DEVICES)} "
                f"(or unset {DEVICE_ENV} to choose automatically)"
            )
        available = {"cuda": torch.cuda.is_available(), "mps": _mps_available(), "cpu": True}
        if not available[kind]:
            raise DeviceError(
                f"device {choice!r} was requested but is not available on this machine; "
                f"choose --device cpu (or prefer='cpu'), or unset {DEVICE_ENV}"
            )
        return torch.device(choice.lower())
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 1337) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` with that seed,
    for code that prefers an explicit generator to global state."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed must be in [0, 2**64 - 1] (torch keeps 64 bits of it), got {seed}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency, but seeding must not need it
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# The first CUDA generation with bf16 in its tensor cores (Ampere: A100, RTX 30xx; then L4, H100, ...).
BF16_MIN_CAPABILITY = (8, 0)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype ``autocast`` computes in on ``device``: bf16 on CUDA GPUs that compute it natively
    (compute capability 8.0 and newer), fp16 on older CUDA GPUs (Colab's free T4 is 7.5), None (fp32)
    elsewhere.

    ``torch.cuda.is_bf16_supported()`` is not the test: on a T4 it answers True and emulates bf16, slowly
    and without tensor cores. fp16 has tensor cores there but a narrow range, so training in fp16 needs
    loss scaling (:class:`gpt2lib.training.precision.Precision` does it). CPU autocast exists but is slower
    than fp32 on most laptops, so the book keeps fp32 there.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY else torch.float16


def precision_note(device: torch.device | str) -> str:
    """One line for a training chapter: the precision :func:`autocast` chose on ``device``, and why."""
    device = torch.device(device)
    dtype = autocast_dtype(device)
    if dtype is None:
        where = "a CPU" if device.type == "cpu" else f"{device.type}"
        return f"precision: fp32 on {where} (autocast to a 16-bit type is no faster here)"
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if dtype == torch.bfloat16:
        return f"precision: bf16 autocast on {name} (compute capability {major}.{minor} computes bf16 natively)"
    return (f"precision: fp16 autocast with loss scaling on {name} (compute capability {major}.{minor} has no "
            "native bf16; emulating it would be slower than fp32)")


@contextlib.contextmanager
def autocast(device: torch.device | str) -> Iterator[None]:
    """``torch.autocast`` to the dtype :func:`autocast_dtype` chooses, a no-op where it chooses fp32."""
    device = torch.device(device)
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


class OfflineError(UserError, RuntimeError):
    """Something had to be fetched from the network, and this machine is offline (or told to be)."""


def on_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def is_online(host: str = "huggingface.co", port: int = 443, timeout: float = 1.5) -> bool:
    """Whether ``host`` answers within ``timeout`` seconds.

    Set ``GPT2LIB_OFFLINE=1`` to force the offline path (the tests and the book build do), so that
    nothing at build or test time ever tries the network. Hugging Face's own switches
    (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``) are honoured too.
    """
    if any(os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
           for name in (OFFLINE_ENV, *ECOSYSTEM_OFFLINE_ENVS)):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def default_cache_root() -> Path:
    """gpt2lib's cache folder when ``GPT2LIB_CACHE`` is not set: the platform's user cache folder
    (``platformdirs``: ``$XDG_CACHE_HOME/gpt2lib``, by default ``~/.cache/gpt2lib``, on Linux;
    ``~/Library/Caches/gpt2lib`` on macOS; ``%LOCALAPPDATA%\\gpt2lib\\Cache`` on Windows)."""
    return Path(platformdirs.user_cache_dir("gpt2lib", appauthor=False))


def cache_dir(*parts: str) -> Path:
    """The folder where gpt2lib caches what it builds or downloads (created on demand).

    ``GPT2LIB_CACHE`` overrides the default, :func:`default_cache_root`.
    """
    root = Path(os.environ.get(CACHE_ENV) or default_cache_root())
    path = root.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), path)
        raise CacheError(f"the cache folder {path} cannot be made: {blocker} is a file; set {CACHE_ENV} "
                         f"to a folder (or unset it for {default_cache_root()})") from None
    return path


def describe_environment() -> str:
    """One line per fact a reader needs when comparing numbers: device and the versions that matter."""
    from importlib import metadata

    from ._version import __version__

    device = get_device()
    lines = [f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")]
    versions = [f"python {sys.version.split()[0]}", f"torch {torch.__version__}", f"gpt2lib {__version__}"]
    for name in ("transformers", "tiktoken"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    lines.append(", ".join(versions))
    return "\n".join(lines)
