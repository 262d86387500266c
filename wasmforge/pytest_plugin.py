"""pytest fixtures for testing wasmforge plugins from Python.

Installed with wasmforge and registered through the ``pytest11`` entry point,
so a workspace's tests just use them::

    def test_add(wasm_plugin):
        assert wasm_plugin.add(1, 2) == 3

The workspace is the one holding the test file (or ``--wasmforge-workspace``);
its plugin crates are built once per session and profile, with its
wasmforge.toml's settings (target, features). Set
``wasmforge_profiles = debug release`` in pytest.ini (or pass
``--wasmforge-profile`` for each) to run every plugin test against both builds;
unset, the profile is wasmforge.toml's ``[build] profile``.

Fixtures:
- ``wasm_plugin``: the plugin crate the test file is in (its directory's),
  else the workspace's one plugin crate, loaded fresh for each test (with
  several, a test outside them names one: ``wasm_plugins[...]``);
- ``wasm_plugins``: crate name -> loaded plugin, for every plugin crate;
- ``load_wasm_plugin``: a factory, ``load_wasm_plugin(crate=None, **load_options)``,
  for host functions and limits;
- ``wasm_artifacts``: crate name -> .wasm path, built for the test's profile;
- ``wasm_profile``: "debug" or "release";
- ``wasm_workspace``: the workspace root.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import pytest

if TYPE_CHECKING:
    from .runtime.plugin import Plugin

PROFILES = ("debug", "release")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wasmforge", "wasmforge plugin tests")
    group.addoption("--wasmforge-workspace", metavar="DIR", help="the wasmforge workspace whose plugins to test")
    group.addoption("--wasmforge-profile", action="append", choices=PROFILES, metavar="PROFILE",
                    help="test against this build profile (repeat for both; default: wasmforge_profiles or debug)")
    group.addoption("--wasmforge-target", metavar="TARGET", help="build for this wasm target (default: wasmforge.toml's)")
    group.addoption("--wasmforge-feature", action="append", metavar="FEATURE",
                    help="build with this cargo feature (repeatable; default: wasmforge.toml's [build] features)")
    group.addoption("--wasmforge-no-default-features", action="store_true", default=None,
                    help="build without default features")
    parser.addini("wasmforge_profiles", "build profiles plugin tests run against (default: wasmforge.toml's)",
                  type="args")


def _profiles(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--wasmforge-profile") or config.getini("wasmforge_profiles") or [_toml_profile(config)]
    unknown = [p for p in chosen if p not in PROFILES]
    if unknown:
        raise pytest.UsageError(f"wasmforge_profiles: unknown profile(s) {', '.join(unknown)}; use debug or release")
    return list(dict.fromkeys(chosen))


def _toml_profile(config: pytest.Config) -> str:
    """wasmforge.toml's [build] profile, for the workspace the tests are in (debug where there is none)."""
    from .errors import WasmforgeError
    from .workspace.settings import find_workspace, load_settings

    option = config.getoption("--wasmforge-workspace")
    try:
        return load_settings(find_workspace(Path(option) if option else config.rootpath)).profile
    except WasmforgeError:
        return "debug"


def _build_overrides(config: pytest.Config) -> dict[str, Any]:
    """What the command line overrides of wasmforge.toml's build settings (`wasmforge test`'s flags)."""
    given = {"target": config.getoption("--wasmforge-target"), "features": config.getoption("--wasmforge-feature"),
             "no_default_features": config.getoption("--wasmforge-no-default-features")}
    return {key: value for key, value in given.items() if value is not None}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wasm_profile" in metafunc.fixturenames:
        profiles = _profiles(metafunc.config)
        if len(profiles) > 1:
            metafunc.parametrize("wasm_profile", profiles, scope="session")


class _BuildCache:
    """One build per (workspace, profile) per session; cargo does the rest incrementally."""

    def __init__(self, overrides: Optional[dict[str, Any]] = None) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[Path, str], dict[str, Path]] = {}
        self._overrides = overrides or {}

    def artifacts(self, root: Path, profile: str) -> dict[str, Path]:
        from .workspace.build import build
        from .workspace.settings import load_settings

        with self._lock:
            key = (root, profile)
            if key not in self._built:
                result = build(load_settings(root, {**self._overrides, "profile": profile}))
                self._built[key] = {artifact.crate: artifact.path for artifact in result.artifacts}
            return self._built[key]


