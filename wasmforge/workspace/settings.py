"""Workspace discovery and settings.

Settings are built once, from defaults < wasmforge.toml < environment <
command-line overrides, into one frozen :class:`Settings` that is passed down.
Every key in wasmforge.toml is checked: a typo is an error naming the key and
the keys that exist, not a silently ignored setting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import ConfigError, OptionError, WorkspaceNotFound
from ..limits import MAX_TIMEOUT, Limits
from . import tomlfile
from .manifest import is_cdylib, workspace_crates
from .toolchain import DEFAULT_TARGET, WASM_TARGETS, offline_from_env

CONFIG_FILE = "wasmforge.toml"
PROFILES = ("debug", "release")
#: Seconds a HotPlugin's (and `watch --call`'s) checks may run on a new version before it is refused.
DEFAULT_CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Settings:
    """Everything a build, call or watch needs to know about a workspace."""

    root: Path
    plugin_crates: tuple[str, ...]
    profile: str = "debug"
    target: str = DEFAULT_TARGET
    #: Force Debian's registry even when the toolchain is not Debian's.
    offline: bool = False
    #: Cargo features the plugin crates are built with (--features), and without their default ones.
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    #: Cargo's target directory for wasmforge's builds (CARGO_TARGET_DIR in the environment wins); None: cargo's own.
    target_dir: Optional[Path] = None
    debounce_ms: int = 50
    #: Sandbox limits for plugins the CLI loads ([limits] in wasmforge.toml), named as load() names them.
    timeout: Optional[float] = None
    memory_limit: Optional[Union[int, str]] = None
    fuel: Optional[int] = None
    #: Watch by polling file metadata instead of native file events (inotify and the like).
    poll: bool = False
    poll_interval_ms: int = 300
    #: Seconds the checks (`watch --call`, HotPlugin's ``check=``) may run on a new version; None: no limit.
    check_timeout: Optional[float] = DEFAULT_CHECK_TIMEOUT

    def limit_options(self) -> dict[str, Any]:
        """The [limits] that are set, as :func:`wasmforge.load` options."""
        given = {"timeout": self.timeout, "memory_limit": self.memory_limit, "fuel": self.fuel}
        return {option: value for option, value in given.items() if value is not None}

    def limits(self) -> Limits:
        """The sandbox limits for plugins loaded with these settings."""
        return Limits.from_options(self.limit_options())


#: How a TOML user would name each type (not Python's names: "a int", "True").
_TOML_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", list: "a list"}


def toml_repr(value: Any) -> str:
    """A value roughly as TOML writes it (true, not True), for errors about a TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


#: (table, key) -> (attribute, type(s), allowed values or None). The schema of wasmforge.toml; [limits]
#: keys are named as load()'s options (and the flags), with ``memory`` kept as memory_limit's old spelling.
_SCHEMA: dict[tuple[str, str], tuple[str, Any, Optional[tuple[Any, ...]]]] = {
    ("plugin", "crates"): ("plugin_crates", list, None),
    ("build", "profile"): ("profile", str, PROFILES),
    ("build", "target"): ("target", str, WASM_TARGETS),
    ("build", "offline"): ("offline", bool, None),
    ("build", "features"): ("features", list, None),
    ("build", "no_default_features"): ("no_default_features", bool, None),
    ("build", "target_dir"): ("target_dir", str, None),
    ("watch", "debounce_ms"): ("debounce_ms", int, None),
    ("limits", "timeout"): ("timeout", (int, float), None),
    ("limits", "memory_limit"): ("memory_limit", (int, str), None),
    ("limits", "memory"): ("memory_limit", (int, str), None),  # the old spelling, still read (see OLD_SPELLINGS)
    ("limits", "fuel"): ("fuel", int, None),
    ("watch", "poll"): ("poll", bool, None),
    ("watch", "poll_interval_ms"): ("poll_interval_ms", int, None),
    ("watch", "check_timeout"): ("check_timeout", (int, float), None),
}


#: A cargo feature, or CRATE/FEATURE (a dependency's feature).
_FEATURE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+.-]*(/[A-Za-z0-9_][A-Za-z0-9_+.-]*)?$")

#: Keys wasmforge.toml still accepts under the name they had before, each with its name now.
OLD_SPELLINGS = {("limits", "memory"): ("limits", "memory_limit")}


def find_workspace(start: Union[str, "os.PathLike[str]"]) -> Path:
    """The nearest directory at or above ``start`` holding wasmforge.toml."""
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        config = directory / CONFIG_FILE
        try:
            if config.is_file():
                return directory
            if config.exists() and not config.is_dir():  # a FIFO or device by that name: say so, do not skip it
                tomlfile.read_text(config)
        except OSError as error:  # a directory that may not be searched
            raise ConfigError(f"cannot look for {CONFIG_FILE} in {directory}: {error.strerror}") from error
    raise WorkspaceNotFound(
        f"{start} is not inside a wasmforge workspace (no {CONFIG_FILE} here or above); "
        "create one with `wasmforge new NAME`, or pass -C DIR"
    )


