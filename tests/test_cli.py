"""``python -m gpt2lib train | sample | eval``: outputs, determinism, clear errors that write nothing, and
Ctrl-C (a real SIGINT) that keeps the last finished step."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gpt2lib.cli import main

TEXT = "".join(f"The value of x{i} is {i * 7 % 13}, and it is {'odd' if i % 2 else 'even'}.\n" for i in range(500))
TINY = ["--preset", "tiny", "--vocab-size", "300", "--batch-size", "4", "--quiet"]


pytestmark = pytest.mark.usefixtures("private_cache")  # the shared fixture of conftest.py


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


# ------------------------------------------------------------------------- issue 12: nothing lost, one line
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """One trained run (6 steps, checkpoint every 3), built once; tests work on copies of it."""
    root = tmp_path_factory.mktemp("saved")
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT2LIB_CACHE", str(root / "cache"))
        assert main(["train", "--data", str(root / "corpus.txt"), "--out", str(root / "run"), "--max-steps", "6",
                     "--eval-interval", "0", "--ckpt-interval", "3", *TINY]) == 0
    return root


@pytest.fixture
def copy(saved_run, tmp_path, capsys):
    import shutil

    shutil.copytree(saved_run / "run", tmp_path / "run")
    shutil.copy(saved_run / "corpus.txt", tmp_path / "corpus.txt")
    capsys.readouterr()
    return tmp_path / "run"


def error_line(capsys) -> str:
    """The one error line on stderr (notes printed before it aside), checked to be the only one."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("python -m gpt2lib "), err
    return lines[0]


def test_a_short_corpus_is_refused_before_training_and_the_folder_stays_usable(tmp_path, capsys):
    small = tmp_path / "c1k.txt"
    small.write_text(TEXT[:1000], encoding="utf-8")  # 100 characters of validation: < 129 tokens
    out = tmp_path / "run"
    assert main(["train", "--data", str(small), "--out", str(out), "--max-steps", "2", "--block-size", "128",
                 *TINY]) == 2
    assert "--block-size" in error_line(capsys)
    assert not out.exists()
    # the advice works: a context that fits trains, and writes its checkpoint
    assert main(["train", "--data", str(small), "--out", str(out), "--max-steps", "2", "--block-size", "16",
                 *TINY]) == 0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2


def test_block_size_beyond_the_corpus_is_one_line(tmp_path, corpus, capsys):
    assert main(["train", "--data", str(corpus), "--out", str(tmp_path / "r"), "--block-size", "100000",
                 *TINY]) == 2
    assert "cannot fill one window" in error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_a_huge_learning_rate_stops_in_one_line_and_a_rerun_may_use_the_folder(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--out", str(out), "--max-steps", "4", "--lr", "1e30",
                 "--ckpt-interval", "1", *TINY]) == 2
    line = error_line(capsys)
    assert "--lr" in line and "no checkpoint had been written" in line
    assert not (out / "checkpoint.json").exists()
    assert main(["train", "--data", str(corpus), "--out", str(out), "--max-steps", "2", *TINY]) == 0


def test_a_diverging_resume_keeps_the_checkpoint_and_a_lower_lr_continues_it(copy, capsys):
    before = digest(copy)
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "9", "--lr", "1e30", "--ckpt-interval",
                 "1", *TINY]) == 2
    assert "the checkpoint of step 6" in error_line(capsys)
    after = digest(copy)
    after.pop("metrics.jsonl"), before.pop("metrics.jsonl")
    assert after == before
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", "--lr", "0.001", *TINY]) == 0
    assert json.loads((copy / "checkpoint.json").read_text())["step"] == 8


