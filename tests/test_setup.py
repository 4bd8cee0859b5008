"""The set-up and the tools around it: a failed step stops tools/setup.sh with a line naming it, an old
Python is refused, the extras it installs are the ones pyproject.toml declares, it installs the lock
(requirements.txt) with torch's pin or around a torch of another version, Chromium is found wherever it
lives, tools/run_tests.sh spreads `make test` over pytest-xdist workers with a share of the threads each.
tools/setup.sh and tools/run_tests.sh run here against a stand-in interpreter, so nothing is installed or run."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from browser_checks import CHROMIUM_APPS, find_chromium

ROOT = Path(__file__).resolve().parent.parent


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- Chromium ---

def test_chromium_from_a_variable_then_path(tmp_path):
    browser = _executable(tmp_path / "apps" / "my-chrome")
    assert find_chromium({"CHROMIUM": str(browser), "PATH": ""}) == str(browser)
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "chromium-browser")
    assert find_chromium({"BROWSER_PATH": "chromium-browser", "PATH": str(bin_dir)}) == str(bin_dir / "chromium-browser")
    assert find_chromium({"PATH": str(bin_dir)}) == str(bin_dir / "chromium-browser")
    _executable(bin_dir / "google-chrome")
    _executable(bin_dir / "chromium")
    assert find_chromium({"PATH": str(bin_dir)}) == str(bin_dir / "chromium"), "chromium comes first"


def test_chromium_missing_or_misnamed(tmp_path):
    if any(os.path.isfile(app) for app in CHROMIUM_APPS):
        pytest.skip("a macOS browser app is installed here")
    assert find_chromium({"PATH": str(tmp_path)}) is None
    with pytest.raises(FileNotFoundError, match="CHROMIUM='/no/such/browser'"):
        find_chromium({"CHROMIUM": "/no/such/browser", "PATH": str(tmp_path)})


# --- tools/setup.sh ---

# A stand-in for the venv's python: answers the set-up's questions, and fails the step named in $FAIL.
# Its torch is $FAKE_TORCH (2.13.0+cpu by default); with FAKE_NO_TORCH=1 there is none until pip installs
# one. pip's calls go to $FAKE_LOG, each requirements file's torch line after it.
FAKE_PYTHON = """#!/bin/sh
case "$1 $2 $3" in
  "--version"*) echo "Python ${FAKE_VERSION:-3.11.0}"; exit 0 ;;
  "-m pip install"*) echo "pip install $*" >> "$FAKE_LOG"
    prev=""; for arg in "$@"; do
      [ "$prev" = -r ] && echo "  torch line: $(grep '^torch' "$arg" || echo none)" >> "$FAKE_LOG"
      case "$arg" in torch==*) touch "$FAKE_LOG.torch" ;; esac; prev=$arg; done
    [ "$FAIL" = pip ] && { echo "ERROR: No matching distribution found for gpt2lib-missing-dep" >&2; exit 1; }; exit 0 ;;
  "-m pip check"*) [ "$FAIL" = check ] && { echo "broken 1.0 requires missing" ; exit 1; }; exit 0 ;;
  "tools/check_env.py"*) [ "$FAIL" = env ] && { echo "[check_env] import nbval failed" >&2; exit 1; }; exit 0 ;;
  "-c"*) case "$2" in *version_info*) [ "${FAKE_VERSION:-3.11.0}" = 3.9.18 ] && exit 1; exit 0 ;;
                      *torch*) [ -n "$FAKE_NO_TORCH" ] && [ ! -e "$FAKE_LOG.torch" ] && exit 1
                               case "$2" in *__version__*) echo "${FAKE_TORCH:-2.13.0+cpu}" ;; esac ;;
         esac; exit 0 ;;
