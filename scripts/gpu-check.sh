#!/usr/bin/env bash
# The whole GPU validation in one go, for a borrowed GPU machine that has the NVIDIA
# driver, a CUDA toolkit (NVRTC, ptxas) and PyTorch, but no Rust. GPU time is scarce
# (a 15-minute budget per session, start-up included), so this must work the first time.
#
#   scripts/gpu-check.sh prepare          HERE (Rust, no GPU needed)
#       Builds the GPU test executables (cuda_vs_cpu, cuda_compile), the cuda_step bench
#       and the train binary, strips them into target/gpu-bundle/ with the commit id,
#       and checks that every binary needs glibc <= 2.34 and the bundle is small enough
#       to carry (~12 MB; the device tool carries at most 64 MiB with the working tree).
#
#   scripts/gpu-check.sh [run [PART...]]  THERE, in the repository root, with
#                                         target/gpu-bundle carried over
#       PARTs (default: all, in this order; each one time-boxed with `timeout`):
#         cuda_vs_cpu        the GPU tests (`--include-ignored`): CUDA vs the f64
#                            reference and the CPU trainer; FAILS if there is no GPU
#         cuda_compile       NVRTC + `ptxas -v` of every kernel with the machine's toolkit
#         train_cuda_vs_cpu  `train --device cuda` vs the CPU, 2,000 steps, loss curves
#         cuda_step          the CUDA step benchmark table (report only)
#         torch_step         the PyTorch eager / torch.compile step (report only)
#       The whole run is capped at CLOCKWORK_GPU_BUDGET_S seconds (default 420): a part
#       gets min(its own cap, what is left), and a part with under 20 s left is skipped
#       and logged as SKIPPED. Exit status: non-zero if a correctness part fails or times
#       out, or there is no GPU.
#
#   scripts/gpu-check.sh dry-run [PART...]  HERE, to check the plumbing without a GPU:
#       the same as run, but the GPU tests are left ignored (they are listed as
#       "ignored, needs a GPU") and a missing GPU is not an error.
#
# Results are written FLAT, because the device tool brings back only files at most two
# folders below $OUT, and at most 8 of them:
#
#   $OUT/<YYYY-MM-DD>-<gpu>-<commit>/     (RESULTS = $CLOCKWORK_RESULTS, else $OUT, else
#     summary.txt                          target/gpu-results)
#       env (GPU, driver, toolkit, NVRTC, host, torch), each part's status, seconds and
#       what was skipped, and the verdict
#     log.txt                  everything this script printed, in order
#     cuda_vs_cpu.txt  cuda_compile.txt  train_cuda_vs_cpu.txt  cuda_step.txt
#     torch_step.txt           each part's raw output
#   (7 files, a few hundred KB.)
#
# Commit them as they are: the folder name is already the one the repository uses,
#   cp -r <files_at>/<YYYY-MM-DD>-<gpu>-<commit> bench-results/gpu/
# i.e. bench-results/gpu/<date>-<gpu>-<commit>/ (<commit>: the bundle's commit, 7 hex).
#
# With the device tool (run from the checkout whose commit was prepared; the working
# tree travels, target/ does not unless carried):
#   command:   scripts/gpu-check.sh run
#   carry:     ["target/gpu-bundle"]
#   timeout_s: 540      (the budget, 420 s, plus the script's own overhead and slack)
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=target/gpu-bundle
BINARIES=(cuda_vs_cpu cuda_compile cuda_step train)
GLIBC_MAX=2.34
mode="${1:-run}"
[ $# -gt 0 ] && shift

# ----------------------------------------------------------------------------- prepare --
if [ "$mode" = prepare ]; then
    set -e
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE"
    exe_of() { # cargo JSON messages on stdin -> "<target name> <executable>" lines
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
    # The same profile and flags as scripts/test.sh (cargo test --release), so a tree
    # that has been tested rebuilds nothing; the bench is built as a test target too
    # (harness = false: it is the same main(), run with --bench), and the train binary
    # is the one cargo builds for the integration tests (a separate `cargo build` would
    # build it a second time, with other dependency features).
    cargo test --release --no-run --test cuda_vs_cpu --test cuda_compile \
        --bench cuda_step --message-format=json |
        exe_of | while read -r name exe; do
        case " ${BINARIES[*]} " in *" $name "*) ;; *) continue ;; esac
        cp "$exe" "$BUNDLE/$name"
        strip --strip-debug "$BUNDLE/$name"
    done
    if [ ! -x "$BUNDLE/train" ]; then
        cargo build --release --bin train --message-format=json | exe_of | while read -r name exe; do
            [ "$name" = train ] && cp "$exe" "$BUNDLE/train" && strip --strip-debug "$BUNDLE/train"
        done
    fi
    for b in "${BINARIES[@]}"; do
        [ -x "$BUNDLE/$b" ] || {
            echo "prepare: $BUNDLE/$b was not built" >&2
            exit 1
        }
        # The device machine's glibc may be older than this one's: refuse anything that
        # needs a symbol version above GLIBC_MAX.
        need="$(objdump -T "$BUNDLE/$b" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
        top="$(printf '%s\n%s\n' "$need" "$GLIBC_MAX" | sort -V | tail -1)"
        echo "$b: needs glibc $need"
        if [ "$top" != "$GLIBC_MAX" ]; then
            echo "prepare: $b needs glibc $need > $GLIBC_MAX (built against $(ldd --version | head -1)); build on an older system or with cargo-zigbuild --target x86_64-unknown-linux-gnu.$GLIBC_MAX" >&2
            exit 1
        fi
    done
    commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    {
        echo "$commit"
        if ! git diff --quiet HEAD 2>/dev/null; then
            echo "(built from a working tree with uncommitted changes)"
        fi
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(rustc --version), $(ldd --version | head -1)"
    } > "$BUNDLE/COMMIT"
    ls -la "$BUNDLE"
    kib="$(du -sk "$BUNDLE" | cut -f1)"
    echo "bundle: $BUNDLE, $((kib / 1024)) MiB, commit $commit"
    if [ "$kib" -gt $((48 * 1024)) ]; then
        echo "prepare: the bundle is over 48 MiB; with the working tree it may not fit the device tool's 64 MiB" >&2
        exit 1
    fi
    echo "next: the device tool's run with command 'scripts/gpu-check.sh run', carry [\"$BUNDLE\"], timeout_s 540"
    exit 0
