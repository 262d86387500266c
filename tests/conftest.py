"""Shared fixtures. Real cargo builds are slow, so one scaffolded workspace is
built once per session and every workspace shares one cargo target directory
(its dependencies then compile once).

Every test that runs cargo (itself, through a fixture, or through a process it
starts) must carry ``@pytest.mark.cargo``, so that ``pytest -m "not cargo"`` is
the fast suite: a test that runs cargo without the marker fails (see
:class:`_CargoMarkerCheck`)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

# ---- the cargo marker, checked ------------------------------------------------------------------
#
# Each cargo run, in this process or any Python process a test starts, is recorded in one file
# (tests/cargo_audit/sitecustomize.py installs the recorder in the children). A test must carry the
# marker if cargo ran while it set up, ran or tore down, or if it uses a fixture that ran cargo.

_CARGO_AUDIT = Path(__file__).parent / "cargo_audit"
_CARGO_START = pytest.StashKey[int]()
#: Fixtures (their definitions: several modules define a `workspace`) that ran cargo while they set up:
#: every test using one needs the marker, even once it is built.
_CARGO_FIXTURES: set[int] = set()


def _cargo_runs() -> list[str]:
    try:
        return Path(os.environ["WASMFORGE_TEST_CARGO_LOG"]).read_text(encoding="utf-8").splitlines()
    except (KeyError, OSError):
        return []


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    log = Path(tempfile.mkdtemp(prefix="wasmforge-cargo-runs-")) / "runs.log"
    log.touch()
    os.environ["WASMFORGE_TEST_CARGO_LOG"] = str(log)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_CARGO_AUDIT), os.environ.get("PYTHONPATH")]))
    import importlib.util

    # This process too: loading the module installs the recorder, as it does in each child at start-up.
    spec = importlib.util.spec_from_file_location("wasmforge_cargo_audit", _CARGO_AUDIT / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    config.pluginmanager.register(_CargoMarkerCheck(), "wasmforge-cargo-marker-check")


class _CargoMarkerCheck:
    """The hooks, as a plugin of their own: a conftest's hooks would not see session-scoped fixtures set up."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[_CARGO_START] = len(_cargo_runs())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object]) -> Iterator[None]:
        before = len(_cargo_runs())
        yield
        if len(_cargo_runs()) > before:
            _CARGO_FIXTURES.add(id(fixturedef))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        if call.when != "teardown" or item.get_closest_marker("cargo") is not None or not report.passed:
            return
        runs = _cargo_runs()[item.stash.get(_CARGO_START, 0):]
        used = item._fixtureinfo.name2fixturedefs  # pytest's own record of the definitions this test uses
        fixtures = sorted(name for name, defs in used.items() if defs and id(defs[-1]) in _CARGO_FIXTURES)
        if runs or fixtures:
            why = f"it ran `{runs[0]}`" if runs else f"it uses {', '.join(fixtures)}, which ran cargo"
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid} runs cargo ({why}) but is not marked @pytest.mark.cargo"


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


@pytest.fixture(scope="session")
def watched_workspace(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    """`wasmforge new watched` with the add plugin of tests/watching.py, built once, for the watch tests."""
    from wasmforge.workspace.build import build
    from wasmforge.workspace.scaffold import new_workspace
    from wasmforge.workspace.settings import load_settings
    from watching import add_plugin_source

    root = tmp_path_factory.mktemp("watch") / "watched"
    new_workspace("watched", root)
    (root / "crates" / "watched-plugin" / "src" / "lib.rs").write_text(add_plugin_source(0))
    build(load_settings(root))
    return root


@pytest.fixture
def lib_rs(watched_workspace: Path) -> Iterator[Path]:
    """The watched plugin's lib.rs, answering add(1, 2) = 3 when the test starts, and again after it."""
    from watching import add_plugin_source

    path = watched_workspace / "crates" / "watched-plugin" / "src" / "lib.rs"
    path.write_text(add_plugin_source(0))
    yield path
    path.write_text(add_plugin_source(0))


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


@pytest.fixture(scope="session")
def typed(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> BuiltWorkspace:
    """The plugin in tests/plugins/typed.rs: doc comments, #[plugin_type] structs and enums, a serde error."""
    return scaffold_with_plugin(tmp_path_factory.mktemp("ws"), "typed", PLUGINS / "typed.rs")
