"""The chapters' cells where a model may sit on the GPU (``train(..., device=None)`` puts it there when there is
one) keep every tensor where the model is, proved without a GPU.

The model goes to PyTorch's ``meta`` device instead, a device with shapes but no data, and the cells run under
a function mode that fails on any operation mixing devices. PyTorch itself would let a ``meta`` model take a CPU
input (the result is simply ``meta``), which is why the mode checks. A cell that only runs on meta as far as
its first read of values (``.tolist()``, printing, ``torch.equal``) has by then built every input it feeds the
model: that part is what is checked. tools/gpu_check.sh runs the chapters for real where a GPU is present.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from conftest import ROOT


# what moving a tensor or a module between devices calls: these may (must) see two devices
MOVES = {"to", "copy_", "_has_compatible_shallow_copy_type", "set_"}


class SameDevice(TorchFunctionMode):
    """Raise on any torch operation whose tensor arguments (beyond 0-d scalars) lie on two devices."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = {t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t.dim() > 0}
        if len(devices) > 1 and getattr(func, "__name__", "") not in MOVES:
            raise AssertionError(f"{getattr(func, '__name__', func)} mixes devices: {sorted(map(str, devices))}")
        self.ops += 1
        return func(*args, **kwargs)


def _no_data(exc: BaseException) -> bool:
    """The error of reading values on ``meta``: where the check of a cell ends, not a failure."""
    text = str(exc).lower()
    return "meta" in text and any(w in text for w in ("no data", "item()", "not implemented", "cannot copy",
                                                      "not supported", "tolist", "meta kernel"))


def cell(chapter: str, marker: str) -> str:
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    found = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(found) == 1, (chapter, marker, len(found))
    return found[0]


def run_on_meta(source: str, namespace: dict) -> SameDevice:
    mode = SameDevice()
    try:
        with mode:
            exec(compile(source, "<cell>", "exec"), namespace)
    except (NotImplementedError, RuntimeError) as exc:
        if not _no_data(exc):
            raise
    return mode


def test_the_mode_catches_a_cpu_input_to_a_meta_model():
    from gpt2lib import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig.preset("tiny"))
    with pytest.raises(AssertionError, match="mixes devices"), SameDevice():
        model(torch.tensor([[1, 2, 3]]))


@pytest.fixture
def chapter_5_3(tmp_path):
    """What chapter 5.3's cells have made by the time of the sampling and checkpoint cells, small."""
    from gpt2lib import GPT, GPTConfig
    from gpt2lib.book import book_tokenizer
    from gpt2lib.training import save_checkpoint

    btok = book_tokenizer()
    torch.manual_seed(0)
    net = GPT(GPTConfig.preset("tiny", vocab_size=btok.vocab_size))
    save_checkpoint(net, tmp_path / "run", step=300, tokenizer=btok)
    return {"torch": torch, "btok": btok, "net": net, "run_dir": tmp_path / "run"}


def test_chapter_5_3_samples_from_a_model_on_another_device(chapter_5_3):
    ns = chapter_5_3
    source = cell("05_3_evaluation", "def sample(m")
    # the cell builds the model itself; the test supplies it, already trained and moved (as train() leaves it)
    setup, _, rest = source.partition("def sample(m")
    ns["prompt"] = torch.tensor([ns["btok"].encode("The for statement")])
    from gpt2lib.generation import sample_next  # imported by the chapter's first cell

    ns["sample_next"] = sample_next
    exec(compile("def sample(m" + rest.replace("print(sample(net))", ""), "<cell>", "exec"), ns)
    ns["net"].to("meta")
    mode = run_on_meta("sample(net)", ns)
    assert mode.ops > 10  # the model ran (its forward pass at least) before the first read of values


def test_chapter_5_3_checks_the_reloaded_checkpoint_on_the_model_s_device(chapter_5_3):
    ns = chapter_5_3
    ns["GPT"] = type(ns["net"])
    # the cell saves the trained model first; the fixture has saved it (a model on meta holds no numbers to save)
    source = "\n".join(line for line in cell("05_3_evaluation", "load_checkpoint(run_dir)").splitlines()
                        if not line.startswith(("work = ", "run_dir = ", "save_checkpoint(", "print(sorted(")))
    ns["net"].to("meta")
    mode = run_on_meta(source, ns)
    assert mode.ops > 10
