"""The one place that wires the dev loop: watcher, change queue, builder, reload loop and event sinks.

A :class:`Supervisor` serves one reload target (a
:class:`~wasmforge.HotPlugin`): its watcher puts changes into a queue, the
queue is debounced into batches (changes.py), and the reload loop (loop.py)
runs on a thread of its own, building (builder.py) or reading the watched
.wasm, and handing every event to the sinks. `wasmforge watch` and
``HotPlugin.from_workspace``/``from_file`` are both made here
(:meth:`Supervisor.for_workspace`, :meth:`Supervisor.for_file`), as
uvicorn's reloaders are made in one place.

What changes while it runs is wired here too: the files a build read join the
watched set, and a .wasm served through symbolic links is followed wherever
they lead after each change. With an ``exec_command`` (`watch --exec`), the
command runs after each new version goes live (after_swap.py) and reports to
the same sinks.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from typing import IO, Callable, Optional, Sequence, Union

from ..errors import WasmforgeError, WorkspaceGone
from ..events import Event, Watching
from ..workspace.workspace import Workspace
from .after_swap import AfterSwap
from .builder import CargoBuilder, SharedBuild
from .changes import Change, ChangeQueue, DebouncedChanges
from .filters import SourceSet, link_chain
from .loop import Builder, Built, ReloadLoop, Target
from .sources import plugin_sources
from .watcher import Watcher

Sink = Callable[[Event], None]
ExecOutput = Union[None, int, IO[str]]


class Supervisor:
    """Watches ``sources`` and keeps ``target`` serving the latest good version; events go to ``emit``."""

    def __init__(
        self,
        target: Target,
        sources: SourceSet,
        emit: Sink,
        *,
        builder: Optional[Builder] = None,
        artifact: Optional[Path] = None,
        debounce: float = 0.05,
        poll: bool = False,
        poll_interval: float = 0.3,
        root: Optional[Path] = None,
        exec_command: Optional[str] = None,
        exec_output: ExecOutput = None,
    ) -> None:
        self.target = target
        self.sources = sources
        self.artifact = artifact
        self._emit_to_target = emit
        self.changes = ChangeQueue()
        self.watcher = Watcher(sources, self._on_change, poll=poll, poll_interval=poll_interval)
        #: `watch --exec`: runs the command after each swap, reporting to the same sinks.
        self.after_swap = (AfterSwap(exec_command, root or sources.dirs[0], emit, output=exec_output)
                           if exec_command is not None else None)
        self.stop_event = threading.Event()
        self.loop = ReloadLoop(
            target, DebouncedChanges(self.changes, debounce), self._emit,
            builder=_WatchInputs(builder, self) if builder is not None else None, artifact=artifact,
            stop=self.stop_event, build_first=builder is not None,
        )
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        #: When a watched file last changed (time.monotonic()); 0 until one has.
        self.last_change = 0.0
        #: Why the loop ended by itself (the workspace moved or vanished); None while it runs or when stopped.
        self.ended: Optional[WasmforgeError] = None

    @classmethod
    def for_workspace(cls, workspace: Workspace, crate: str, target: Target, emit: Sink, *,
                      exec_command: Optional[str] = None, exec_output: ExecOutput = None,
                      shared: Optional[SharedBuild] = None) -> "Supervisor":
        """Builds ``crate`` on every change to what its build reads, watching as the workspace's settings say.

        With ``shared``, the build is one of every plugin crate, shared with the other crates' supervisors.
        """
        settings = workspace.settings
        sources = plugin_sources(workspace, crate)
        builder = CargoBuilder(workspace, crate, sources, shared=shared)
        supervisor = cls(target, sources, emit, builder=builder,
                         debounce=settings.debounce_ms / 1000, poll=settings.poll,
                         poll_interval=settings.poll_interval_ms / 1000, root=workspace.root,
                         exec_command=exec_command, exec_output=exec_output)
        builder.changed_at = lambda: supervisor.last_change
        return supervisor

    @classmethod
    def for_file(cls, path: Path, target: Target, emit: Sink, *, debounce: float = 0.05, poll: bool = False,
                 poll_interval: float = 0.3) -> "Supervisor":
        """Reloads the .wasm at ``path`` whenever it is written or replaced (or a link on the way is repointed)."""
        return cls(target, SourceSet(files=link_chain(path)), emit, artifact=path, debounce=debounce, poll=poll,
                   poll_interval=poll_interval, root=path.parent)

    def start(self, owner: Optional[object] = None) -> None:
        """Starts watching, loads a watched .wasm (raising if it is no plugin), and starts the loop's thread.

        Once ``owner`` (the HotPlugin) is garbage or the interpreter exits, everything stops.
        """
        self.watcher.start()  # before the first build or load, so no save in between is missed
        self._emit(Watching(mode=self.watcher.mode, dirs=self.sources.dirs, files=self.sources.files))
        if self.artifact is not None:
            try:
                self.target.reload_from(self.artifact)
            except BaseException:
                self.watcher.stop()
                raise
        self._thread = threading.Thread(target=self.loop.run, name=f"wasmforge-reload-{_name(self)}", daemon=True)
        self._thread.start()
        weakref.finalize(owner if owner is not None else self, self.stop)

    def stop(self) -> None:
        """Stops the loop (killing a running cargo), waits for its thread, stops watching and a running --exec."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        self.changes.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self.watcher.stop()
        if self.after_swap is not None:
            self.after_swap.close()

    def wait_for_cycles(self, count: int, timeout: Optional[float] = None) -> bool:
        """Blocks until ``count`` cycles have ended (or the loop stopped); False on timeout."""
        return self.loop.wait_for_cycles(count, timeout)

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the loop's thread has ended; False after ``timeout`` seconds."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # ---- wiring ----

    def _emit(self, event: Event) -> None:
        self._emit_to_target(event)
        if self.after_swap is not None:
            self.after_swap(event)

    def _on_change(self, change: Change) -> None:
        self.last_change = time.monotonic()
        if self.artifact is not None:  # served through links: watch wherever they lead now
            self.watch_more(link_chain(self.artifact))
        self.changes.put(change)

    def watch_more(self, files: Sequence[Path]) -> None:
        """Adds ``files`` to what is watched (those not watched already)."""
        added = self.sources.add_files(files)
        if added:
            self.watcher.watch_more(added)


class _WatchInputs:
    """The builder, and after each build the files it read join what is watched."""

    def __init__(self, builder: Builder, supervisor: Supervisor) -> None:
        self.builder = builder
        self.supervisor = supervisor
        self.crate = builder.crate
        self.profile = builder.profile

    def __call__(self, stop: threading.Event) -> Built:
        try:
            built = self.builder(stop)
        except WorkspaceGone as error:  # nothing to build any more, ever: the loop ends, saying why
            self.supervisor.ended = error
            self.supervisor.stop_event.set()
            raise
        self.supervisor.watch_more(built.inputs)
        return built


def _name(supervisor: Supervisor) -> str:
    return str(getattr(supervisor.target, "name", "plugin"))
