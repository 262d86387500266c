"""What a plugin's build reads, as far as it can be known: the set of files `watch` watches.

:func:`plugin_sources` works out the watched set for a plugin crate: its
directory and the directories of the workspace crates it depends on by path
(macro, pdk), the workspace's Cargo.toml and .cargo/config.toml, and never
the build's own output. Files the build pulled in from elsewhere in the
workspace (``include_str!``) are added from cargo's dep-info after each
build (:func:`dep_info_files`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..workspace.manifest import path_dependencies
from ..workspace.workspace import Workspace
from .filters import Noise, SourceSet


def plugin_sources(workspace: Workspace, crate: str) -> SourceSet:
    """The files the build of ``crate`` reads, as far as they can be known before building it."""
    root, members = workspace.root, workspace.members
    root_manifest = workspace.root_manifest()
    dirs: list[Path] = []
    pending = [members[crate]] if crate in members else []
    while pending:
        directory = pending.pop()
        if directory in dirs:
            continue
        dirs.append(directory)
        pending.extend(path_dependencies(directory, root, root_manifest))
    files = [root / "Cargo.toml", root / ".cargo" / "config.toml", root / ".cargo" / "config"]
    return SourceSet(dirs=dirs, files=files, noise=Noise(extra_dirs=[target_dir(workspace)]))


def target_dir(workspace: Workspace) -> Path:
    """Where cargo writes this workspace's builds: CARGO_TARGET_DIR, else [build] target_dir, else target/."""
    configured = os.environ.get("CARGO_TARGET_DIR")
    if configured:
        return workspace.root / configured
    return workspace.settings.target_dir or workspace.root / "target"


def dep_info_files(artifact: Path, within: Path) -> list[Path]:
    """The files cargo's dep-info next to ``artifact`` lists, limited to those under ``within``."""
    try:
        text = artifact.with_suffix(".d").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    files = []
    for line in text.splitlines():
        _, separator, rest = line.partition(": ")
        if not separator:
            continue
        # Make-style: spaces inside a path are escaped with a backslash.
        for token in rest.replace("\\ ", "\0").split():
            # include_str!("../../data.txt") is listed as crates/x/src/../../data.txt: name it as watchdog will.
            path = Path(os.path.normpath(token.replace("\0", " ")))
            if path.is_absolute() and within in path.parents:
                files.append(path)
    return files
