"""Finding a cargo + rustc pair that can build for wasm, and reporting on it.

The pair on PATH is tried first, then Debian's /usr/bin pair; WASMFORGE_CARGO
and WASMFORGE_RUSTC override both. A rustc counts only if its sysroot really
holds the target's std (rustup's rustc without the target prints a target
libdir anyway, so the files are what we check). Cargo always gets its rustc
through RUSTC, because Debian's cargo would otherwise call whichever rustc is
first on PATH.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .._text import env_flag
from ..errors import ToolchainError

DEFAULT_TARGET = "wasm32-unknown-unknown"
WASM_TARGETS = ("wasm32-unknown-unknown", "wasm32-wasi", "wasm32-wasip1")
#: One target under two names: Rust 1.78 renamed wasm32-wasi to wasm32-wasip1 and Rust 1.84
#: removed the old name (Debian 12's rustc 1.63 has only wasm32-wasi, Debian 13's 1.85 only
#: wasm32-wasip1). Asking for either builds for whichever the chosen rustc has.
WASI_TARGETS = ("wasm32-wasi", "wasm32-wasip1")
DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
#: The crates the templates use, as Debian names them.
TEMPLATE_CRATES = ("serde", "serde_derive", "serde_json", "syn", "quote", "proc-macro2")

#: Cargo settings that take crates from Debian's registry instead of crates.io.
#: Written to .cargo/config.toml by `wasmforge new --offline`, passed as
#: `--config` by `wasmforge build` when the toolchain is Debian's.
OFFLINE_CARGO_CONFIG = {
    "source.crates-io.replace-with": '"debian"',
    "source.debian.directory": f'"{DEBIAN_REGISTRY}"',
    "net.offline": "true",
}


def offline_config_toml() -> str:
    """OFFLINE_CARGO_CONFIG as the text of a .cargo/config.toml."""
    return (
        "# Crates come from Debian's packaged registry (librust-*-dev), not crates.io.\n"
        "[source.crates-io]\n"
        'replace-with = "debian"\n\n'
        "[source.debian]\n"
        f'directory = "{DEBIAN_REGISTRY}"\n\n'
        "[net]\n"
        "offline = true\n"
    )


def offline_config_args() -> list[str]:
    """OFFLINE_CARGO_CONFIG as cargo command-line arguments."""
    args: list[str] = []
    for key, value in OFFLINE_CARGO_CONFIG.items():
        args += ["--config", f"{key}={value}"]
    return args


def release_of(version_line: str) -> str:
    """"1.95.0" from "rustc 1.95.0 (59807616e 2026-04-14)" or "cargo 1.65.0"; the line itself if it has none."""
    found = re.search(r"\b(\d+\.\d+\.\d+)", version_line)
    return found.group(1) if found else version_line


@dataclass(frozen=True)
class PassedOver:
    """The rustc first on PATH, passed over because it lacks the target asked for."""

    rustc: Path
    rustc_version: str
    target: str
    #: rustup is on PATH, so `rustup target add` is the way to give that rustc the target.
    rustup: bool = False

    def fix(self) -> str:
        """How to build with that rustc instead, or to choose a pair explicitly."""
        own = (f"`rustup target add {self.target}`" if self.rustup
               else f"install the {self.target} std for {self.rustc}")
        return f"{own} to build with rustc {release_of(self.rustc_version)}, or set WASMFORGE_RUSTC (and WASMFORGE_CARGO) to choose a pair"


@dataclass(frozen=True)
class Toolchain:
    """A cargo + rustc pair and what its rustc can target."""

    cargo: Path
    rustc: Path
    rustc_version: str
    host: str
    sysroot: Path
    #: Which of WASM_TARGETS have their std installed.
    targets: tuple[str, ...]
    #: Where the pair was found: "WASMFORGE_CARGO/WASMFORGE_RUSTC", "PATH" or "/usr/bin".
    origin: str
    #: `cargo --version`, e.g. "cargo 1.65.0".
    cargo_version_line: str = ""
    #: Set when this pair was chosen because the rustc first on PATH lacks the target.
    passed_over: Optional[PassedOver] = None

    @property
    def is_debian(self) -> bool:
        """Debian's rustc lives in /usr; rustup's in ~/.rustup."""
        return self.sysroot == Path("/usr")

    def has_target(self, target: str) -> bool:
        return self.rustc_target(target) in self.targets

    def rustc_target(self, target: str) -> str:
        """The name this rustc knows ``target`` by: wasm32-wasi and wasm32-wasip1 stand for each other."""
        if target in WASI_TARGETS and target not in self.targets:
            for other in WASI_TARGETS:
                if other in self.targets:
                    return other
        return target

    def linker(self) -> Optional[Path]:
        """rust-lld, which rustc links wasm with: its own copy, or one on PATH."""
        own = self.sysroot / "lib" / "rustlib" / self.host / "bin" / "rust-lld"
        if own.exists():
            return own
        found = shutil.which("rust-lld")
        return Path(found) if found else None

    def cargo_env(self, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The environment cargo runs with: pinned to this pair's rustc."""
        env = dict(os.environ if base is None else base)
        env["RUSTC"] = str(self.rustc)
        # Doc tests run rustdoc, which must match rustc just as cargo must.
        rustdoc = self.rustc.with_name("rustdoc")
        if rustdoc.exists():
            env["RUSTDOC"] = str(rustdoc)
        # A RUSTC_WRAPPER such as sccache may call another rustc; keep the pair intact.
        env.pop("RUSTC_WRAPPER", None)
        return env

    def cargo_version(self) -> str:
        return self.cargo_version_line or _run([str(self.cargo), "--version"], self.cargo_env()).strip()

    def cargo_release(self) -> Optional[tuple[int, int]]:
        """(major, minor) of this cargo, e.g. (1, 65); None if its version does not say."""
        found = re.search(r"\b(\d+)\.(\d+)\.\d+", self.cargo_version())
        return (int(found.group(1)), int(found.group(2))) if found else None

    def choice_note(self) -> Optional[str]:
        """One line saying which rustc builds and why, when it is not the one first on PATH; else None."""
        skipped = self.passed_over
        if skipped is None:
            return None
        return (f"building with {self.rustc} (rustc {release_of(self.rustc_version)}): rustc "
                f"{release_of(skipped.rustc_version)} first on PATH ({skipped.rustc}) has no {skipped.target} std")


