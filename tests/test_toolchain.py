"""Finding a cargo + rustc pair that really has the wasm32 std, and `wasmforge doctor`."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from helpers import assert_one_line_error, run_cli
from wasmforge.workspace.build import build_argv
from wasmforge.workspace.cargo import Cargo
from wasmforge.workspace.settings import Settings
from wasmforge.errors import ToolchainError
from wasmforge.workspace.toolchain import PassedOver, Toolchain, find_toolchain, probe, release_of, survey


@pytest.fixture
def rustc_without_wasm(tmp_path: Path) -> Path:
    """A rustc whose sysroot has no wasm32 std: rustup's where it lacks the target,
    else a wrapper around the real rustc that reports an empty sysroot."""
    rustup_rustc = Path.home() / ".cargo/bin/rustc"
    if rustup_rustc.exists():
        candidate = probe(Path(shutil.which("cargo", path=str(rustup_rustc.parent)) or rustup_rustc), rustup_rustc)
        if "wasm32-unknown-unknown" not in candidate.targets:
            return rustup_rustc
    real = find_toolchain().rustc
    sysroot = tmp_path / "empty-sysroot"
    (sysroot / "lib/rustlib/wasm32-unknown-unknown/lib").mkdir(parents=True)
    wrapper = tmp_path / "bin/rustc"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--print" ] && [ "$2" = "sysroot" ]; then echo {sysroot}; exit 0; fi\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


def test_the_chosen_rustc_has_the_wasm32_std_files() -> None:
    toolchain = find_toolchain()
    libdir = toolchain.sysroot / "lib/rustlib/wasm32-unknown-unknown/lib"
    assert list(libdir.glob("libcore-*.rlib"))
    assert toolchain.has_target("wasm32-unknown-unknown")


def test_path_pair_without_the_target_falls_back_to_debian(rustc_without_wasm: Path, tmp_path: Path) -> None:
    if not Path("/usr/bin/rustc").exists():
        pytest.skip("needs Debian's rustc")
    bin_dir = tmp_path / "pathbin"
    bin_dir.mkdir()
    (bin_dir / "rustc").symlink_to(rustc_without_wasm)
    (bin_dir / "cargo").symlink_to("/usr/bin/cargo")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    found = survey(env)
    assert [c.origin for c in found.pairs] == ["PATH", "/usr/bin"]
    assert not found.pairs[0].toolchain.has_target("wasm32-unknown-unknown")
    chosen = found.choose()
    assert chosen.rustc == Path("/usr/bin/rustc") and chosen.origin == "/usr/bin"
    # cargo always gets the pair's rustc, whatever is first on PATH.
    assert chosen.cargo_env(env)["RUSTC"] == "/usr/bin/rustc"


def test_overrides_win_and_a_rustc_without_the_target_is_an_error(rustc_without_wasm: Path) -> None:
    env = {"PATH": os.environ["PATH"], "WASMFORGE_RUSTC": str(rustc_without_wasm)}
    with pytest.raises(ToolchainError, match="no Rust toolchain can build for wasm32-unknown-unknown") as caught:
        find_toolchain(env=env)
    assert "WASMFORGE_CARGO/WASMFORGE_RUSTC" in str(caught.value)
    assert "fix:" in str(caught.value) and "libstd-rust-dev-wasm32" in str(caught.value)


def test_override_pair_is_used() -> None:
    real = find_toolchain()
    env = {"PATH": "/nonexistent", "WASMFORGE_CARGO": str(real.cargo), "WASMFORGE_RUSTC": str(real.rustc)}
    chosen = find_toolchain(env=env)
    assert (chosen.cargo, chosen.rustc, chosen.origin) == (real.cargo, real.rustc, "WASMFORGE_CARGO/WASMFORGE_RUSTC")


def test_an_override_that_does_not_exist_is_named() -> None:
    with pytest.raises(ToolchainError, match="rustc not found at /nope/rustc"):
        find_toolchain(env={"PATH": "/usr/bin", "WASMFORGE_RUSTC": "/nope/rustc"})


@pytest.mark.cargo
def test_build_with_a_rustc_without_the_target_is_one_line_exit_3(demo, rustc_without_wasm: Path) -> None:
    result = run_cli("build", cwd=demo.root, env={"WASMFORGE_RUSTC": str(rustc_without_wasm)})
    assert_one_line_error(result, 3, "no Rust toolchain can build for wasm32-unknown-unknown", "fix:")


def test_doctor_reports_the_toolchain_and_exits_0() -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    toolchain = find_toolchain()
    assert str(toolchain.cargo) in result.stdout and str(toolchain.rustc) in result.stdout
    assert "target wasm32-unknown-unknown  installed" in result.stdout
    assert "target wasm32-wasi" in result.stdout
    assert "linker" in result.stdout and "rust-lld" in result.stdout
    assert "crates" in result.stdout


def test_doctor_json() -> None:
    result = run_cli("doctor", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"] is True
    names = {check["name"] for check in report["checks"]}
    assert {"cargo", "rustc", "target wasm32-unknown-unknown", "target wasm32-wasi", "linker", "crates"} <= names
    assert "wasm32-unknown-unknown" in report["toolchain"]["targets"]


def test_doctor_exits_1_with_the_fix_when_no_toolchain_works(rustc_without_wasm: Path) -> None:
    result = run_cli("doctor", env={"WASMFORGE_RUSTC": str(rustc_without_wasm)})
    assert result.returncode == 1
    assert "MISSING" in result.stdout and "toolchain" in result.stdout
    assert "apt-get install rustc cargo libstd-rust-dev-wasm32 lld" in result.stdout
    assert "Traceback" not in result.stderr


def test_debian_toolchain_builds_from_the_debian_registry(tmp_path: Path) -> None:
    toolchain = find_toolchain()
    settings = Settings(root=tmp_path, plugin_crates=("x-plugin",))
    argv = build_argv(Cargo.for_settings(settings, toolchain), settings.target, ["x-plugin"])
    assert argv[1:5] == ["build", "--target", "wasm32-unknown-unknown", "--message-format=json-render-diagnostics"]
    has_debian = 'source.debian.directory="/usr/share/cargo/registry"' in argv
    assert has_debian == toolchain.is_debian
    forced = build_argv(Cargo.for_settings(dataclasses.replace(settings, offline=True), toolchain), settings.target,
                        ["x-plugin"])
    assert 'source.crates-io.replace-with="debian"' in forced and "net.offline=true" in forced


@pytest.mark.cargo
def test_an_offline_workspace_builds_with_plain_cargo(tmp_path: Path, shared_cargo_target: Path) -> None:
    """`new --offline` needs no hand edits: cargo itself, with no --config, builds it from Debian's registry."""
    toolchain = find_toolchain()
    if not toolchain.is_debian:
        pytest.skip("the offline registry is Debian's")
    assert run_cli("new", "offline-demo", "--offline", cwd=tmp_path).returncode == 0
    env = {**toolchain.cargo_env(), "CARGO_NET_OFFLINE": "true"}
    result = subprocess.run(
        [str(toolchain.cargo), "build", "--target", "wasm32-unknown-unknown", "-p", "offline-demo-plugin"],
        cwd=tmp_path / "offline-demo", env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert (shared_cargo_target / "wasm32-unknown-unknown/debug/offline_demo_plugin.wasm").is_file()


@pytest.mark.parametrize(
    ("installed", "asked", "used"),
    [
        (("wasm32-unknown-unknown", "wasm32-wasi"), "wasm32-wasi", "wasm32-wasi"),  # Debian 12, rustc 1.63
        (("wasm32-unknown-unknown", "wasm32-wasi"), "wasm32-wasip1", "wasm32-wasi"),
        (("wasm32-unknown-unknown", "wasm32-wasip1"), "wasm32-wasi", "wasm32-wasip1"),  # Debian 13, rustc 1.85
        (("wasm32-wasi", "wasm32-wasip1"), "wasm32-wasi", "wasm32-wasi"),  # Rust 1.78-1.83 have both
        (("wasm32-unknown-unknown",), "wasm32-wasi", "wasm32-wasi"),  # missing: named as asked
    ],
)
def test_wasi_and_wasip1_name_one_target(tmp_path: Path, installed: tuple[str, ...], asked: str, used: str) -> None:
    toolchain = Toolchain(cargo=Path("/usr/bin/cargo"), rustc=Path("/usr/bin/rustc"), rustc_version="rustc",
                          host="x86_64-unknown-linux-gnu", sysroot=Path("/usr"), targets=installed, origin="PATH")
    assert toolchain.rustc_target(asked) == used
    assert toolchain.has_target(asked) == (used in installed)
    settings = Settings(root=tmp_path, plugin_crates=("x-plugin",), target=asked)
    argv = build_argv(Cargo.for_settings(settings, toolchain), settings.target, ["x-plugin"])
    assert argv[argv.index("--target") + 1] == used


# ---- which compiler, and why (an older rustc chosen over the one first on PATH) -------------------


def _path_with_first(tmp_path: Path, rustc: Path) -> dict[str, str]:
    """A PATH whose first rustc is ``rustc`` (lacking the wasm32 std), then Debian's pair, as on these
    machines where rustup's toolchain comes first; rustup is on it too where it is installed."""
    if not probe(Path("/usr/bin/cargo"), Path("/usr/bin/rustc")).has_target("wasm32-unknown-unknown"):
        pytest.skip("needs Debian's rustc with the wasm32 std in /usr/bin")
    bin_dir = tmp_path / "pathbin"
    bin_dir.mkdir()
    (bin_dir / "rustc").symlink_to(rustc)
    (bin_dir / "cargo").symlink_to(shutil.which("cargo", path=str(rustc.parent)) or "/usr/bin/cargo")
    rustup = shutil.which("rustup")
    if rustup:
        (bin_dir / "rustup").symlink_to(rustup)
    return {"PATH": f"{bin_dir}:{_rust_lld_dir()}/usr/bin:/bin"}


def _rust_lld_dir() -> str:
    """Where the machine's rust-lld is, for a PATH: on Debian 13 the install script's link in /usr/local/bin."""
    found = shutil.which("rust-lld")
    if not found or Path(found).parent == Path("/usr/bin"):
        return ""
    directory = Path(found).parent
    # Only a directory that adds no rustc or cargo of its own: the tests choose those.
    return "" if (directory / "rustc").exists() or (directory / "cargo").exists() else f"{directory}:"


def test_a_pair_chosen_over_the_path_one_says_why(rustc_without_wasm: Path, tmp_path: Path) -> None:
    env = _path_with_first(tmp_path, rustc_without_wasm)
    chosen = survey(env).choose()
    skipped = probe(Path(env["PATH"].split(":")[0]) / "cargo", Path(env["PATH"].split(":")[0]) / "rustc")
    assert chosen.rustc == Path("/usr/bin/rustc")
    assert chosen.passed_over == PassedOver(skipped.rustc, skipped.rustc_version, "wasm32-unknown-unknown",
                                            rustup=shutil.which("rustup") is not None)
    assert chosen.choice_note() == (
        f"building with /usr/bin/rustc (rustc {release_of(chosen.rustc_version)}): rustc "
        f"{release_of(skipped.rustc_version)} first on PATH ({skipped.rustc}) has no wasm32-unknown-unknown std"
    )
    # Where Debian's pair is itself the one on PATH, nothing was passed over.
    plain = survey({"PATH": "/usr/bin:/bin"}).choose()
    assert plain.passed_over is None and plain.choice_note() is None


def test_the_fix_for_a_passed_over_rustc() -> None:
    with_rustup = PassedOver(Path("/home/me/.cargo/bin/rustc"), "rustc 1.95.0 (59807616e 2026-04-14)",
                             "wasm32-unknown-unknown", rustup=True)
    assert with_rustup.fix() == ("`rustup target add wasm32-unknown-unknown` to build with rustc 1.95.0, "
                                 "or set WASMFORGE_RUSTC (and WASMFORGE_CARGO) to choose a pair")
    without = PassedOver(Path("/opt/rust/bin/rustc"), "rustc 1.80.1", "wasm32-unknown-unknown")
    assert without.fix().startswith("install the wasm32-unknown-unknown std for /opt/rust/bin/rustc to build with rustc 1.80.1")


def test_doctor_warns_with_both_versions_and_the_fix(rustc_without_wasm: Path, tmp_path: Path) -> None:
    env = _path_with_first(tmp_path, rustc_without_wasm)
    chosen = survey(env).choose()
    assert chosen.passed_over is not None
    mine, theirs = release_of(chosen.rustc_version), release_of(chosen.passed_over.rustc_version)
    result = run_cli("doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr  # builds work: a warning, not a failure
    lines = result.stdout.splitlines()
    (warning,) = [line for line in lines if line.startswith("warn")]
    assert warning.split()[:2] == ["warn", "rustc"]
    assert f"/usr/bin/rustc (rustc {mine}" in warning  # Debian 13 adds its commit and "built from a source tarball"
    assert f"rustc {theirs} first on PATH ({chosen.passed_over.rustc}) has no wasm32-unknown-unknown std" in warning
    fix = lines[lines.index(warning) + 1].strip()
    assert fix == f"fix: {chosen.passed_over.fix()}"
    if shutil.which("rustup"):
        assert "`rustup target add wasm32-unknown-unknown`" in fix
    assert "WASMFORGE_RUSTC" in fix

    report = json.loads(run_cli("doctor", "--json", env=env).stdout)
    rustc_check = next(check for check in report["checks"] if check["name"] == "rustc")
    assert rustc_check["ok"] is True and rustc_check["warning"] is True and "WASMFORGE_RUSTC" in rustc_check["fix"]
    assert report["toolchain"]["passed_over"] == {"rustc": str(chosen.passed_over.rustc),
                                                  "rustc_version": chosen.passed_over.rustc_version,
                                                  "target": "wasm32-unknown-unknown"}


def test_doctor_does_not_warn_when_the_path_pair_builds() -> None:
    if not probe(Path("/usr/bin/cargo"), Path("/usr/bin/rustc")).has_target("wasm32-unknown-unknown"):
        pytest.skip("needs Debian's rustc with the wasm32 std in /usr/bin")
    result = run_cli("doctor", env={"PATH": f"{_rust_lld_dir()}/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("warn")]


@pytest.mark.cargo
def test_build_names_the_compiler_when_it_is_not_the_path_one(demo, rustc_without_wasm: Path, tmp_path: Path) -> None:
    env = _path_with_first(tmp_path, rustc_without_wasm)
    note = survey(env).choose().choice_note()
    result = run_cli("build", cwd=demo.root, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == note  # above what cargo prints
    assert result.stderr.count("building with") == 1
    assert result.stdout.startswith("built demo-plugin: ")
    quiet = run_cli("build", "-q", cwd=demo.root, env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")  # -q: no note, no `built` lines
    # The pair on PATH builds: nothing to say.
    plain = run_cli("build", cwd=demo.root, env={"PATH": "/usr/bin:/bin"})
    assert plain.returncode == 0 and "building with" not in plain.stderr


#: Code that needs a newer Rust than Debian's: let-else (Rust 1.65, newer than bookworm's 1.63) and
#: the `!` type, unstable in every stable Rust so far (so trixie's 1.85 fails on it too).
NEWER_RUST = '''

#[plugin_fn]
pub fn first_word(text: &str) -> String {
    let Some(word) = text.split_whitespace().next() else { return String::new() };
    word.to_string()
}

pub type Never = !;
'''


@pytest.mark.cargo
def test_an_unstable_feature_error_says_which_rustc_built_it(demo, rustc_without_wasm: Path, tmp_path: Path) -> None:
    from helpers import copy_workspace

    newer = copy_workspace(demo.root, tmp_path / "newer")
    lib = newer / "crates/demo-plugin/src/lib.rs"
    lib.write_text(lib.read_text() + NEWER_RUST)
    env = _path_with_first(tmp_path, rustc_without_wasm)
    chosen = survey(env).choose()
    assert chosen.passed_over is not None
    mine = release_of(chosen.rustc_version)

    result = run_cli("build", cwd=newer, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: build failed: error[E0658]: "), last
    if tuple(map(int, mine.split("."))) < (1, 65):
        assert "`let...else` statements are unstable" in result.stderr  # cargo's own diagnostics, streamed
    assert last.endswith(
        f"; rustc {mine} (/usr/bin/rustc) built this because rustc {release_of(chosen.passed_over.rustc_version)} "
        f"on PATH has no wasm32-unknown-unknown std: {chosen.passed_over.fix()}; or write code that rustc {mine} accepts"
    ), last
    # With no newer rustc around, it still names the compiler and what the code needs.
    alone = run_cli("build", cwd=newer, env={"PATH": "/usr/bin:/bin"})
    assert alone.stderr.strip().splitlines()[-1].endswith(
        f"; rustc {mine} built this: it needs a newer Rust, or code that rustc {mine} accepts")
