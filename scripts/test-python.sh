#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest); scripts/test.sh runs it last.
#
# Once, into $CLOCKWORK_CACHE/python-venv (default ~/.cache/clockwork): a virtualenv with
# the pinned maturin, pytest, numpy, pandas, matplotlib and torch (a changed pin installs
# just that). torch comes from the CPU wheel index
# (~200 MB) where it can be reached, else from PyPI (~3.5 GB with the CUDA libraries,
# ~1.5 min here); CLOCKWORK_PY_TORCH=0 leaves it out, and the PyTorch tests then show as
# skipped. Then, every time: clippy -D warnings on the python crate, the extension built
# into the venv (maturin develop --release, sharing target/ with cargo), the `train` and
# `sweep` binaries the equality tests run, and pytest.
#
# Environment:
#   CLOCKWORK_CACHE      cache root (default ~/.cache/clockwork)
#   CLOCKWORK_PY_TORCH   1 (default) installs torch into the venv; 0 does not
#   PYTHON               interpreter the venv is made from (default python3; >= 3.9)
#   PYTEST_ARGS          extra pytest arguments (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

MATURIN_VERSION=1.16.0
PYTEST_VERSION=9.2.0
NUMPY_VERSION=2.4.6
PANDAS_VERSION=3.1.1
MATPLOTLIB_VERSION=3.11.2  # examples/python/blog_x2_figures.py draws with it
TORCH_VERSION=2.15.0
WITH_TORCH="${CLOCKWORK_PY_TORCH:-1}"

VENV="${CLOCKWORK_CACHE:-$HOME/.cache/clockwork}/python-venv"
PY="$VENV/bin/python"
STAMP="$VENV/.installed-$MATURIN_VERSION-$PYTEST_VERSION-$NUMPY_VERSION-$PANDAS_VERSION-$MATPLOTLIB_VERSION"
TORCH_STAMP="$VENV/.installed-torch-$TORCH_VERSION"
pip=("$PY" -m pip install --quiet --disable-pip-version-check)

if [ ! -f "$STAMP" ]; then
    echo "== python: installing maturin $MATURIN_VERSION, pytest, numpy, pandas, matplotlib into $VENV"
    if [ ! -x "$PY" ]; then
        "${PYTHON:-python3}" -m venv "$VENV"
    fi
    "${pip[@]}" "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION" "numpy==$NUMPY_VERSION" \
        "pandas==$PANDAS_VERSION" "matplotlib==$MATPLOTLIB_VERSION"
    touch "$STAMP"
fi
if [ "$WITH_TORCH" = 1 ] && [ ! -f "$TORCH_STAMP" ]; then
    echo "== python: installing torch $TORCH_VERSION into $VENV"
    if ! "${pip[@]}" --retries 0 --timeout 15 --index-url https://download.pytorch.org/whl/cpu \
            "torch==$TORCH_VERSION+cpu" 2>/dev/null; then
        echo "   (CPU wheel index unreachable: torch from PyPI, with its CUDA libraries)"
        "${pip[@]}" "torch==$TORCH_VERSION"
    fi
    touch "$TORCH_STAMP"
fi

echo "== python: cargo clippy -p clockwork-py -D warnings"
PYO3_PYTHON="$PY" cargo clippy -p clockwork-py --all-targets -- -D warnings

echo "== python: building the extension (maturin develop --release)"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --quiet)

# The binaries the Python runs are compared with, built as scripts/test.sh builds them.
cargo build --release --features dev-kernels --bin train --bin sweep --quiet

echo "== python: pytest python/tests"
# shellcheck disable=SC2086
CLOCKWORK_TRAIN_BIN="$PWD/target/release/train" CLOCKWORK_SWEEP_BIN="$PWD/target/release/sweep" \
    "$PY" -m pytest python/tests -q ${PYTEST_ARGS:-}
