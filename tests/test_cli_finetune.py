"""``python -m gpt2lib finetune``: scores before and after, exact resume, the merged checkpoint that
``sample`` reads, and clear refusals that write nothing."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from gpt2lib.cli import main

pytestmark = pytest.mark.usefixtures("private_cache")  # the shared fixture of conftest.py
QUIET = ["--quiet", "--device", "cpu"]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    # One run for the tests below (they run in this order: the refusal first, then the resume).
    out = tmp_path_factory.mktemp("finetune") / "acc"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT2LIB_CACHE", str(out.parent / "cache"))
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["finetune", "--task", "acceptability", "--method", "head", "--max-steps", "4",
                         "--ckpt-interval", "2", "--out", str(out), *QUIET]) == 0
    return out, json.loads(printed.getvalue().strip().splitlines()[-1])


def test_finetune_reports_the_test_accuracy_before_and_after(head_run):
    out, report = head_run
    assert report["steps"] == 4 and report["trainable_parameters"] == 128 * 2 + 2
    assert 0 <= report["before_test_accuracy"] <= 1 and 0 <= report["test_accuracy"] <= 1
    info = json.loads((out / "checkpoint.json").read_text())
    assert info["step"] == 4 and info["finetune"]["method"] == "head" and info["finetune"]["task"] == "acceptability"


def test_resume_refuses_other_settings_and_writes_nothing(head_run, capsys):
    out, _ = head_run
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["finetune", "--resume", "--method", "full", "--max-steps", "6", "--out", str(out), *QUIET]) == 2
    assert "--method full (saved: head)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_resume_continues_with_the_saved_settings(head_run, capsys):
    out, _ = head_run
    assert main(["finetune", "--resume", "--max-steps", "6", "--out", str(out), *QUIET]) == 0
    report = last_json(capsys)
    assert report["steps"] == 6 and "before_test_accuracy" not in report
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 6


def test_a_fine_tuning_run_is_not_resumed_as_a_pre_training_one(head_run, capsys):
    out, _ = head_run
    assert main(["train", "--resume", "--out", str(out), *QUIET]) == 2
    assert "holds a fine-tuning run; continue it with 'python -m gpt2lib finetune --resume" in capsys.readouterr().err


def test_a_pre_training_run_is_not_resumed_as_a_fine_tuning_one(tmp_path, capsys):
    out = tmp_path / "pre"
    assert main(["train", "--preset", "tiny", "--max-steps", "2", "--batch-size", "4", "--out", str(out),
                 "--eval-interval", "0", *QUIET]) == 0
    capsys.readouterr()
    assert main(["finetune", "--resume", "--out", str(out), *QUIET]) == 2
    assert "holds no fine-tuning run" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--task", "questions", "--method", "head"], "the questions task has none"),
    (["--method", "lora"], "give --task"),
])
def test_bad_combinations_are_refused_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "bad"
    assert main(["finetune", *argv, "--max-steps", "1", "--out", str(out), *QUIET]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (out / "checkpoint.json").exists()


def test_a_questions_run_writes_a_merged_checkpoint_that_sample_reads(tmp_path, capsys):
    out = tmp_path / "qa"
    assert main(["finetune", "--task", "questions", "--max-steps", "2", "--batch-size", "4", "--test-items", "6",
                 "--out", str(out), *QUIET]) == 0
    report = last_json(capsys)
    assert report["test_items"] == 6
    for key in ("before_test_exact_match", "test_exact_match", "before_test_token_f1", "test_token_f1"):
        assert 0 <= report[key] <= 1
    assert report["merged"] == str(out / "merged")
    assert main(["sample", "--ckpt", str(out / "merged"), "--prompt", "### Question:\nWhat does str.upper() do?\n"
                 "### Answer:\n", "--max-new-tokens", "8", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("### Question:")
