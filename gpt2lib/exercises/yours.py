"""Your code, kept: what you write for an exercise is saved when its checker passes, and later cells and
later chapters run it.

Each chapter opens in a fresh runtime (on Colab, one notebook at a time), so the attention you wrote in
chapter 4 is not in chapter 5's memory. When a checker passes, the source of what you passed (and of the
functions and classes of yours it uses) goes into your progress record, beside the passes, and into a
module written from it, ``my_gpt2lib.py`` in the same folder (Google Drive on Colab when mounted).
``export_progress()`` carries both. A later cell asks for a piece by exercise name:

    Attention = use("attention_module", book=CausalSelfAttentionSolution)

and gets, in this order: what passed that checker in this runtime; what your module holds from an earlier
session; the book's version, with one line saying which it used. By the end of chapter 6 ``my_gpt2lib.py``
holds a GPT-2 of your own, importable like any module (:func:`my_gpt2lib`).
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import linecache
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

from . import progress

MODULE_NAME = "my_gpt2lib"
_here: dict[str, Any] = {}  # exercise name -> the object that passed its checker in this runtime


def module_path() -> Path:
    """Where your module lives: beside the progress record."""
    return progress.progress_file().with_name(MODULE_NAME + ".py")


# --- reading what you wrote --------------------------------------------------------------------------


def _defining_file(obj: Any) -> tuple[str, int] | None:
    """The file (a notebook cell's name in linecache, or a real file) and a line inside ``obj``'s definition."""
    obj = inspect.unwrap(obj)  # under a decorator (@torch.no_grad()), the function the reader wrote
    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename, obj.__code__.co_firstlineno
    if isinstance(obj, type):
        line = getattr(obj, "__firstlineno__", None)  # Python 3.13+
        for value in vars(obj).values():
            fn = getattr(value, "__func__", value)
            fn = getattr(fn, "fget", fn)  # properties
            if isinstance(fn, types.FunctionType):
                return fn.__code__.co_filename, line or fn.__code__.co_firstlineno
        # a class without a method of its own: the latest cell run that defines a class of that name
        for filename, entry in reversed(list(linecache.cache.items())):
            if len(entry) < 3 or not entry[2] or entry[1] is not None:
                continue  # IPython registers its cells without a modification time; real files have one
            try:
                tree = ast.parse("".join(entry[2]))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and node.name == obj.__name__:
                    return filename, line or node.lineno
    return None


def _definition(obj: Any) -> str:
    """The ``def`` or ``class`` statement that made ``obj``, decorators included."""
    where = _defining_file(obj)
    if where is None:
        raise TypeError(f"{obj!r} is not a function or class written in Python with a method of its own")
    filename, line = where
    text = "".join(linecache.getlines(filename))
    if not text:
        raise OSError(f"the source of {obj.__name__} is not available (was it typed into a console?)")
    tree = ast.parse(text)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    best = None
    for node in tree.body:
        if isinstance(node, kinds) and node.name == obj.__name__:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if start <= line <= (node.end_lineno or node.lineno):
                best = (start, node.end_lineno or node.lineno)
    if best is None:
        raise OSError(f"could not find the definition of {obj.__name__} in its cell")
    lines = text.splitlines()[best[0] - 1:best[1]]
    return textwrap.dedent("\n".join(lines)) + "\n"


def _namespace(obj: Any) -> dict[str, Any]:
    obj = inspect.unwrap(obj)
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    for value in vars(obj).values():  # a method's globals are the namespace the class was written in
        fn = getattr(getattr(value, "__func__", value), "fget", getattr(value, "__func__", value))
        if isinstance(fn, types.FunctionType):
            return fn.__globals__
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    return vars(module) if module is not None else {}


def _is_yours(value: Any) -> bool:
    """Written in a notebook (or console) rather than imported from a module on disk."""
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == "__main__"


def _import_line(name: str, value: Any) -> str | None:
    if isinstance(value, types.ModuleType):
        full = value.__name__
        if full == name:
            return f"import {full}"
        if "." in full and full.rsplit(".", 1)[1] == name:
            return f"from {full.rsplit('.', 1)[0]} import {name}"
        return f"import {full} as {name}"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if module and qualname and "<" not in qualname and module != "__main__" and "." not in qualname:
        return f"from {module} import {qualname}" + (f" as {name}" if name != qualname else "")
    return None


def _code_names(obj: Any) -> set[str]:
    """The global (and attribute) names the compiled code of ``obj`` reads; never its local variables."""
    obj = inspect.unwrap(obj)
    codes = [obj.__code__] if isinstance(obj, types.FunctionType) else [
        fn.__code__ for fn in (getattr(getattr(v, "__func__", v), "fget", getattr(v, "__func__", v))
                               for v in vars(obj).values()) if isinstance(fn, types.FunctionType)]
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def _global_names(obj: Any, source: str) -> set[str]:
    """The names ``obj``'s definition takes from the notebook: those its code reads as globals, and those
    evaluated where it is defined (decorators, default values, a class's bases and class-level statements)."""
    tree = ast.parse(source).body[0]
    loads = lambda node: {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    at_definition: set[str] = set()
    for node in [*tree.decorator_list, *getattr(tree, "bases", []), *getattr(tree, "keywords", [])]:
        at_definition |= loads(node)
    if isinstance(tree, ast.ClassDef):
        for stmt in tree.body:
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                at_definition |= loads(stmt)
            else:
                at_definition |= set().union(*[loads(d) for d in [*stmt.decorator_list, *stmt.args.defaults]])
    else:
        at_definition |= set().union(*[loads(d) for d in [*tree.args.defaults, *tree.args.kw_defaults] if d])
    return (loads(tree) & _code_names(obj)) | at_definition


def capture(obj: Any) -> dict[str, Any]:
    """``obj``'s source and everything of yours it uses, as the record keeps it.

    Returns ``{"name", "blocks": [[name, source], ...] (what it uses first), "imports": [...],
    "missing": [...]}``; ``missing`` names values (numbers, tensors, configs) a module cannot carry."""
    blocks: list[list[str]] = []
    imports: list[str] = []
    missing: list[str] = []
    seen: set[int] = set()

    def visit(value: Any) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        source = _definition(value)
        namespace = _namespace(value)
        used = _global_names(value, source)
        for name in sorted(used):
            if name not in namespace or name == value.__name__:
                continue  # a builtin, a local variable, or the definition itself
            other = namespace[name]
            if getattr(other, "__module__", None) == MODULE_NAME:  # yours, from an earlier chapter's module
                if getattr(other, "__name__", name) != name:
                    blocks.append([name, f"{name} = {other.__name__}\n"])
                continue
            if _is_yours(other):
                visit(other)
                if other.__name__ != name:
                    blocks.append([name, f"{name} = {other.__name__}\n"])
                continue
            line = _import_line(name, other)
            if line is not None:
                if line not in imports:
                    imports.append(line)
            elif name not in missing:
                missing.append(name)
        blocks.append([value.__name__, source])

    if not _is_yours(obj):  # a function from a library (torch.softmax, abs): the module imports it
        line = _import_line(getattr(obj, "__name__", ""), obj)
        if line is None:
            raise TypeError(f"{obj!r} is neither written in this notebook nor importable by name")
        return {"name": obj.__name__, "blocks": [], "imports": [line], "missing": []}
    visit(obj)
    return {"name": obj.__name__, "blocks": blocks, "imports": imports, "missing": missing}


# --- the module written from the record --------------------------------------------------------------


def _order(record: dict[str, Any]) -> list[str]:
    from . import all_exercises

    numbered = [e.name for e in all_exercises()]
    saved = [n for n, entry in record.items() if isinstance(entry, dict) and isinstance(entry.get("code"), dict)]
    return sorted(saved, key=lambda n: (numbered.index(n) if n in numbered else len(numbered), n))


def module_source(record: dict[str, Any]) -> str:
    """The text of ``my_gpt2lib.py`` for a progress record: every saved piece, in the book's order."""
    names = _order(record)
    latest: dict[str, tuple[str, str]] = {}  # block name -> (saved time, source): the newest wins
    imports: list[str] = []
    for exercise in names:
        code = record[exercise]["code"]
        for line in code.get("imports", []):
            if line not in imports:
                imports.append(line)
        for name, source in code.get("blocks", []):
            if name not in latest or code.get("saved", "") >= latest[name][0]:
                latest[name] = (code.get("saved", ""), source)
    out = ['"""Your own gpt2lib: the code you wrote for the book\'s exercises, saved each time a checker passed.',
           "",
           "gpt2lib.exercises writes this file from your progress record (edits here are overwritten at the next",
           'pass). Import it with gpt2lib.exercises.my_gpt2lib(), or put its folder on sys.path."""']
    out += sorted(imports)
    numbers = _numbers()
    written: set[str] = set()
    pieces = []
    for exercise in names:
        code = record[exercise]["code"]
        out.append(f"\n\n# --- exercise {numbers.get(exercise, '?')} ({exercise}), passed {code.get('saved', '?')}")
        first = True
        for name, _ in code.get("blocks", []):
            if name not in written:
                written.add(name)
                out.append(("" if first else "\n\n") + latest[name][1].rstrip("\n"))
                first = False
        pieces.append(f"    {exercise!r}: {code['name']},")
    out += ["\n\n# exercise name -> what passed it", "PIECES = {", *pieces, "}", ""]
    return "\n".join(out)


def _numbers() -> dict[str, str]:
    from . import all_exercises

    return {e.name: e.number or str(e.chapter) for e in all_exercises()}


def write_module(record: dict[str, Any]) -> None:
    """Write ``my_gpt2lib.py`` whole from ``record`` (called under the record's lock)."""
    from ..atomic import write_text_atomic

    if any(isinstance(e, dict) and "code" in e for e in record.values()) or module_path().exists():
        write_text_atomic(module_path(), module_source(record))


progress.after_write.append(write_module)


def my_gpt2lib() -> types.ModuleType:
    """Your module, freshly imported from :func:`module_path` (so the latest passes are in it)."""
    path = module_path()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: it is written when you pass an exercise")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# --- keeping and using -------------------------------------------------------------------------------


def keep(exercise: str, obj: Any) -> dict[str, Any] | None:
    """Remember ``obj`` as your answer to ``exercise`` for this runtime; return its captured source (None,
    after one line saying why, when it cannot be read)."""
    _here[exercise] = obj
    try:
        code = capture(obj)
    except Exception as exc:  # noqa: BLE001 - keeping the code is a convenience; the pass stands
        print(f"⚠ passed, but your code could not be saved into {MODULE_NAME}.py ({exc}); "
              "later chapters will use the book's version of it.")
        return None
    code["saved"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if code["missing"]:
        print(f"⚠ saved, but it uses {', '.join(code['missing'])}, which only this notebook has: "
              "a later chapter cannot run it. Define what it needs inside your function or class.")
    return code


def forget_runtime() -> None:
    """Forget what passed in this runtime (the saved module is left alone); for tests."""
    _here.clear()


def _label(exercise: str) -> str:
    from . import all_exercises

    found = [e for e in all_exercises() if e.name == exercise]
    if not found:
        raise ValueError(f"no exercise is named {exercise!r}")
    e = found[0]
    return f"exercise {e.number or e.chapter} ({e.title})"


def use(exercise: str, book: Any) -> Any:
    """Your answer to ``exercise`` if you have passed it, else ``book``; prints one line saying which.

    Yours is what passed the checker in this runtime, or else what your module saved in an earlier one."""
    label = _label(exercise)
    name = getattr(book, "__name__", type(book).__name__)
    if exercise in _here:
        obj = _here[exercise]
        print(f"→ using your {obj.__name__}: {label} passed in this session.")
        return obj
    path = module_path()
    if path.exists():
        try:
            pieces = getattr(my_gpt2lib(), "PIECES", {})
        except Exception as exc:  # noqa: BLE001 - a module that no longer runs must not stop the chapter
            print(f"→ using the book's {name}: your {path.name} did not import ({type(exc).__name__}: {exc}).")
            return book
        if exercise in pieces:
            obj = pieces[exercise]
            print(f"→ using your {getattr(obj, '__name__', exercise)} from {path.name}: {label}, passed earlier.")
            return obj
    entry = progress.load().get(exercise)
    if isinstance(entry, dict) and entry.get("passed"):  # passed, but what passed was not kept (a lambda, say)
        print(f"→ using the book's {name}: {label} passed, but your code for it is not in {path.name}; "
              "run your passing answer again to save it.")
    else:
        print(f"→ using the book's {name}: {label} is not passed yet.")
    return book
