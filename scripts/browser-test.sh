#!/usr/bin/env bash
# The explorer in a real browser (issue 14): trains a small run (a+b mod 23, x², width
# 176, two models with seeds 0 and 1, 2000 steps, a checkpoint every 100), writes its
# explore.html with
# `analyze --explore`, and drives the page in headless Chromium with
# tests/browser/explorer.mjs: any JavaScript error or network request fails it; it moves
# the slider, clicks neurons on the heat map and types pairs, and checks the shown
# dominant frequency, power share and phases against neurons.csv and the argmax logit
# against (a + b) mod p, for each model picked in the page's model menu. Called at the
# end of scripts/test.sh; seconds once the binaries are built.
#
# Installs Debian's chromium when it is missing (apt-get, as root or through sudo), as
# scripts/test.sh installs the CUDA tools. Needs node >= 18.
#
#   scripts/browser-test.sh                   # the test
#   scripts/browser-test.sh --shots DIR       # and a screenshot of each view into DIR
#   scripts/browser-test.sh --run RUN [...]   # drive the explorer of an existing run
#                                             # (an a+b run analyzed with --explore)
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
if [ "${1:-}" = "--run" ]; then
    RUN="$2"
    shift 2
else
    # Same features as scripts/test.sh, so its build is reused.
    cargo build --release --features dev-kernels --bin train --bin analyze
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
fi
echo "== driving $RUN/analysis/explore.html in headless Chromium"
node tests/browser/explorer.mjs "$RUN" --chromium "$CHROMIUM" "$@"
