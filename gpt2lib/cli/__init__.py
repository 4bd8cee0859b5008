"""``python -m gpt2lib train | finetune | sample | eval``: the package's loop, sampler and evaluation from a shell.

    python -m gpt2lib train --out runs/docs                      # the book's model, its full schedule
    python -m gpt2lib train --out runs/docs --max-steps 50 --resume
    torchrun --nproc_per_node=2 -m gpt2lib train --out runs/ddp  # the same, with DDP
    python -m gpt2lib finetune --task questions --out runs/qa          # LoRA on the book's model
    python -m gpt2lib sample --ckpt runs/qa/merged --prompt "What does str.upper() do?"   # greedy, in its format
    python -m gpt2lib sample --ckpt runs/docs --prompt "The if statement" --max-new-tokens 80 --seed 1
    python -m gpt2lib eval --ckpt runs/docs

Exit statuses follow one rule. 130: stopped by Ctrl-C; a ``train`` or ``finetune`` run first saves its
last finished step, and one line says which and how to resume it. 2: the user's input or environment is at fault (a bad value, a missing
corpus, an output folder holding another run, a damaged checkpoint, a device this machine lacks, a
full disk); one line says what to do, and a saved checkpoint is never lost. 1: a bug in gpt2lib; its
traceback is shown, since hiding it would hide the bug. Only the errors gpt2lib raises on purpose
(``gpt2lib.runtime.UserError`` and its subclasses) and the operating system's (a full disk, a
read-only folder) count as the user's.
"""
from __future__ import annotations

import errno
import shlex
import sys
from pathlib import Path
from typing import Sequence

from ..runtime import UserError
from .commands import UsageError, main_process, train
from .finetune import finetune
from .inference import evaluate, sample
from .parser import build_parser

__all__ = ["main", "build_parser", "UsageError"]


_OS_HINTS = {errno.ENOSPC: "free some disk space, or choose a folder on another disk; the last checkpoint is intact",
             errno.EDQUOT: "free some disk space (quota), or choose another folder; the last checkpoint is intact",
             errno.EROFS: "the file system is read-only; choose a writable folder",
             errno.EACCES: "choose a folder you may write to",
             errno.EPERM: "choose a folder you may write to"}


def _one_line(exc: BaseException) -> str | None:
    """The one line for an error the user can fix, or None for a bug (shown with its traceback)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({exc.filename})" if exc.filename else ""
        hint = _OS_HINTS.get(exc.errno, "check the path and its permissions")
        return f"{exc.strerror or exc}{where}: {hint}"
    return None


def _stopped(command: str, out: Path | None, created: bool) -> str:
    """The one line for Ctrl-C: the step whose checkpoint ``out`` holds and how to resume it, or that nothing
    was saved (and the folder this command created is gone again)."""
    from ..training.checkpoint import CheckpointError, read_checkpoint_info
    from ..training.folder import remove_abandoned_start

    if out is None:
        return "stopped"
    try:
        step = read_checkpoint_info(out)["step"]
    except CheckpointError:
        if created and main_process():
            remove_abandoned_start(out)
        return "stopped before the first step finished; nothing was saved; run the same command again to start over"
    return (f"stopped at step {step}; checkpoint saved in {out}; resume with: python -m gpt2lib {command} --resume "
            f"--out {shlex.quote(str(out))}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gpt2lib`` and of the ``gpt2lib`` script; returns the exit status:
    0 done, 2 the user's input or environment (one line on stderr), 1 a bug (its traceback), 130 Ctrl-C."""
    args = build_parser().parse_args(argv)
    out = getattr(args, "out", None)
    created = out is not None and not out.exists()
    try:
        return {"train": train, "finetune": finetune, "sample": sample, "eval": evaluate}[args.command](args)
    except KeyboardInterrupt:
        line = _stopped(args.command, out, created)
        if main_process():
            print(line, file=sys.stderr)
        return 130
    except Exception as exc:
        line = _one_line(exc)
        if line is None:
            raise
        print(f"python -m gpt2lib {args.command}: error: {line}", file=sys.stderr)
        return 2
