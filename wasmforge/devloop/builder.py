"""The reload loop's BUILD step for a workspace: cargo builds the plugin crate.

:class:`CargoBuilder` builds one plugin crate through the command's
:class:`~wasmforge.workspace.workspace.Workspace` (its toolchain found once,
up front) and hands the loop a :class:`~wasmforge.devloop.loop.Built`: the
.wasm, what cargo printed, and the files its dep-info says the build read
that are not noise, which the supervisor adds to what is watched.

With several plugin crates served at once (:class:`~wasmforge.HotPlugins`),
their builders share one :class:`SharedBuild`: one cargo build of every
plugin crate per burst of changes, each loop taking its own crate's .wasm
from it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Sequence

from ..errors import BuildError, WorkspaceGone
from ..workspace.manifest import MANIFEST
from ..workspace.settings import CONFIG_FILE
from ..workspace.build import Artifact, BuildResult
from ..workspace.workspace import Workspace
from .filters import SourceSet
from .loop import Built
from .sources import dep_info_files


class SharedBuild:
    """One cargo build of all ``crates`` for the loops of several plugin crates.

    A loop whose sources changed at ``changed_at`` takes the last build if that
    build started after the change (the loops a save to a shared crate wakes
    all take the one build the first of them ran); otherwise it runs a new one
    of every crate. When that fails, the loop builds its crate alone, so one
    broken plugin holds no other back and each reports its own errors.
    """

    def __init__(self, workspace: Workspace, crates: Sequence[str]) -> None:
        self.workspace = workspace
        self.crates = tuple(crates)
        self._lock = threading.Lock()
        self._last: Optional[tuple[float, BuildResult]] = None
        #: cargo builds of all the crates run so far.
        self.builds = 0

    def artifact(self, crate: str, changed_at: float, stop: threading.Event) -> tuple[Artifact, BuildResult]:
        with self._lock:
            if self._last is None or self._last[0] < changed_at:
                started = time.monotonic()
                self._last = None
                try:
                    result = self.workspace.build(self.crates, stop=stop)
                except BuildError:
                    if stop.is_set():
                        raise
                    alone = self.workspace.build([crate], stop=stop)  # its own error, or its .wasm
                    return alone.artifacts[0], alone
                finally:
                    self.builds += 1
                self._last = (started, result)
            result = self._last[1]
        return next(a for a in result.artifacts if a.crate == crate), result


class CargoBuilder:
    """Builds ``crate`` of ``workspace`` for the reload loop; BuildError when it fails, or when ``stop`` is set."""

    def __init__(self, workspace: Workspace, crate: str, sources: SourceSet,
                 shared: Optional[SharedBuild] = None) -> None:
        self.workspace = workspace
        self.crate = crate
        self.profile = workspace.settings.profile
        self.sources = sources
        self.shared = shared
        #: When the sources last changed (the supervisor's clock): which shared build is new enough.
        self.changed_at: Callable[[], float] = lambda: 0.0
        # Found once, up front: a machine without a toolchain fails here (ToolchainError), not on every save.
        self.toolchain = workspace.toolchain

    def __call__(self, stop: threading.Event) -> Built:
        root = self.workspace.root
        missing = [name for name in (CONFIG_FILE, MANIFEST) if not (root / name).is_file()]
        if missing:
            raise WorkspaceGone(f"the workspace at {root} moved or was deleted ({' and '.join(missing)} no longer "
                                "there); stopped watching it: run watch again where it is now")
        if self.shared is not None:
            artifact, result = self.shared.artifact(self.crate, self.changed_at(), stop)
        else:
            result = self.workspace.build([self.crate], stop=stop)
            artifact = result.artifacts[0]
        root, noise = self.workspace.root, self.sources.noise
        read = tuple(f for f in dep_info_files(artifact.path, root) if not noise(f.relative_to(root), f))
        return Built(path=artifact.path, diagnostics=result.diagnostics, warnings=result.warnings, inputs=read)
