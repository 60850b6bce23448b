#!/usr/bin/env bash
# The whole GPU validation in one go, for a GPU machine that has the NVIDIA driver, a
# CUDA toolkit (nvcc, NVRTC) and PyTorch but no Rust.
#
# Two halves:
#
#   scripts/gpu-check.sh prepare      (on a machine with Rust; no GPU needed)
#       Builds the GPU test and bench executables and copies them, stripped, with the
#       commit id into target/gpu-bundle/ (~tens of MB). Carry that folder to the GPU
#       machine next to a checkout of the same commit (the device runner: carry
#       "target/gpu-bundle").
#
#   scripts/gpu-check.sh [run]        (on the GPU machine, from the repository root)
#       Uses the machine's own NVRTC (the driver's CUDA version: PTX from a newer NVRTC
#       would not load) and ptxas, then runs, writing all raw output to
#       RESULTS/bench-results/gpu/<date>-<gpu>/:
#         env.txt            GPU model, driver, CUDA, date, commit
#         cuda_compile.txt   NVRTC + ptxas -v of every kernel with this toolkit
#         cuda_vs_cpu.txt    correctness vs the f64 reference and the CPU trainer
#                            (CLOCKWORK_REQUIRE_GPU=1: a missing GPU fails, never skips)
#         cuda_step.txt      the CUDA step benchmark table
#         train_cuda_vs_cpu.txt  `train --device cuda` vs the CPU, 2,000 steps, loss curves
#         torch_step.txt     the PyTorch eager / torch.compile reference step
#       RESULTS is $CLOCKWORK_RESULTS if set, else $OUT if set (the device runner's
#       fetch-back folder), else the repository root.
#
# Exit status: non-zero if the correctness tests fail (the benches only report).
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=target/gpu-bundle
mode="${1:-run}"

if [ "$mode" = prepare ]; then
    set -e
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE"
    exe_of() { # cargo JSON messages on stdin -> executables of test/bench targets
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])
'
    }
    {
        cargo test --release --no-run --test cuda_vs_cpu --test cuda_compile --message-format=json
        cargo bench --no-run --bench cuda_step --message-format=json
    } | exe_of | while read -r name exe; do
        cp "$exe" "$BUNDLE/$name"
        strip --strip-debug "$BUNDLE/$name" 2>/dev/null || true
    done
    git rev-parse HEAD > "$BUNDLE/COMMIT" 2>/dev/null || echo unknown > "$BUNDLE/COMMIT"
    if ! git diff --quiet HEAD 2>/dev/null; then
        echo "(built from a working tree with uncommitted changes)" >> "$BUNDLE/COMMIT"
    fi
    ls -la "$BUNDLE"
    du -sh "$BUNDLE"
    exit 0
fi

if [ "$mode" != run ]; then
    echo "usage: scripts/gpu-check.sh [prepare|run]" >&2
    exit 2
fi

for t in cuda_vs_cpu cuda_compile cuda_step; do
    if [ ! -x "$BUNDLE/$t" ]; then
        echo "scripts/gpu-check.sh: $BUNDLE/$t missing: run 'scripts/gpu-check.sh prepare' on a machine with Rust and carry $BUNDLE here" >&2
        exit 2
    fi
done

# --- the machine's CUDA toolkit: NVRTC library and ptxas -------------------------------
cuda_home="${CUDA_HOME:-${CUDA_PATH:-}}"
if [ -z "$cuda_home" ] && command -v nvcc >/dev/null 2>&1; then
    cuda_home="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
fi
[ -z "$cuda_home" ] && [ -d /usr/local/cuda ] && cuda_home=/usr/local/cuda
nvrtc_dir=""
for d in "$cuda_home/lib64" "$cuda_home/lib" "$cuda_home/targets/x86_64-linux/lib"; do
    if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then nvrtc_dir="$d"; break; fi