@dataclass(frozen=True)
class TriedPair:
    """A cargo + rustc pair that was looked at, usable (``toolchain``) or not (``problem``), for `wasmforge doctor`."""

    origin: str
    cargo: Optional[Path]
    rustc: Optional[Path]
    toolchain: Optional[Toolchain] = None
    problem: str = ""


@dataclass(frozen=True)
class Survey:
    """Every pair looked at, in the order they were tried."""

    pairs: tuple[TriedPair, ...]
    overridden: bool = False
    rustup: Optional[Path] = field(default=None)

    def choose(self, target: str = DEFAULT_TARGET) -> Toolchain:
        """The first pair whose rustc has ``target``; ToolchainError if none.

        A pair chosen over the one on PATH says so in its ``passed_over``.
        """
        for pair in self.pairs:
            if pair.toolchain and pair.toolchain.has_target(target):
                chosen = pair.toolchain
                first = self.pairs[0]
                if pair is not first and first.origin == "PATH" and first.toolchain is not None:
                    skipped = PassedOver(first.toolchain.rustc, first.toolchain.rustc_version,
                                         first.toolchain.rustc_target(target), rustup=self.rustup is not None)
                    chosen = dataclasses.replace(chosen, passed_over=skipped)
                return chosen
        raise ToolchainError(self.missing_message(target))

    def missing_message(self, target: str) -> str:
        tried = "; ".join(_describe(c, target) for c in self.pairs) or "no cargo or rustc found"
        fix = fix_for_target(target, self.rustup)
        if self.overridden:
            elsewhere = ("point WASMFORGE_CARGO and WASMFORGE_RUSTC at a cargo and rustc pair that has it, "
                         "or unset them to use the one on PATH")
            # A working pair that lacks the target can get it; a pair that does not work cannot.
            working = any(c.toolchain is not None for c in self.pairs)
            fix = f"{fix} for that toolchain, or {elsewhere}" if working else elsewhere
        return f"no Rust toolchain can build for {target} ({tried}); fix: {fix}"


def _describe(pair: TriedPair, target: str) -> str:
    if pair.problem:
        return f"{pair.origin}: {pair.problem}"
    assert pair.toolchain is not None
    return f"{pair.origin}: {pair.toolchain.rustc} has no {target} std"


def fix_for_target(target: str, rustup: Optional[Path] = None) -> str:
    """The command that installs ``target``'s std here."""
    debian_pkg = "libstd-rust-dev-wasm32" if target.startswith("wasm32") else f"the {target} std"
    debian = f"`apt-get install rustc cargo {debian_pkg} lld` (or run scripts/install-toolchain.sh)"
    if rustup is not None:
        return f"`rustup target add {target}`, or where rustup cannot download: {debian}"
    return debian


def survey(env: Optional[Mapping[str, str]] = None) -> Survey:
    """Looks at every pair; does not choose."""
    env = os.environ if env is None else env
    rustup_path = shutil.which("rustup", path=env.get("PATH"))
    rustup = Path(rustup_path) if rustup_path else None
    override_cargo, override_rustc = env.get("WASMFORGE_CARGO"), env.get("WASMFORGE_RUSTC")
    if override_cargo or override_rustc:
        pair = _override_pair(override_cargo, override_rustc, env)
        return Survey((_inspect("WASMFORGE_CARGO/WASMFORGE_RUSTC", *pair),), overridden=True, rustup=rustup)

    pairs: list[TriedPair] = []
    seen: set[tuple[str, str]] = set()
    path_cargo, path_rustc = shutil.which("cargo", path=env.get("PATH")), shutil.which("rustc", path=env.get("PATH"))
    for origin, cargo, rustc in (
        ("PATH", path_cargo, path_rustc),
        ("/usr/bin", "/usr/bin/cargo", "/usr/bin/rustc"),
    ):
        if not cargo or not rustc or not Path(cargo).exists() or not Path(rustc).exists():
            if origin == "PATH":
                pairs.append(TriedPair(origin, None, None, problem="no cargo and rustc on PATH"))
            continue
        key = (os.path.realpath(cargo), os.path.realpath(rustc))
        if key in seen:
            continue
        seen.add(key)
        pairs.append(_inspect(origin, Path(cargo), Path(rustc)))
    return Survey(tuple(pairs), rustup=rustup)


