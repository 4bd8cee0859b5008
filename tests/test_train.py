"""gpt2lib.training: schedule, optimizer groups, the loop, checkpoints, exact resume, the book's model."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from conftest import byte_token_data
from gpt2lib.data import TokenData
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.training import (CheckpointError, TrainConfig, load_checkpoint, lr_at, param_groups, save_checkpoint,
                           train)
from gpt2lib.training import checkpoint as ckpt_mod

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 10} + {i % 3}\n\n" for i in range(600))


pytestmark = pytest.mark.usefixtures("private_cache")  # the shared fixture of conftest.py


@pytest.fixture(scope="module")
def data() -> TokenData:
    return byte_token_data(TEXT, "code")


def tiny_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_embd=32))


def quick(**kw) -> TrainConfig:
    base = dict(max_steps=12, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=3, eval_interval=6,
                eval_batches=2, log_interval=1, device="cpu")
    return TrainConfig(**{**base, **kw})


def losses(result) -> dict[int, float]:
    return {r["step"]: r["train_loss"] for r in result.history}


# ---------------------------------------------------------------------------------- schedule
def test_warmup_then_cosine():
    kw = dict(lr=1.0, warmup_steps=10, max_steps=110, min_lr=0.1)
    assert lr_at(0, **kw) == pytest.approx(0.1)  # the first step already moves
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half-way down the cosine: the mean of max and min
    assert lr_at(110, **kw) == pytest.approx(0.1) and lr_at(500, **kw) == pytest.approx(0.1)
    after = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    with pytest.raises(ValueError):
        lr_at(0, lr=1.0, warmup_steps=1, max_steps=10, min_lr=2.0)


def test_decay_on_matrices_only():
    model = tiny_model()
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    ln_gain = model.ln_f.weight
    assert any(p is ln_gain for p in no_decay["params"])
    # the tied embedding / head weight is in the groups once, and nothing is missing
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_parameters()


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)


# ---------------------------------------------------------------------------------- the loop
def test_training_lowers_the_loss_and_writes_metrics(data, tmp_path):
    model = tiny_model()
    result = train(model, data, quick(max_steps=60, eval_interval=30, log_interval=1), folder=tmp_path / "run",
                   progress=False)
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert first > math.log(256) - 0.5  # starts near uniform over 256 bytes
    assert last < first - 1.0, (first, last)
    assert result.final_val_loss < first - 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 61))
    assert all({"step", "train_loss", "lr", "tokens_per_s"} <= set(r) for r in rows)
    assert [r["step"] for r in rows if "val_loss" in r] == [30, 60]


def test_gradient_accumulation_matches_the_full_batch(data):
    full = train(tiny_model(), data, quick(max_steps=5, batch_size=8), progress=False)
    accum = train(tiny_model(), data, quick(max_steps=5, batch_size=8, grad_accum=4), progress=False)
    for step, loss in losses(full).items():
        assert losses(accum)[step] == pytest.approx(loss, abs=1e-5)


def test_batch_must_divide_into_micro_batches(data):
    with pytest.raises(ValueError, match="divisible"):
        train(tiny_model(), data, quick(batch_size=6, grad_accum=4), progress=False)


def test_ids_beyond_the_model_are_refused_once_at_the_edge(data):
    import dataclasses

    import numpy as np

    bad = dataclasses.replace(data, val=np.append(np.asarray(data.val), 300).astype(np.uint16))
    with pytest.raises(ValueError, match="token id 300, but the model has only 256"):
        train(tiny_model(), bad, quick(), progress=False)


def test_forward_can_skip_the_range_check_its_caller_made():
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="found 256"):
        model(torch.tensor([[1, 256]]))
    torch.testing.assert_close(model(idx, check_ids=False)[0], model(idx)[0])


# ---------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    model = tiny_model(3)
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(model, tmp_path, optimizer=opt, step=7, train_config=quick())
    loaded, tok, info = load_checkpoint(tmp_path)
    x = torch.randint(256, (2, 16))
    torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0], rtol=0, atol=0)
    assert info["step"] == 7 and tok is None
    assert loaded.lm_head.weight.data_ptr() == loaded.wte.weight.data_ptr()  # the tie survives


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = tiny_model(1)
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(model, tmp_path, optimizer=opt, step=1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt_mod, "save_file", dies)
    with torch.no_grad():
        model.wte.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, tmp_path, optimizer=opt, step=2)
    # the half-written step-2 weights are beside it, but checkpoint.json still names step 1, intact
    loaded, _, info = load_checkpoint(tmp_path)
    assert info["step"] == 1
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content


class Killed(BaseException):
    """A kill: the process ends where it is, saving nothing (unlike Ctrl-C, which saves the last step)."""


def test_killed_and_resumed_run_logs_the_same_losses(data, tmp_path):
    uninterrupted = train(tiny_model(), data, quick(), progress=False)

    def kill_at_step_9(row):
        if row["step"] == 9:
            raise Killed

    run = tmp_path / "run"
    with pytest.raises(Killed):
        train(tiny_model(), data, quick(ckpt_interval=4), folder=run, progress=False, callback=kill_at_step_9)
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 8
    resumed = train(tiny_model(seed=99), data, quick(ckpt_interval=4), folder=run, resume=True, progress=False)
    assert sorted(losses(resumed)) == [9, 10, 11, 12]
    for step, loss in losses(resumed).items():
        assert loss == losses(uninterrupted)[step]  # exactly: same weights, moments and batches
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # the killed run's step 9 row was dropped, then logged again


def test_ctrl_c_saves_the_last_finished_step_and_the_resumed_run_is_exact(data, tmp_path):
    from gpt2lib.training.loop import TrainingInterrupted

    uninterrupted = train(tiny_model(), data, quick(), progress=False)

    def ctrl_c_at_step_9(row):
        if row["step"] == 9:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as stopped:
        train(tiny_model(), data, quick(ckpt_interval=4), folder=run, progress=False, callback=ctrl_c_at_step_9)
    assert isinstance(stopped.value, KeyboardInterrupt)  # a notebook cell or a script still stops
    assert (stopped.value.step, stopped.value.saved, stopped.value.folder) == (9, True, run)
    assert sorted(losses(stopped.value.result)) == list(range(1, 10))
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 9
    resumed = train(tiny_model(seed=99), data, quick(ckpt_interval=4), folder=run, resume=True, progress=False)
    assert sorted(losses(resumed)) == [10, 11, 12]
    for step, loss in losses(resumed).items():
        assert loss == losses(uninterrupted)[step]


def test_a_finished_run_resumed_returns_its_final_validation_loss(data, tmp_path):
    run = tmp_path / "run"
    done = train(tiny_model(), data, quick(max_steps=4), folder=run, progress=False)
    again = train(tiny_model(seed=5), data, quick(max_steps=4), folder=run, resume=True, progress=False)
    assert again.steps == 4 and again.final_val_loss == done.final_val_loss
    # stopped during its final evaluation: measured again (the same weights, the same number) and logged
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "val_loss"}) + "\n"
                                               for r in rows))
    measured = train(tiny_model(seed=5), data, quick(max_steps=4), folder=run, resume=True, progress=False)
    assert measured.final_val_loss == pytest.approx(done.final_val_loss, abs=1e-6)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]) == {"step": 4,
                                                                               "val_loss": measured.final_val_loss}


def test_ctrl_c_waits_for_the_end_of_an_update_or_a_save():
    import os
    import signal

    from gpt2lib.training.interrupt import CtrlC

    before, finished = signal.getsignal(signal.SIGINT), []
    with pytest.raises(KeyboardInterrupt):
        with CtrlC() as ctrl:
            with ctrl.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                finished.append("the update")  # not cut short
    assert finished == ["the update"]
    with pytest.raises(KeyboardInterrupt):
        with CtrlC():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # outside a deferred block it stops at once
                finished.append("more")
    assert finished == ["the update"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler before is back


def test_an_existing_run_is_never_overwritten(data, tmp_path):
    run = tmp_path / "run"
    train(tiny_model(), data, quick(max_steps=2), folder=run, progress=False)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()}
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        train(tiny_model(), data, quick(max_steps=2), folder=run, progress=False)
    torch.manual_seed(0)
    wider = GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_embd=64))
    with pytest.raises(CheckpointError, match="another model shape"):
        train(wider, data, quick(max_steps=4), folder=run, resume=True, progress=False)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()} == digest


@pytest.mark.parametrize("field, value", [("grad_clip", float("nan")), ("lr", float("inf")),
                                          ("weight_decay", float("nan")), ("betas", (0.9, 1.5)),
                                          ("seed", 2**64), ("warmup_steps", True), ("eval_batches", 0),
                                          ("lr", 1e300)])
def test_config_rejects_non_finite_and_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value, **({"min_lr": 0.0} if field == "lr" else {})})


def test_config_from_dict_refuses_unknown_keys():
    assert TrainConfig.from_dict({"max_steps": 3}).max_steps == 3
    with pytest.raises(ValueError, match="colour"):
        TrainConfig.from_dict({"max_steps": 3, "colour": "red"})
