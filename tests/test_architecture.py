"""The package's map in CONTRIBUTING.md is the truth: every import inside gpt2lib must be an arrow it
allows. Imports inside functions count too; the only back-edges allowed are the documented façades."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpt2lib"
# Back-edges allowed inside a function body only (never at module load): the model's façades.
LAZY_FACADES = {("model", "generation"), ("model", "hf")}


def read_map() -> dict[str, set[str]]:
    text = (ROOT / "CONTRIBUTING.md").read_text("utf-8")
    block = text.split("## The package's map", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+->\s+(.*?)(?:\s{2,}.*)?$", line)
        if not m:
            continue
        targets = m.group(2).strip()
        allowed[m.group(1)] = set() if targets.startswith("(nothing)") else {t.strip() for t in targets.split(",")}
    return allowed


def top_module(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def imports(path: Path, package_root: Path = PACKAGE) -> list[tuple[str, bool, int]]:
    """(top-level gpt2lib module imported, whether inside a function, line) for each import in ``path``."""
    rel = path.relative_to(package_root).with_suffix("").parts
    package = list(rel[:-1])  # the package that holds this module
    tree = ast.parse(path.read_text("utf-8"))
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    parts = base + (child.module.split(".") if child.module else [])
                    names = [parts] if child.module else [parts + [a.name] for a in child.names]
                elif child.module and child.module.split(".")[0] == "gpt2lib":
                    names = [child.module.split(".")[1:]]
                else:
                    names = []
                for parts in names:
                    out.append((parts[0] if parts else "__init__", in_function, child.lineno))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    parts = alias.name.split(".")
                    if parts[0] == "gpt2lib":
                        out.append((parts[1] if len(parts) > 1 else "__init__", in_function, child.lineno))
            visit(child, lazy)

    visit(tree, False)
    return out


def test_every_module_is_on_the_map():
    allowed = read_map()
    modules = {top_module(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert modules - set(allowed) == set(), "modules missing from the map in CONTRIBUTING.md"
    assert set(allowed) - modules == set(), "the map names modules that do not exist"


def test_every_import_is_an_allowed_arrow():
    allowed = read_map()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = top_module(path)
        if src == "__init__":
            continue  # the root re-exports the public names lazily
        for target, lazy, line in imports(path):
            if target == src:
                continue
            if target in allowed[src] or (lazy and (src, target) in LAZY_FACADES):
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {src} -> {target}" + (" (inside a function)" if lazy else ""))
    assert not bad, "imports the map does not allow:\n" + "\n".join(bad)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines of the imports under ``if TYPE_CHECKING:`` (annotations only: no edge at run time)."""
    return {n.lineno for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
            for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}


def sibling_imports(path: Path) -> list[tuple[str, bool]]:
    """(module of the same subpackage imported, whether inside a function) for each run-time import in
    ``path`` of a sibling: ``from .files import x``, ``from . import distributed``."""
    package = path.parent
    tree = ast.parse(path.read_text("utf-8"))
    skip = _type_checking_lines(tree)
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.level == 1 and child.lineno not in skip:
                if child.module:
                    out.append((child.module.split(".")[0], in_function))
                else:
                    out.extend((a.name if (package / f"{a.name}.py").exists() else "__init__", in_function)
                               for a in child.names)
            visit(child, lazy)

    visit(tree, False)
    return out


def test_no_cycle_inside_a_subpackage():
    """Inside a subpackage too, arrows point one way: no two modules import each other, not even lazily
    (a cycle hidden in function bodies is still a cycle a reader must hold in their head)."""
    bad = []
    for package in sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE):
        edges = {p.stem: {t for t, _ in sibling_imports(p)} - {p.stem}
                 for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
        for a, targets in edges.items():
            for b in targets:
                if a in edges.get(b, set()):
                    bad.append(f"{package.name}: {a} <-> {b}")
    assert not bad, "modules of a subpackage that import each other:\n" + "\n".join(sorted(set(bad)))


def test_every_allowed_arrow_is_used():
    """The map says what each module needs: an arrow no import uses is a stale claim, and fails."""
    allowed = read_map()
    used: dict[str, set[str]] = {src: set() for src in allowed}
    for path in PACKAGE.rglob("*.py"):
        src = top_module(path)
        if src in used:
            used[src] |= {target for target, _, _ in imports(path)}
    unused = [f"{src} -> {target}" for src in sorted(allowed) for target in sorted(allowed[src] - used[src])]
    assert not unused, "arrows of CONTRIBUTING.md's map that no import uses:\n" + "\n".join(unused)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The parser is not vacuous: it finds a back-edge hidden in a function and a relative one."""
    assert any(t == "_version" and lazy for t, lazy, _ in imports(PACKAGE / "runtime.py"))
    src = "def f():\n    from .model import GPT\nfrom ..tokenizer import x\n"
    pkg = tmp_path / "gpt2lib" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(src)
    assert imports(pkg / "mod.py", tmp_path / "gpt2lib") == [("sub", True, 2), ("tokenizer", False, 3)]


def test_public_names_are_functions_not_modules():
    import gpt2lib
    import gpt2lib.generation  # noqa: F401  (a loaded submodule must not shadow the function)
    import gpt2lib.training  # noqa: F401

    from gpt2lib import evaluate, generate, train

    for fn in (generate, train, evaluate):
        assert callable(fn), fn
    for name in gpt2lib.__all__:
        assert getattr(gpt2lib, name) is not None, name


def test_every_root_export_is_a_function_or_a_class():
    import inspect

    import gpt2lib

    for name in gpt2lib.__all__:
        if name == "__version__":
            continue
        value = getattr(gpt2lib, name)
        assert inspect.isfunction(value) or inspect.isclass(value), f"gpt2lib.{name} is {type(value).__name__}"


def test_the_type_checking_block_names_every_lazy_export():
    """Editors see the lazy exports through the TYPE_CHECKING imports; each must name a real export."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text("utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {(node.module, a.name) for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names}
    import gpt2lib

    assert {name for _, name in seen} == set(gpt2lib._PUBLIC)
    assert all(gpt2lib._PUBLIC[name] == module.split(".")[0] for module, name in seen)


def test_old_names_stay_as_aliases():
    import warnings

    from gpt2lib import GPT, hf

    assert GPT.from_hf.__func__ is not None and GPT.from_pretrained.__func__ is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert hf.NAME_MAP(2) == hf.name_map(2)
    assert any(issubclass(w.category, PendingDeprecationWarning) and "name_map" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["generate", "train", "evaluate", "TrainConfig", "load_hf", "autocast",
                                  "book_model", "OfflineError", "UserError", "chapter_model", "KVCache",
                                  "get_batch"])
def test_reader_names_exported(name):
    import gpt2lib

    assert name in gpt2lib.__all__


def test_every_name_the_chapters_import_exists():
    """A rename in the package keeps the old name as an alias: every ``from gpt2lib... import name`` of a
    chapter still resolves (the chapters are executed by nbval too, but this says which name at once)."""
    import importlib
    import importlib.util
    import json

    missing = []
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(nb.read_text("utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            for line in "".join(cell["source"]).splitlines():
                line = line.strip()
                if not line.startswith("from gpt2lib") or "(" in line:
                    continue
                node = ast.parse(line).body[0]
                module = importlib.import_module(node.module)
                missing += [f"{nb.name}: {node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
                            and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, "names the chapters import that the package no longer has:\n" + "\n".join(missing)

