"""A simulated Colab, offline: each chapter run alone, as a reader opening it on Colab would.

What it builds, in a folder of its own:

* a Python environment without gpt2lib and MyST-NB (Colab has neither), with ``google.colab`` importable
  and imported at start-up, as on Colab. Its packages are either Colab's own versions on the Python closest
  to Colab's (``--runtime DIR``: the environment tools/colab_runtime.py builds from Colab's package list),
  or this project's, where ``--transformers DIR`` puts an older transformers (installed there with
  ``pip install --target``) in place of the project's;
* a git configuration that sends the set-up cell's ``pip install gpt2lib @ git+<repository URL>@v<version>``
  to a copy of this checkout's committed HEAD in which HEAD carries that release tag (as the release
  process would set it; see ``release_ref`` in tools/sync_notebooks.py), with pip barred from any package
  index, so nothing is downloaded;
* for each notebook: an empty folder holding that notebook alone, a fresh home directory (so a fresh
  gpt2lib cache and no exercise progress), and gpt2lib not installed until its set-up cell installs it.

``--hf-home DIR`` stands in for the Hugging Face hub: a cache holding OpenAI's GPT-2, or
tests/hf_standin.py's stand-in, as tests/test_colab.py uses. (The book's own model needs no stand-in: it
ships inside the package that the set-up cell installs.) By hand::

    python tools/colab_sim.py --out /tmp/colab chapters/06_applications.ipynb
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What Colab does not have, so the chapters must do without (or install) it.
NOT_ON_COLAB = ("gpt2lib", "__editable__", "myst_nb", "jupyter_book")
HF_PACKAGES = ("transformers", "tokenizers", "huggingface_hub")

GOOGLE_COLAB = '''"""A stand-in for Colab's own module: importable, and imported at start-up, as on Colab."""
'''
GOOGLE_COLAB_DRIVE = '''def mount(mountpoint, **kwargs):
    raise RuntimeError("the simulated Colab has no Google Drive")
'''
GOOGLE_COLAB_FILES = '''def download(filename):
    print(f"(the simulated Colab would now download {filename})")
