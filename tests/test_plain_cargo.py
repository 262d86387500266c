"""A new workspace works with plain `cargo` on the machine where it was made: the commands
its README gives, and `cargo metadata` (what rust-analyzer runs as soon as an editor opens
the folder), with the cargo first on PATH and with Debian's, with no flags and no network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli
from wasmforge.workspace.lockfile import lock_version
from wasmforge.workspace.toolchain import uses_debian_registry


def readme_cargo_commands(readme: str) -> list[str]:
    """The `cargo ...` lines of a generated README's indented code, without their comments."""
    return [line.split("#", 1)[0].strip() for line in readme.splitlines() if line.startswith("    cargo ")]


def cargos() -> list[tuple[str, dict[str, str]]]:
    """Each distinct plain cargo here, with the environment a user runs it in (its own rustc first on PATH)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("RUSTC", "RUSTDOC", "CARGO", "CARGO_NET_OFFLINE", "WASMFORGE_OFFLINE")}
    found: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    for label, path in (("cargo on PATH", base["PATH"]), ("Debian's cargo", "/usr/bin:/bin")):
        cargo = shutil.which("cargo", path=path)
        if cargo and os.path.realpath(cargo) not in seen:
            seen.add(os.path.realpath(cargo))
            found.append((label, {**base, "PATH": path}))
    return found


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    if not uses_debian_registry():
        pytest.skip("here wasmforge takes crates from crates.io, and so does plain cargo")
    base = tmp_path_factory.mktemp("plain")
    created = run_cli("new", "plain", cwd=base)
    assert created.returncode == 0, created.stderr
    return base / "plain"


def test_the_readme_names_the_plain_cargo_commands(plain: Path) -> None:
    assert readme_cargo_commands((plain / "README.md").read_text()) == [
        "cargo run -p plain-runner -- add 1 2",
        "cargo test",
    ]


@pytest.mark.cargo
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("label, env", cargos(), ids=[label for label, _ in cargos()])
def test_plain_cargo_runs_the_readme_commands_offline(plain: Path, label: str, env: dict[str, str]) -> None:
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=plain, env=env,
                              capture_output=True, text=True, timeout=600)
    assert metadata.returncode == 0, f"{label}: {metadata.stderr}"
    assert {p["name"] for p in json.loads(metadata.stdout)["packages"]} >= {"plain-plugin", "plain-runner", "serde"}
    assert lock_version((plain / "Cargo.lock").read_text()) == 3  # still readable by the older cargo

    for command in readme_cargo_commands((plain / "README.md").read_text()):
        result = subprocess.run(command.split(), cwd=plain, env=env, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"{label}: `{command}` failed:\n{result.stderr[-3000:]}"
        if command.startswith("cargo run"):
            assert result.stdout == "3\n", f"{label}: {result.stdout!r}"
        else:
            assert re.search(r"test result: ok\. [1-9]\d* passed", result.stdout), f"{label}: {result.stdout[-2000:]}"
    # And wasmforge builds after plain cargo, whichever cargo that was.
    built = run_cli("build", "-q", cwd=plain)
    assert built.returncode == 0, built.stderr