def test_a_run_into_a_held_folder_is_refused_in_one_line(copy, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               "f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)", str(copy / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = digest(copy)
        assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", *TINY]) == 2
        assert "another run is writing" in error_line(capsys)
        assert digest(copy) == before
    finally:
        holder.kill()
        holder.wait()


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "typo"), "--resume", *TINY]) == 2
    assert "holds no checkpoint to resume" in error_line(capsys)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("flags, named", [(["--batch-size", "8"], "--batch-size 8"),
                                          (["--vocab-size", "400"], "--vocab-size 400"),
                                          (["--data", "python-docs"], "--data python-docs"),
                                          (["--seed", "7"], "--seed 7"), (["--block-size", "32"], "--block-size 32")])
def test_resume_refuses_settings_that_differ_from_the_saved_run(copy, capsys, flags, named):
    before = digest(copy)
    tiny = [f for f in TINY if f not in ("--vocab-size", "300", "--batch-size", "4")]
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", *tiny, *flags]) == 2
    line = error_line(capsys)
    assert named in line and "saved" in line
    assert digest(copy) == before


def test_resume_accepts_the_saved_settings_and_new_intervals(copy, saved_run, capsys):
    corpus = saved_run / "." / "corpus.txt"  # the same file, spelled differently
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", "--data", str(corpus),
                 "--log-interval", "1", *TINY]) == 0
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["step"] > 6] == [7, 8]  # the new log interval was applied


def test_resume_may_lower_the_learning_rate_and_says_so(copy, capsys):
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", "--lr", "0.001", *TINY]) == 0
    assert "--lr 0.001 replaces the saved run's 0.003 from step 6" in capsys.readouterr().err
    saved = json.loads((copy / "checkpoint.json").read_text())["train_config"]
    assert (saved["lr"], saved["min_lr"]) == (0.001, 0.0001)


def test_resume_asking_for_fewer_steps_than_done_is_refused(copy, capsys):
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "4", *TINY]) == 2
    assert "already at step 6; --max-steps 4 asks for fewer" in error_line(capsys)