fi

if [ "$mode" != run ] && [ "$mode" != dry-run ] && [ "${mode#_}" = "$mode" ]; then
    echo "usage: scripts/gpu-check.sh [prepare | run [PART...] | dry-run [PART...]]" >&2
    exit 2
fi

# ---------------------------------------------------------- the end-to-end train part --
# Internal: run under `timeout` as its own process. The train binary with --device cuda
# (device-resident CudaTrainer, CUDA graph) against the CPU on the same 2,000-step run;
# the loss curves must agree to 1e-3 relative.
if [ "$mode" = _train_e2e ]; then
    runs="$(mktemp -d)"
    trap 'rm -rf "$runs"' EXIT
    common=(--p 23 --width 96 --steps 2000 --set train.eval_every=100 -q)
    "$BUNDLE/train" "${common[@]}" --out "$runs/cpu" || exit 1
    "$BUNDLE/train" "${common[@]}" --device cuda --out "$runs/cuda" || exit 1
    python3 - "$runs/cpu/metrics.jsonl" "$runs/cuda/metrics.jsonl" <<'PY'
import json, sys
cpu, gpu = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert [r["step"] for r in cpu] == [r["step"] for r in gpu], "different evaluation steps"
worst = max(abs(a["train_loss"] - b["train_loss"]) / abs(a["train_loss"]) for a, b in zip(cpu, gpu))
print(f"{len(cpu)} evaluations; worst relative train-loss difference cuda vs cpu: {worst:.3e}")
print(f"final train loss: cpu {cpu[-1]['train_loss']:.6e}, cuda {gpu[-1]['train_loss']:.6e}")
sys.exit(0 if worst <= 1e-3 else 1)
PY
    exit $?
fi

# ------------------------------------------------------------------------ run, dry-run --
start_s=$SECONDS
budget_s="${CLOCKWORK_GPU_BUDGET_S:-420}"
ALL_PARTS=(cuda_vs_cpu cuda_compile train_cuda_vs_cpu cuda_step torch_step)
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=("${ALL_PARTS[@]}")
for p in "${parts[@]}"; do
    case " ${ALL_PARTS[*]} " in
    *" $p "*) ;;
    *)
        echo "scripts/gpu-check.sh: unknown part '$p' (parts: ${ALL_PARTS[*]})" >&2
        exit 2
        ;;
    esac
