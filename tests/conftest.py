"""Shared test set-up: no network, a private progress record and cache for every test session."""
from __future__ import annotations

import contextlib
import io
import os
import tempfile

# Set before gpt2lib is imported anywhere, so that nothing in a test tries the network or writes
# into the reader's own cache or exercise progress.
os.environ.setdefault("GPT2LIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# (Under pytest-xdist each worker imports this file, so each has its own record, as its kernels do.)
_tmp = tempfile.mkdtemp(prefix="gpt2lib-tests-")
os.environ["GPT2LIB_PROGRESS"] = os.path.join(_tmp, "progress.json")


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity, where the system has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def threads_per_worker() -> int | None:
    """Under pytest-xdist, each worker's share of the CPUs; None in a run without workers.

    Each of N workers would otherwise start a thread per CPU, and so would every chapter kernel it
    starts: N times more threads than cores, which then take turns instead of computing."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if "PYTEST_XDIST_WORKER" not in os.environ or workers <= 1:
        return None
    return max(1, cpu_count() // workers)


# Before torch is imported (it reads them once) and before any kernel starts (kernels inherit this
# process's environment). A value set by the caller (tools/run_tests.sh, or by hand) wins.
if threads_per_worker() is not None:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(threads_per_worker()))

from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    if threads_per_worker() is not None:
        import torch

        # torch may already have been imported by a plugin before this file set OMP_NUM_THREADS
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or threads_per_worker()))


def venv_dir() -> Path:
    """The project's virtual environment (``VENV``, as the Makefile and tools/ read it)."""
    return Path(os.environ.get("VENV", ROOT / ".venv")).resolve()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML book (``BOOK_HTML`` overrides book/_build/html). Fails, not skips, when absent:
    the browser checks run after the build in `make test`."""
    path = Path(os.environ.get("BOOK_HTML", ROOT / "book" / "_build" / "html"))
    if not (path / "index.html").exists():
        pytest.fail(f"no built book at {path}: run 'make book' (or tools/build_book.sh) first")
    return path


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free localhost port for the duration; yield its base URL."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # no line per request in the test output
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def book_server(book_html: Path):
    """Serve the built book on a free localhost port, as a reader's browser would see it."""
    with serve_folder(book_html) as url:
        yield url


@pytest.fixture
def private_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A progress record of this test's own; afterwards, no exercise answer kept for the runtime."""
    from gpt2lib.exercises import progress, yours

    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "progress.json"))
    yield
    yours.forget_runtime()


def check_quietly(name: str, answer, seed: int = 0) -> tuple[bool, str]:
    """``(passed, what the checker printed)`` for exercise ``name`` on ``answer``, nothing recorded."""
    from gpt2lib.exercises._core import REGISTRY

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = REGISTRY[name].check(answer, record=False, seed=seed)
    return ok, buf.getvalue()


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own (``GPT2LIB_CACHE``), so that no test reads what another wrote."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GPT2LIB_CACHE", str(path))
    return path


def byte_token_data(text: str, name: str = "bytes", val_fraction: float = 0.1):
    """A :class:`~gpt2lib.data.TokenData` whose ids are the text's UTF-8 bytes (vocabulary 256): data
    for tiny training runs without training a tokenizer. The last ``val_fraction`` is validation."""
    import numpy as np

    from gpt2lib.data import TokenData

    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)
    cut = int(len(ids) * (1 - val_fraction))
    return TokenData(name, ids[:cut], ids[cut:], cut, len(ids) - cut, 256)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a browser download)."""
    from browser_checks import find_chromium

    chromium = find_chromium()  # $CHROMIUM / $BROWSER_PATH, then PATH, then the macOS apps
    if chromium is None:
        pytest.fail("Chromium is missing: install chromium (or Google Chrome), or set CHROMIUM=/path/to/it; "
                    "'make setup-book' installs Debian's chromium as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def gpt2():
    """The real GPT-2 tokenizer, ours, from OpenAI's two files that gpt2lib ships."""
    from gpt2lib.tokenizer import BPETokenizer

    return BPETokenizer.gpt2()


@pytest.fixture(scope="session")
def tiktoken_gpt2():
    """tiktoken's GPT-2 encoding built offline from the same two files (its own loader would download them)."""
    import tiktoken
    import tiktoken.load

    from gpt2lib.tokenizer import files
    from gpt2lib.tokenizer.bytes_map import GPT2_PATTERN

    folder = files.gpt2_files_dir()
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    return tiktoken.Encoding("gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})
