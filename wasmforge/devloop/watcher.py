"""Watching what a plugin build reads, with watchdog.

:class:`Watcher` wraps watchdog's Observer over a
:class:`~wasmforge.devloop.filters.SourceSet` (what to watch is sources.py's
business): native events where the platform has them, polling with
``poll=True`` or when native events cannot start (no inotify, or its limits
reached). It turns file events into :class:`~wasmforge.devloop.changes.Change`
records for a sink (supervisor.py gives it the change queue).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from watchdog import events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from .changes import Change
from .filters import SourceSet

log = logging.getLogger(__name__)


# ---- the observer -----------------------------------------------------------------------

Sink = Callable[[Change], None]
_WATCHED_KINDS = ("created", "modified", "deleted", "moved")


class Watcher:
    """watchdog's Observer over a :class:`SourceSet`: each relevant file event becomes a Change for ``sink``.

    Only created/modified/deleted/moved events count: opening or reading a
    file (which cargo does to every source) never does. A move counts when
    either end is relevant, so an editor's atomic save (temp file renamed over
    the original) is a change to the original, whatever the temporary was
    called; a hidden temporary (``.lib.rs.XXXX.new``) is noise until then.
    """

    def __init__(self, sources: SourceSet, sink: Sink, *, poll: bool = False, poll_interval: float = 0.3) -> None:
        self.sources = sources
        self.sink = sink
        self.poll_interval = poll_interval
        self.mode = "polling" if poll else "native"
        self._observer: Any = None
        self._scheduled: set[tuple[Path, bool]] = set()

    def __repr__(self) -> str:
        return f"<Watcher {self.mode} over {self.sources!r}>"

    def start(self) -> None:
        """Starts watching; falls back to polling when native events are unavailable."""
        if self.mode == "native":
            try:
                observer = self._native_observer()
                if isinstance(observer, PollingObserver):  # watchdog has nothing native on this platform
                    self.mode = "polling"
                self._start(observer)
                return
            except OSError as error:
                log.warning("native file events unavailable (%s); polling every %.2f s", error, self.poll_interval)
                self._shutdown()
                self.mode = "polling"
        self._start(self._polling_observer())

    def watch_more(self, files: Iterable[Path]) -> None:
        """Also watches ``files`` (already added to the SourceSet)."""
        for directory in sorted({f.parent for f in files}):
            try:
                self._schedule(directory, recursive=False)
            except OSError as error:
                log.warning("cannot watch %s: %s", directory, error)

    @property
    def watched_dirs(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) for everything scheduled with the observer."""
        return sorted(self._scheduled)

    def stop(self) -> None:
        self._shutdown()

    # ---- internals ----

    #: What "native" means here; a test replaces it to see the fallback.
    _native_observer: Callable[[], Any] = staticmethod(Observer)

    def _polling_observer(self) -> Any:
        return PollingObserver(timeout=self.poll_interval)

    def _start(self, observer: Any) -> None:
        self._observer = observer
        self._scheduled.clear()
        for directory in self.sources.dirs:
            self._schedule_tree(directory)
        for directory in sorted({f.parent for f in self.sources.files}):
            self._schedule(directory, recursive=False)
        observer.start()

    def _schedule_tree(self, directory: Path) -> None:
        """A source directory: itself, and each of its subdirectories that is not noise, recursively.

        So a crate's target/ (thousands of directories) is never walked or
        watched: it costs no inotify watches and no polling time.
        """
        self._schedule(directory, recursive=False)
        for child in sorted(directory.iterdir()) if directory.is_dir() else ():
            self._schedule_subtree(directory, child)

    def _schedule_subtree(self, directory: Path, child: Path) -> None:
        if child.is_dir() and not self.sources.noise(Path(child.name), child):
            self._schedule(child, recursive=True)

    def _schedule(self, directory: Path, recursive: bool) -> None:
        if self._covered(directory, recursive) or not directory.is_dir():
            return
        self._observer.schedule(_Forward(self), str(directory), recursive=recursive, event_filter=_EVENT_FILTER)
        self._scheduled.add((directory, recursive))

    def _covered(self, directory: Path, recursive: bool) -> bool:
        if (directory, recursive) in self._scheduled or (directory, True) in self._scheduled:
            return True
        return any((parent, True) in self._scheduled for parent in directory.parents)

    def _shutdown(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def _deliver(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WATCHED_KINDS or (event.is_directory and event.event_type == "modified"):
            return
        source = Path(os.fsdecode(event.src_path))
        destination = Path(os.fsdecode(event.dest_path)) if event.event_type == "moved" else None
        arrived = destination or source
        if event.is_directory and event.event_type in ("created", "moved") and arrived.parent in self.sources.dirs:
            self._schedule_subtree(arrived.parent, arrived)  # a new top-level directory in a crate
        if destination is not None and self.sources(destination):
            self.sink(Change(destination, "moved", source=source, seen=time.perf_counter()))
        elif self.sources(source):
            self.sink(Change(source, event.event_type, seen=time.perf_counter()))


class _Forward(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher._deliver(event)


#: The events worth a kernel's attention: never opened/closed/attrib (cargo opens every source).
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    events.FileCreatedEvent, events.FileModifiedEvent, events.FileDeletedEvent, events.FileMovedEvent,
    events.DirCreatedEvent, events.DirDeletedEvent, events.DirMovedEvent,
]