esac
exit 0
"""


def run_setup(tmp_path: Path, fail: str = "", version: str = "3.11.0", python: str | None = None,
              checkout: Path = ROOT, **more: str):
    venv = tmp_path / "venv"
    _executable(venv / "bin" / "python", FAKE_PYTHON)
    env = {**os.environ, "VENV": str(venv), "FAIL": fail, "FAKE_VERSION": version, "TMPDIR": str(tmp_path),
           "FAKE_LOG": str(tmp_path / "pip.log"), "PYTHON": python or sys.executable, "EXTRA_PIP_SPEC": "", **more}
    env.pop("TORCH_SPEC", None)
    result = subprocess.run(["bash", str(checkout / "tools" / "setup.sh"), "python"], env=env, cwd=checkout,
                            capture_output=True, text=True, timeout=120)
    return result, (venv / ".gpt2lib-setup").exists()


def a_checkout(tmp_path: Path) -> Path:
    """The files the set-up reads, copied: a test may change them without touching the real ones."""
    checkout = tmp_path / "checkout"
    for name in ("pyproject.toml", "requirements.txt", "tools/setup.sh", "tools/check_env.py"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, checkout / name)
    return checkout


LOCKED_TORCH = re.search(r"^(torch==[^\s;]+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)


@pytest.mark.parametrize("fail, line", [
    ("pip", r"\[setup\] FAILED: installing the pinned requirements \(requirements.txt\)"),
    ("env", r"\[setup\] FAILED: the environment in .* is incomplete"),
    ("check", r"\[setup\] FAILED: pip check found conflicting requirements"),
])
def test_setup_stops_on_a_failed_step_and_writes_no_stamp(tmp_path, fail, line):
    result, stamped = run_setup(tmp_path, fail=fail)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(line, result.stderr), result.stderr
    assert not stamped


def test_setup_succeeds_installs_the_lock_and_then_does_nothing(tmp_path):
    result, stamped = run_setup(tmp_path)
    assert result.returncode == 0 and stamped, result.stdout + result.stderr
    pip_calls = (tmp_path / "pip.log").read_text()
    # the lock with torch's line (2.13.0+cpu is the pinned release), then gpt2lib without its requirements
    assert f"-r requirements.txt\n  torch line: {LOCKED_TORCH} ;" in pip_calls, pip_calls
    assert pip_calls.index("-r requirements.txt") < pip_calls.index("--no-deps -e .")
    installs = [line for line in pip_calls.splitlines() if line.startswith("pip install")]
    assert not any("torch==" in line for line in installs), "the torch that is there is the locked one"
    assert "-e .[" not in pip_calls and "--upgrade" not in pip_calls
    again, _ = run_setup(tmp_path, fail="pip")  # stamp up to date: pip is not called again
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr


def test_setup_installs_the_locked_torch_first_where_there_is_none(tmp_path):
    result, stamped = run_setup(tmp_path, FAKE_NO_TORCH="1")
    assert result.returncode == 0 and stamped, result.stdout + result.stderr
    first, *rest = (tmp_path / "pip.log").read_text().splitlines()
    assert first.endswith(LOCKED_TORCH), first
    assert f"  torch line: {LOCKED_TORCH} ;" in "\n".join(rest).split("-r ")[1], rest


def test_setup_keeps_a_torch_of_another_version_and_installs_the_rest_of_the_lock(tmp_path):
    result, stamped = run_setup(tmp_path, FAKE_TORCH="2.11.0+cu128")
    assert result.returncode == 0 and stamped, result.stdout + result.stderr
    assert f"keeping torch 2.11.0 (the lock pins {LOCKED_TORCH}): installing requirements.txt without its torch line" \
        in result.stdout, result.stdout
    pip_calls = (tmp_path / "pip.log").read_text()
    installs = [line for line in pip_calls.splitlines() if line.startswith("pip install")]
    assert "  torch line: none" in pip_calls and not any("torch==" in line for line in installs), pip_calls


def test_setup_runs_again_when_the_lock_changes_and_needs_one(tmp_path):
    checkout = a_checkout(tmp_path)
    result, stamped = run_setup(tmp_path, checkout=checkout)
    assert result.returncode == 0 and stamped, result.stdout + result.stderr
    lock = checkout / "requirements.txt"
    lock.write_text(lock.read_text().replace("\nnbval==", "\nnbval==0.0.0\n#"))
    again, _ = run_setup(tmp_path, checkout=checkout)
    assert again.returncode == 0 and "up to date" not in again.stdout, again.stdout + again.stderr
    lock.unlink()
    missing, _ = run_setup(tmp_path, checkout=checkout)
    assert missing.returncode == 1
    assert "FAILED: requirements.txt is missing or pins no torch" in missing.stderr, missing.stderr


def test_setup_refuses_an_old_python(tmp_path):
    old = _executable(tmp_path / "python3.9", FAKE_PYTHON.replace("${FAKE_VERSION:-3.11.0}", "3.9.18"))
    result, stamped = run_setup(tmp_path, python=str(old))
    assert result.returncode == 1 and not stamped
    assert "Python 3.9.18; gpt2lib needs Python 3.10 or newer" in result.stderr, result.stderr


def test_the_extras_setup_installs_are_declared_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = re.search(r"^EXTRAS=(\S+)", (ROOT / "tools" / "setup.sh").read_text(), re.M).group(1).split(",")
    assert set(installed) <= set(extras), f"setup.sh installs extras {installed}; pyproject has {sorted(extras)}"
    # what the chapters import comes with anything that executes them
    for name in ("book", "lab"):
        assert "gpt2lib[notebook]" in extras[name], f"[{name}] must include gpt2lib[notebook]"
    # pyproject.toml says what is needed; requirements.txt (generated from it) at which versions
    assert (ROOT / "requirements.txt").exists(), "requirements.txt, the lock the set-up installs: run `make lock`"


# --- tools/run_tests.sh: how many pytest-xdist workers, and the threads of each ---

FAKE_TEST_PYTHON = """#!/bin/sh
case "$1" in
  -c) case "$2" in
        *sched_getaffinity*) echo "$FAKE_CPUS" ;;
        *"import xdist"*) [ -z "$FAKE_NO_XDIST" ] || exit 1 ;;
      esac ;;
  -m) echo "$* | threads ${OMP_NUM_THREADS:-unset} ${MKL_NUM_THREADS:-unset}" >> "$FAKE_LOG" ;;
