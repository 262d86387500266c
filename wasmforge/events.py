"""What the reload loop reports, as plain dataclasses.

A :class:`~wasmforge.HotPlugin` hands each of these to its ``on_event``
callback; ``wasmforge watch`` prints them as one line per cycle, or with
``--json`` as one JSON object per line (:meth:`Event.to_json`, shapes in
docs/CLI.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Protocol

from ._json import json_fields


class Described(Protocol):
    """What ExportsDiff compares: anything with a text form and equality, such as a
    :class:`~wasmforge.abi.signature.Signature` (events sit below the wire contract)."""

    def __str__(self) -> str: ...

    def __eq__(self, other: object) -> bool: ...


@dataclass(frozen=True)
class Event:
    """Base of every event; ``kind`` names it in JSON."""

    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("json", True):
                values.update(json_fields(f.name, _plain(getattr(self, f.name))))
        return {"event": self.kind, **values}


@dataclass(frozen=True)
class Watching(Event):
    """The watcher started: how (native events or polling) and over what."""

    kind: ClassVar[str] = "watching"
    mode: str
    dirs: tuple[Path, ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Changed(Event):
    """The files that changed since the last cycle, once the debounce window closed."""

    kind: ClassVar[str] = "change"
    paths: tuple[Path, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class BuildStarted(Event):
    """cargo started building ``crate``."""

    kind: ClassVar[str] = "build_started"
    crate: str
    profile: str
    #: "start" for the first build, "change" for the others.
    reason: str


@dataclass(frozen=True)
class BuildFinished(Event):
    """A build ended. ``diagnostics`` is everything cargo printed; ``error`` the one-line summary when it failed."""

    kind: ClassVar[str] = "build_finished"
    ok: bool
    seconds: float
    diagnostics: str
    warnings: int = 0
    error: Optional[str] = None
    artifact: Optional[Path] = None
    size: Optional[int] = None


@dataclass(frozen=True)
class ExportsDiff:
    """How the exports of a new version differ from the previous one's, by name and signature."""

    added: tuple[Described, ...] = ()
    removed: tuple[Described, ...] = ()
    changed: tuple[tuple[Described, Described], ...] = ()

    @classmethod
    def between(cls, old: Mapping[str, Described], new: Mapping[str, Described]) -> "ExportsDiff":
        return cls(
            added=tuple(new[n] for n in new if n not in old),
            removed=tuple(old[n] for n in old if n not in new),
            changed=tuple((old[n], new[n]) for n in new if n in old and old[n] != new[n]),
        )

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """"+mul(a: i32, b: i32) -> i32, -add(...), ~greet(...) -> ... (was ...)"; empty when nothing changed."""
        parts = [f"+{s}" for s in self.added] + [f"-{s}" for s in self.removed]
        parts += [f"~{new} (was {old})" for old, new in self.changed]
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [str(s) for s in self.added],
            "removed": [str(s) for s in self.removed],
            "changed": [{"old": str(old), "new": str(new)} for old, new in self.changed],
        }


@dataclass(frozen=True)
class Reloaded(Event):
    """A new version is serving. ``seconds`` runs from reading the artifact to the swap (the check excluded)."""

    kind: ClassVar[str] = "reloaded"
    version: int
    path: Optional[Path]
    size: int
    #: Bytes more (or fewer) than the previous version; None for the first.
    size_change: Optional[int]
    seconds: float
    exports: ExportsDiff = field(default_factory=ExportsDiff)
    #: The #[plugin_state]: "kept" (carried over from the version before), "fresh" (started anew; with
    #: the reason when the old state did not fit), or None when the plugin keeps none.
    state: Optional[str] = None


@dataclass(frozen=True)
class Unchanged(Event):
    """The new artifact has the same bytes as the version serving: nothing was reloaded.

    ``recovered`` is True when the cycle before had failed: the sources are
    back to what the serving version was built from (say, an edit undone).
    """

    kind: ClassVar[str] = "unchanged"
    version: int
    size: int
    recovered: bool = False


@dataclass(frozen=True)
class CallResult(Event):
    """The check call's outcome, run on the new version before it went live."""

    kind: ClassVar[str] = "call_result"
    function: str
    args: tuple[Any, ...]
    ok: bool
    value: Any = None
    error: Optional[str] = None
    seconds: float = 0.0
    #: The error itself, for library callers; not in JSON.
    exception: Optional[BaseException] = field(default=None, compare=False, repr=False, metadata={"json": False})


@dataclass(frozen=True)
class KeptOldVersion(Event):
    """A cycle failed; the last good version (``version``; 0 when there is none yet) keeps serving.

    ``stage`` says where: "build", "load" (not a valid module, or it would not
    instantiate) or "check" (the check call failed).
    """

    kind: ClassVar[str] = "kept_old_version"
    stage: str
    error: str
    version: int
    #: The error itself, for library callers; not in JSON.
    exception: Optional[BaseException] = field(default=None, compare=False, repr=False, metadata={"json": False})


@dataclass(frozen=True)
class CycleFinished(Event):
    """A cycle ended; always the cycle's last event.

    ``outcome`` is "reloaded", "unchanged" or "kept_old_version"; ``version``
    is the one serving now (0 while none is); ``seconds`` runs from the first
    change the cycle saw (the save; for the first build, its start) to its
    result, the debounce, build, load, checks and swap included.
    """

    kind: ClassVar[str] = "cycle_finished"
    outcome: str
    version: int
    seconds: float


@dataclass(frozen=True)
class RolledBack(Event):
    """``HotPlugin.rollback()``/``forward()`` (watch's b key): ``version``, a good version kept, serves again."""

    kind: ClassVar[str] = "rolled_back"
    version: int
    #: The version that served before.
    previous: int
    #: "rollback" or "forward".
    direction: str


@dataclass(frozen=True)
class Held(Event):
    """A change came while watching is paused (``HotPlugin.pause()``, watch's p key): it waits for resume."""

    kind: ClassVar[str] = "held"
    path: Path
    change: str


@dataclass(frozen=True)
class KeyPressed(Event):
    """`wasmforge watch` on a terminal: a key was pressed; ``action`` is what it did (or why it did nothing)."""

    kind: ClassVar[str] = "key"
    key: str
    action: str
    ok: bool = True


@dataclass(frozen=True)
class StubsWritten(Event):
    """``watch --stubs DIR``: the serving version's typed stubs were written (``changed``), or could not be (``error``)."""

    kind: ClassVar[str] = "stubs_written"
    path: Optional[Path]
    version: int
    changed: bool
    error: Optional[str] = None


@dataclass(frozen=True)
class ExecStarted(Event):
    """``wasmforge watch --exec``: the command started, after ``version`` went live."""

    kind: ClassVar[str] = "exec_started"
    command: str
    version: int


@dataclass(frozen=True)
class ExecFinished(Event):
    """``wasmforge watch --exec``: the command ended; ``stopped`` when a newer version's took its place."""

    kind: ClassVar[str] = "exec_finished"
    command: str
    version: int
    ok: bool
    #: The command's exit status; negative: killed by that signal.
    exit_code: int
    seconds: float
    stopped: bool = False


def _plain(value: Any) -> Any:
    """A JSON-ready form: paths as strings, diffs as dicts (bytes: see json_fields)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        # Bytes inside a list (a check's arguments) have no field of their own to say "encoding".
        return [json_fields("", _plain(v))[""] for v in value]
    if isinstance(value, ExportsDiff):
        return value.to_json()
    if isinstance(value, float):
        return round(value, 6)
    return value
