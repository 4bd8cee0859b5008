"""``python -m gpt2lib train | sample | eval``: outputs, determinism and clear errors that write nothing."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from gpt2lib.cli import main

TEXT = "".join(f"The value of x{i} is {i * 7 % 13}, and it is {'odd' if i % 2 else 'even'}.\n" for i in range(500))
TINY = ["--preset", "tiny", "--vocab-size", "300", "--batch-size", "4", "--quiet"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2LIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def run(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--out", str(out), "--max-steps", "6", "--eval-interval", "3",
                 *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 6 and summary["val_loss"] > 0
    return out


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_train_writes_a_checkpoint_and_metrics(run):
    names = {p.name for p in run.iterdir()}
    assert {"checkpoint.json", "metrics.jsonl", "tokenizer.json"} <= names
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6 and "val_loss" in rows[-1]


def test_resume_continues_to_more_steps(run, capsys):
    assert main(["train", "--out", str(run), "--resume", "--max-steps", "8", *TINY]) == 0
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 8


def test_eval_prints_one_json_object(run, capsys):
    assert main(["eval", "--ckpt", str(run)]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("val_loss", "perplexity", "bits_per_byte", "bigram_bits_per_byte"):
        assert report[key] > 0


def test_sample_is_reproducible_with_a_seed(run, capsys):
    args = ["sample", "--ckpt", str(run), "--prompt", "The value", "--max-new-tokens", "12"]
    assert main([*args, "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--seed", "1"]) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("The value")


def test_errors_are_one_line_and_write_nothing(tmp_path, run, corpus, capsys):
    before = digest(run)
    # another run's folder, without --resume
    assert main(["train", "--data", str(corpus), "--out", str(run), "--max-steps", "2", *TINY]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    # a checkpoint of another shape
    assert main(["train", "--out", str(run), "--resume", "--preset", "small", "--quiet"]) == 2
    assert "another shape" in capsys.readouterr().err
    assert digest(run) == before
    # a missing corpus and an empty one: nothing created
    new = tmp_path / "new"
    assert main(["train", "--data", str(tmp_path / "nope.txt"), "--out", str(new), *TINY]) == 2
    assert "neither a known name" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n")
    assert main(["train", "--data", str(tmp_path / "empty.txt"), "--out", str(new), *TINY]) == 2
    assert "empty" in capsys.readouterr().err
    assert not new.exists()
    # no checkpoint to sample from
    assert main(["sample", "--ckpt", str(tmp_path)]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--max-steps", "0"], ["--lr", "-1"], ["--batch-size", "many"]])
def test_bad_flag_values_are_refused(tmp_path, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path / "x"), *flag])
    assert exc.value.code == 2
    assert flag[0] in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_help_explains_every_command():
    proc = subprocess.run([sys.executable, "-m", "gpt2lib", "train", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for flag in ("--preset", "--data", "--out", "--max-steps", "--resume", "--grad-accum", "--compile"):
        assert flag in proc.stdout
