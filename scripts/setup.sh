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
# wasm-opt (Debian's binaryen) is optional: `build --release` runs it where it is installed. The tests
# check what it does, so --test installs it; otherwise say what it would give.
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ "${1:-}" = "--test" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binaryen >/dev/null 2>&1; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binaryen >/dev/null \
                || echo "setup: could not install binaryen (wasm-opt): the wasm-opt tests will be skipped" >&2
        fi
    else
        echo "setup: optional: \`apt-get install binaryen\` adds wasm-opt, which makes release builds about 40% smaller" >&2
    fi
fi
# The tests hold generated code to `cargo fmt --check`: where the cargo on PATH has no fmt (Debian's
# cargo without rustup), --test adds Debian's rustfmt, which brings cargo-fmt.
if [ "${1:-}" = "--test" ] && ! cargo fmt --version >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustfmt >/dev/null 2>&1 \
        || echo "setup: could not install rustfmt: the cargo fmt test of generated code will fail" >&2
fi
echo "setup: wasmforge $(.venv/bin/python -m wasmforge --version | cut -d' ' -f2) in .venv"
