#!/usr/bin/env bash
# The README's test command: every test, including the CUDA kernel compile checks.
#
# Installs the pinned NVRTC / ptxas / CUDA-header PyPI packages into a cache directory
# (once; ~320 MB, seconds), points the tests at them, and runs cargo test. The kernel
# compile test is *required* here (CLOCKWORK_REQUIRE_NVRTC=1): it fails rather than skips
# if the tools are missing. The kernel emulator test (tests/cuda_emulation.rs) needs a
# C++20 compiler ($CXX, else c++) and fails without one; this script checks for it first.
# Tests that need a GPU are #[ignore = "needs a GPU"] and listed as ignored here;
# scripts/gpu-check.sh runs them on a GPU machine.
#
# Environment:
#   CLOCKWORK_CACHE   cache root (default ~/.cache/clockwork); the tools go to
#                     $CLOCKWORK_CACHE/cuda-12.9
#   CARGO_TEST_ARGS   extra arguments for cargo test (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

CXX_BIN="${CXX:-c++}"
if ! "$CXX_BIN" --version >/dev/null 2>&1; then
    echo "scripts/test.sh: no C++ compiler ('$CXX_BIN --version' failed): tests/cuda_emulation.rs" >&2
    echo "  compiles the CUDA kernels' CPU emulator with one. Install g++ (e.g. apt-get install g++)" >&2
    echo "  or set CXX to a C++20 compiler, then run this again." >&2
    exit 1
fi

NVRTC_VERSION=12.9.86
RUNTIME_VERSION=12.9.79
NVCC_VERSION=12.9.86
CACHE="${CLOCKWORK_CACHE:-$HOME/.cache/clockwork}/cuda-12.9"
STAMP="$CACHE/.installed-$NVRTC_VERSION-$RUNTIME_VERSION-$NVCC_VERSION"

if [ ! -f "$STAMP" ]; then
    echo "== installing NVRTC $NVRTC_VERSION, CUDA runtime headers $RUNTIME_VERSION, ptxas $NVCC_VERSION into $CACHE"
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
        --target "$CACHE" \
        "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION" \
        "nvidia-cuda-runtime-cu12==$RUNTIME_VERSION" \
        "nvidia-cuda-nvcc-cu12==$NVCC_VERSION"
    touch "$STAMP"
fi

NV="$CACHE/nvidia"
for f in "$NV/cuda_nvrtc/lib/libnvrtc.so.12" "$NV/cuda_nvcc/bin/ptxas" "$NV/cuda_runtime/include/cuda_fp16.h"; do
    if [ ! -e "$f" ]; then
        echo "scripts/test.sh: $f is missing after the install; delete $CACHE and run again" >&2
        exit 1
    fi
done

export LD_LIBRARY_PATH="$NV/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CLOCKWORK_PTXAS="$NV/cuda_nvcc/bin/ptxas"
export CLOCKWORK_CUDA_INCLUDE="$NV/cuda_runtime/include"
export CLOCKWORK_REQUIRE_NVRTC=1

# --features dev-kernels builds the CPU kernel harness (benches/cpu_kernels/), whose
# checks of every kernel version against the f64 reference then run with the tests.
# shellcheck disable=SC2086
cargo test --release --all-targets --features dev-kernels ${CARGO_TEST_ARGS:-}
scripts/test-python.sh  # the Python package (python/): its venv, clippy, the extension, pytest

# The explorer page in headless Chromium (installs Debian's chromium when missing).
scripts/browser-test.sh
