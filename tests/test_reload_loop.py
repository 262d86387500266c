"""The reload loop's logic, and the debouncing of its change source, driven by a scripted change
source and a fake clock: no sleeps, no cargo.

The target is a real HotPlugin and the "builds" produce real (tiny, WAT) modules,
so what the loop swaps in is what a caller then gets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import pytest
import wasmtime

from wasmforge.errors import BuildError
from wasmforge.events import (
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
from wasmforge.devloop.changes import Change, DebouncedChanges
from wasmforge.devloop.hot import CheckCall, HotPlugin
from wasmforge.devloop.loop import Built, ReloadLoop, Step
from wat_plugins import answer_module, write_answer

W, B, V, C, S, R, STOP = (
    Step.WAIT, Step.BUILD, Step.VALIDATE, Step.CHECK, Step.SWAP, Step.REPORT, Step.STOP,
)
ONE_CYCLE = [W, B, V, C, S, R]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


#: What a scripted save leaves in the "file": the answer the plugin built from it returns,
#: "broken" (it does not compile) or "garbage" (it builds into bytes that are no module).
Content = Union[int, str]


@dataclass
class Save:
    at: float
    content: Content
    path: str = "src/lib.rs"
    kind: str = "modified"
    #: For a rename onto ``path``: the name the file had before.
    source: Optional[str] = None


@dataclass
class ScriptedChanges:
    """Hands out the scripted saves as changes, moving the fake clock, as a ChangeQueue would in real time."""

    clock: FakeClock
    saves: list[Save]
    closed: bool = False
    _next: int = 0

    def get(self, timeout: Optional[float]) -> Optional[Change]:
        if self._next < len(self.saves):
            save = self.saves[self._next]
            if timeout is None or save.at <= self.clock.now + timeout:
                self.clock.now = max(self.clock.now, save.at)
                self._next += 1
                return Change(Path(save.path), save.kind, source=Path(save.source) if save.source else None,
                              seen=save.at)
        if timeout is None:  # the script is over: the loop would wait forever, so end it
            self.closed = True
            return None
        self.clock.now += timeout
        return None

    def content_at(self, time: float) -> Content:
        """What the file held at ``time``: the last save made by then."""
        return [s.content for s in self.saves if s.at <= time][-1]


@dataclass
class FakeBuilder:
    """A build that takes ``duration`` fake seconds and compiles what the file held when it started."""

    clock: FakeClock
    script: ScriptedChanges
    out: Path
    duration: float = 1.0
    crate: str = "demo-plugin"
    profile: str = "debug"
    started: list[float] = field(default_factory=list)
    on_build: Optional[Callable[[threading.Event], None]] = None

    def __call__(self, stop: threading.Event) -> Built:
        self.started.append(self.clock.now)
        content = self.script.content_at(self.clock.now) if self.script.saves and self.clock.now >= self.script.saves[0].at else 0
        self.clock.now += self.duration
        if self.on_build is not None:
            self.on_build(stop)
        if content == "broken":
            raise BuildError("build failed: error[E0308]: mismatched types at src/lib.rs:3:5", "error[E0308]: ...\n")
        artifact = self.out / f"build-{len(self.started)}.wasm"
        if content == "garbage":
            artifact.write_bytes(b"\0asm\x01\0\0\0\x01\xff")
        else:
            write_answer(artifact, int(content))
        return Built(path=artifact, diagnostics="warning: unused variable\n", warnings=1)


@dataclass
class Run:
    loop: ReloadLoop
    hot: HotPlugin
    events: list[Event]
    builder: FakeBuilder

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def run_loop(
    tmp_path: Path, saves: list[Save], *, duration: float = 1.0, debounce: float = 0.05,
    check: Optional[object] = None, build_first: bool = False, on_build: Optional[Callable] = None,
) -> Run:
    clock = FakeClock()
    script = ScriptedChanges(clock, saves)
    builder = FakeBuilder(clock, script, tmp_path, duration=duration, on_build=on_build)
    events: list[Event] = []
    hot = HotPlugin(name="demo", check=check, on_event=events.append)
    if not build_first:
        hot.reload_from(write_answer(tmp_path / "initial.wasm", 0))
        events.clear()
    loop = ReloadLoop(hot, DebouncedChanges(script, debounce, clock), hot._dispatch, builder=builder, clock=clock,
                      build_first=build_first)
    loop.run()
    return Run(loop, hot, events, builder)


def test_one_save_is_one_cycle_through_every_step(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, 7)])
    assert run.loop.trace == [*ONE_CYCLE, W, STOP]
    assert [type(e) for e in run.events] == [Changed, BuildStarted, BuildFinished, Reloaded, CycleFinished]
    assert run.builder.started == [pytest.approx(1.05)]  # the save, then the 50 ms quiet window
    # From the save to the result: the quiet window and the 1 s build (loading takes no fake time).
    assert run.events[-1] == CycleFinished(outcome="reloaded", version=2, seconds=pytest.approx(1.05))
    assert run.hot.call("answer") == 7 and run.hot.version == 2
    assert run.hot.diagnostics == "warning: unused variable\n"
    assert run.loop.cycles == 1


def test_a_burst_of_saves_is_one_build_of_the_last_one(tmp_path: Path) -> None:
    saves = [Save(1.0 + i * 0.03, i) for i in range(1, 31)]  # 30 saves, 30 ms apart, within one second
    run = run_loop(tmp_path, saves)
    assert run.builder.started == [pytest.approx(saves[-1].at + 0.05)]
    assert run.hot.call("answer") == 30
    (changed,) = run.of(Changed)
    assert changed.paths == (Path("src/lib.rs"),) and changed.kinds == ("modified",)


def test_the_change_event_lists_each_file_once_with_the_last_thing_that_happened_to_it(tmp_path: Path) -> None:
    """``kinds[i]`` belongs to ``paths[i]``: one entry each, in the order the files first changed."""
    saves = [
        Save(1.00, 1, "src/new.rs", "created"), Save(1.01, 1, "src/lib.rs", "modified"),
        Save(1.02, 1, "src/new.rs", "modified"), Save(1.03, 1, "src/old.rs", "deleted"),
        Save(1.04, 2, "src/lib.rs", "moved"),
    ]
    run = run_loop(tmp_path, saves)
    (changed,) = run.of(Changed)
    assert changed.paths == (Path("src/new.rs"), Path("src/lib.rs"), Path("src/old.rs"))
    assert changed.kinds == ("modified", "moved", "deleted")
    assert changed.to_json() == {
        "event": "change", "paths": ["src/new.rs", "src/lib.rs", "src/old.rs"], "kinds": ["modified", "moved", "deleted"],
    }


def test_saves_during_a_build_lead_to_exactly_one_follow_up_build(tmp_path: Path) -> None:
    # The first build runs from 1.05 to 2.05; five saves land during it.
    saves = [Save(1.0, 1), *(Save(1.2 + i * 0.1, 10 + i) for i in range(5))]
    run = run_loop(tmp_path, saves)
    assert len(run.builder.started) == 2
    assert run.loop.trace == [*ONE_CYCLE, *ONE_CYCLE, W, STOP]
    assert [r.version for r in run.of(Reloaded)] == [2, 3]
    assert run.hot.call("answer") == 14  # the last save is what runs


def test_the_quiet_window_restarts_with_every_save(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, 1), Save(1.04, 2), Save(1.08, 3), Save(1.2, 4)], debounce=0.05)
    # 1.0, 1.04, 1.08 are each within 50 ms of the one before: one build at 1.13. The save at 1.2 came
    # during that build (1.13-2.13): it is picked up when the build ends and gets its own quiet window.
    assert run.builder.started == [pytest.approx(1.13), pytest.approx(2.18)]
    assert run.hot.call("answer") == 4


def test_saves_further_apart_than_a_build_are_separate_cycles(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, 1), Save(5.0, 2)])
    assert run.builder.started == [pytest.approx(1.05), pytest.approx(5.05)]
    assert [e.paths for e in run.of(Changed)] == [(Path("src/lib.rs"),)] * 2


def test_a_failed_build_keeps_the_old_version_and_the_fix_goes_live(tmp_path: Path) -> None:
    seen_during_failure = []
    run_holder: dict = {}

    def on_build(stop: threading.Event) -> None:
        hot = run_holder["hot"]
        if hot.version:
            seen_during_failure.append(hot.call("answer"))

    clock_saves = [Save(1.0, 5), Save(3.0, "broken"), Save(5.0, 6)]
    # Run by hand so the builder can call the plugin while "building".
    clock = FakeClock()
    script = ScriptedChanges(clock, clock_saves)
    builder = FakeBuilder(clock, script, tmp_path, on_build=on_build)
    events: list[Event] = []
    hot = HotPlugin(name="demo", on_event=events.append)
    run_holder["hot"] = hot
    ReloadLoop(hot, DebouncedChanges(script, 0.05, clock), hot._dispatch, builder=builder, clock=clock,
               build_first=True).run()

    failures = [e for e in events if isinstance(e, KeptOldVersion)]
    assert [(f.stage, f.version) for f in failures] == [("build", 2)]
    assert "mismatched types" in failures[0].error and isinstance(failures[0].exception, BuildError)
    finished = [e for e in events if isinstance(e, BuildFinished)]
    assert [f.ok for f in finished] == [True, True, False, True]
    assert finished[2].diagnostics == "error[E0308]: ...\n" and finished[2].error.startswith("build failed")
    assert seen_during_failure == [0, 5, 5]  # during the broken build (and the fix's), the last good answered
    assert hot.call("answer") == 6 and hot.version == 3 and hot.last_failure is None


def test_an_invalid_module_is_not_loaded(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, "garbage"), Save(3.0, 9)])
    (failure,) = run.of(KeptOldVersion)
    assert failure.stage == "load" and failure.version == 1
    assert run.loop.trace[:4] == [W, B, V, W]
    assert run.hot.call("answer") == 9


def test_a_failing_check_keeps_the_old_version(tmp_path: Path) -> None:
    class AnswerBelow100(CheckCall):
        def __call__(self, plugin):  # type: ignore[no-untyped-def]
            value = super().__call__(plugin)
            if value >= 100:
                raise ValueError(f"answer {value} is too big")
            return value

    run = run_loop(tmp_path, [Save(1.0, 500), Save(3.0, 42)], check=AnswerBelow100("answer"))
    calls = run.of(CallResult)
    assert [(c.ok, c.value, c.error) for c in calls] == [(False, None, "answer 500 is too big"), (True, 42, None)]
    (failure,) = run.of(KeptOldVersion)
    assert failure.stage == "check" and failure.version == 1 and failure.error == "answer 500 is too big"
    assert run.loop.trace[:5] == [W, B, V, C, W]
    # reloaded, then the check's result, then the cycle's end
    assert [type(e) for e in run.events[-3:]] == [Reloaded, CallResult, CycleFinished]
    assert run.hot.call("answer") == 42 and run.hot.version == 2


def test_identical_bytes_are_not_reloaded(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, 3), Save(3.0, 3)])
    assert run.loop.trace == [*ONE_CYCLE, W, B, V, W, STOP]
    (unchanged,) = run.of(Unchanged)
    assert unchanged.version == 2 and unchanged.size == len(answer_module(3))
    assert run.hot.version == 2


def test_the_first_build_runs_without_a_change(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [], build_first=True)
    assert run.loop.trace == [B, V, C, S, R, W, STOP]
    (started,) = run.of(BuildStarted)
    assert started.reason == "start"
    (reloaded,) = run.of(Reloaded)
    assert reloaded.version == 1 and reloaded.size_change is None


def test_exports_added_removed_and_changed_are_reported(tmp_path: Path) -> None:
    first, second = tmp_path / "first.wasm", tmp_path / "second.wasm"
    first.write_bytes(wasmtime.wat2wasm(
        '(module (func (export "keep") (result i32) i32.const 1) (func (export "old") (result i32) i32.const 1)'
        ' (func (export "grow") (param i32) (result i32) local.get 0))'
    ))
    second.write_bytes(wasmtime.wat2wasm(
        '(module (func (export "keep") (result i32) i32.const 2) (func (export "new") (result i64) i64.const 1)'
        ' (func (export "grow") (param i64) (result i64) local.get 0))'
    ))
    hot = HotPlugin(name="demo")
    hot.reload_from(first)
    reloaded = hot.reload_from(second)
    assert reloaded is not None and reloaded.version == 2
    assert reloaded.exports.describe() == "+new() -> i64, -old() -> i32, ~grow(p0: i64) -> i64 (was grow(p0: i32) -> i32)"
    assert reloaded.to_json()["exports"] == {
        "added": ["new() -> i64"], "removed": ["old() -> i32"],
        "changed": [{"old": "grow(p0: i32) -> i32", "new": "grow(p0: i64) -> i64"}],
    }
    assert hot.call("keep") == 2


def test_stopping_during_a_build_ends_the_loop_quietly(tmp_path: Path) -> None:
    def stop_now(stop: threading.Event) -> None:
        stop.set()
        raise BuildError("build cancelled")

    run = run_loop(tmp_path, [Save(1.0, 1), Save(5.0, 2)], on_build=stop_now)
    assert run.loop.trace == [W, B, STOP]
    assert not run.of(KeptOldVersion) and not run.of(BuildFinished)


def test_a_bug_in_a_step_is_reported_and_the_loop_goes_on(tmp_path: Path) -> None:
    calls = []

    def explode_once(stop: threading.Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    run = run_loop(tmp_path, [Save(1.0, 1), Save(5.0, 2)], on_build=explode_once)
    (failure,) = run.of(KeptOldVersion)
    assert failure.stage == "build" and "internal error in the reload loop: RuntimeError('boom')" in failure.error
    assert run.hot.call("answer") == 2


def test_events_are_json_ready(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [Save(1.0, 4)], check=CheckCall("answer"))
    shapes = [e.to_json() for e in run.events]
    assert [s["event"] for s in shapes] == [
        "change", "build_started", "build_finished", "reloaded", "call_result", "cycle_finished",
    ]
    assert shapes[0] == {"event": "change", "paths": ["src/lib.rs"], "kinds": ["modified"]}
    assert shapes[1] == {"event": "build_started", "crate": "demo-plugin", "profile": "debug", "reason": "change"}
    assert shapes[2]["ok"] is True and shapes[2]["warnings"] == 1 and shapes[2]["size"] == len(answer_module(4))
    seconds = shapes[4].pop("seconds")
    assert isinstance(seconds, float) and seconds >= 0
    assert shapes[4] == {"event": "call_result", "function": "answer", "args": [], "ok": True, "value": 4, "error": None}


def test_every_cycle_ends_with_its_outcome_and_the_time_from_the_save(tmp_path: Path) -> None:
    """Reloaded, kept the old version, unchanged: each cycle's last event says which, and how long since the save."""
    # 1.0: builds 1.05-2.05. 1.5 lands during that build: its cycle debounces to 2.10 and builds until 3.10.
    saves = [Save(1.0, 1), Save(1.5, "broken"), Save(5.0, 1), Save(7.0, 2)]
    run = run_loop(tmp_path, saves)
    assert run.of(CycleFinished) == [
        CycleFinished(outcome="reloaded", version=2, seconds=pytest.approx(1.05)),
        CycleFinished(outcome="kept_old_version", version=2, seconds=pytest.approx(1.6)),  # from the save at 1.5
        CycleFinished(outcome="unchanged", version=2, seconds=pytest.approx(1.05)),
        CycleFinished(outcome="reloaded", version=3, seconds=pytest.approx(1.05)),
    ]
    assert run.loop.cycles == 4
    assert [type(e) for e in run.events[-5:]] == [Changed, BuildStarted, BuildFinished, Reloaded, CycleFinished]


