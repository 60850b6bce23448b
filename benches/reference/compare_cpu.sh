#!/usr/bin/env bash
# Times one full-batch step of the same model in clockwork, PyTorch (eager and
# torch.compile) and JAX (jit) on this machine, in one run, and prints a combined markdown
# table. Run the three back to back on a quiet machine: they share the cores.
#
# Needs benches/reference/.venv (bash benches/reference/setup_venv.sh). Not part of CI.
#
# Usage: bash benches/reference/compare_cpu.sh
# Environment: BENCH_SECONDS (timed seconds per shape in the Python scripts, default 5),
#              COMPILE=0 to skip torch.compile.
# Output: stdout, and the same text in bench-results/cpu/<date>-compare.txt.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$here/.venv/bin/python"
if [ ! -x "$py" ]; then
    echo "no virtualenv at $py: run bash benches/reference/setup_venv.sh first" >&2
    exit 1
fi
seconds="${BENCH_SECONDS:-5}"
compile_flag=--compile
[ "${COMPILE:-1}" = 0 ] && compile_flag=

out="$root/bench-results/cpu/$(date +%F)-compare.txt"
mkdir -p "$(dirname "$out")"
raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT

cd "$root"
# Build first, so compiler output stays out of the timings and the clock.
cargo build --release --quiet --example step_timing

model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
sockets="$(lscpu | sed -n 's/^Socket(s):[[:space:]]*//p' | head -1)"
per_socket="$(lscpu | sed -n 's/^Core(s) per socket:[[:space:]]*//p' | head -1)"
cores=$(( ${sockets:-1} * ${per_socket:-0} ))
dirty=""
git diff --quiet HEAD -- src examples Cargo.toml Cargo.lock 2>/dev/null || dirty=" (+ local changes)"

{
    echo "# clockwork vs PyTorch vs JAX, one full-batch step on the CPU"
    echo "date:    $(date -Is)"
    echo "machine: ${model:-unknown CPU}, ${cores} cores, $(nproc) CPUs usable"
    echo "commit:  $(git rev-parse --short HEAD)${dirty}; $(rustc --version)"
    echo
    echo "## clockwork: cargo run --release --example step_timing"
    cargo run --release --quiet --example step_timing | tee "$raw/clockwork.txt"
    echo
    echo "## PyTorch: torch_cpu_step.py $compile_flag --seconds $seconds"
    "$py" "$here/torch_cpu_step.py" $compile_flag --seconds "$seconds" | tee "$raw/torch.txt"
    echo
    echo "## JAX: jax_cpu_step.py --seconds $seconds"
    "$py" "$here/jax_cpu_step.py" --seconds "$seconds" | tee "$raw/jax.txt"
    echo
    "$py" - "$raw" <<'PY'
import re, sys
from pathlib import Path

# A result line starts with "p m B type"; step_timing says "mean X ms best Y ms", the
# Python scripts "IMPL median X ms best Y ms" or "IMPL FAILED reason".
line_re = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(f32|f64)\s+(.*)$")
cols = ["clockwork", "torch-eager", "torch-compile", "jax-jit"]
titles = ["clockwork", "PyTorch eager", "PyTorch compile", "JAX jit"]
res, order = {}, []
for name in ["clockwork", "torch", "jax"]:
    for line in (Path(sys.argv[1]) / f"{name}.txt").read_text().splitlines():
        m = line_re.match(line)
        if not m:
            continue
        key = tuple(int(x) for x in m.groups()[:3]) + (m.group(4),)
        rest = m.group(5)
        impl = "clockwork" if name == "clockwork" else rest.split()[0]
        typ = re.search(r"(?:mean|median)\s+([\d.]+)\s*ms", rest)
        best = re.search(r"best\s+([\d.]+)\s*ms", rest)
        if key not in res:
            order.append(key)
            res[key] = {}
        res[key][impl] = (float(typ.group(1)), float(best.group(1))) if typ and best else None

def table(idx, label):
    print(f"### {label}: ms/step | effective GFLOP/s (6·p³·m·B / time)\n")
    print("| p | m | B | dtype | " + " | ".join(titles) + " |")
    print("|---|---|---|---|" + "---|" * len(cols))
    for key in order:
        p, m, B, t = key
        cells = []
        for c in cols:
            if c not in res[key]:
                cells.append("–")
            elif res[key][c] is None:
                cells.append("failed")
            else:
                ms = res[key][c][idx]
                cells.append(f"{ms:.2f} ms, {6 * p**3 * m * B / ms / 1e6:.1f}")
        print(f"| {p} | {m} | {B} | {t} | " + " | ".join(cells) + " |")
    print()

print("## Combined\n")
table(0, "Typical step (clockwork: mean over ~3 s; Python: median)")
table(1, "Best step")
PY
} 2>&1 | tee "$out"
echo "saved to $out" >&2