def load_settings(
    root: Path,
    overrides: Optional[Mapping[str, Any]] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Settings:
    """Settings for the workspace at ``root``: defaults < wasmforge.toml < env < overrides."""
    env = os.environ if env is None else env
    path = root / CONFIG_FILE
    values: dict[str, Any] = {}
    for (table, key), value in _read_toml(path).items():
        values[_SCHEMA[(table, key)][0]] = tuple(value) if isinstance(value, list) else value
    if "target_dir" in values:
        values["target_dir"] = _target_dir(root, values["target_dir"], path)
    if offline_from_env(env):
        values["offline"] = True
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values["features"] = tuple(values.get("features", ()))
    bad = [feature for feature in values["features"] if not _FEATURE.match(feature)]
    if bad:
        raise ConfigError(f"{path}: [build] features: {bad[0]!r} is not a cargo feature name ([build] features or -F: letters, digits, _ - +, "
                          "and CRATE/FEATURE for a dependency's)")
    if "plugin_crates" not in values:
        values["plugin_crates"] = _default_plugin_crates(root)
        if not values["plugin_crates"]:
            raise ConfigError(f"no plugin crate in {root}: no workspace crate is a cdylib ([lib] crate-type = "
                              f"[\"cdylib\"]); make one with `wasmforge add NAME`, or name the crate(s) to build in "
                              f"{CONFIG_FILE}, e.g. [plugin] crates = [\"NAME\"]")
    if not values["plugin_crates"]:
        raise ConfigError(f"{path}: [plugin] crates is empty; name the crate(s) to build, e.g. crates = [\"NAME-plugin\"]")
    settings = Settings(root=root, **values)
    if settings.profile not in PROFILES:
        raise ConfigError(f"unknown profile {settings.profile!r}; use one of: {', '.join(PROFILES)}")
    _check_limits(settings, path)
    if settings.debounce_ms < 0:
        raise ConfigError(f"{path}: [watch] debounce_ms must be 0 or more, got {settings.debounce_ms}")
    if settings.poll_interval_ms < 10:
        raise ConfigError(f"{path}: [watch] poll_interval_ms must be 10 or more, got {settings.poll_interval_ms}")
    if settings.check_timeout is not None and not 0 < settings.check_timeout <= MAX_TIMEOUT:
        raise ConfigError(f"{path}: [watch] check_timeout must be more than 0 and at most {MAX_TIMEOUT:.0f} "
                          f"seconds, got {toml_repr(settings.check_timeout)}")
    return settings


def _target_dir(root: Path, value: str, path: Path) -> Path:
    """[build] target_dir as a path: ``~`` is the user's home, a relative path is relative to the workspace."""
    if not value.strip():
        raise ConfigError(f"{path}: [build] target_dir is empty; name a directory, e.g. \"~/.cache/wasmforge/target\"")
    directory = root / Path(value).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{path}: [build] target_dir = {value!r} is not a directory; name a directory (cargo creates it)")
    return directory


def _check_limits(settings: Settings, path: Path) -> None:
    try:
        settings.limits()
    except OptionError as error:
        raise ConfigError(f"{path}: [limits]: {error}") from error


def _read_toml(path: Path) -> dict[tuple[str, str], Any]:
    data = tomlfile.read(path, missing_ok=True) or {}
    flat: dict[tuple[str, str], Any] = {}
    for table, entries in data.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: `{table}` must be a table like [{table}]")
        for key, value in entries.items():
            spec = _SCHEMA.get((table, key))
            if spec is None:
                known = ", ".join(f"[{t}] {k}" for t, k in _SCHEMA)
                raise ConfigError(f"{path}: unknown setting [{table}] {key}; known settings: {known}")
            _, kind, allowed = spec
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                names = " or ".join(_TOML_NAMES[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise ConfigError(f"{path}: [{table}] {key} must be {names}, got {toml_repr(value)}")
            if kind is list and not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{path}: [{table}] {key} must be a list of strings, got {value!r}")
            if allowed is not None and value not in allowed:
                raise ConfigError(f"{path}: [{table}] {key} = {value!r}; use one of: {', '.join(map(str, allowed))}")
            flat[(table, key)] = value
    for (table, old), (_, new) in OLD_SPELLINGS.items():
        if (table, old) in flat and (table, new) in flat:
            raise ConfigError(f"{path}: [{table}] sets both {new} and {old}, its old spelling; keep {new}")
    return flat


def _default_plugin_crates(root: Path) -> tuple[str, ...]:
    """Without [plugin] crates: every workspace crate whose library is a cdylib (what a .wasm is), by name.

    Never a name pattern: a crate renamed, or added under any name, is found all the same.
    """
    return tuple(sorted(name for name, directory in workspace_crates(root).items() if is_cdylib(directory)))
