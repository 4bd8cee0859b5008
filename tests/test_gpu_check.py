"""tools/gpu_check.sh, the one GPU check, is valid bash and says plainly when there is no GPU (CI never
has one); benchmarks/attention_kernels.py runs its comparison on the CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "tools" / "gpu_check.sh")]).returncode == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run the check itself")
def test_gpu_check_without_a_gpu_says_so():
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh")], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and "no GPU here" in result.stdout, result.stdout + result.stderr


def test_attention_benchmark_agrees_with_the_fused_kernel_on_cpu():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "attention_kernels.py"), "--device", "cpu",
                             "--lengths", "32", "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    row = result.stdout.strip().splitlines()[-1].split()
    assert row[0] == "32" and float(row[4]) < 1e-5, result.stdout  # max difference of the two outputs
