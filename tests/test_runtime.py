"""gpt2lib.runtime: device choice, seeding, online detection, cache folder."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gpt2lib
from gpt2lib import runtime


def test_version_is_a_release_string():
    parts = gpt2lib.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


def test_public_names_resolve():
    assert gpt2lib.get_device is runtime.get_device
    assert gpt2lib.seed_everything is runtime.seed_everything
    with pytest.raises(AttributeError):
        gpt2lib.no_such_name  # noqa: B018


def test_device_automatic_choice_on_this_machine(monkeypatch):
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_device().type == "mps"


def test_device_environment_override(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.get_device() == torch.device("cpu")
    # an explicit argument wins over the environment
    monkeypatch.setenv(runtime.DEVICE_ENV, "cuda")
    assert runtime.get_device("cpu") == torch.device("cpu")


def test_device_errors_say_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(runtime.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="cuda, mps, cpu"):
        runtime.get_device()
    monkeypatch.setenv(runtime.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="not available"):
        runtime.get_device()


def test_seed_everything_reproduces_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    g1 = runtime.seed_everything(7)
    a = draw(), torch.rand(2, generator=g1).tolist()
    g2 = runtime.seed_everything(7)
    b = draw(), torch.rand(2, generator=g2).tolist()
    assert a == b
    runtime.seed_everything(8)
    assert draw() != a[0]
    with pytest.raises(TypeError):
        runtime.seed_everything("7")  # type: ignore[arg-type]


def test_offline_switch_skips_the_network(monkeypatch):
    monkeypatch.setenv(runtime.OFFLINE_ENV, "1")

    def boom(*a, **k):
        raise AssertionError("is_online touched the network while offline was forced")

    monkeypatch.setattr(runtime.socket, "create_connection", boom)
    assert runtime.is_online() is False


def test_is_online_false_when_unreachable(monkeypatch):
    monkeypatch.delenv(runtime.OFFLINE_ENV, raising=False)

    def refuse(*a, **k):
        raise OSError("unreachable")

    monkeypatch.setattr(runtime.socket, "create_connection", refuse)
    assert runtime.is_online() is False


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "c"))
    path = runtime.cache_dir("models", "x")
    assert path == tmp_path / "c" / "models" / "x" and path.is_dir()


def test_the_default_cache_is_the_platforms_and_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert runtime.cache_dir("data") == tmp_path / "xdg" / "gpt2lib" / "data"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert runtime.default_cache_root() == Path.home() / ".cache" / "gpt2lib"
    assert runtime.default_cache_root().name in ("gpt2lib", "Cache")


def test_autocast_is_fp32_on_cpu():
    assert runtime.autocast_dtype("cpu") is None
    with runtime.autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_on_colab_detects_its_module(monkeypatch):
    import sys
    import types

    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert runtime.on_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert runtime.on_colab() is True


def test_describe_environment_names_device_and_versions():
    text = runtime.describe_environment()
    assert text.startswith("device: ")
    assert f"torch {torch.__version__}" in text and f"gpt2lib {gpt2lib.__version__}" in text


# ------------------------------------------------------------------------- issue 12
@pytest.mark.parametrize("name", runtime.ECOSYSTEM_OFFLINE_ENVS)
def test_is_online_honours_hugging_face_offline_switches(monkeypatch, name):
    for other in (runtime.OFFLINE_ENV, *runtime.ECOSYSTEM_OFFLINE_ENVS):
        monkeypatch.delenv(other, raising=False)

    def boom(*a, **k):
        raise AssertionError(f"is_online touched the network although {name} was set")

    monkeypatch.setattr(runtime.socket, "create_connection", boom)
    monkeypatch.setenv(name, "1")
    assert runtime.is_online() is False
    monkeypatch.setenv(name, "0")  # "0" means online: the probe runs (and here meets the stub)
    with pytest.raises(AssertionError, match="touched the network"):
        runtime.is_online()


def test_a_missing_device_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runtime.DeviceError, match="--device cpu"):
        runtime.get_device("cuda")


def test_seeds_beyond_64_bits_are_refused():
    runtime.seed_everything(2**64 - 1)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        runtime.seed_everything(2**64)
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_a_cache_that_is_a_file_says_so(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "file"))
    with pytest.raises(runtime.CacheError, match=f"{runtime.CACHE_ENV}"):
        runtime.cache_dir("data")


def test_unwrap_model_takes_off_compile_and_ddp_in_either_order():
    model = torch.nn.Linear(2, 2)

    class FakeDDP(torch.nn.Module):  # DistributedDataParallel's shape: .module and .no_sync
        def __init__(self, module):
            super().__init__()
            self.module = module

        def no_sync(self):
            return None

    compiled = torch.compile(model)  # wrapping is lazy: nothing compiles until a call
    assert runtime.unwrap_model(model) is model
    assert runtime.unwrap_model(compiled) is model
    assert runtime.unwrap_model(FakeDDP(compiled)) is model
    assert runtime.unwrap_model(torch.compile(FakeDDP(model))) is model
    holder = torch.nn.Module()
    holder.module = model  # an ordinary attribute named module is not a wrapper
    assert runtime.unwrap_model(holder) is holder
