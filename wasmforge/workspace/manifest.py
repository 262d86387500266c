"""Cargo.toml, read by one set of rules: the workspace's members and what each crate depends on.

Every manifest goes through :func:`tomlfile.read`: a missing one is skipped
where cargo would skip it (a member pattern matching a directory without
one), and anything else wrong with one is a ConfigError naming the file, for
`build`, `test` and `watch` alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

from ..errors import ConfigError
from . import tomlfile

MANIFEST = "Cargo.toml"
#: The tables that name a crate's dependencies (also under [target.'cfg(...)']).
DEPENDENCY_TABLES = ("dependencies", "build-dependencies", "dev-dependencies")


def read_manifest(path: Path, *, missing_ok: bool = True) -> Optional[dict[str, Any]]:
    """The Cargo.toml at ``path``; None if there is none (and ``missing_ok``); ConfigError if it cannot be read."""
    return tomlfile.read(path, missing_ok=missing_ok)


def workspace_crates(root: Path, settings_file: str = "wasmforge.toml") -> dict[str, Path]:
    """Package name -> directory for every member of the Cargo workspace at ``root`` (and its root package)."""
    try:
        data = read_manifest(root / MANIFEST, missing_ok=False)
    except FileNotFoundError as error:
        raise ConfigError(f"{root} has {settings_file} but no {MANIFEST}; it is not a Cargo workspace") from error
    assert data is not None
    members = _table(data, "workspace").get("members", [])
    crates: dict[str, Path] = {}
    package = _table(data, "package").get("name")
    if isinstance(package, str):
        crates[package] = root
    for pattern in members if isinstance(members, list) else []:
        for directory in sorted(root.glob(str(pattern))):
            member = directory / MANIFEST
            if not member.is_file():
                continue
            name = _table(read_manifest(member) or {}, "package").get("name")
            if isinstance(name, str):
                crates[name] = directory
    return crates


def is_cdylib(crate_dir: Path) -> bool:
    """Whether the crate's library is a cdylib ([lib] crate-type names it): a .wasm, so a plugin crate."""
    kinds = _table(read_manifest(crate_dir / MANIFEST) or {}, "lib").get("crate-type", [])
    return isinstance(kinds, list) and "cdylib" in kinds


def has_binary(crate_dir: Path) -> bool:
    """Whether the crate builds a program (src/main.rs or a [[bin]] target): a runner, not a plugin."""
    manifest = read_manifest(crate_dir / MANIFEST) or {}
    return (crate_dir / "src/main.rs").is_file() or bool(manifest.get("bin"))


def dependencies(manifest: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every (name, spec) a manifest depends on, in each dependency table, target-specific ones included."""
    tables = [manifest, *(t for t in _table(manifest, "target").values() if isinstance(t, dict))]
    for table in tables:
        for kind in DEPENDENCY_TABLES:
            yield from _table(table, kind).items()


def path_dependencies(crate_dir: Path, root: Path, root_manifest: Mapping[str, Any]) -> list[Path]:
    """Directories of the crates ``crate_dir`` depends on by path (directly, or through [workspace.dependencies])."""
    shared = _table(_table(root_manifest, "workspace"), "dependencies")
    found = []
    for name, spec in dependencies(read_manifest(crate_dir / MANIFEST) or {}):
        if not isinstance(spec, dict):
            continue
        inherited = shared.get(name)
        if spec.get("workspace") is True and isinstance(inherited, dict) and isinstance(inherited.get("path"), str):
            found.append(Path(os.path.normpath(root / inherited["path"])))
        elif isinstance(spec.get("path"), str):
            found.append(Path(os.path.normpath(crate_dir / spec["path"])))
    return found


def registry_dependencies(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """The crates these manifests take from a registry (not a path, git or the workspace), in name order."""
    names: set[str] = set()
    for manifest in manifests:
        for name, spec in dependencies(manifest):
            if not (isinstance(spec, dict) and ("path" in spec or "git" in spec or spec.get("workspace"))):
                names.add(name)
    return sorted(names)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is a table; empty otherwise (cargo reports a malformed manifest in its own words)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}