esac
exit 0
"""


def run_tests(tmp_path: Path, cpus: int, **more: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """tools/run_tests.sh in a copy of the checkout, on a stand-in Python that logs each pytest call."""
    checkout = tmp_path / "checkout"
    for name in ("tools/run_tests.sh", "tools/env.sh"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, checkout / name)
    _executable(checkout / "tools" / "build_book.sh")
    _executable(tmp_path / "venv" / "bin" / "python", FAKE_TEST_PYTHON)
    log = tmp_path / "pytest.log"
    log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in
           ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TEST_WORKERS", "TEST_ARGS", "NBVAL_ONLY", "READER_PATH")}
    env |= {"VENV": str(tmp_path / "venv"), "TMPDIR": str(tmp_path), "FAKE_LOG": str(log), "FAKE_CPUS": str(cpus),
            "FAKE_NO_XDIST": "", **more}
    result = subprocess.run(["bash", str(checkout / "tools" / "run_tests.sh")], env=env, cwd=checkout,
                            capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("cpus, more, workers, threads", [
    (2, {}, 2, "1 1"),                                   # the 2-core machine: one worker a core, one thread each
    (8, {}, 4, "2 2"),                                   # at most 4 workers; the rest of the cores become threads
    (2, {"OMP_NUM_THREADS": "3"}, 2, "3 1"),             # a thread count the caller set wins
    (2, {"TEST_WORKERS": "1"}, None, "unset unset"),     # one process, every thread (debugging, timing)
    (1, {}, None, "unset unset"),
    (2, {"FAKE_NO_XDIST": "1"}, None, "unset unset"),    # an older venv without pytest-xdist still runs
    (4, {"TEST_WORKERS": "3"}, 3, "1 1"),
])
@pytest.mark.parametrize("mode", [{}, {"NBVAL_ONLY": "1"}])
def test_run_tests_spreads_the_run_over_workers_with_a_share_of_the_threads_each(tmp_path, cpus, more, workers,
                                                                                 threads, mode):
    result, calls = run_tests(tmp_path, cpus, **more, **mode)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(calls) == 1, calls
    args, got_threads = calls[0].split(" | threads ")
    if workers is None:
        assert " -n " not in args and "--dist" not in args, args
    else:
        # loadscope: every cell of a chapter in one worker, in order, in one kernel
        assert f" -n {workers} --dist loadscope " in args, args
    assert got_threads == threads
    assert ("--durations=25" in args) == (not mode), args
    assert ("running the tests in one process" in result.stdout) == ("FAKE_NO_XDIST" in more), result.stdout


def test_run_tests_keeps_the_readers_path_in_one_process_and_refuses_a_bad_worker_count(tmp_path):
    result, calls = run_tests(tmp_path, 4, READER_PATH="1")
    assert result.returncode == 0, result.stdout + result.stderr
    # each chapter there imports what the one before saved in the one progress record
    assert len(calls) == 1 and " -n " not in calls[0] and "build/reader-path" in calls[0], calls
    for bad in ("0", "two", "-1"):
        result, calls = run_tests(tmp_path, 2, TEST_WORKERS=bad)
        assert result.returncode == 2 and not calls, (bad, result.stdout + result.stderr)
        assert "TEST_WORKERS must be a number of workers, 1 or more" in result.stderr


def test_each_worker_takes_its_share_of_the_cpus(monkeypatch):
    import conftest

    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(conftest, "cpu_count", lambda: 2)
    assert conftest.threads_per_worker() is None  # no xdist: torch's own default
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    for workers, cpus, share in [(2, 2, 1), (2, 8, 4), (3, 8, 2), (2, 1, 1), (1, 2, None)]:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
        monkeypatch.setattr(conftest, "cpu_count", lambda cpus=cpus: cpus)
        assert conftest.threads_per_worker() == share, (workers, cpus)


def test_this_worker_runs_torch_on_its_share():
    import torch

    if "PYTEST_XDIST_WORKER" not in os.environ or os.environ.get("PYTEST_XDIST_WORKER_COUNT") == "1":
        pytest.skip("not under pytest-xdist with several workers")
    # tests/conftest.py set it before any test ran; a test that changes it puts it back
    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
