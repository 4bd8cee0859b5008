"""``python -m gpt2lib finetune``: scores before and after, exact resume with every saved setting, a
finished run's scores again, Ctrl-C, the merged checkpoint that ``sample`` reads, a classifier that
``sample`` and ``eval`` name as one, and clear refusals that write nothing."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from gpt2lib.cli import main
from test_cli import ctrl_c_at, one_line

pytestmark = pytest.mark.usefixtures("private_cache")  # the shared fixture of conftest.py
QUIET = ["--quiet", "--device", "cpu"]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    # One run for the tests below (they run in this order: the refusal first, then the resume).
    out = tmp_path_factory.mktemp("finetune") / "topics"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT2LIB_CACHE", str(out.parent / "cache"))
        with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(io.StringIO()) as err:
            assert main(["finetune", "--task", "topics", "--method", "head", "--max-steps", "4",
                         "--ckpt-interval", "2", "--out", str(out), *QUIET]) == 0
    assert "scoring" not in err.getvalue()  # --quiet: no progress bars
    return out, json.loads(printed.getvalue().strip().splitlines()[-1])


def saved(out) -> dict:
    return json.loads((out / "checkpoint.json").read_text())


def test_finetune_reports_the_test_accuracy_before_and_after(head_run):
    out, report = head_run
    assert report["steps"] == 4 and report["trainable_parameters"] == 128 * 3 + 3  # three classes
    assert 0 <= report["before_test_accuracy"] <= 1 and 0 <= report["test_accuracy"] <= 1
    info = json.loads((out / "checkpoint.json").read_text())
    assert info["step"] == 4 and info["finetune"]["method"] == "head" and info["finetune"]["task"] == "topics"


def test_resume_refuses_other_settings_and_writes_nothing(head_run, capsys):
    out, _ = head_run
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["finetune", "--resume", "--method", "full", "--max-steps", "6", "--out", str(out), *QUIET]) == 2
    assert "--method full (saved: head)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_sample_and_eval_name_a_classifier_in_one_line(head_run, tmp_path, capsys):
    out, _ = head_run
    for command in ("sample", "eval"):
        assert main([command, "--ckpt", str(out), "--device", "cpu"]) == 2
        line = one_line(capsys)
        assert f"{out} holds a classifier fine-tuned for the task 'topics'" in line
        assert f"test accuracy is in the report 'finetune' printed; 'python -m gpt2lib finetune --resume --out {out}'" \
            in line
    # told apart by its weights too (a body and a head), whatever its checkpoint.json says
    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    info = saved(bare)
    del info["finetune"]
    (bare / "checkpoint.json").write_text(json.dumps(info))
    assert main(["sample", "--ckpt", str(bare), "--device", "cpu"]) == 2
    assert f"{bare} holds a classifier" in one_line(capsys)


def test_resume_continues_with_every_saved_setting(head_run, capsys):
    out, first = head_run
    original = saved(out)["train_config"]
    assert main(["finetune", "--resume", "--max-steps", "6", "--out", str(out), *QUIET]) == 0
    report = last_json(capsys)
    assert report["steps"] == 6 and report["before_test_accuracy"] == first["before_test_accuracy"]
    assert saved(out)["step"] == 6
    assert saved(out)["train_config"] == {**original, "max_steps": 6}  # --ckpt-interval 2 and the rest kept


def test_a_finished_run_resumed_reports_its_scores_without_scoring_again(head_run, capsys, monkeypatch):
    import importlib

    command = importlib.import_module("gpt2lib.cli.finetune")  # the module (gpt2lib.cli.finetune is the function)

    out, _ = head_run
    assert main(["finetune", "--resume", "--max-steps", "6", "--out", str(out), *QUIET]) == 0  # at step 6 already
    monkeypatch.setattr(command, "_score", lambda *a, **k: pytest.fail("scored again"))
    assert main(["finetune", "--resume", "--out", str(out), *QUIET]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out.strip().splitlines()[-1])
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert report["steps"] == logged["step"] == 6 and report["val_loss"] == logged["val_loss"] is not None
    assert report["test_accuracy"] == saved(out)["scores"]["test_accuracy"]
    assert report["before_test_accuracy"] == saved(out)["scores_before"]["test_accuracy"]
    assert (f"note: nothing left to train: the run in {out} finished at step 6; its validation loss and test scores "
            f"follow (give --max-steps above 6 to train further)") in printed.err.splitlines()


@pytest.mark.slow
def test_ctrl_c_saves_the_last_step_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    out = tmp_path / "stopped"
    ctrl_c_at(monkeypatch, 3)
    assert main(["finetune", "--task", "acceptability", "--method", "head", "--max-steps", "4",
                 "--eval-interval", "1", "--test-items", "8", "--out", str(out), *QUIET]) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("book model:")]
    assert lines == [f"stopped at step 2; checkpoint saved in {out}; resume with: python -m gpt2lib finetune "
                     f"--resume --out {out}"]
    first = saved(out)
    assert first["step"] == 2 and first["test_items"] == 8
    assert main(["finetune", "--resume", "--out", str(out), *QUIET]) == 0
    report = last_json(capsys)
    assert report["steps"] == 4 and report["test_items"] == 8  # --test-items kept too
    assert saved(out)["train_config"] == first["train_config"]
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


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


@pytest.mark.slow  # answering the questions before and after takes most of a minute on 2 cores
def test_a_questions_run_writes_a_merged_checkpoint_that_sample_reads(tmp_path, capsys):
    out = tmp_path / "qa"
    assert main(["finetune", "--task", "questions", "--max-steps", "2", "--batch-size", "4", "--test-items", "6",
                 "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    assert "scoring before" in printed.err and "scoring after" in printed.err  # progress bars, without --quiet
    report = json.loads(printed.out.strip().splitlines()[-1])
    assert report["test_items"] == 6
    for key in ("before_test_exact_match", "test_exact_match", "before_test_token_f1", "test_token_f1"):
        assert 0 <= report[key] <= 1
    assert report["merged"] == str(out / "merged")
    assert main(["sample", "--ckpt", str(out / "merged"), "--prompt", "### Question:\nWhat does str.upper() do?\n"
                 "### Answer:\n", "--max-new-tokens", "8", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("### Question:")
    # a bare question is asked in the format and answered greedily: the same answer whatever the seed
    answers = []
    for seed in ("1", "2"):
        assert main(["sample", "--ckpt", str(out / "merged"), "--prompt", "What does str.upper() do?",
                     "--max-new-tokens", "8", "--seed", seed, "--device", "cpu"]) == 0
        answers.append(capsys.readouterr())
    assert answers[0].out == answers[1].out and answers[0].out.startswith("### Question:\nWhat does str.upper() do?")
    assert "answered greedily" in answers[0].err
    # the run's own folder holds LoRA's adapters: sample is sent to merged/
    assert main(["sample", "--ckpt", str(out), "--device", "cpu"]) == 2
    assert f"sample reads the model it merged: --ckpt {out / 'merged'}" in one_line(capsys)
