"""A non-editable install into a fresh venv, used from another directory,
scaffolds and builds: the templates really ship inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import REPO


@pytest.mark.timeout(900)
def test_wheel_install_scaffolds_builds_and_calls(tmp_path: Path, shared_cargo_target: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin/python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True, text=True, timeout=800,
    )
    assert install.returncode == 0, install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wasmforge = str(env_dir / "bin/wasmforge")

    def run(*args: str, cwd: Path = elsewhere) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([wasmforge, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=800)

    located = subprocess.run([str(python), "-c", "import wasmforge.workspace.scaffold as s; print(s.templates_root())"],
                             cwd=elsewhere, env=env, capture_output=True, text=True)
    assert located.stdout.strip().startswith(str(env_dir)), located.stdout + located.stderr

    assert run("new", "wheelie").returncode == 0
    assert (elsewhere / "wheelie/.gitignore").is_file()
    built = run("build", cwd=elsewhere / "wheelie")
    assert built.returncode == 0, built.stderr
    called = run("call", "add", "1", "2", cwd=elsewhere / "wheelie")
    assert called.stdout == "3\n", called.stderr
    as_module = subprocess.run([str(python), "-m", "wasmforge", "--version"], cwd=elsewhere, env=env,
                               capture_output=True, text=True)
    assert as_module.stdout.startswith("wasmforge ")
