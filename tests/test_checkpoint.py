"""Runs that never lose work: the loop and the checkpoint folder under short corpora, two writers,
divergence, doctored or damaged files and interrupted saves (issue 12). Tiny models, seconds each."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import byte_token_data
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.training import (CheckpointError, DivergedError, FolderBusyError, NonFiniteWeightsError, TrainConfig,
                              load_checkpoint, save_checkpoint, train)
from gpt2lib.training import checkpoint as ckpt_mod
from gpt2lib.training.sources import TokenWindows

pytestmark = pytest.mark.usefixtures("private_cache")

TEXT = "".join(f"while n > {i % 7}:\n    n -= {i % 4 + 1}\n" for i in range(400))


@pytest.fixture(scope="module")
def data():
    return byte_token_data(TEXT, "loops")


def tiny_model(seed: int = 0, n_layer: int = 1) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=n_layer, n_head=2, n_embd=32))


def quick(**kw) -> TrainConfig:
    base = dict(max_steps=4, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=1, eval_interval=0,
                eval_batches=1, log_interval=1, device="cpu")
    return TrainConfig(**{**base, **kw})


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def run(tmp_path, data) -> Path:
    out = tmp_path / "run"
    train(tiny_model(), data, quick(ckpt_interval=2), folder=out, progress=False)
    return out


# ------------------------------------------------------------------------- work lost, items 1-6
def test_a_split_shorter_than_the_context_is_refused_before_anything_is_written(tmp_path, data):
    short_val = byte_token_data(TEXT[:1500], "short")  # 150 validation bytes
    with pytest.raises(ValueError, match=r"validation split \(150 tokens\).*--block-size 149"):
        train(GPT(GPTConfig(vocab_size=256, block_size=200, n_layer=1, n_head=2, n_embd=32)), short_val,
              quick(), folder=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_final_checkpoint_is_written_before_the_final_evaluation(tmp_path, data, monkeypatch):
    def failing_eval(*args, **kwargs):
        raise RuntimeError("the evaluation failed")

    monkeypatch.setattr(TokenWindows, "val_loss", failing_eval)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        train(tiny_model(), data, quick(), folder=tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 4


def test_a_second_run_into_a_held_folder_is_refused(tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    # another process holds the folder, as a first run would
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               "f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)", str(out / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match="another run is writing"):
            train(tiny_model(), data, quick(), folder=out, progress=False)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
    train(tiny_model(), data, quick(), folder=out, progress=False)  # released: the folder is usable again
    assert (out / "checkpoint.json").is_file()


def test_hold_folder_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    probe = [sys.executable, "-c", "import fcntl, sys\nf = open(sys.argv[1], 'a+b')\n"
             "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path / "x" / ".lock")]
    with ckpt_mod.hold_folder(tmp_path / "x"):
        with ckpt_mod.hold_folder(tmp_path / "x"):  # save_checkpoint inside train() takes it again
            pass
        assert subprocess.run(probe, capture_output=True).returncode != 0  # still held
    assert subprocess.run(probe, capture_output=True).returncode == 0  # released


def test_divergence_keeps_the_last_good_checkpoint(run, data):
    before = digest(run)
    with pytest.raises(DivergedError, match=r"step 5.*checkpoint of step 4 .* is kept.*Lower the learning rate"):
        train(tiny_model(), data, quick(max_steps=8, lr=1e30, min_lr=1e29, ckpt_interval=1), folder=run,
              resume=True, progress=False)
    after = digest(run)
    after.pop("metrics.jsonl"), before.pop("metrics.jsonl")
    assert after == before
    model, _, info = load_checkpoint(run)
    assert info["step"] == 4 and all(torch.isfinite(p).all() for p in model.parameters())


def test_a_nan_loss_stops_the_run_before_the_optimizer_step(tmp_path, data):
    model = tiny_model()
    with torch.no_grad():
        model.ln_f.weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="the loss became nan at step 1.*no checkpoint had been written"):
        train(model, data, quick(), folder=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_non_finite_weights_are_never_saved(run):
    model = tiny_model()
    with torch.no_grad():
        model.wte.weight[0, 0] = float("inf")
    before = digest(run)
    with pytest.raises(NonFiniteWeightsError):
        save_checkpoint(model, run, optimizer=None, step=99)
    assert digest(run) == before


@pytest.mark.parametrize("name", ["../other/model-0000004.safetensors", "/tmp/model-0000004.safetensors",
                                  "sub/model-0000004.safetensors", "link.safetensors"])
def test_checkpoint_paths_stay_inside_their_folder(tmp_path, data, run, name):
    other = tmp_path / "other"
    train(tiny_model(), data, quick(), folder=other, progress=False)
    other_files = digest(other)
    (run / "link.safetensors").symlink_to(other / json.loads((other / "checkpoint.json").read_text())["weights"])
    info = json.loads((run / "checkpoint.json").read_text())
    info["weights"] = name
    (run / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="only files in its own folder"):
        load_checkpoint(run)
    with pytest.raises(CheckpointError, match="only files in its own folder"):
        train(tiny_model(), data, quick(max_steps=6), folder=run, resume=True, progress=False)
    assert digest(other) == other_files


def test_interrupted_saves_leave_nothing_after_the_next_save(run, data):
    named = json.loads((run / "checkpoint.json").read_text())
    leftovers = [run / ".model-0000006.safetensors.x1y2.tmp", run / "model-0000006.safetensors",
                 run / "optim-0000005.safetensors"]
    for path in leftovers:
        path.write_bytes(b"\0" * 1000)
    model = tiny_model()
    save_checkpoint(model, run, optimizer=None, step=7)
    assert not any(p.exists() for p in leftovers)
    assert not (run / named["weights"]).exists()  # the previous checkpoint's own files went too
    assert sorted(p.name for p in run.iterdir() if "safetensors" in p.name) == [
        "model-0000007.safetensors", "optim-0000007.safetensors"]


def test_a_resumed_run_sweeps_leftovers_at_its_start(run, data):
    (run / ".optim-0000009.safetensors.abc.tmp").write_bytes(b"half")
    (run / "model-0000009.safetensors").write_bytes(b"orphan")

    class Killed(BaseException):
        """A kill, which saves nothing (Ctrl-C would save the step it stopped at)."""

    def stop(row):
        raise Killed

    with pytest.raises(Killed):
        train(tiny_model(), data, quick(max_steps=6), folder=run, resume=True, progress=False, callback=stop)
    assert not (run / ".optim-0000009.safetensors.abc.tmp").exists()
    assert not (run / "model-0000009.safetensors").exists()
    assert load_checkpoint(run)[2]["step"] == 4


# ------------------------------------------------------------------------- damaged checkpoints
@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
@pytest.mark.parametrize("which", ["weights", "optimizer"])
def test_damaged_files_are_a_checkpoint_error(run, data, damage, which):
    path = run / json.loads((run / "checkpoint.json").read_text())[which]
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "empty": b"", "random": os.urandom(4096)}[damage])
    with pytest.raises(CheckpointError, match="damaged"):
        if which == "weights":
            load_checkpoint(run)
        else:
            train(tiny_model(), data, quick(max_steps=6), folder=run, resume=True, progress=False)


@pytest.mark.parametrize("edit", [{"step": None}, {"weights": None}, {"model_config": None},
                                  {"model_config": {"n_layer": 1, "colour": "red"}}, {"param_groups": "x"}],
                         ids=["null-step", "null-weights", "null-config", "unknown-key", "bad-groups"])
def test_a_doctored_checkpoint_json_is_a_checkpoint_error(run, edit):
    info = json.loads((run / "checkpoint.json").read_text())
    info.update(edit)
    (run / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError):
        load_checkpoint(run)


def test_a_missing_key_is_a_checkpoint_error(run):
    info = json.loads((run / "checkpoint.json").read_text())
    del info["optimizer"]
    (run / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match='needs "optimizer"'):
        load_checkpoint(run)


def test_weights_of_another_depth_are_named_not_crashed_on(run):
    info = json.loads((run / "checkpoint.json").read_text())
    info["model_config"]["n_layer"] = 2  # the weights hold one block
    (run / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"missing \['blocks\.1\."):
        load_checkpoint(run)
    info["model_config"]["n_layer"] = 1
    info["model_config"]["n_embd"] = 64
    (run / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="other shapes"):
        load_checkpoint(run)


def test_resume_from_non_finite_weights_is_refused(run, data):
    from safetensors.torch import load_file, save_file

    path = run / json.loads((run / "checkpoint.json").read_text())["weights"]
    tensors = load_file(path)
    tensors[sorted(tensors)[0]].view(-1)[0] = float("nan")
    save_file(tensors, path)
    with pytest.raises(NonFiniteWeightsError):
        load_checkpoint(run)


def test_add_checkpoint_info_writes_onto_the_same_step_only(run):
    assert ckpt_mod.add_checkpoint_info(run, 4, {"scores": {"test_accuracy": 0.5}})
    assert load_checkpoint(run)[2]["scores"] == {"test_accuracy": 0.5}
    assert not ckpt_mod.add_checkpoint_info(run, 3, {"scores": {"test_accuracy": 0.1}})  # another step's numbers
    assert load_checkpoint(run)[2]["scores"] == {"test_accuracy": 0.5}
    with pytest.raises(ValueError, match="weights"):
        ckpt_mod.add_checkpoint_info(run, 4, {"weights": "elsewhere.safetensors"})


def test_checkpoints_do_not_change_the_run_even_with_dropout(data, tmp_path):
    def run_with(ckpt_interval, out):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.2))
        result = train(model, data, quick(max_steps=6, ckpt_interval=ckpt_interval), folder=out, progress=False)
        return [r["train_loss"] for r in result.history]

    assert run_with(1, tmp_path / "every-step") == run_with(0, tmp_path / "at-the-end")
