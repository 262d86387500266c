#!/usr/bin/env bash
# Installs a Rust toolchain that builds wasm32 plugins offline, on Debian 12 or 13, as root:
# Debian's rustc + cargo, the wasm32 std, lld (rust-lld links wasm) and the crates the
# templates use, from Debian's packaged registry. Does nothing where a working
# toolchain is already there. See the README's "Toolchain" section.
set -euo pipefail

PACKAGES=(rustc cargo libstd-rust-dev-wasm32 lld)
CRATES=(librust-serde-dev librust-serde-derive-dev librust-serde-json-dev
        librust-syn-dev librust-quote-dev librust-proc-macro2-dev)

has_wasm_std() {  # $1: rustc
    local sysroot
    sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
    compgen -G "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib/libcore-*.rlib" >/dev/null
}

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}" "${CRATES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

# A rustup (or other) toolchain that already has the target and a linker is enough.
if command -v rustc >/dev/null && command -v cargo >/dev/null && has_wasm_std rustc \
    && { command -v rust-lld >/dev/null || compgen -G "$(rustc --print sysroot)/lib/rustlib/*/bin/rust-lld" >/dev/null; }; then
    echo "install-toolchain: $(command -v rustc) already builds for wasm32-unknown-unknown; nothing to do"
    exit 0
fi

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -eq 0 ] && [ -e /usr/bin/rust-lld ]; then
    echo "install-toolchain: Debian's toolchain and crates are already installed; nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-toolchain: needs root to install: ${missing[*]} (run with sudo)" >&2
    exit 3
fi
if ! command -v apt-get >/dev/null; then
    echo "install-toolchain: no apt-get here; install rustc, cargo, the wasm32 std and lld yourself" >&2
    exit 3
fi

echo "install-toolchain: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# rustc links wasm with `rust-lld`. On Debian 12 rustc ships /usr/bin/rust-lld -> lld-14;
# make sure what it points at is there. On Debian 13 it comes with rust-llvm, a
# recommended package that pulls in all of clang and llvm: instead, point rust-lld at
# the ld.lld the lld package installed (below).
if [ -L /usr/bin/rust-lld ] && [ ! -e /usr/bin/rust-lld ]; then
    apt-get install -y -qq --no-install-recommends "$(basename "$(readlink /usr/bin/rust-lld)")" >/dev/null
fi
if [ ! -e /usr/bin/rust-lld ] && ! command -v rust-lld >/dev/null; then
    lld=$(compgen -c ld.lld- | sort -V | tail -n1 || true)
    if [ -n "$lld" ]; then ln -s "$(command -v "$lld")" /usr/local/bin/rust-lld; fi
fi
echo "install-toolchain: done: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version)"
