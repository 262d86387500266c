"""`wasmforge call --native`: the same call, natively, through the workspace's runner crate."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from ..errors import UsageError
from .cargo import Cargo
from .manifest import has_binary, path_dependencies, read_manifest


def runner_crates(members: Mapping[str, Path], plugins: Sequence[str], root: Path) -> list[str]:
    """The workspace's runners: crates with a program that depend on a plugin crate by path, by name."""
    plugin_dirs = {members[name].resolve() for name in plugins if name in members}
    root_manifest = read_manifest(root / "Cargo.toml") or {}
    return sorted(name for name, directory in members.items()
                  if name not in plugins and has_binary(directory)
                  and plugin_dirs & {d.resolve() for d in path_dependencies(directory, root, root_manifest)})


def run_native(cargo: Cargo, members: Mapping[str, Path], plugins: Sequence[str], arguments: Sequence[str], *,
               crate: Optional[str] = None) -> int:
    """Runs the workspace's runner crate natively (`cargo run -p RUNNER -- [-p CRATE] ARGS`); its exit status.

    The runner calls the plugins' functions through the same generated glue as
    the .wasm, so the same call can be compared natively and in wasm. ``crate``
    is the plugin crate to call (the runner's own rule without it: the one
    plugin exporting the function, exit status 2 when several do), or, as
    before, the runner crate itself. Its output goes straight to this
    process's stdout and stderr.
    """
    runners = runner_crates(members, plugins, cargo.root)
    if not runners:
        raise UsageError(f"the workspace at {cargo.root} has no runner crate (a crate with src/main.rs that depends "
                         f"on a plugin crate by path; `wasmforge new` makes one)")
    chosen: list[str] = []
    if crate in runners:
        runners = [crate]
    elif crate is not None:
        if crate not in plugins:
            raise UsageError(f"no plugin crate {crate!r} in the workspace at {cargo.root}; plugins: "
                             f"{', '.join(plugins) or 'none'}")
        chosen = ["-p", crate]
    runner = runners[0]
    cargo.prepare()
    features = _plugin_features(cargo.features, members, plugins if crate is None or crate == runner else [crate])
    return cargo.run(cargo.argv("run", "-q", crates=[runner], trailing=[*chosen, *arguments], features=features))


def _plugin_features(features: Sequence[str], members: Mapping[str, Path], plugins: Sequence[str]) -> list[str]:
    """The build's features as the runner takes them: a plugin crate's own as CRATE/FEATURE, for each plugin that
    has it (the runner has none of its own); CRATE/FEATURE as given."""
    named = []
    for feature in features:
        if "/" in feature:
            named.append(feature)
            continue
        for plugin in plugins:
            table = (read_manifest(members[plugin] / "Cargo.toml") or {}).get("features")
            if isinstance(table, dict) and feature in table:
                named.append(f"{plugin}/{feature}")
    return named