def test_the_first_build_is_timed_from_its_start(tmp_path: Path) -> None:
    run = run_loop(tmp_path, [], build_first=True)
    assert run.of(CycleFinished) == [CycleFinished(outcome="reloaded", version=1, seconds=pytest.approx(1.0))]


def test_a_file_renamed_over_a_source_in_the_window_is_that_sources_change(tmp_path: Path) -> None:
    """An editor's atomic save: write .lib.rs.XXXX.new or lib.rs.new, rename it over lib.rs. One change: lib.rs."""
    saves = [
        Save(1.00, 1, "src/lib.rs.x1.new", "created"), Save(1.01, 1, "src/lib.rs.x1.new", "modified"),
        Save(1.02, 2, "src/lib.rs", "moved", source="src/lib.rs.x1.new"),
    ]
    run = run_loop(tmp_path, saves)
    (changed,) = run.of(Changed)
    assert (changed.paths, changed.kinds) == ((Path("src/lib.rs"),), ("moved",))
    assert len(run.builder.started) == 1 and run.hot.call("answer") == 2


def test_a_source_renamed_away_and_replaced_is_still_reported(tmp_path: Path) -> None:
    """A backup rename (lib.rs -> lib.rs.bak) then a temporary renamed onto lib.rs: both real files changed."""
    saves = [
        Save(1.00, 1, "src/lib.rs.bak", "moved", source="src/lib.rs"),
        Save(1.01, 2, "src/lib.rs", "moved", source="src/lib.rs.new"),
    ]
    run = run_loop(tmp_path, saves)
    (changed,) = run.of(Changed)
    assert (changed.paths, changed.kinds) == ((Path("src/lib.rs.bak"), Path("src/lib.rs")), ("moved", "moved"))


