"""The reload loop's BUILD step for a workspace: cargo builds the plugin crate.

:class:`CargoBuilder` builds one plugin crate through the command's
:class:`~wasmforge.workspace.workspace.Workspace` (its toolchain found once,
up front) and hands the loop a :class:`~wasmforge.devloop.loop.Built`: the
.wasm, what cargo printed, and the files its dep-info says the build read
that are not noise, which the supervisor adds to what is watched.
"""

from __future__ import annotations

import threading

from ..workspace.workspace import Workspace
from .filters import SourceSet
from .loop import Built
from .sources import dep_info_files


class CargoBuilder:
    """Builds ``crate`` of ``workspace`` for the reload loop; BuildError when it fails, or when ``stop`` is set."""

    def __init__(self, workspace: Workspace, crate: str, sources: SourceSet) -> None:
        self.workspace = workspace
        self.crate = crate
        self.profile = workspace.settings.profile
        self.sources = sources
        # Found once, up front: a machine without a toolchain fails here (ToolchainError), not on every save.
        self.toolchain = workspace.toolchain

    def __call__(self, stop: threading.Event) -> Built:
        result = self.workspace.build([self.crate], stop=stop)
        artifact = result.artifacts[0]
        root, noise = self.workspace.root, self.sources.noise
        read = tuple(f for f in dep_info_files(artifact.path, root) if not noise(f.relative_to(root), f))
        return Built(path=artifact.path, diagnostics=result.diagnostics, warnings=result.warnings, inputs=read)
