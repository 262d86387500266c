"""The reload loop: a small state machine with named steps.

    WAIT -> BUILD -> VALIDATE -> CHECK -> SWAP -> REPORT -> WAIT

WAIT takes the next batch of changes from the source, which has debounced
them already (changes.py: a burst of saves is one batch). BUILD runs the
builder (skipped when the loop watches a .wasm file itself). VALIDATE loads
the new artifact (an identical one ends the cycle: nothing to reload). CHECK
runs the checks on the new version, in order, until one fails. SWAP makes it
the one serving. REPORT emits the cycle's events. Any failure emits
:class:`~wasmforge.events.KeptOldVersion` and returns to WAIT: the last good
version keeps serving. Every cycle ends with
:class:`~wasmforge.events.CycleFinished`, saying how long it took from the save.

Everything the loop touches is passed in (the batch source, the clock, the
builder, the target, the stop event), so tests drive it with a scripted source
and a fake clock, without sleeping; supervisor.py wires the real ones.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

from ..errors import WasmforgeError
from ..events import (
    BuildFinished,
    BuildStarted,
    CallResult,
    Changed,
    CycleFinished,
    Event,
    KeptOldVersion,
    Reloaded,
    Unchanged,
)
from .changes import ChangeBatch

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]


class Step(enum.Enum):
    WAIT = "wait for changes"
    BUILD = "build"
    VALIDATE = "validate"
    CHECK = "check"
    SWAP = "swap"
    REPORT = "report"
    STOP = "stop"


class BatchSource(Protocol):
    """Where batches of changes come from: :class:`~wasmforge.devloop.changes.DebouncedChanges`, or a script."""

    def next(self) -> Optional[ChangeBatch]:
        """The next burst of changes, once it is over; None once the source is closed."""


@dataclass(frozen=True)
class Built:
    """What a successful build hands the loop."""

    path: Path
    diagnostics: str = ""
    warnings: int = 0
    #: Files the build read (cargo's dep-info), besides the sources already watched: the supervisor watches them too.
    inputs: tuple[Path, ...] = ()


class Builder(Protocol):
    """Builds the plugin; raises a WasmforgeError (BuildError) when it cannot. Setting ``stop`` cancels."""

    crate: str
    profile: str

    def __call__(self, stop: threading.Event) -> Built: ...


class PendingVersion(Protocol):
    """A loaded, not yet serving, version: see :meth:`wasmforge.HotPlugin.load_candidate`."""

    unchanged: bool
    #: Unchanged, and the cycle before failed: the sources are back to the serving version's.
    recovered: bool

    @property
    def size(self) -> int: ...

    def discard(self) -> None: ...


class Target(Protocol):
    """What the loop reloads: a :class:`~wasmforge.HotPlugin`."""

    @property
    def version(self) -> int: ...

    def reload_from(self, path: Path) -> Optional[Reloaded]: ...

    def load_candidate(self, path: Path) -> PendingVersion: ...

    def run_checks(self, candidate: Any) -> Sequence[CallResult]: ...

    def swap_in(self, candidate: Any, seconds: float) -> Reloaded: ...


class ReloadLoop:
    """Runs cycles until ``stop`` is set or the source closes. ``trace`` records every step taken."""

    def __init__(
        self,
        target: Target,
        source: BatchSource,
        emit: Emit,
        *,
        builder: Optional[Builder] = None,
        artifact: Optional[Path] = None,
        stop: Optional[threading.Event] = None,
        clock: Callable[[], float] = time.perf_counter,
        build_first: bool = False,
    ) -> None:
        if (builder is None) == (artifact is None):
            raise ValueError("give the loop a builder or an artifact to watch, not both")
        self.target = target
        self.source = source
        self.emit = emit
        self.builder = builder
        self.artifact = artifact
        self.stop = stop or threading.Event()
        self.clock = clock
        self.build_first = build_first
        self.trace: list[Step] = []
        self.cycles = 0
        # The cycle under way (reset on entering WAIT).
        self._batch: Optional[ChangeBatch] = None
        self._artifact_path: Path = artifact or Path()
        self._candidate: Any = None
        self._load_seconds = 0.0
        self._calls: Sequence[CallResult] = ()
        self._reloaded: Optional[Reloaded] = None
        self._cycle_started = 0.0
        #: How the cycle under way ended, once it has: "reloaded", "unchanged" or "kept_old_version".
        self._outcome: Optional[str] = None
        self._cycle_done = threading.Condition()
        self._steps: dict[Step, Callable[[], Step]] = {
            Step.WAIT: self._wait,
            Step.BUILD: self._build,
            Step.VALIDATE: self._validate,
            Step.CHECK: self._check,
            Step.SWAP: self._swap,
            Step.REPORT: self._report,
        }

    def run(self) -> None:
        """The loop itself; returns when stopped."""
        step = Step.BUILD if self.build_first else Step.WAIT
        self._cycle_started = self.clock()
        while step is not Step.STOP:
            if self.stop.is_set():
                break
            self.trace.append(step)
            if step is Step.WAIT:
                self._finish_cycle()
            try:
                step = self._steps[step]()
            except Exception as error:  # a bug must not end the loop: the old version keeps serving
                log.exception("reload step %s failed", step.value)
                self._fail(step.name.lower(), f"internal error in the reload loop: {error!r}", error)
                step = Step.WAIT
        self.trace.append(Step.STOP)
        with self._cycle_done:
            self._cycle_done.notify_all()

    def wait_for_cycles(self, count: int, timeout: Optional[float] = None) -> bool:
        """Blocks until ``count`` cycles have ended (or the loop stopped); False on timeout."""
        with self._cycle_done:
            return self._cycle_done.wait_for(lambda: self.cycles >= count or self.stop.is_set(), timeout)

    # ---- the steps ----

    def _wait(self) -> Step:
        batch = self.source.next()
        if batch is None:
            return Step.STOP
        self._batch = batch
        self._cycle_started = batch.started
        self.emit(Changed(paths=batch.paths, kinds=batch.kinds))
        return Step.BUILD if self.builder is not None else Step.VALIDATE

    def _build(self) -> Step:
        assert self.builder is not None
        reason = "change" if self._batch is not None else "start"
        self.emit(BuildStarted(crate=self.builder.crate, profile=self.builder.profile, reason=reason))
        started = self.clock()
        try:
            built = self.builder(self.stop)
        except WasmforgeError as error:
            if self.stop.is_set():
                return Step.STOP
            diagnostics = getattr(error, "diagnostics", "")
            self.emit(BuildFinished(ok=False, seconds=self.clock() - started, diagnostics=diagnostics, error=str(error)))
            return self._fail("build", str(error), error)
        self._artifact_path = built.path
        size = _size(built.path)
        self.emit(BuildFinished(
            ok=True, seconds=self.clock() - started, diagnostics=built.diagnostics, warnings=built.warnings,
            artifact=built.path, size=size,
        ))
        return Step.VALIDATE

    def _validate(self) -> Step:
        started = self.clock()
        try:
            candidate = self.target.load_candidate(self._artifact_path)
        except WasmforgeError as error:
            return self._fail("load", str(error), error)
        if candidate.unchanged:
            self.emit(Unchanged(version=self.target.version, size=candidate.size, recovered=candidate.recovered))
            self._outcome = "unchanged"
            return Step.WAIT
        self._candidate = candidate
        self._load_seconds = self.clock() - started
        return Step.CHECK

    def _check(self) -> Step:
        self._calls = self.target.run_checks(self._candidate)
        failed = next((call for call in self._calls if not call.ok), None)
        if failed is not None:
            for call in self._calls:
                self.emit(call)
            self._candidate.discard()
            return self._fail("check", failed.error or "the check call failed", failed.exception)
        return Step.SWAP

    def _swap(self) -> Step:
        started = self.clock()
        candidate, self._candidate = self._candidate, None
        self._reloaded = self.target.swap_in(candidate, self._load_seconds + (self.clock() - started))
        return Step.REPORT

    def _report(self) -> Step:
        if self._reloaded is not None:
            self.emit(self._reloaded)
        for call in self._calls:
            self.emit(call)
        self._outcome = "reloaded"
        return Step.WAIT

    # ---- helpers ----

    def _fail(self, stage: str, message: str, error: Optional[BaseException]) -> Step:
        self.emit(KeptOldVersion(stage=stage, error=message, version=self.target.version, exception=error))
        self._outcome = "kept_old_version"
        return Step.WAIT

    def _reset_cycle(self) -> None:
        self._batch = None
        self._artifact_path = self.artifact or Path()
        self._candidate = None
        self._load_seconds = 0.0
        self._calls = ()
        self._reloaded = None
        self._outcome = None

    def _finish_cycle(self) -> None:
        """Called on entering WAIT: the cycle before it, if any, is over."""
        if self._outcome is not None:  # the very first WAIT ends no cycle
            self.emit(CycleFinished(
                outcome=self._outcome, version=self.target.version, seconds=self.clock() - self._cycle_started,
            ))
            with self._cycle_done:
                self.cycles += 1
                self._cycle_done.notify_all()
        self._reset_cycle()


def _size(path: Path) -> Optional[int]:
    try:
        return path.stat().st_size
    except OSError:
        return None
