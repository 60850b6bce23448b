"""The examples in examples/python run (shortened with STEPS) and say what they did."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


def run(script, steps, *args):
    env = {**os.environ, "STEPS": str(steps)}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_torch_inspect_example():
    pytest.importorskip("torch")
    out = run("torch_inspect.py", 300)
    assert "PyTorch accuracy:" in out and "after fine-tuning in PyTorch" in out
    assert "clockwork continues:" in out


def test_blog_x2_figures_example(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("blog_x2_figures.py", 500, str(tmp_path))
    assert "step 500:" in out
    for name in ("margin", "neurons_per_frequency", "spectra_grid", "phase_residuals"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
