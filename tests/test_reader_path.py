"""tools/reader_path.py: the copy of a chapter in which a reader has solved every exercise.

`make test-reader` runs those copies under nbval; here, without executing anything, that the copies are what
they claim: each exercise cell holds its solution under the learner's names and counts (no record=False),
the solution cells are untouched, and every chapter whose later cells run the reader's code gets one."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("reader_path", ROOT / "tools" / "reader_path.py")
reader_path = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reader_path)
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _cell(source, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_solution_names():
    assert reader_path.solution_name("my_softmax") == "softmax_solution"
    assert reader_path.solution_name("MyBlock") == "BlockSolution"
    assert reader_path.solution_name("top_k_filter") == "top_k_filter_solution"


def test_the_learners_cell_gets_the_solution_under_the_learners_names():
    nb = nbformat.v4.new_notebook(cells=[
        _cell("from gpt2lib.exercises import check_block_module\nclass MyBlock(nn.Module):\n"
              "    def __init__(self, config):\n        super().__init__()\n"
              "        raise NotImplementedError  # your code here\n\ncheck_block_module(MyBlock);", ["exercise"]),
        _cell("# @title Solution to exercise 5.4\nclass BlockSolution(nn.Module):\n    pass\n\n"
              "check_block_module(BlockSolution, record=False);", ["solution", "hide-cell"]),
        _cell("Block = use('block_module', book=BlockSolution)")])
    copy, count = reader_path.solved(nb)
    assert count == 1
    assert copy.cells[0].source == ("from gpt2lib.exercises import check_block_module\nclass MyBlock(nn.Module):\n"
                                    "    pass\n\ncheck_block_module(MyBlock);")
    assert copy.cells[1].source == nb.cells[1].source and copy.cells[2].source == nb.cells[2].source
    assert reader_path.uses_readers_code(copy)


def test_an_exercise_without_its_solution_is_refused():
    nb = nbformat.v4.new_notebook(cells=[
        _cell("def my_gelu(x):\n    raise NotImplementedError\ncheck_gelu(my_gelu)", ["exercise"]),
        _cell("def gelu_answer(x):\n    return x\ncheck_gelu(gelu_answer, record=False)", ["solution"])])
    with pytest.raises(ValueError, match="does not define gelu_solution"):
        reader_path.solved(nb)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_can_be_solved(path):
    nb = nbformat.read(path, as_version=4)
    copy, count = reader_path.solved(nb)
    exercises = [i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", [])]
    assert count == len(exercises)  # 05_practice, the part page of chapter 5, has none
    for i in exercises:
        source = copy.cells[i].source
        ast.parse(source)
        assert "NotImplementedError  # your code here" not in source and "record=False" not in source
        assert re.search(r"\bcheck_\w+\(", source)


def test_the_chapters_that_run_the_readers_code_are_chapters_4_to_6():
    using = [p.stem for p in CHAPTERS if reader_path.uses_readers_code(nbformat.read(p, as_version=4))]
    assert using == ["04_attention_math", "05_1_model", "05_2_training", "05_3_evaluation", "06_1_classification",
                     "06_2_instructions", "06_applications"]


# what the preface promises the reader's code does, and the pieces each chapter must take from the reader
PROMISED = {
    "04_attention_math": {"attention_module"},
    "05_1_model": {"attention_module", "gelu", "mlp_module", "block_module", "gpt_init", "gpt_model"},
    "05_2_training": {"gpt_model", "make_batch", "training_step", "lr_at", "train_loop"},
    "05_3_evaluation": {"gpt_model", "train_loop"},
    "06_applications": {"gpt_model", "top_k_filter", "top_p_filter", "kv_cache_step", "generate"},
    "06_1_classification": {"last_token_states", "lora_linear"},
    "06_2_instructions": {"answer_targets", "pad_batch", "lora_linear"},
}


def test_the_prefaces_promises_are_cells_that_run_the_readers_code():
    preface = (ROOT / "book" / "preface.md").read_text("utf-8")
    assert "**Your code is the model.**" in preface and "my_gpt2lib.py" in preface
    from gpt2lib.exercises import all_exercises

    known = {e.name for e in all_exercises()}
    for stem, pieces in PROMISED.items():
        nb = nbformat.read(ROOT / "chapters" / f"{stem}.ipynb", as_version=4)
        used = {m for c in nb.cells if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])
                for m in re.findall(r"\buse\(\s*[\"'](\w+)[\"']", c.source)}
        assert pieces <= used, f"{stem} does not use the reader's {sorted(pieces - used)}"
        assert used <= known, f"{stem} uses unknown exercises {sorted(used - known)}"
