"""What every command shares: --help with an example, -q, -v, colour only on a
terminal and never with NO_COLOR, --version, and a type-checked package."""

from __future__ import annotations

import os
import re
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, python_path, run_cli

COMMANDS = ["new", "add", "build", "call", "inspect", "chain", "watch", "test", "doctor"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: wasmforge {command}")
    assert "example" in result.stdout.lower()


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    listed = re.findall(r"^    (\w+) {2,}\S", result.stdout, flags=re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
    assert "Exit codes: 0 ok, 1 failed" in result.stdout


def test_version() -> None:
    from wasmforge import __version__

    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"wasmforge {__version__}\n")


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2 and "usage: wasmforge" in result.stderr


def run_with_terminal_stderr(*args: str, env: dict, cwd: Path) -> bytes:
    """Runs the CLI with stderr on a pseudo-terminal; returns what it wrote there.

    NO_COLOR (and FORCE_COLOR) from the suite's own environment are left out: only ``env`` decides.
    """
    leader, follower = pty.openpty()
    inherited = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env = {**inherited, "PYTHONPATH": python_path(REPO),
                "TERM": "xterm", **env}
    process = subprocess.Popen([sys.executable, "-m", "wasmforge", *args], cwd=cwd, env=full_env,
                               stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks)


def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    env_without = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = run_with_terminal_stderr("build", env={}, cwd=tmp_path)
    assert b"\x1b[1;31merror\x1b[0m: " in coloured
    plain = run_with_terminal_stderr("build", env={"NO_COLOR": "1"}, cwd=tmp_path)
    assert b"\x1b[" not in plain and plain.startswith(b"error: ")
    # An empty NO_COLOR does not count (no-color.org); TERM=dumb does.
    assert b"\x1b[1;31merror" in run_with_terminal_stderr("build", env={"NO_COLOR": ""}, cwd=tmp_path)
    assert b"\x1b[" not in run_with_terminal_stderr("build", env={"TERM": "dumb"}, cwd=tmp_path)
    piped = subprocess.run([sys.executable, "-m", "wasmforge", "build"], cwd=tmp_path, capture_output=True,
                           env={**env_without, "PYTHONPATH": python_path(REPO)})
    assert b"\x1b[" not in piped.stderr and piped.stderr.startswith(b"error: ")


def test_quiet_prints_only_results_and_errors(tmp_path: Path) -> None:
    loud = run_cli("new", "chatty", cwd=tmp_path)
    assert "created workspace" in loud.stderr
    quiet = run_cli("-q", "new", "hushed", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert (tmp_path / "hushed/Cargo.toml").is_file()


@pytest.mark.cargo
def test_verbose_shows_cargo_where_call_is_otherwise_silent(demo) -> None:
    silent = run_cli("call", "add", "1", "2", cwd=demo.root)
    assert (silent.stdout, silent.stderr) == ("3\n", "")
    verbose = run_cli("-v", "call", "add", "1", "2", cwd=demo.root)
    assert verbose.stdout == "3\n" and "Finished" in verbose.stderr


def test_py_typed_ships_so_users_checkers_see_the_types() -> None:
    """(mypy --strict on the package is a step of its own in .ci/run, as the README says.)"""
    assert (REPO / "wasmforge/py.typed").is_file()