def _override_pair(cargo: Optional[str], rustc: Optional[str], env: Mapping[str, str]) -> tuple[Optional[Path], Optional[Path]]:
    """Fills in the half of an override that was not given from the same directory."""
    def sibling(of: str, name: str) -> Optional[Path]:
        pair = Path(of).parent / name
        if pair.exists():
            return pair
        found = shutil.which(name, path=env.get("PATH"))
        return Path(found) if found else None

    cargo_path = Path(cargo) if cargo else (sibling(rustc, "cargo") if rustc else None)
    rustc_path = Path(rustc) if rustc else (sibling(cargo, "rustc") if cargo else None)
    return cargo_path, rustc_path


def _inspect(origin: str, cargo: Optional[Path], rustc: Optional[Path]) -> TriedPair:
    if cargo is None or not cargo.exists():
        return TriedPair(origin, cargo, rustc, problem=f"cargo not found{f' at {cargo}' if cargo else ''}")
    if rustc is None or not rustc.exists():
        return TriedPair(origin, cargo, rustc, problem=f"rustc not found{f' at {rustc}' if rustc else ''}")
    try:
        toolchain = probe(cargo, rustc, origin)
    except ToolchainError as error:
        return TriedPair(origin, cargo, rustc, problem=str(error))
    return TriedPair(origin, cargo, rustc, toolchain=toolchain)


@functools.lru_cache(maxsize=16)
def probe(cargo: Path, rustc: Path, origin: str = "") -> Toolchain:
    """Asks ``rustc`` its version, host and sysroot, and looks for wasm std files."""
    cargo_version = _run([str(cargo), "--version"]).strip()
    if not cargo_version.startswith("cargo "):
        raise ToolchainError(f"{cargo} does not answer `--version` like cargo")
    verbose = _run([str(rustc), "-vV"])
    info = dict(line.split(": ", 1) for line in verbose.splitlines() if ": " in line)
    sysroot = Path(_run([str(rustc), "--print", "sysroot"]).strip())
    targets = tuple(t for t in WASM_TARGETS if _has_std(sysroot, t))
    return Toolchain(
        cargo=cargo,
        rustc=rustc,
        rustc_version=verbose.splitlines()[0] if verbose else "rustc (unknown version)",
        host=info.get("host", ""),
        sysroot=sysroot,
        targets=targets,
        origin=origin,
        cargo_version_line=cargo_version,
    )


def _has_std(sysroot: Path, target: str) -> bool:
    libdir = sysroot / "lib" / "rustlib" / target / "lib"
    return any(libdir.glob("libcore-*.rlib"))


def _run(argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env)
    except OSError as error:
        raise ToolchainError(f"could not run {argv[0]}: {error.strerror}") from error
    except subprocess.TimeoutExpired as error:
        raise ToolchainError(f"{argv[0]} did not answer within 60 s") from error
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise ToolchainError(f"`{' '.join(argv)}` failed: {first}")
    return done.stdout


def find_toolchain(target: str = DEFAULT_TARGET, env: Optional[Mapping[str, str]] = None) -> Toolchain:
    """The pair wasmforge builds with for ``target``; ToolchainError with the fix if none."""
    return survey(env).choose(target)


def offline_from_env(env: Mapping[str, str]) -> bool:
    """WASMFORGE_OFFLINE=1 (or true, yes, on): take crates from Debian's registry whatever the toolchain."""
    return env_flag(env, "WASMFORGE_OFFLINE") is True


def uses_debian_registry(env: Optional[Mapping[str, str]] = None) -> bool:
    """True when `wasmforge build` takes crates from Debian's registry here: WASMFORGE_OFFLINE, or Debian's toolchain."""
    env = os.environ if env is None else env
    if offline_from_env(env):
        return True
    try:
        return find_toolchain(DEFAULT_TARGET, env).is_debian
    except ToolchainError:
        return False


def registry_problems() -> list[str]:
    """Crates the templates need that Debian's registry lacks, as apt fixes."""
    if not DEBIAN_REGISTRY.is_dir():
        return [f"{DEBIAN_REGISTRY} is missing"]
    present = {p.name.rsplit("-", 1)[0] for p in DEBIAN_REGISTRY.iterdir()}
    return [name for name in TEMPLATE_CRATES if name not in present]


def debian_crate_package(crate: str) -> str:
    """Debian's package for a crate: librust-serde-json-dev for serde_json."""
    return f"librust-{crate.replace('_', '-')}-dev"