done
if [ -z "$nvrtc_dir" ]; then
    nvrtc_dir="$(ldconfig -p 2>/dev/null | awk '/libnvrtc\.so/{print $NF; exit}' | xargs -r dirname)"
fi
if [ -z "$nvrtc_dir" ]; then
    echo "scripts/gpu-check.sh: no libnvrtc found (CUDA_HOME=$cuda_home); set CUDA_HOME to the CUDA toolkit" >&2
    exit 2
fi
export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -x "$cuda_home/bin/ptxas" ]; then
    export CLOCKWORK_PTXAS="$cuda_home/bin/ptxas"
elif command -v ptxas >/dev/null 2>&1; then
    CLOCKWORK_PTXAS="$(command -v ptxas)"
    export CLOCKWORK_PTXAS
fi
[ -d "$cuda_home/include" ] && export CLOCKWORK_CUDA_INCLUDE="$cuda_home/include"
export CLOCKWORK_REQUIRE_NVRTC=1 CLOCKWORK_REQUIRE_GPU=1

# --- results folder ---------------------------------------------------------------------
gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
gpu_slug="$(echo "${gpu_name:-unknown-gpu}" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')"
stamp="$(date -u +%Y%m%d-%H%M%S)"
root="${CLOCKWORK_RESULTS:-${OUT:-.}}"
dir="$root/bench-results/gpu/$stamp-$gpu_slug"
mkdir -p "$dir"
echo "results: $dir"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(head -1 "$BUNDLE/COMMIT")"
    sed -n '2,$p' "$BUNDLE/COMMIT"
    echo "gpu: $gpu_name"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
    echo "cuda toolkit: $cuda_home"
    "$cuda_home/bin/nvcc" --version 2>&1 | tail -2
    echo "nvrtc: $nvrtc_dir ($(ls "$nvrtc_dir"/libnvrtc.so* 2>/dev/null | tr '\n' ' '))"
    echo "ptxas: ${CLOCKWORK_PTXAS:-none}"
    echo "host: $(uname -srm), $(nproc) cores"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
} > "$dir/env.txt" 2>&1
cat "$dir/env.txt"

status=0
run() { # name, command...
    local name="$1"
    shift
    echo "== $name"
    "$@" 2>&1 | tee "$dir/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "exit status: $rc" >> "$dir/$name.txt"
    return "$rc"
}

run cuda_compile "$BUNDLE/cuda_compile" --nocapture || status=1
run cuda_vs_cpu "$BUNDLE/cuda_vs_cpu" --nocapture --test-threads=1 || status=1
run cuda_step "$BUNDLE/cuda_step" --bench || true

# The train binary end to end: --device cuda (device-resident CudaTrainer, CUDA graph)
# against the CPU on the same 2,000-step run; the loss curves must agree to 1e-3.
train_e2e() {
    local runs
    runs="$(mktemp -d)"
    local common=(--p 23 --width 96 --steps 2000 --set train.eval_every=100 -q)
    "$BUNDLE/train" "${common[@]}" --out "$runs/cpu" &&
        "$BUNDLE/train" "${common[@]}" --device cuda --out "$runs/cuda" &&
        python3 - "$runs/cpu/metrics.jsonl" "$runs/cuda/metrics.jsonl" <<'PY'
import json, sys
cpu, gpu = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert [r["step"] for r in cpu] == [r["step"] for r in gpu], "different evaluation steps"
worst = max(abs(a["train_loss"] - b["train_loss"]) / abs(a["train_loss"]) for a, b in zip(cpu, gpu))
print(f"{len(cpu)} evaluations; worst relative train-loss difference cuda vs cpu: {worst:.3e}")
sys.exit(0 if worst <= 1e-3 else 1)
PY
    local rc=$?
    rm -rf "$runs"
    return $rc
}
run train_cuda_vs_cpu train_e2e || status=1
run torch_step python3 benches/reference/torch_step.py || true

echo "== done: $dir (correctness: $([ $status = 0 ] && echo PASSED || echo FAILED))"
exit $status
