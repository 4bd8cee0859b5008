"""Many small training runs at once: chapter 8's scaling experiment and its comparison of GPT-2 with the
changes that followed it, one process per CPU core.

Each run trains a small model on a corpus's bytes (256 ids: no tokenizer to train, and almost every
parameter in the blocks) and scores it on the validation split. A run is single-threaded: matrices this
small gain nothing from a second thread, so a second core is better spent on a second run. With ``workers``
> 1 the runs go to that many processes (started with ``spawn``, which works in a notebook and on every OS);
a run gives the same numbers there as in this process, since it is seeded and runs on one thread either way.
On a GPU the runs stay in this process, one after the other: they would share the one device anyway.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .data import TokenData, prepare
from .evaluation import evaluate
from .model import GPT, GPTConfig
from .runtime import InputError, seed_everything
from .tokenizer import BPETokenizer
from .training import TrainConfig, train
from .variants import Variant, VariantGPT

__all__ = ["Run", "Result", "byte_data", "run_all", "default_workers"]


@dataclass(frozen=True)
class Run:
    """One run: the model's shape, its training schedule, the seed its weights are drawn with, and the
    post-GPT-2 changes (``None``: the book's :class:`~gpt2lib.model.GPT`; a :class:`Variant`: a
    :class:`~gpt2lib.variants.VariantGPT`)."""

    config: GPTConfig
    schedule: TrainConfig
    init_seed: int
    variant: Variant | None = None
    eval_batch_size: int = 16


@dataclass(frozen=True)
class Result:
    """What one run measured: on the validation split, and the wall-clock seconds of its training alone."""

    non_embedding_parameters: int
    val_loss: float
    bits_per_byte: float
    bigram_bits_per_byte: float
    seconds: float
    tokens_per_second: float


_DATA: dict[str, TokenData] = {}


def byte_data(corpus: str = "python-docs") -> TokenData:
    """The corpus as byte ids (a tokenizer with no merges), prepared once per process."""
    if corpus not in _DATA:
        _DATA[corpus] = prepare(corpus, BPETokenizer([], name="bytes"))
    return _DATA[corpus]


def default_workers() -> int:
    """One process per CPU this process may use; one on a machine with a CUDA GPU."""
    if torch.cuda.is_available():
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _build(run: Run) -> torch.nn.Module:
    return GPT(run.config) if run.variant is None else VariantGPT(run.config, run.variant)


def _model(run: Run) -> torch.nn.Module:
    seed_everything(run.init_seed)
    return _build(run)


def _cost(run: Run) -> int:
    """A run's training work, roughly: its parameters times the tokens it trains on (shapes only, on ``meta``)."""
    with torch.device("meta"):
        n = sum(p.numel() for p in _build(run).parameters())  # no seeding: the caller's RNG is left alone
    return n * run.schedule.max_steps * run.schedule.batch_size * run.schedule.grad_accum


def _one(run: Run, corpus: str) -> Result:
    data = byte_data(corpus)
    model = _model(run)
    start = time.perf_counter()
    train(model, data, run.schedule, progress=False)
    seconds = time.perf_counter() - start
    report = evaluate(model, data, batch_size=run.eval_batch_size)
    embeddings = sum(p.numel() for name, p in model.named_parameters() if name.split(".")[-2] in ("wte", "wpe"))
    tokens = run.schedule.max_steps * run.schedule.batch_size * run.schedule.grad_accum * run.config.block_size
    return Result(sum(p.numel() for p in model.parameters()) - embeddings, report["val_loss"], report["bits_per_byte"],
                  report["bigram_bits_per_byte"], seconds, tokens / seconds)


def _start_worker(corpus: str) -> None:
    """One thread, the data loaded, and a few untimed steps: the first timed run pays no start-up costs."""
    torch.set_num_threads(1)
    data = byte_data(corpus)
    warm = GPT(GPTConfig(vocab_size=data.vocab_size, n_layer=1, n_head=1, n_embd=16, block_size=16))
    train(warm, data, TrainConfig(max_steps=3, batch_size=2, warmup_steps=1, eval_interval=0, log_interval=100,
                                  device="cpu"), progress=False)


def run_all(runs: Sequence[Run], corpus: str = "python-docs", *, workers: int | None = None,
            progress: bool = True, desc: str = "runs") -> list[Result]:
    """Every run's :class:`Result`, in the order of ``runs``; ``workers`` processes side by side (default:
    :func:`default_workers`), or this process alone with 1. A ``tqdm`` bar counts finished runs."""
    from tqdm.auto import tqdm

    runs = list(runs)
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number of processes, 1 or more; got {workers!r}")
    workers = min(workers, len(runs)) or 1
    bar = tqdm(total=len(runs), desc=desc, disable=not progress)
    try:
        if workers == 1:
            threads = torch.get_num_threads()
            try:
                _start_worker(corpus)
                results = []
                for run in runs:
                    results.append(_one(run, corpus))
                    bar.update()
                return results
            finally:
                torch.set_num_threads(threads)
        main = sys.modules["__main__"]
        if not hasattr(main, "__spec__"):
            # a host whose __main__ was made by hand (pytest-xdist's workers) lacks the attribute, and spawn reads it
            main.__spec__ = None
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                    initargs=(corpus,)) as pool:
            # the dearest runs first, so that no long run starts last while the other workers sit idle
            futures: list[Any] = [None] * len(runs)
            for i in sorted(range(len(runs)), key=lambda i: -_cost(runs[i])):
                futures[i] = pool.submit(_one, runs[i], corpus)
            try:
                for _ in concurrent.futures.as_completed(futures):
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            return [future.result() for future in futures]
    finally:
        bar.close()

