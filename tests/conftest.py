"""Shared fixtures. Real cargo builds are slow, so one scaffolded workspace is
built once per session and every workspace shares one cargo target directory
(its dependencies then compile once)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


@contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """Sets ``name`` for the duration, then puts back what was there."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def shared_cargo_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One CARGO_TARGET_DIR for the session (WASMFORGE_TEST_TARGET_DIR keeps it between runs)."""
    target = Path(os.environ.get("WASMFORGE_TEST_TARGET_DIR") or tmp_path_factory.mktemp("cargo-target"))
    with environment_variable("CARGO_TARGET_DIR", str(target)):
        yield target


@pytest.fixture(scope="session", autouse=True)
def private_module_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Compiled modules go to a cache of the session's own, never the user's ~/.cache/wasmforge."""
    directory = tmp_path_factory.mktemp("module-cache") / "wasmforge"
    with environment_variable("WASMFORGE_CACHE_DIR", str(directory)):
        yield directory


@dataclass(frozen=True)
class BuiltWorkspace:
    root: Path
    #: A copy of the first build's .wasm: copies of the workspace share the
    #: target dir and the crate name, so their builds rewrite ``artifact``.
    wasm: Path
    #: Where cargo wrote the .wasm.
    artifact: Path


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> BuiltWorkspace:
    """A workspace made by `wasmforge new demo` and built once, with the library API."""
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.scaffold import new_workspace

    root = tmp_path_factory.mktemp("ws") / "demo"
    new_workspace("demo", root)
    result = build(load_settings(root))
    (artifact,) = result.artifacts
    kept = tmp_path_factory.mktemp("demo-wasm") / artifact.path.name
    kept.write_bytes(artifact.path.read_bytes())
    return BuiltWorkspace(root=root, wasm=kept, artifact=artifact.path)


@pytest.fixture
def demo_plugin(demo: BuiltWorkspace) -> Iterator["object"]:
    import wasmforge

    with wasmforge.load(demo.wasm) as plugin:
        yield plugin


PLUGINS = Path(__file__).parent / "plugins"


def scaffold_with_plugin(base: Path, name: str, source: Path, target: Optional[str] = None) -> BuiltWorkspace:
    """`wasmforge new NAME` with the plugin's lib.rs replaced by ``source``, built once."""
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.scaffold import new_workspace

    root = base / name
    new_workspace(name, root)
    (root / f"crates/{name}-plugin/src/lib.rs").write_text(source.read_text())
    settings = load_settings(root, {"target": target} if target else None)
    (artifact,) = build(settings).artifacts
    return BuiltWorkspace(root=root, wasm=artifact.path, artifact=artifact.path)


@pytest.fixture(scope="session")
def boundary(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> BuiltWorkspace:
    """The plugin in tests/plugins/boundary.rs: every type, error and host function."""
    return scaffold_with_plugin(tmp_path_factory.mktemp("ws"), "boundary", PLUGINS / "boundary.rs")
