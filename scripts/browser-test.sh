#!/usr/bin/env bash
# The explorers in a real browser (issue 14), in headless Chromium; any JavaScript error
# or network request fails the test:
#
# - the run explorer: trains a small run (a+b mod 23, x², width 176, two models with
#   seeds 0 and 1, 2000 steps, a checkpoint every 100), writes its explore.html with
#   `analyze --explore`, and drives it with tests/browser/explorer.mjs: it moves the
#   slider, clicks neurons on the heat map and types pairs, and checks the shown
#   dominant frequency, power share and phases against neurons.csv and the argmax logit
#   against (a + b) mod p, for each model picked in the page's model menu;
# - the run explorer on a group's table: the s4-x2 preset for 6000 steps (a checkpoint
#   every 500), whose page works in S4's irreps: the shown dominant irrep and share
#   against neurons.csv, no phases, the argmax logit against the table's answer;
# - the sweep explorer: trains a small sweep (a+b mod 13, width 64, AdamW, weight decay
#   0.3 / 3 × train fraction 0.6 / 0.9 × two seeds = 8 models, 1500 steps) with
#   `sweep --explore`, and drives it with tests/browser/sweep-explorer.mjs: every
#   diagram cell's mean and count, for several metrics, against results.csv; every
#   categorical cell's stripes against its models' categories; a click on each cell
#   lists exactly its models, their curves ending at their final values in results.csv;
#   and a 2-model sweep over one key, whose page has no diagram and lists every model.
#
# Called at the end of scripts/test.sh; seconds once the binaries are built.
#
# Installs Debian's chromium when it is missing (apt-get, as root or through sudo), as
# scripts/test.sh installs the CUDA tools. Needs node >= 18.
#
#   scripts/browser-test.sh                        # both tests
#   scripts/browser-test.sh --shots DIR            # and screenshots of each view in DIR
#   scripts/browser-test.sh --run RUN [...]        # only the explorer of an existing run
#                                                  # (an a+b run analyzed with --explore)
#   scripts/browser-test.sh --sweep-dir DIR [...]  # only the explorer of an existing
#                                                  # sweep (written with --explore)
#
# Environment: CHROMIUM (default: chromium on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$CHROMIUM" ]; then
    echo "== installing Debian's chromium (for the explorer's browser test)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    CHROMIUM="$(command -v chromium)"
fi
if ! node --version >/dev/null 2>&1; then
    echo "scripts/browser-test.sh: needs node (>= 18) to drive Chromium" >&2
    exit 1
fi

RUN=""
SWEEP=""
FLAT=""
if [ "${1:-}" = "--run" ]; then
    RUN="$2"
    shift 2
elif [ "${1:-}" = "--sweep-dir" ]; then
    SWEEP="$2"
    shift 2
else
    # Same features as scripts/test.sh, so its build is reused.
    cargo build --release --features dev-kernels --bin train --bin analyze --bin sweep
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    RUN="$WORK/run"
    echo "== training a small run for the explorer ($RUN)"
    printf 'models = 2\n[per_model]\nseed = [0, 1]\n' > "$WORK/two-models.toml"
    target/release/train --preset default --config "$WORK/two-models.toml" \
        --p 23 --width 176 --set train.steps=2000 \
        --set train.checkpoint_every=100 --set train.spectra_every=100 \
        --set train.eval_every=50 --out "$RUN" --quiet >/dev/null
    target/release/analyze "$RUN" --explore >/dev/null
    GROUP_RUN="$WORK/group-run"
    echo "== training a small S4 run for the explorer in the irrep basis ($GROUP_RUN)"
    target/release/train --preset s4-x2 --set train.steps=6000 \
        --set train.checkpoint_every=500 --out "$GROUP_RUN" --quiet >/dev/null
    target/release/analyze "$GROUP_RUN" --explore >/dev/null
    SWEEP="$WORK/sweep"
    echo "== training a small sweep for the sweep explorer ($SWEEP)"
    cat > "$WORK/sweep.toml" <<'TOML'
name = "browser-test"
[base]
preset = "nanda"
[base.set]
"task.p" = 13
"model.width" = 64
"train.steps" = 1500
"train.eval_every" = 25
"train.checkpoint_every" = 1500
"train.spectra_every" = 0
"optimizer.lr" = 1e-2
[axes]
"optimizer.weight_decay" = [0.3, 3.0]
"task.train_fraction" = [0.6, 0.9]
seed = { seeds = 2 }
TOML
    target/release/sweep "$WORK/sweep.toml" --out "$SWEEP" --explore --quiet >/dev/null
    # And one without a diagram (a single swept key): its page lists every model.
    FLAT="$WORK/sweep-flat"
    cat > "$WORK/sweep-flat.toml" <<'TOML'
name = "browser-test-flat"
[base]
preset = "nanda"
[base.set]
"task.p" = 11
"model.width" = 32
"train.steps" = 200
"train.eval_every" = 20
"train.checkpoint_every" = 200
"train.spectra_every" = 0
[axes]
"optimizer.weight_decay" = [0.3, 3.0]
TOML
    target/release/sweep "$WORK/sweep-flat.toml" --out "$FLAT" --explore --quiet >/dev/null
fi
if [ -n "$RUN" ]; then
    echo "== driving $RUN/analysis/explore.html in headless Chromium"
    node tests/browser/explorer.mjs "$RUN" --chromium "$CHROMIUM" "$@"
fi
if [ -n "${GROUP_RUN:-}" ]; then
    echo "== driving $GROUP_RUN/analysis/explore.html in headless Chromium"
    node tests/browser/explorer.mjs "$GROUP_RUN" --chromium "$CHROMIUM"
fi
SWEEPS=()
[ -n "$SWEEP" ] && SWEEPS+=("$SWEEP")
[ -n "$FLAT" ] && SWEEPS+=("$FLAT")
for DIR in "${SWEEPS[@]}"; do
    echo "== driving $DIR/explore.html in headless Chromium"
    node tests/browser/sweep-explorer.mjs "$DIR" --chromium "$CHROMIUM" "$@"
done