done

# The results folder first, so that whatever happens below leaves a trace.
commit="$(head -1 "$BUNDLE/COMMIT" 2>/dev/null || echo unknown)"
gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
gpu_slug="$(echo "${gpu_name:-no-gpu}" | sed 's/^NVIDIA //' | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/^-//; s/-$//')"
root="${CLOCKWORK_RESULTS:-${OUT:-target/gpu-results}}"
dir="$root/$(date -u +%Y-%m-%d)-${gpu_slug:-no-gpu}-${commit:0:7}"
[ "$mode" = dry-run ] && dir="$dir-dry-run"
mkdir -p "$dir"
summary="$dir/summary.txt"
: > "$summary"
exec > >(tee "$dir/log.txt") 2>&1
note() { echo "$*" | tee -a "$summary"; }

note "clockwork GPU check ($mode), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
note "results: $dir (commit them as bench-results/gpu/$(basename "$dir")/)"
note "commit: $commit"
sed -n '2,$p' "$BUNDLE/COMMIT" 2>/dev/null | tee -a "$summary"

status=0
for b in "${BINARIES[@]}"; do
    if [ ! -x "$BUNDLE/$b" ]; then
        note "MISSING: $BUNDLE/$b: run 'scripts/gpu-check.sh prepare' on a machine with Rust and carry $BUNDLE here"
        status=2
    fi
done
[ $status = 0 ] || exit $status

# --- the driver and the machine's CUDA toolkit, before anything loads libcuda ----------
# The driver's own folder first (on the device machines libcuda.so.1 lives in
# /usr/local/nvidia/lib64, a read-only mount that the loader's cache may not list).
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
# NVRTC from the machine's toolkit (it matches the driver: PTX from a newer NVRTC than
# the driver would not load). CLOCKWORK_NVRTC_DIR overrides the search.
cuda_home="${CUDA_HOME:-${CUDA_PATH:-}}"
if [ -z "$cuda_home" ] && command -v nvcc >/dev/null 2>&1; then
    cuda_home="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
fi
[ -z "$cuda_home" ] && [ -d /usr/local/cuda ] && cuda_home=/usr/local/cuda
nvrtc_dir="${CLOCKWORK_NVRTC_DIR:-}"
if [ -z "$nvrtc_dir" ] && [ -n "$cuda_home" ]; then
    for d in "$cuda_home/lib64" "$cuda_home/lib" "$cuda_home/targets/x86_64-linux/lib"; do
        if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then
            nvrtc_dir="$d"
            break
        fi
    done
fi
if [ -z "$nvrtc_dir" ]; then
    nvrtc_dir="$(ldconfig -p 2>/dev/null | awk '/libnvrtc\.so/{print $NF; exit}' | xargs -r dirname)"
fi
if [ -z "$nvrtc_dir" ]; then # a pip-installed NVRTC (nvidia-cuda-nvrtc), e.g. PyTorch's
    nvrtc_dir="$(python3 - <<'PY' 2>/dev/null
import glob, os, site, sys
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for pat in ("nvidia/cu*/lib/libnvrtc.so*", "nvidia/cuda_nvrtc/lib/libnvrtc.so*"):
        hits = sorted(glob.glob(os.path.join(sp, pat)))
        if hits:
            print(os.path.dirname(hits[0]))
            sys.exit()
PY
)"
fi
if [ -n "$nvrtc_dir" ]; then
    export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    note "WARNING: no libnvrtc found (CUDA_HOME='$cuda_home'); set CUDA_HOME or CLOCKWORK_NVRTC_DIR: every CUDA part will fail"
fi
if [ -z "${CLOCKWORK_PTXAS:-}" ]; then
    if [ -n "$cuda_home" ] && [ -x "$cuda_home/bin/ptxas" ]; then
        export CLOCKWORK_PTXAS="$cuda_home/bin/ptxas"
    elif command -v ptxas >/dev/null 2>&1; then
        CLOCKWORK_PTXAS="$(command -v ptxas)"
        export CLOCKWORK_PTXAS
    fi
fi
if [ -z "${CLOCKWORK_CUDA_INCLUDE:-}" ] && [ -n "$cuda_home" ] && [ -d "$cuda_home/include" ]; then
    export CLOCKWORK_CUDA_INCLUDE="$cuda_home/include"
