"""Changes, from the watcher's thread to the reload loop's, debounced on the way.

The watcher puts each relevant file event into a :class:`ChangeQueue`;
:class:`DebouncedChanges` is the loop's source: it gathers changes until the
queue has been quiet for the debounce window and hands out the burst as one
:class:`ChangeBatch`, so a burst of saves is one build. A file renamed onto a
watched one in the window (an atomic save) is that file's change, and its
temporary name is forgotten.

Changes that arrive while a cycle runs wait in the queue; the next batch
takes them at once, so however many came during a build there is exactly
one follow-up build, and the last saved state is always the one built last.
The clock is passed in, so tests drive this with a scripted queue and a fake
clock, without sleeping.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence


@dataclass(frozen=True)
class Change:
    """One file event that matters: ``kind`` is created, modified, deleted or moved.

    A file renamed onto ``path`` (an editor's atomic save) has the name it had
    before as ``source``. ``seen`` is when the event arrived, on
    ``time.perf_counter``'s clock (None: when the loop takes it).
    """

    path: Path
    kind: str
    source: Optional[Path] = field(default=None, compare=False)
    seen: Optional[float] = field(default=None, compare=False)


class ChangeQueue:
    """Changes from the watcher's thread to the reload loop's; :meth:`close` wakes a waiting reader."""

    _CLOSED = object()

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.closed = False

    def put(self, change: Change) -> None:
        self._queue.put(change)

    def get(self, timeout: Optional[float]) -> Optional[Change]:
        """The next change, or None after ``timeout`` seconds without one (None: wait) or once closed."""
        if self.closed:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._CLOSED:
            self.closed = True
            return None
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self._queue.put(self._CLOSED)


class ChangeSource(Protocol):
    """Where single changes come from: a :class:`ChangeQueue`, or a script in tests."""

    closed: bool

    def get(self, timeout: Optional[float]) -> Optional[Change]:
        """The next change; None after ``timeout`` seconds (None: no limit) or once closed."""


@dataclass(frozen=True)
class ChangeBatch:
    """One burst of changes: each file once, with what last happened to it, in the order each first changed."""

    paths: tuple[Path, ...]
    kinds: tuple[str, ...]
    #: When the first change of the burst was seen (the save a cycle is timed from).
    started: float

    @classmethod
    def of(cls, changes: Sequence[Change], started: float) -> "ChangeBatch":
        net = _net_changes(changes)
        paths = tuple(net)
        return cls(paths=paths, kinds=tuple(net[p] for p in paths), started=started)


class DebouncedChanges:
    """The loop's source of changes: a burst becomes one batch once ``source`` has been quiet for ``quiet`` seconds."""

    def __init__(self, source: ChangeSource, quiet: float = 0.05,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.source = source
        self.quiet = quiet
        self.clock = clock

    def next(self) -> Optional[ChangeBatch]:
        """Waits for a change, then for quiet; the burst, or None once the source is closed."""
        change = self.source.get(None)
        if change is None:
            return None
        changes = [change]
        started = change.seen if change.seen is not None else self.clock()
        quiet_until = self.clock() + self.quiet
        while True:
            remaining = quiet_until - self.clock()
            if remaining <= 0:
                return ChangeBatch.of(changes, started)
            change = self.source.get(remaining)
            if change is not None:
                changes.append(change)
                quiet_until = self.clock() + self.quiet
            elif self.source.closed:
                return None


def _net_changes(changes: Sequence[Change]) -> dict[Path, str]:
    """Path -> what last happened to it, one entry per file in the order each first changed.

    ``kinds[i]`` of the Changed event is then what last happened to ``paths[i]``
    (docs/WATCH.md, "The change event"). A file renamed onto another in the
    window (an atomic save) is the destination's change only: its temporary
    name, and what happened under it, is no change of its own.
    """
    net: dict[Path, str] = {}
    for change in changes:
        if change.source is not None:
            net.pop(change.source, None)
        net[change.path] = change.kind
    return net