'''


def repository_url() -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    from sync_notebooks import repository_url as url

    return url()


def release_ref() -> str:
    """The tag the set-up cell installs from (``v<gpt2lib.__version__>``)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from sync_notebooks import release_ref as ref

    return ref()


def release_repository(folder: Path, tag: str | None = None) -> Path:
    """A bare repository in ``folder`` holding this checkout's HEAD as ``main`` and as the release tag
    (``tag``, by default the set-up cell's): what the book's repository holds after a release, offline."""
    repo = folder / "repository.git"
    git = ["git", "-c", "safe.directory=*"]
    subprocess.run([*git, "init", "-q", "--bare", str(repo)], check=True)
    # its default branch is main, whatever init.defaultBranch says: a clone checks out HEAD first
    subprocess.run([*git, "symbolic-ref", "HEAD", "refs/heads/main"], cwd=repo, check=True)
    refs = ["HEAD:refs/heads/main"] + ([f"HEAD:refs/tags/{tag or release_ref()}"] if tag != "" else [])
    subprocess.run([*git, "push", "-q", "--no-verify", str(repo), *refs], cwd=ROOT, check=True)
    return repo


def _project_name(entry: str) -> str:
    """The import or distribution name an entry of site-packages belongs to, lower case, with underscores."""
    return entry.split("-")[0].split(".")[0].lower().replace("-", "_")


def site_packages(python: Path) -> Path:
    """The site-packages folder of the interpreter ``python``."""
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())


def make_env(folder: Path, venv: Path, transformers_dir: Path | None = None, tag: str | None = None) -> Path:
    """Build the simulated Colab's Python in ``folder`` from the packages of the environment ``venv`` (the
    project's, or Colab's runtime from tools/colab_runtime.py); return its interpreter. ``tag`` names the
    release tag HEAD carries in the VM's copy of the repository (by default the set-up cell's; ``""``: none)."""
    base = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = folder / "env"
    subprocess.run([base, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site, source_site = site_packages(python), site_packages(venv / "bin" / "python")
    replaced = set(HF_PACKAGES) if transformers_dir else set()
    # Links, not copies: the environment costs no disk. pip is barred from every index, and the set-up
    # cell only adds gpt2lib, so nothing is ever written through a link.
    for entry in sorted(source_site.iterdir()):
        name = _project_name(entry.name)
        if entry.name.startswith(NOT_ON_COLAB) or name in replaced:
            continue
        (site / entry.name).symlink_to(entry)
    if transformers_dir:
        for entry in sorted(Path(transformers_dir).iterdir()):
            if _project_name(entry.name) in replaced:
                (site / entry.name).symlink_to(entry.resolve())
    colab = site / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text(GOOGLE_COLAB)
    (colab / "drive.py").write_text(GOOGLE_COLAB_DRIVE)
    (colab / "files.py").write_text(GOOGLE_COLAB_FILES)
    (site / "zz_colab.pth").write_text("import google.colab\n")
    # The kernel the notebooks run in is this Python (jupyter looks in sys.prefix before the system).
    spec = env / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simulated Colab)", "language": "python"}))
    # (safe.directory: a checkout owned by another user, as in some CI containers, may still be cloned)
    repo = release_repository(folder, tag)
    (folder / "gitconfig").write_text(f'[url "file://{repo}"]\n\tinsteadOf = {repository_url()}\n'
                                      '[safe]\n\tdirectory = *\n')
    return python


@dataclass
class Run:
    notebook: Path          # the executed copy
    seconds: float
    returncode: int
    log: str                # what nbconvert printed (the traceback of a failing cell)

    def tagged_output(self, tag: str) -> str:
        """The text outputs of the first code cell tagged ``tag`` (e.g. ``setup``)."""
        nb = json.loads(self.notebook.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        index = next(i for i, c in enumerate(code) if tag in c.get("metadata", {}).get("tags", []))
        return self.outputs()[index]

    def outputs(self) -> list[str]:
        """The text of every code cell's outputs, one string a cell, in order."""
        nb = json.loads(self.notebook.read_text()) if self.notebook.exists() else {"cells": []}
        texts = []
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                texts.append("".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                                     for o in cell.get("outputs", [])))
        return texts


def vm_env(python: Path, folder: Path, home: Path) -> dict[str, str]:
    """The environment variables of a VM: its own PATH and home, and nothing of this machine's."""
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "GIT_CONFIG_GLOBAL": str(folder / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
           # pip may install only what it finds here: gpt2lib from the checkout; its build uses the
           # environment's setuptools, since an isolated build would download one
           "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "agg"}
    return env


def run_alone(python: Path, folder: Path, notebook: Path, hf_home: Path | None = None, extra_cells: list[str] = (), timeout: int = 900) -> Run:
    """Execute ``notebook`` alone in an empty folder with a fresh home, as on a new Colab VM."""
    name = notebook.stem
    work, home = folder / "runs" / name, folder / "homes" / name
    for path in (work, home):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    nb = json.loads(notebook.read_text())
    for source in extra_cells:  # e.g. a last cell that prints what a test wants to read
        nb["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                            "source": source})
    (work / notebook.name).write_text(json.dumps(nb))
    if hf_home is not None:
        (home / ".cache").mkdir()
        (home / ".cache" / "huggingface").symlink_to(Path(hf_home).resolve())
    env = vm_env(python, folder, home)
    # a fresh VM: gpt2lib is not installed until the set-up cell installs it
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "gpt2lib"], env=env, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run([str(python), "-m", "nbconvert", "--to", "notebook", "--execute",
                           f"--ExecutePreprocessor.timeout={timeout}", "--ExecutePreprocessor.kernel_name=python3",
                           "--output", f"{name}.executed.ipynb", notebook.name],
                          cwd=work, env=env, capture_output=True, text=True)
    return Run(work / f"{name}.executed.ipynb", time.perf_counter() - start, proc.returncode,
               proc.stdout + proc.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Run chapters as on a fresh Colab VM, offline.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the environment and the runs")
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("VENV", ROOT / ".venv")))
    parser.add_argument("--transformers", type=Path, help="a pip --target folder with another transformers")
    parser.add_argument("--runtime", type=Path, help="Colab's runtime (tools/colab_runtime.py build) instead of --venv")
    parser.add_argument("--hf-home", type=Path, help="a Hugging Face cache folder to give every run")
    args = parser.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    python = make_env(args.out, (args.runtime or args.venv).resolve(), args.transformers)
    failed = 0
    for nb in args.notebooks:
        run = run_alone(python, args.out, nb.resolve(), args.hf_home)
        print(f"{nb.name}: {'ok' if run.returncode == 0 else 'FAILED'} in {run.seconds:.0f} s -> {run.notebook}")
        if run.returncode:
            failed += 1
            print(run.log[-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