@pytest.fixture(scope="session")
def _wasmforge_builds(pytestconfig: pytest.Config) -> _BuildCache:
    return _BuildCache(_build_overrides(pytestconfig))


@pytest.fixture(scope="module")
def wasm_workspace(request: pytest.FixtureRequest) -> Path:
    """The workspace root: --wasmforge-workspace, else the one holding the test file."""
    from .workspace.settings import find_workspace
    from .errors import WorkspaceNotFound

    option = request.config.getoption("--wasmforge-workspace")
    start = Path(option) if option else Path(str(request.path)).parent
    try:
        return find_workspace(start)
    except WorkspaceNotFound as error:
        pytest.fail(f"wasmforge fixtures: {error}", pytrace=False)


@pytest.fixture(scope="session")
def wasm_profile(pytestconfig: pytest.Config) -> str:
    """The build profile; with several configured, pytest_generate_tests parametrizes it."""
    return _profiles(pytestconfig)[0]


@pytest.fixture
def wasm_artifacts(wasm_workspace: Path, wasm_profile: str, _wasmforge_builds: _BuildCache) -> dict[str, Path]:
    """Crate name -> .wasm path for the workspace's plugin crates, built once per session."""
    from .errors import WasmforgeError

    try:
        return _wasmforge_builds.artifacts(wasm_workspace, wasm_profile)
    except WasmforgeError as error:
        pytest.fail(f"wasmforge fixtures: {error}", pytrace=False)


def _crate_holding(test_file: Path, root: Path, crates: "list[str]") -> Optional[str]:
    """Of ``crates``, the one whose directory holds ``test_file``: a plugin crate's own tests, whatever its name."""
    from .workspace.manifest import workspace_crates

    members = workspace_crates(root)
    holding = [c for c in crates if c in members and members[c].resolve() in test_file.resolve().parents]
    return max(holding, key=lambda c: len(members[c].resolve().parts)) if holding else None


@pytest.fixture
def load_wasm_plugin(wasm_artifacts: dict[str, Path], wasm_workspace: Path,
                     request: pytest.FixtureRequest) -> Iterator[Callable[..., "Plugin"]]:
    """``load_wasm_plugin(crate=None, **load_options)``: the plugins it loads close after the test.

    Without ``crate``: the plugin crate the test file is in, else the only one.
    """
    from .runtime.plugin import load

    loaded: list["Plugin"] = []

    def load_plugin(crate: Optional[str] = None, **options: Any) -> "Plugin":
        if crate is None and len(wasm_artifacts) != 1:
            crate = _crate_holding(Path(str(request.path)), wasm_workspace, sorted(wasm_artifacts))
        if crate is None:
            if len(wasm_artifacts) != 1:
                pytest.fail(
                    f"the workspace has several plugin crates ({', '.join(sorted(wasm_artifacts))}); "
                    "put the test in that crate's directory (crates/NAME/tests/), or name one: "
                    "load_wasm_plugin('crate-name') or wasm_plugins['crate-name']",
                    pytrace=False,
                )
            crate = next(iter(wasm_artifacts))
        if crate not in wasm_artifacts:
            pytest.fail(f"no plugin crate {crate!r}; built: {', '.join(sorted(wasm_artifacts))}", pytrace=False)
        plugin = load(wasm_artifacts[crate], **options)
        loaded.append(plugin)
        return plugin

    yield load_plugin
    for plugin in loaded:
        plugin.close()


@pytest.fixture
def wasm_plugin(load_wasm_plugin: Callable[..., "Plugin"]) -> "Plugin":
    """The workspace's plugin, freshly loaded for this test."""
    return load_wasm_plugin()


@pytest.fixture
def wasm_plugins(load_wasm_plugin: Callable[..., "Plugin"], wasm_artifacts: dict[str, Path]) -> dict[str, "Plugin"]:
    """Every plugin crate of the workspace, loaded: crate name -> plugin."""
    return {crate: load_wasm_plugin(crate) for crate in sorted(wasm_artifacts)}