@pytest.mark.parametrize("steps", [["--max-steps", "6"], []])
def test_a_finished_run_resumed_reports_its_final_validation_loss(copy, capsys, steps):
    logged = json.loads((copy / "metrics.jsonl").read_text().splitlines()[-1])
    before = digest(copy)
    assert main(["train", "--out", str(copy), "--resume", *steps, *TINY]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert logged["step"] == report["steps"] == 6 and report["val_loss"] == logged["val_loss"] is not None
    assert printed.err.splitlines() == [f"note: nothing left to train: the run in {copy} finished at step 6; its "
                                        f"final validation loss follows (give --max-steps above 6 to train further)"]
    assert digest(copy) == before


def eot_model(run, folder, **extra):
    """A copy of ``run``'s model whose every next token is end-of-text: its final LayerNorm outputs ones,
    and the tied head scores end-of-text 10 * n_embd, every other id about 0."""
    import torch

    from gpt2lib.training.checkpoint import load_checkpoint, save_checkpoint

    model, tok, info = load_checkpoint(run)
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.wte.weight[tok.eos_token_id] = 10.0
    save_checkpoint(model, folder, step=info["step"], tokenizer=tok, extra={"corpus": info["corpus"], **extra})
    return folder


@pytest.mark.parametrize("temperature", [[], ["--temperature", "0"], ["--temperature", "1.5", "--top-k", "5"]])
def test_sample_stops_at_end_of_text_and_never_prints_it(copy, tmp_path, capsys, temperature):
    eot = eot_model(copy, tmp_path / "eot")
    assert main(["sample", "--ckpt", str(eot), "--prompt", "The value", "--max-new-tokens", "10", *temperature]) == 0
    assert capsys.readouterr().out == "The value\n"


def test_a_model_fine_tuned_on_questions_answers_a_bare_question_greedily(copy, tmp_path, capsys):
    qa = eot_model(copy, tmp_path / "qa", finetuned_from={"task": "questions", "method": "lora"})
    assert main(["sample", "--ckpt", str(qa), "--prompt", "What does str.upper() do?", "--max-new-tokens", "9"]) == 0
    printed = capsys.readouterr()
    assert printed.out == "### Question:\nWhat does str.upper() do?\n### Answer:\n\n"  # stopped at end-of-text
    assert printed.err.splitlines() == [
        f"note: {qa} was fine-tuned on 'questions': the prompt is asked in its format ('### Question:\\nWhat does "
        f"str.upper() do?\\n### Answer:\\n'); answered greedily (give --temperature to sample)"]
    # a prompt already in the format is kept as it is; a temperature given is used, and nothing is said
    asked = "### Question:\nWhat does str.lower() do?\n### Answer:\n"
    assert main(["sample", "--ckpt", str(qa), "--prompt", asked, "--temperature", "0.5", "--max-new-tokens", "9"]) == 0
    assert capsys.readouterr() == (asked + "\n", "")
    assert main(["sample", "--ckpt", str(qa)]) == 2
    assert "ask one, e.g. --prompt" in error_line(capsys)


def test_sample_says_when_it_drops_the_start_of_a_long_prompt(copy, capsys):
    prompt = "The value of x1 is 7, and it is odd. " * 40
    assert main(["sample", "--ckpt", str(copy), "--prompt", prompt, "--max-new-tokens", "4"]) == 0
    err = capsys.readouterr().err
    assert "are dropped" in err and "the context holds 64" in err
    assert main(["sample", "--ckpt", str(copy), "--prompt", "The value", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().err == ""


def test_a_device_this_machine_lacks_is_one_line(copy, corpus, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["sample", "--ckpt", str(copy), "--device", "cuda"]) == 2
    assert "--device cpu" in error_line(capsys)
    assert main(["train", "--data", str(corpus), "--out", str(tmp_path / "new"), "--device", "cuda", *TINY]) == 2
    assert "not available" in error_line(capsys)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
@pytest.mark.parametrize("which", ["weights", "optimizer"])
def test_damaged_checkpoint_files_are_one_line(copy, capsys, damage, which):
    import os

    path = copy / json.loads((copy / "checkpoint.json").read_text())[which]
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "empty": b"", "random": os.urandom(4096)}[damage])
    command = (["eval", "--ckpt", str(copy)] if which == "weights"
               else ["train", "--out", str(copy), "--resume", "--max-steps", "8", *TINY])
    assert main(command) == 2
    assert "damaged" in error_line(capsys)


def test_eval_of_a_checkpoint_naming_no_usable_corpus_is_one_line(copy, capsys):
    info = json.loads((copy / "checkpoint.json").read_text())
    info["corpus"] = 123
    (copy / "checkpoint.json").write_text(json.dumps(info))
    assert main(["eval", "--ckpt", str(copy)]) == 2
    assert "--data" in error_line(capsys)


@pytest.mark.parametrize("edit", ["missing", "null", "unknown-config-key", "other-depth"])
def test_a_doctored_checkpoint_json_is_one_line(copy, capsys, edit):
    info = json.loads((copy / "checkpoint.json").read_text())
    if edit == "missing":
        del info["weights"]
    elif edit == "null":
        info["model_config"] = None
    elif edit == "unknown-config-key":
        info["model_config"]["colour"] = "red"
    else:
        info["model_config"]["n_layer"] = 3
    (copy / "checkpoint.json").write_text(json.dumps(info))
    assert main(["eval", "--ckpt", str(copy)]) == 2
    assert str(copy) in error_line(capsys)
    assert main(["sample", "--ckpt", str(copy)]) == 2
    error_line(capsys)


def test_a_cache_that_is_a_file_is_one_line(tmp_path, corpus, capsys, monkeypatch):
    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.setenv("GPT2LIB_CACHE", str(tmp_path / "cachefile"))
    assert main(["train", "--data", str(corpus), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "GPT2LIB_CACHE" in error_line(capsys)


@pytest.mark.parametrize("code, words", [(28, "free some disk space"), (30, "read-only")])
def test_a_full_disk_or_read_only_folder_is_one_line_and_keeps_the_checkpoint(copy, capsys, monkeypatch, code,
                                                                              words):
    import errno
    import os

    from gpt2lib import atomic

    assert code in (errno.ENOSPC, errno.EROFS)
    real_mkstemp = atomic.tempfile.mkstemp

    def no_room(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        os.unlink(name)
        raise OSError(code, os.strerror(code), name)

    before = digest(copy)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", no_room)
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", *TINY]) == 2
    assert words in error_line(capsys)
    monkeypatch.undo()
    after = digest(copy)
    after.pop("metrics.jsonl"), before.pop("metrics.jsonl")
    assert after == before
    assert main(["eval", "--ckpt", str(copy)]) == 0  # the checkpoint still loads


def test_a_seed_beyond_64_bits_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path / "x"), "--seed", str(2**64)])
    assert exc.value.code == 2 and "--seed" in capsys.readouterr().err


def test_bugs_show_their_traceback_and_our_errors_do_not(copy, capsys, monkeypatch):
    import gpt2lib.training.checkpoint as ckpt

    def bug(*args, **kwargs):
        raise RuntimeError("a genuine bug")

    monkeypatch.setattr(ckpt, "load_checkpoint", bug)
    with pytest.raises(RuntimeError, match="a genuine bug"):
        main(["eval", "--ckpt", str(copy)])

    def library_value_error(*args, **kwargs):
        return int("not a number")  # a ValueError raised outside gpt2lib is a bug too

    monkeypatch.setattr(ckpt, "load_checkpoint", library_value_error)
    with pytest.raises(ValueError):
        main(["eval", "--ckpt", str(copy)])

    def plain_value_error_in_gpt2lib(*args, **kwargs):
        raise ValueError("an assertion of gpt2lib's own, not a UserError")  # a bug, wherever it is raised

    monkeypatch.setattr(ckpt, "load_checkpoint", plain_value_error_in_gpt2lib)
    with pytest.raises(ValueError, match="not a UserError"):
        main(["eval", "--ckpt", str(copy)])


def test_the_errors_raised_on_purpose_are_user_errors():
    from gpt2lib.book import BookModelError
    from gpt2lib.cli import UsageError
    from gpt2lib.data import CorpusError
    from gpt2lib.runtime import (CacheError, DeviceError, InputError, MissingFileError, OfflineError,
                                 UserError)
    from gpt2lib.tokenizer.files import TokenizerFileError
    from gpt2lib.training import CheckpointError, DivergedError, FolderBusyError

    for cls in (BookModelError, UsageError, CorpusError, CacheError, DeviceError, InputError, MissingFileError,
                OfflineError, TokenizerFileError, CheckpointError, DivergedError, FolderBusyError):
        assert issubclass(cls, UserError), cls
    # the built-in base each had stays, so existing `except ValueError:` and friends still catch them
    assert issubclass(InputError, ValueError) and issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(CheckpointError, ValueError) and issubclass(OfflineError, RuntimeError)


def test_exit_status_2_and_1_from_a_shell(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gpt2lib", "eval", "--ckpt", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "holds no checkpoint" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root may write into a read-only folder; the EROFS case above simulates it")
def test_a_read_only_output_folder_is_one_line(copy, capsys):
    import os
    import stat

    mode = copy.stat().st_mode
    os.chmod(copy, stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(["train", "--out", str(copy), "--resume", "--max-steps", "8", *TINY]) == 2
        assert "write" in error_line(capsys)
    finally:
        os.chmod(copy, mode)


# ------------------------------------------------------------------------- Ctrl-C: the last step is kept
class Interrupting:
    """A batch source that sends this process a real SIGINT while it hands out the ``at``-th batch of the
    test (in the middle of a step, after its batch was drawn), once."""

    def __init__(self, inner, state: dict) -> None:
        self.inner, self.state = inner, state

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def batch(self, *args, **kwargs):
        self.state["calls"] += 1
        if self.state["calls"] == self.state["at"]:
            os.kill(os.getpid(), signal.SIGINT)
        return self.inner.batch(*args, **kwargs)


def ctrl_c_at(monkeypatch, at: int) -> None:
    """Ctrl-C during the ``at``-th optimizer step this test runs (counted across its runs)."""
    from gpt2lib.training import loop

    real, state = loop.as_source, {"calls": 0, "at": at}
    monkeypatch.setattr(loop, "as_source", lambda data: Interrupting(real(data), state))


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


SETTINGS = ["--max-steps", "6", "--eval-interval", "2", "--ckpt-interval", "0", "--log-interval", "1", "--lr", "0.002",
            "--warmup-steps", "1"]


@pytest.mark.slow
def test_ctrl_c_mid_step_saves_the_step_before_and_the_resumed_run_is_exact(tmp_path, corpus, capsys, monkeypatch):
    import torch
    from safetensors.torch import load_file

    straight = tmp_path / "straight"
    assert main(["train", "--data", str(corpus), "--out", str(straight), *SETTINGS, *TINY]) == 0
    out = tmp_path / "stopped"
    ctrl_c_at(monkeypatch, 4)
    capsys.readouterr()
    assert main(["train", "--data", str(corpus), "--out", str(out), *SETTINGS, *TINY]) == 130
    assert one_line(capsys) == (f"stopped at step 3; checkpoint saved in {out}; resume with: python -m gpt2lib "
                                f"train --resume --out {out}")
    saved = json.loads((out / "checkpoint.json").read_text())
    assert saved["step"] == 3
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0  # no setting given again
    done, ref = (json.loads((folder / "checkpoint.json").read_text()) for folder in (out, straight))
    assert done["train_config"] == saved["train_config"] == ref["train_config"]  # every setting kept
    for key in ("weights", "optimizer"):  # bit for bit: weights, moments and random states
        ours, theirs = load_file(out / done[key]), load_file(straight / ref[key])
        assert sorted(ours) == sorted(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    rows, ref_rows = ([json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
                      for folder in (out, straight))
    assert [r["step"] for r in rows] == list(range(1, 7)) and [r["step"] for r in rows if "val_loss" in r] == [2, 4, 6]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in ref_rows]


def test_ctrl_c_before_the_first_step_finished_leaves_nothing(tmp_path, corpus, capsys, monkeypatch):
    out = tmp_path / "new"
    command = ["train", "--data", str(corpus), "--out", str(out), "--max-steps", "2", *TINY]
    ctrl_c_at(monkeypatch, 1)
    assert main(command) == 130
    assert one_line(capsys) == ("stopped before the first step finished; nothing was saved; run the same command "
                                "again to start over")
    assert not out.exists()
    assert main(command) == 0  # the same command, as it says
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2


@pytest.mark.slow
def test_ctrl_c_from_a_shell_saves_a_checkpoint_that_resume_continues(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gpt2lib", "train", "--data", str(corpus), "--out", str(out),
                             "--max-steps", "100000", "--ckpt-interval", "1", "--eval-interval", "0", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a guard against a hung test, not a timing assertion
        while not (out / "checkpoint.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    step = json.loads((out / "checkpoint.json").read_text())["step"]
    assert proc.returncode == 130 and stdout == "" and step >= 1
    assert stderr.splitlines() == [f"stopped at step {step}; checkpoint saved in {out}; resume with: "
                                   f"python -m gpt2lib train --resume --out {out}"]
    assert main(["train", "--out", str(out), "--resume", "--max-steps", str(step + 2), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == step + 2
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == step + 2 and steps == sorted(set(steps))


def test_help_says_when_checkpoints_are_written():
    from gpt2lib.cli import build_parser

    for command in ("train", "finetune"):
        text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
        assert "default: at each validation" in text and "Ctrl-C always saves the last finished step" in text