def test_several_checks_run_in_order_and_each_must_pass(tmp_path: Path) -> None:
    class AnswerBelow100(CheckCall):
        def __call__(self, plugin):  # type: ignore[no-untyped-def]
            value = super().__call__(plugin)
            if value >= 100:
                raise ValueError(f"answer {value} is too big")
            return value

    ran_third: list[int] = []

    def third(plugin):  # type: ignore[no-untyped-def]
        ran_third.append(plugin.call("answer"))
        return "fine"

    checks = [CheckCall("answer"), AnswerBelow100("answer"), third]
    run = run_loop(tmp_path, [Save(1.0, 500), Save(3.0, 42)], check=checks)
    calls = [(c.function, c.ok, c.value, c.error) for c in run.of(CallResult)]
    assert calls == [
        ("answer", True, 500, None), ("answer", False, None, "answer 500 is too big"),  # the third never ran
        ("answer", True, 42, None), ("answer", True, 42, None), ("third", True, "fine", None),
    ]
    assert ran_third == [0, 42]  # the first version's (before the script), then 42's: never 500's
    (failure,) = run.of(KeptOldVersion)
    assert (failure.stage, failure.error) == ("check", "answer 500 is too big")
    assert [type(e) for e in run.events[-5:]] == [Reloaded, CallResult, CallResult, CallResult, CycleFinished]
    assert run.hot.version == 2


def test_a_rebuild_that_restores_the_serving_bytes_after_a_failure_is_a_recovery(tmp_path: Path) -> None:
    """A broken save, then the edit undone: the same bytes as the version serving, reported as recovered."""
    run = run_loop(tmp_path, [Save(1.0, 3), Save(3.0, "broken"), Save(5.0, 3), Save(7.0, 3)])
    assert [(u.version, u.recovered) for u in run.of(Unchanged)] == [(2, True), (2, False)]
    assert run.hot.last_failure is None
