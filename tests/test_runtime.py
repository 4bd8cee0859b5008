"""gpt2lib.runtime: device choice, seeding, online detection, cache folder."""
from __future__ import annotations

import random

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
