"""`wasmforge watch`'s keys, typed on a real pseudo-terminal into a real watch (real cargo, real watchdog),
and HotPlugin's rollback, forward, versions, pause and resume behind them."""

from __future__ import annotations

import os
import pty
import subprocess
import termios
from pathlib import Path
from typing import Any, Iterator

import pytest

from watching import WatchProcess, add_plugin_source, kinds, save

pytestmark = pytest.mark.cargo


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (the side a person types into, the side watch reads as its stdin)."""
    leader, follower = pty.openpty()
    try:
        yield leader, follower
    finally:
        os.close(leader)
        os.close(follower)


def key_event(process: WatchProcess, leader: int, key: str) -> dict[str, Any]:
    os.write(leader, key.encode())
    return process.until(lambda e: e["event"] == "key")[-1]


def test_keys_steer_a_real_watch(watched_workspace: Path, lib_rs: Path, terminal: tuple[int, int]) -> None:
    leader, follower = terminal
    before = termios.tcgetattr(follower)
    process = WatchProcess(watched_workspace, "--json", "--call", "add 1 2", stdin=follower)
    try:
        process.until_result(3)
        save(lib_rs, add_plugin_source(1))
        process.until_result(4)

        # b: back to v1, whose add(1, 2) is 3; b again: forward to v2.
        os.write(leader, b"b")
        events = process.until(lambda e: e["event"] == "key")
        assert events[-2:] == [{"event": "rolled_back", "version": 1, "previous": 2, "direction": "rollback"},
                               {"event": "key", "key": "b", "action": "rolled back to v1", "ok": True}]
        assert key_event(process, leader, "b") == {"event": "key", "key": "b", "action": "forward to v2", "ok": True}

        # p: a save while paused starts nothing; p again builds it.
        assert key_event(process, leader, "p")["action"] == "paused: saves wait until p"
        save(lib_rs, add_plugin_source(2))
        held = process.until(lambda e: e["event"] == "held")
        assert kinds(held) == ["held"] and held[0]["path"] == str(lib_rs)  # no cycle: the save waits
        assert key_event(process, leader, "p")["action"] == "resumed"
        resumed = process.until_result(5)
        assert kinds(resumed)[:2] == ["change", "build_started"]

        # r: a cycle now, with nothing saved (the same bytes: unchanged).
        assert key_event(process, leader, "r")["action"] == "rebuild"
        rebuilt = process.until_cycle_end()
        assert rebuilt[0]["event"] == "change" and rebuilt[0]["kinds"] == ["requested"]
        assert rebuilt[-1]["outcome"] == "unchanged"

        # Letters that are not keys do nothing; q quits, exit 0, the terminal as it was.
        assert key_event(process, leader, "xq") == {"event": "key", "key": "q", "action": "quit", "ok": True}
        assert process.process.wait(timeout=60) == 0
    finally:
        process.close()
    assert termios.tcgetattr(follower) == before


def test_keys_are_never_read_from_a_pipe(watched_workspace: Path, lib_rs: Path) -> None:
    process = WatchProcess(watched_workspace, "--json", "--call", "add 1 2", stdin=subprocess.PIPE)
    try:
        process.until_result(3)
        assert process.process.stdin is not None
        process.process.stdin.write("q")  # would quit if it were a key
        process.process.stdin.flush()
        save(lib_rs, add_plugin_source(1))
        events = process.until_result(4)  # still watching, and the q was never a key
        assert "key" not in kinds(process.seen) and "key" not in kinds(events)
        assert process.interrupt() == 130
    finally:
        process.close()


def test_text_mode_prints_the_status_line_and_each_key(watched_workspace: Path, lib_rs: Path,
                                                       terminal: tuple[int, int]) -> None:
    leader, follower = terminal
    process = WatchProcess(watched_workspace, "--call", "add 1 2", stdin=follower)
    try:
        first = process.next_line()
        assert first.endswith("add 1 2 -> 3; start to result " + first.rsplit(" ", 2)[-2] + " s")
        os.write(leader, b"b")  # nothing to roll back to: said, and nothing changes
        os.write(leader, b"q")
        assert process.process.wait(timeout=60) == 0
        for reader in process._readers:
            reader.join(timeout=30)
        stderr = "".join(process.stderr)
        assert "keys: r rebuild now, p pause/resume, b roll back/forward, c clear, q quit\n" in stderr
        assert "b: watched-plugin has no older good version to roll back to\n" in stderr
        assert "q: quit\n" in stderr and stderr.endswith("stopped watching\n")
    finally:
        process.close()


def test_hot_plugin_versions_and_rollback(watched_workspace: Path, lib_rs: Path) -> None:
    import wasmforge

    seen: list[Any] = []
    hot = wasmforge.HotPlugin.from_workspace(watched_workspace, on_event=seen.append)
    try:
        assert [(v.number, v.serving) for v in hot.versions] == [(1, True)]
        with pytest.raises(wasmforge.UsageError, match="^watched-plugin has no older good version to roll back to$"):
            hot.rollback()
        save(lib_rs, add_plugin_source(1))
        assert hot.wait_for_version(2, timeout=120)
        assert hot.add(1, 2) == 4
        assert hot.rollback() == 1 and hot.version == 1 and hot.add(1, 2) == 3
        assert [(v.number, v.serving) for v in hot.versions] == [(1, True), (2, False)]
        assert hot.forward() == 2 and hot.add(1, 2) == 4
        with pytest.raises(wasmforge.UsageError, match="no newer good version to go forward to"):
            hot.forward()
        hot.rollback()
        save(lib_rs, add_plugin_source(2))  # a new version after a rollback is a new number, and newest
        assert hot.wait_for_version(3, timeout=120)
        assert hot.add(1, 2) == 5 and [v.number for v in hot.versions] == [1, 2, 3]
        rolled = [e for e in seen if e.kind == "rolled_back"]
        assert [(e.version, e.previous, e.direction) for e in rolled] == [(1, 2, "rollback"), (2, 1, "forward"),
                                                                          (1, 2, "rollback")]
    finally:
        hot.close()
