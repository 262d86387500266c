#!/usr/bin/env bash
# Sets up everything wasmforge needs in this checkout: the Rust toolchain
# (scripts/install-toolchain.sh) and a virtual environment at .venv with
# wasmforge installed. `--test` also installs what the test suite needs,
# `--bench` what bench/run.py needs (Extism, to compare against).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-toolchain.sh

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian's python3 keeps venv in a separate package.
        rm -rf .venv
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        "$PYTHON" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
elif [ "${1:-}" = "--bench" ]; then
    .venv/bin/python -m pip install -q -e '.[bench]'
else
    .venv/bin/python -m pip install -q .
fi
# Debian packages the tests need beyond the toolchain: installed as root with apt, from a fresh
# package index if the first try finds none; otherwise one line says what goes without.
test_package() {  # PACKAGE, what the tests lose without it
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null; } \
            || echo "setup: could not install $1: $2" >&2
    else
        echo "setup: \`apt-get install $1\` (as root) is needed, or $2" >&2
    fi
}
# wasm-opt (Debian's binaryen) is optional: `build --release` runs it where it is installed. The tests
# check what it does, so --test installs it; otherwise say what it would give.
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ "${1:-}" = "--test" ]; then
        test_package binaryen "the wasm-opt tests will be skipped"
    else
        echo "setup: optional: \`apt-get install binaryen\` adds wasm-opt, which makes release builds about 40% smaller" >&2
    fi
fi
# The tests hold generated code to `cargo fmt --check`: where the cargo on PATH has no fmt (Debian's
# cargo without rustup), --test adds Debian's rustfmt, which brings cargo-fmt.
if [ "${1:-}" = "--test" ] && ! cargo fmt --version >/dev/null 2>&1; then
    test_package rustfmt "the cargo fmt test of generated code will fail"
fi
echo "setup: wasmforge $(.venv/bin/python -m wasmforge --version | cut -d' ' -f2) in .venv"