fi
export CLOCKWORK_REQUIRE_NVRTC=1 PYTHONUNBUFFERED=1 RUST_BACKTRACE=1

# --- the environment, into the summary --------------------------------------------------
{
    echo "--- environment"
    echo "gpu: ${gpu_name:-NONE}"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1 | head -3
    echo "cuda toolkit: ${cuda_home:-none}"
    [ -n "$cuda_home" ] && "$cuda_home/bin/nvcc" --version 2>&1 | tail -2
    echo "nvrtc: ${nvrtc_dir:-none} ($(ls "${nvrtc_dir:-/nonexistent}"/libnvrtc.so* 2>/dev/null | xargs -r -n1 basename | tr '\n' ' '))"
    echo "ptxas: ${CLOCKWORK_PTXAS:-none}"
    echo "LD_LIBRARY_PATH: ${LD_LIBRARY_PATH:-}"
    echo "host: $(uname -srm), $(nproc) cores, $(ldd --version 2>&1 | head -1)"
    timeout 60 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -1
    echo "budget: ${budget_s} s for the parts"
    echo "---"
} 2>&1 | tee -a "$summary"

if [ -z "$gpu_name" ]; then
    if [ "$mode" = dry-run ]; then
        note "no GPU here (dry run: expected)"
    else
        note "*********************************************************************"
        note "*** NO GPU: nvidia-smi lists none; the GPU tests will FAIL (needs a GPU)"
        note "*********************************************************************"
        status=1
    fi
fi

# --- the parts ----------------------------------------------------------------------------
# part NAME CAP KIND COMMAND...: runs COMMAND with its output to NAME.txt (and the log),
# under `timeout` for min(CAP, budget left); KIND is "check" (a failure fails the run)
# or "report" (benchmarks: a failure is logged, the verdict is unaffected).
part() {
    local name="$1" cap="$2" kind="$3"
    shift 3
    case " ${parts[*]} " in *" $name "*) ;; *) return 0 ;; esac
    local left=$((budget_s - (SECONDS - start_s)))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 20 ]; then
        note "SKIPPED  $name: only ${left} s of the ${budget_s} s budget left"
        [ "$kind" = check ] && status=1
        return 0
    fi
    echo
    echo "=== $name (time limit ${limit} s)"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$dir/$name.txt"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - t0)) verdict
    case $rc in
    0) verdict=ok ;;
    124 | 137) verdict="TIMED OUT after ${limit} s" ;;
    *) verdict="FAILED (exit status $rc)" ;;
    esac
    echo "exit status: $rc, ${took} s" >> "$dir/$name.txt"
    note "$(printf '%-8s %-18s %4d s  %s' "$kind" "$name" "$took" "$verdict")"
    if [ $rc != 0 ] && [ "$kind" = check ]; then status=1; fi
    return 0
}

# In a dry run the GPU tests stay ignored (they list as "ignored, needs a GPU").
ignored=(--include-ignored)
[ "$mode" = dry-run ] && ignored=()

note "--- parts"
# Correctness first: if the budget runs out, the benchmarks are what is lost.
# --test-threads=1: one test changes CLOCKWORK_CUDA_CHUNK_MIB for its duration.
part cuda_vs_cpu 210 check "$BUNDLE/cuda_vs_cpu" "${ignored[@]}" --test-threads=1 --nocapture
part cuda_compile 60 check "$BUNDLE/cuda_compile" --include-ignored --nocapture
if [ "$mode" = dry-run ]; then
    part train_cuda_vs_cpu 60 report bash "$0" _train_e2e
else
    part train_cuda_vs_cpu 60 check bash "$0" _train_e2e
fi
part cuda_step 90 report "$BUNDLE/cuda_step" --bench
part torch_step 90 report python3 benches/reference/torch_step.py
for f in "$dir"/cuda_step.txt; do
    if [ -f "$f" ] && grep -q "no CUDA device" "$f"; then
        note "cuda_step: no CUDA device, no figures"
    fi
done

verdict=PASSED
[ $status = 0 ] || verdict=FAILED
note "--- $verdict ($((SECONDS - start_s)) s in all): $dir"
ls "$dir" | tee -a "$summary" >/dev/null
exit $status
