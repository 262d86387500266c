"""Running the real `wasmforge` command in a subprocess, and checking its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

REPO = Path(__file__).resolve().parents[1]


def python_path(*first: Path) -> str:
    """PYTHONPATH with ``first`` ahead of the session's own (which records cargo runs: see conftest.py)."""
    return os.pathsep.join(filter(None, [*map(str, first), os.environ.get("PYTHONPATH")]))


def run_cli(
    *args: str,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 600,
) -> "subprocess.CompletedProcess[str]":
    """`python -m wasmforge ARGS` with this checkout's package, as a user would run it."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = python_path(REPO)
    full_env.pop("NO_COLOR", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "wasmforge", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: "subprocess.CompletedProcess[str]", exit_code: int, *fragments: str) -> str:
    """The command failed with ``exit_code``, one line on stderr naming ``fragments``, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line of error, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def copy_workspace(source: Path, destination: Path) -> Path:
    """A copy of a workspace whose files are newer than anything built from the original.

    Every workspace shares one cargo target directory, where same-named crates
    share artifacts; shutil.copytree's preserved mtimes would let cargo treat
    the copy's sources as already built, and reuse the original's binaries.
    """
    import shutil

    shutil.copytree(source, destination, copy_function=shutil.copy,
                    ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    return destination
