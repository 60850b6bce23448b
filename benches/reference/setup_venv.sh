#!/usr/bin/env bash
# Creates benches/reference/.venv with pinned PyTorch and JAX for the CPU reference
# timings (torch_cpu_step.py, jax_cpu_step.py, compare_cpu.sh). Not part of CI.
#
# Usage: bash benches/reference/setup_venv.sh        (re-running it is cheap: pip skips
#        what is already installed at the pinned version)
set -euo pipefail

TORCH_VERSION=2.15.0
JAX_VERSION=0.10.2
NUMPY_VERSION=2.4.6  # what jax 0.10.2 resolved to here; pinned so reruns match

here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

# The CPU-only wheel index keeps the install small (no CUDA libraries). Where that index
# cannot be reached (the project's own machines reach only PyPI), fall back to PyPI's
# wheel: it pulls the CUDA runtime libraries too (~3 GB more) but runs the same CPU code.
cpu_index=https://download.pytorch.org/whl/cpu
if "${pip[@]}" install --quiet --retries 0 --timeout 15 \
        --index-url "$cpu_index" "torch==${TORCH_VERSION}+cpu" 2>/dev/null; then
    echo "torch ${TORCH_VERSION}+cpu from the CPU wheel index"
else
    echo "CPU wheel index unreachable: installing torch ${TORCH_VERSION} from PyPI (with CUDA libs)"
    "${pip[@]}" install --quiet "torch==${TORCH_VERSION}"
fi

"${pip[@]}" install --quiet "jax[cpu]==${JAX_VERSION}" "numpy==${NUMPY_VERSION}"

"$venv/bin/python" - <<'PY'
import platform, torch, jax, jaxlib, numpy
print(f"python {platform.python_version()}  torch {torch.__version__}  "
      f"jax {jax.__version__}  jaxlib {jaxlib.__version__}  numpy {numpy.__version__}")
PY
