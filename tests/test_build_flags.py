"""The build flags: every command that builds takes the same ones (one argparse parent, one cargo argv
builder), each over its wasmforge.toml [build] key; pytest.ini's profiles follow wasmforge.toml unless set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, assert_one_line_error, python_path, run_cli
from wasmforge.cli.parser import BUILDING, build_parser
from wasmforge.cli.plugins import build_overrides
from wasmforge.errors import ConfigError
from wasmforge.workspace.cargo import Cargo
from wasmforge.workspace.scaffold import new_workspace
from wasmforge.workspace.settings import load_settings
from wasmforge.workspace.toolchain import find_toolchain

FLAGS = ["--debug", "--target", "wasm32-wasi", "-F", "a,b", "--features", "c d", "--no-default-features",
         "-p", "x", "-p", "y"]


@pytest.mark.parametrize("command", BUILDING)
def test_every_building_command_takes_every_build_flag(command: str) -> None:
    positional = {"call": ["add"], "chain": ["preprocess"]}.get(command, [])
    args = build_parser().parse_args([command, *FLAGS, *positional])
    assert build_overrides(args) == {"profile": "debug", "target": "wasm32-wasi", "features": ["a", "b", "c", "d"],
                                     "no_default_features": True}
    assert args.package == ["x", "y"]
    assert build_overrides(build_parser().parse_args([command, "--release", *positional])) == {"profile": "release"}


@pytest.mark.parametrize("command", BUILDING)
def test_release_and_debug_together_are_refused(command: str, tmp_path: Path) -> None:
    assert_one_line_error(run_cli(command, "--release", "--debug", cwd=tmp_path), 2,
                          "argument --debug: not allowed with argument --release")


def test_build_keys_in_wasmforge_toml_and_flags_over_them(tmp_path: Path) -> None:
    new_workspace("keys", tmp_path / "keys", offline=False, lock=False)
    config = tmp_path / "keys/wasmforge.toml"
    config.write_text(config.read_text().replace("features = []", 'features = ["keys-plugin/fast"]')
                      .replace("no_default_features = false", "no_default_features = true")
                      .replace('profile = "debug"', 'profile = "release"'))
    settings = load_settings(tmp_path / "keys")
    assert (settings.features, settings.no_default_features, settings.profile) == (("keys-plugin/fast",), True, "release")
    assert load_settings(tmp_path / "keys", {"features": ["x"], "profile": "debug"}).features == ("x",)
    config.write_text(config.read_text().replace('features = ["keys-plugin/fast"]', 'features = ["no good"]'))
    with pytest.raises(ConfigError, match=r"\[build\] features: 'no good' is not a cargo feature name"):
        load_settings(tmp_path / "keys")


def test_one_cargo_argv_builder_adds_features_where_cargo_compiles(tmp_path: Path) -> None:
    cargo = Cargo(tmp_path, find_toolchain(), features=("a", "b/c"), no_default_features=True)
    for command in ("build", "run", "test"):
        argv = cargo.argv(command, crates=["x"])
        assert argv[argv.index("--features"):argv.index("--no-default-features") + 1] == [
            "--features", "a,b/c", "--no-default-features"]
    assert "--features" not in cargo.argv("generate-lockfile")
    assert cargo.argv("run", features=["x/y"])[cargo.argv("run", features=["x/y"]).index("--features") + 1] == "x/y"


def pytest_in(root: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, env={**__import__("os").environ,
                                                               "PYTHONPATH": python_path(REPO)})


def test_pytest_profiles_follow_wasmforge_toml_unless_set(tmp_path: Path) -> None:
    root = tmp_path / "prof"
    new_workspace("prof", root, offline=False, lock=False)
    tests = root / "crates/prof-plugin/tests"
    for old in tests.iterdir():
        old.unlink()
    (tests / "test_profile.py").write_text(
        "import os\n\ndef test_profile(wasm_profile):\n    assert wasm_profile == os.environ['EXPECTED']\n")
    config = root / "wasmforge.toml"
    config.write_text(config.read_text().replace('profile = "debug"', 'profile = "release"'))

    def check(expected: str, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                              capture_output=True, text=True,
                              env={**__import__("os").environ, "PYTHONPATH": python_path(REPO), "EXPECTED": expected})
        assert done.returncode == 0, done.stdout + done.stderr

    check("release")  # pytest.ini leaves wasmforge_profiles unset: wasmforge.toml's
    check("debug", "--wasmforge-profile", "debug")
    ini = root / "pytest.ini"
    ini.write_text(ini.read_text().replace("# wasmforge_profiles = debug release", "wasmforge_profiles = debug"))
    check("debug")  # set in pytest.ini: that
