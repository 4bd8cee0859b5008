"""The precision each device trains in (gpt2lib.runtime.autocast_dtype, precision_note) and fp16's loss
scaling (gpt2lib.training.precision): devices faked by their CUDA compute capability; fp16 run on the CPU."""
from __future__ import annotations

import pytest
import torch

from conftest import byte_token_data
from gpt2lib import runtime
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.training import TrainConfig, load_checkpoint, train
from gpt2lib.training import precision as precision_mod
from gpt2lib.training.precision import Precision

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA GPU of the given compute capability, as far as gpt2lib can tell."""
    def install(capability: tuple[int, int], name: str) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        # what Colab's torch answers on a T4: True, by emulation; the choice must not rest on it
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return install


@pytest.mark.parametrize("capability, name, dtype, words", [
    ((7, 5), "Tesla T4", torch.float16, "fp16 autocast with loss scaling on Tesla T4 (compute capability 7.5 has no native bf16"),
    ((7, 0), "Tesla V100-SXM2-16GB", torch.float16, "fp16 autocast with loss scaling"),
    ((8, 0), "NVIDIA A100-SXM4-40GB", torch.bfloat16, "bf16 autocast on NVIDIA A100-SXM4-40GB (compute capability 8.0"),
    ((8, 9), "NVIDIA L4", torch.bfloat16, "bf16 autocast on NVIDIA L4"),
    ((9, 0), "NVIDIA H100 80GB HBM3", torch.bfloat16, "bf16 autocast"),
])
def test_each_gpu_gets_the_precision_it_computes_natively(fake_gpu, capability, name, dtype, words):
    fake_gpu(capability, name)
    assert runtime.autocast_dtype("cuda") == dtype
    assert runtime.autocast_dtype("cpu") is None  # a CPU stays in fp32 even beside a GPU
    assert words in runtime.precision_note("cuda")
    assert Precision("cuda").enabled == (dtype == torch.float16)  # loss scaling in fp16 only


def test_a_cpu_trains_in_fp32_and_says_so():
    assert runtime.autocast_dtype("cpu") is None
    assert runtime.precision_note("cpu") == "precision: fp32 on a CPU (autocast to a 16-bit type is no faster here)"
    assert not Precision("cpu").enabled and Precision("cpu").state_dict() == {}


def test_an_overflowing_fp16_step_is_skipped_and_the_scale_lowered():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    before = [p.detach().clone() for p in layer.parameters()]
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    scaler = Precision("cpu", enabled=True)
    scaler.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    scaler.backward(layer(torch.full((2, 4), 1e36)).sum())   # scaled, the gradient overflows
    scaler.unscale(opt)
    assert scaler.step(opt) is False
    assert scaler.scaler.get_scale() == 2.0 ** 15
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))  # the update was not applied
    opt.zero_grad()
    scaler.backward(layer(torch.ones(2, 4)).sum())
    scaler.unscale(opt)
    assert scaler.step(opt) is True
    assert not torch.equal(before[0], layer.weight)


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """The CPU treated as a GPU without bf16: autocast to fp16 and loss scaling, as on a T4."""
    monkeypatch.setattr(runtime, "autocast_dtype", lambda device: torch.float16 if torch.device(device).type == "cpu" else None)
    monkeypatch.setattr(precision_mod, "autocast_dtype", runtime.autocast_dtype)


def test_fp16_training_scales_the_loss_checkpoints_the_scale_and_resumes_exactly(fp16_on_cpu, tmp_path):
    data = byte_token_data("".join(f"x{i} = {i % 7} + {i % 5}\n" for i in range(800)), "sums")
    config = GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_embd=32)

    def model():
        torch.manual_seed(0)
        return GPT(config)

    run = TrainConfig(max_steps=8, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_interval=4,
                      eval_batches=2, log_interval=1, ckpt_interval=4, device="cpu")
    whole = model()
    train(whole, data, run, progress=False)

    def ctrl_c_at_step_6(row):
        if row["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model(), data, run, folder=tmp_path / "run", progress=False, callback=ctrl_c_at_step_6)
    saved = load_checkpoint(tmp_path / "run")[2]
    assert saved["step"] == 6 and saved["grad_scaler"]["scale"] > 0  # the scale travels with the checkpoint
    resumed = load_checkpoint(tmp_path / "run")[0]
    train(resumed, data, run, folder=tmp_path / "run", resume=True, progress=False)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # exactly: same weights, moments, batches and scale


def test_the_scale_a_checkpoint_kept_is_the_scale_a_resumed_run_starts_from():
    first = Precision("cpu", enabled=True)
    first.scaler = torch.amp.GradScaler("cpu", init_scale=512.0)
    again = Precision("cpu", enabled=True)
    again.load_state_dict(first.state_dict())
    assert again.scaler.get_scale() == 512.0
    Precision("cpu").load_state_dict(first.state_dict())  # fp32: nothing to load, and no error
