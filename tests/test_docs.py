"""Every code example in README.md and docs/ runs, so none can go stale.

Each fenced block is run in document order, sh and python alike, in one
directory per document that holds a built example-workspace (as a checkout
does after the README's first command), unless the line before it says how
else to check it:

- ``<!-- doc-test: skip (reason) -->``: not run; the reason says why (and what tests it instead);
- ``<!-- doc-test: plugin -->``: Rust code, compiled as a plugin crate's lib.rs;
- ``<!-- doc-test: wasmforge.toml -->``: TOML, loaded as a workspace's settings.

A ```python or ```sh block with no marker runs; a ```rust or ```toml block
with no marker fails this test, so no example escapes checking by accident.
Other languages (text, json: output shapes) are documentation, not examples.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from helpers import REPO, copy_workspace, python_path

CHECKED = ("python", "sh", "rust", "toml")
_FENCE = re.compile(r"(?:<!-- doc-test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>[\w.-]*)\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    lang: str
    body: str
    marker: Optional[str]

    def __str__(self) -> str:
        return f"{self.document}:{self.line} ({self.lang})"


def blocks(document: str) -> list[Block]:
    text = (REPO / document).read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start("lang")) + 1
        found.append(Block(document, line, match.group("lang"), match.group("body"), match.group("marker")))
    return found


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_example_is_checked(document: str) -> None:
    for block in blocks(document):
        if block.lang in ("rust", "toml") and block.marker is None:
            pytest.fail(f"{block}: mark it <!-- doc-test: plugin|wasmforge.toml|skip (reason) -->")
        if block.marker is not None and not (
            block.marker in ("plugin", "wasmforge.toml") or re.fullmatch(r"skip \(.+\)", block.marker)
        ):
            pytest.fail(f"{block}: unknown doc-test marker {block.marker!r}")


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `wasmforge` command on PATH that runs this checkout, as `pip install` would give."""
    folder = tmp_path_factory.mktemp("bin")
    command = folder / "wasmforge"
    command.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m wasmforge \"$@\"\n")
    command.chmod(command.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    """example-workspace, built, with target/ where its docs expect it."""
    root = copy_workspace(REPO / "example-workspace", tmp_path_factory.mktemp("docs") / "example-workspace")
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings

    build(load_settings(root))
    (root / "target").symlink_to(shared_cargo_target)
    return root


def where_to_run(folder: Path, example: Path) -> Path:
    """Examples run as if in a checkout: next to a built example-workspace."""
    folder.mkdir()
    (folder / "example-workspace").symlink_to(example)
    return folder


def script_for(document: str, runnable: list[Block], folder: Path) -> str:
    """One bash script: the blocks in order, python ones through the interpreter."""
    parts = ["set -euo pipefail"]
    for index, block in enumerate(runnable):
        parts.append(f"echo '>>> {block}' >&2")
        if block.lang == "python":
            source = folder / f"block{index}.py"
            source.write_text(block.body)
            parts.append(f"{sys.executable} {source}")
        else:
            parts.append(block.body)
    return "\n".join(parts) + "\n"


#: Run as a newcomer runs it: in a checkout where README's first command made .venv and built the example.
IN_A_FRESH_VENV = "docs/GETTING_STARTED.md"


@pytest.mark.cargo
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d != IN_A_FRESH_VENV])
def test_examples_run(document: str, tmp_path: Path, bin_dir: Path, request: pytest.FixtureRequest) -> None:
    runnable = [b for b in blocks(document) if b.marker is None and b.lang in ("python", "sh")]
    checks = [b for b in blocks(document) if b.marker in ("plugin", "wasmforge.toml")]
    if not runnable and not checks:
        pytest.skip(f"{document} has no runnable examples")
    for block in checks:
        check_block(block, request, tmp_path)
    if not runnable:
        return
    cwd = where_to_run(tmp_path / "run", request.getfixturevalue("example_copy"))
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": python_path(REPO)}
    result = subprocess.run(["bash", "-c", script_for(document, runnable, scripts)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1100)
    assert result.returncode == 0, f"{document}'s examples failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"


def check_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if block.marker == "wasmforge.toml":
        from wasmforge.workspace.settings import load_settings

        root = tmp_path / f"toml{block.line}"
        copy_workspace(REPO / "example-workspace", root)
        (root / "wasmforge.toml").write_text(block.body)
        load_settings(root)
        return
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.scaffold import new_workspace

    # A name of its own: same-named crates share artifacts in the shared target dir,
    # and this build must not replace another fixture's .wasm.
    name = f"doc{block.line}-{re.sub(r'[^a-z0-9]+', '-', block.document.lower()).strip('-')}"
    root = tmp_path / name
    new_workspace(name, root)
    (root / f"crates/{name}-plugin/src/lib.rs").write_text(block.body)
    build(load_settings(root))


def readme_first_command() -> str:
    """README's first command: install everything, build example-workspace, call it."""
    first = next(block for block in blocks("README.md") if block.lang == "sh")
    assert "./scripts/setup.sh" in first.body, first
    return first.body.strip()


def newcomer_env() -> dict[str, str]:
    """This environment without what the test run adds to Python (its venv, this checkout on PYTHONPATH);
    the shared cargo target dir and the private module cache stay, so builds are reused."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    return env


@pytest.fixture(scope="module")
def readme_checkout(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    """A copy of this checkout after README's first command, run as written: scripts/setup.sh
    (the toolchain is already here; .venv gets a plain, non-editable install), then
    example-workspace built and called."""
    checkout = tmp_path_factory.mktemp("newcomer") / "wasmforge"
    # shutil.copy gives the copies new mtimes: cargo must not take the original's builds as theirs.
    shutil.copytree(REPO, checkout, copy_function=shutil.copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "target", "Cargo.lock", "__pycache__", ".pytest_cache", ".mypy_cache", "*.egg-info"))
    result = subprocess.run(["bash", "-c", readme_first_command()], cwd=checkout, env=newcomer_env(),
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"README's first command failed:\n{result.stderr[-4000:]}"
    assert result.stdout.endswith("3\n"), result.stdout
    return checkout


@pytest.mark.cargo
@pytest.mark.timeout(2400)
def test_getting_started_runs_in_a_venv_made_as_the_readme_says(readme_checkout: Path, tmp_path: Path) -> None:
    """docs/GETTING_STARTED.md, in order, with only what `./scripts/setup.sh` installed: its step 1
    ends with `. .venv/bin/activate`, so every command and `python` come from that venv."""
    runnable = [b for b in blocks(IN_A_FRESH_VENV) if b.marker is None and b.lang in ("python", "sh")]
    assert any("wasmforge test" in block.body for block in runnable)
    parts = ["set -euo pipefail", ". .venv/bin/activate"]
    for index, block in enumerate(runnable):
        parts.append(f"echo '>>> {block}' >&2")
        if block.lang == "python":
            source = tmp_path / f"block{index}.py"
            source.write_text(block.body)
            parts.append(f"python {source}")
        else:
            parts.append(block.body)
    result = subprocess.run(["bash", "-c", "\n".join(parts) + "\n"], cwd=readme_checkout, env=newcomer_env(),
                            capture_output=True, text=True, timeout=2300)
    assert result.returncode == 0, f"{IN_A_FRESH_VENV} failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    assert "pytest: ok" in result.stdout  # step 5's `wasmforge test` ran the Python tests too


def test_the_tests_the_docs_name_exist() -> None:
    """docs/SECURITY.md (and any page) names the test that keeps each promise: `test_x.py::test_y`,
    or `::test_y` for another in the same file. A test renamed or moved must take the docs along."""
    import ast

    defined = {path.name: {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
               for path in (REPO / "tests").glob("test_*.py")}
    missing = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        module = None
        for found in re.finditer(r"(test_[a-z_0-9]+\.py)?::(test_\w+)", page.read_text()):
            module = found.group(1) or module
            if module not in defined or found.group(2) not in defined[module]:
                missing.append(f"{page.name}: {module}::{found.group(2)}")
    assert missing == []
