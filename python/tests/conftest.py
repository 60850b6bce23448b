"""Shared fixtures: small configs and the `train` binary of this checkout."""

import os
import pathlib
import signal

import pytest

import clockwork as cw

# A shell that starts this suite in the background (`cmd &`, nohup) hands Python SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler; the Ctrl-C tests need
# the one an interactive run has.
signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def small():
    """a+b mod 23, width 96, f64, the default recipe: a step takes ~1 ms."""
    return cw.Config.preset("default").with_(p=23, width=96, dtype="f64", steps=200)


@pytest.fixture(scope="session")
def train_bin():
    """The `train` binary (scripts/test-python.sh builds it; CLOCKWORK_TRAIN_BIN overrides)."""
    path = pathlib.Path(os.environ.get("CLOCKWORK_TRAIN_BIN", REPO / "target" / "release" / "train"))
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release --bin train` (scripts/test-python.sh does)")
    return path


@pytest.fixture(scope="session")
def sweep_bin():
    """The `sweep` binary (scripts/test-python.sh builds it; CLOCKWORK_SWEEP_BIN overrides)."""
    path = pathlib.Path(os.environ.get("CLOCKWORK_SWEEP_BIN", REPO / "target" / "release" / "sweep"))
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --release --bin sweep` (scripts/test-python.sh does)")
    return path
